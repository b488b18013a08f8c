//! The extxyz comment line, as ASE 3.29's `key_val_str_to_dict` reads it: `key=value`
//! pairs split on whitespace, values delimited by `"`, `'`, `{}` or `[]` (not nested),
//! `\` escaping the next character, a bare key meaning `True`; values become numbers
//! (int64, else float64; one token a scalar, several a 1-d array), bools (`T`, `False`,
//! ...), `_JSON` documents, or stay strings. `Lattice`, `virial` and `stress` must be nine
//! numbers, reshaped 3x3 in Fortran order.
//!
//! Layer: the comment-line tokenizer of the extxyz backend; values are the protocol's
//! [`Value`]s, typed as numpy would type them (an int is an `np.int64` scalar, a float a
//! plain float, as they come back from an LMDB store holding the same `Atoms`).

use asebytes_protocol::codec::{NdArray, NdScalar, Value};

use crate::backend::frames::json;

/// Keys whose value is never converted.
const UNPROCESSED: &[&str] = &["uid"];
/// Keys whose value is a 3x3 matrix written as nine numbers in Fortran order.
pub const SPECIAL_3_3: &[&str] = &["Lattice", "virial", "stress"];

/// The pairs of a comment line in order (a repeated key keeps its first place and last
/// value, as a dict does). An error says which key was wrong.
pub fn parse(line: &str) -> Result<Vec<(String, Value)>, String> {
    let mut out: Vec<(String, Value)> = Vec::new();
    for (key, raw) in split_pairs(line.trim()) {
        let value = convert(&key, raw)?;
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => out.push((key, value)),
        }
    }
    Ok(out)
}

/// Splits into `(key, raw value)`; `None` for a bare key.
fn split_pairs(s: &str) -> Vec<(String, Option<String>)> {
    // Each entry: the key's characters, then one list per `=`-separated value part.
    let mut pairs: Vec<Vec<String>> = vec![vec![String::new()]];
    let mut closing: Option<char> = None;
    let mut escaped = false;
    for c in s.chars() {
        let last = pairs.last_mut().and_then(|p| p.last_mut());
        let Some(cur) = last else { continue };
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if let Some(close) = closing {
            if c == close {
                closing = None;
            } else {
                cur.push(c);
            }
        } else if let Some(close) = match c {
            '"' => Some('"'),
            '\'' => Some('\''),
            '{' => Some('}'),
            '[' => Some(']'),
            _ => None,
        } {
            closing = Some(close);
        } else if c.is_whitespace() {
            let only_empty_key = pairs.len() == 1 && pairs[0].len() == 1 && pairs[0][0].is_empty();
            let current_empty = pairs
                .last()
                .and_then(|p| p.last())
                .is_some_and(String::is_empty);
            if !only_empty_key && !current_empty {
                pairs.push(vec![String::new()]);
            }
        } else if c == '=' {
            // `[[]]`: an entry that has nothing yet is dropped, the `=` joins the previous.
            if pairs
                .last()
                .is_some_and(|p| p.len() == 1 && p[0].is_empty())
                && pairs.len() > 1
            {
                pairs.pop();
            }
            if let Some(p) = pairs.last_mut() {
                p.push(String::new());
            }
        } else {
            cur.push(c);
        }
    }
    pairs
        .into_iter()
        .filter(|p| !(p.len() == 1 && p[0].is_empty()))
        .map(|mut p| {
            let key = p.remove(0);
            if p.is_empty() {
                (key, None)
            } else {
                (key, Some(p.join("=")))
            }
        })
        .collect()
}

fn tokens(value: &str) -> Vec<&str> {
    value
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|t| !t.is_empty())
        .collect()
}

/// Python's `int(token)` for what numpy's `dtype=int` accepts (sign and digits).
pub fn parse_int(t: &str) -> Option<i64> {
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

/// Python's `float(token)`: decimal and exponent forms, `inf`, `infinity`, `nan`.
pub fn parse_float(t: &str) -> Option<f64> {
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let ok = !body.is_empty()
        && (body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
            || ["inf", "infinity", "nan"].contains(&body.to_ascii_lowercase().as_str()));
    if ok { t.parse().ok() } else { None }
}

fn bool_word(t: &str) -> Option<bool> {
    match t {
        "T" | "true" | "True" | "TRUE" => Some(true),
        "F" | "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

fn int_array(shape: Vec<u64>, items: &[i64]) -> Value {
    Value::Array(NdArray::from_elements(shape, items).unwrap_or_else(|_| unreachable_array()))
}

fn float_array(shape: Vec<u64>, items: &[f64]) -> Value {
    Value::Array(NdArray::from_f64s(shape, items).unwrap_or_else(|_| unreachable_array()))
}

fn unreachable_array() -> NdArray {
    // Shapes here always match their items; an empty float array is the harmless fallback.
    NdArray::from_f64s(vec![0], &[]).unwrap_or_else(|_| unreachable!("an empty array is valid"))
}

/// `(numbers)` as numpy types them: all ints → int64, else all floats → float64.
enum Numbers {
    Ints(Vec<i64>),
    Floats(Vec<f64>),
}

fn numbers(toks: &[&str]) -> Option<Numbers> {
    if let Some(ints) = toks
        .iter()
        .map(|t| parse_int(t))
        .collect::<Option<Vec<_>>>()
    {
        return Some(Numbers::Ints(ints));
    }
    toks.iter()
        .map(|t| parse_float(t))
        .collect::<Option<Vec<_>>>()
        .map(Numbers::Floats)
}

fn convert(key: &str, raw: Option<String>) -> Result<Value, String> {
    let raw = raw.unwrap_or_else(|| "T".to_string());
    if UNPROCESSED.contains(&key.to_ascii_lowercase().as_str()) {
        return Ok(Value::Str(raw));
    }
    let toks = tokens(&raw);
    let nums = numbers(&toks);
    if SPECIAL_3_3.contains(&key) {
        // Fortran order: item (r, c) is token c * 3 + r.
        let transpose = |i: usize| (i % 3) * 3 + i / 3;
        return match nums {
            Some(Numbers::Ints(v)) if v.len() == 9 => Ok(int_array(
                vec![3, 3],
                &(0..9).map(|i| v[transpose(i)]).collect::<Vec<_>>(),
            )),
            Some(Numbers::Floats(v)) if v.len() == 9 => Ok(float_array(
                vec![3, 3],
                &(0..9).map(|i| v[transpose(i)]).collect::<Vec<_>>(),
            )),
            _ => Err(format!(
                "Got info item {key}, expecting special 3x3 matrix, but value is not in the form of a 9-long numerical vector"
            )),
        };
    }
    match nums {
        Some(Numbers::Ints(v)) if v.len() == 1 => Ok(Value::Scalar(NdScalar::from_element(v[0]))),
        Some(Numbers::Ints(v)) => Ok(int_array(vec![v.len() as u64], &v)),
        Some(Numbers::Floats(v)) if v.len() == 1 => Ok(Value::Float(v[0])),
        Some(Numbers::Floats(v)) => Ok(float_array(vec![v.len() as u64], &v)),
        None => {
            if let Some(bools) = toks
                .iter()
                .map(|t| bool_word(t))
                .collect::<Option<Vec<_>>>()
            {
                return Ok(if bools.len() == 1 {
                    Value::Bool(bools[0])
                } else {
                    Value::List(bools.into_iter().map(Value::Bool).collect())
                });
            }
            if let Some(doc) = raw.strip_prefix("_JSON ") {
                let d = json::parse(doc).map_err(|e| format!("info item {key}: {e}"))?;
                return Ok(json::numeric_array(&d).map(Value::Array).unwrap_or(d));
            }
            Ok(Value::Str(raw))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(pairs: &'a [(String, Value)], k: &str) -> &'a Value {
        &pairs.iter().find(|(key, _)| key == k).unwrap().1
    }

    #[test]
    fn quoting_escapes_and_bare_keys() {
        let p =
            parse(r#"a=1 b="x y" c='q\'s' d={1 2} e=[T, F] flag s=\"esc k = 2.5 u=007"#).unwrap();
        assert_eq!(get(&p, "a"), &Value::Scalar(NdScalar::from_element(1i64)));
        assert_eq!(get(&p, "b"), &Value::Str("x y".into()));
        assert_eq!(get(&p, "c"), &Value::Str("q's".into()));
        assert!(matches!(get(&p, "d"), Value::Array(a) if a.shape == [2]));
        assert_eq!(
            get(&p, "e"),
            &Value::List(vec![Value::Bool(true), Value::Bool(false)])
        );
        assert_eq!(get(&p, "flag"), &Value::Bool(true));
        assert_eq!(get(&p, "s"), &Value::Str("\"esc".into()));
        assert_eq!(get(&p, "k"), &Value::Float(2.5));
        assert_eq!(get(&p, "u"), &Value::Scalar(NdScalar::from_element(7i64)));
    }

    #[test]
    fn lattice_is_fortran_ordered_and_json_is_read() {
        let p =
            parse(r#"Lattice="1 2 3 4 5 6 7 8 9" j="_JSON {\"a\": [1, 2]}" n="_JSON [1.5, NaN]""#)
                .unwrap();
        let Value::Array(l) = get(&p, "Lattice") else {
            panic!()
        };
        assert_eq!(l.to_vec::<i64>().unwrap(), [1, 4, 7, 2, 5, 8, 3, 6, 9]);
        assert!(matches!(get(&p, "j"), Value::Map(_)));
        assert!(matches!(get(&p, "n"), Value::Array(a) if a.dtype.as_str() == "<f8"));
        assert!(parse("stress=\"1 2 3\"").is_err());
        assert_eq!(parse("uid=12").unwrap()[0].1, Value::Str("12".into()));
    }
}
