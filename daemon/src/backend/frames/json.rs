//! JSON as Python's `json.loads` reads it, into the protocol's [`Value`] tree: ASE writes
//! `NaN`, `Infinity` and `-Infinity` (which strict JSON parsers refuse), integers keep
//! their type, objects keep their key order. Used for extxyz `_JSON` values, `.traj`
//! items and `.aselmdb` rows; numpy conversions (`np.array(d)`, `__ndarray__`) are here too
//! so the three formats agree on them.
//!
//! Layer: inside [`super`] (the read-only frames core); no I/O.

use asebytes_protocol::codec::{DType, NdArray, Value};

/// Nesting deeper than this is refused (the parser recurses).
const MAX_DEPTH: u32 = 256;

/// Parses one JSON document (surrounding whitespace allowed).
pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        s: text.as_bytes(),
        at: 0,
    };
    let v = p.value(0)?;
    p.ws();
    if p.at != p.s.len() {
        return Err(p.err("extra data after the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!("invalid JSON at char {}: {what}", self.at)
    }

    fn ws(&mut self) {
        while self
            .s
            .get(self.at)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.at += 1;
        }
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.s[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: u32) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.ws();
        let Some(&c) = self.s.get(self.at) else {
            return Err(self.err("expected a value"));
        };
        match c {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => self.string().map(Value::Str),
            b't' if self.eat("true") => Ok(Value::Bool(true)),
            b'f' if self.eat("false") => Ok(Value::Bool(false)),
            b'n' if self.eat("null") => Ok(Value::Nil),
            b'N' if self.eat("NaN") => Ok(Value::Float(f64::NAN)),
            b'I' if self.eat("Infinity") => Ok(Value::Float(f64::INFINITY)),
            b'-' if self.eat("-Infinity") => Ok(Value::Float(f64::NEG_INFINITY)),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(self.err("expected a value")),
        }
    }

    fn object(&mut self, depth: u32) -> Result<Value, String> {
        self.at += 1;
        let mut out: Vec<(String, Value)> = Vec::new();
        self.ws();
        if self.eat("}") {
            return Ok(Value::Map(out));
        }
        loop {
            self.ws();
            if self.s.get(self.at) != Some(&b'"') {
                return Err(self.err("expected a key"));
            }
            let k = self.string()?;
            self.ws();
            if !self.eat(":") {
                return Err(self.err("expected ':'"));
            }
            let v = self.value(depth + 1)?;
            // A repeated key keeps its first position and its last value, as a dict does.
            match out.iter_mut().find(|(have, _)| *have == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
            self.ws();
            if self.eat(",") {
                continue;
            }
            if self.eat("}") {
                return Ok(Value::Map(out));
            }
            return Err(self.err("expected ',' or '}'"));
        }
    }

    fn array(&mut self, depth: u32) -> Result<Value, String> {
        self.at += 1;
        let mut out = Vec::new();
        self.ws();
        if self.eat("]") {
            return Ok(Value::List(out));
        }
        loop {
            out.push(self.value(depth + 1)?);
            self.ws();
            if self.eat(",") {
                continue;
            }
            if self.eat("]") {
                return Ok(Value::List(out));
            }
            return Err(self.err("expected ',' or ']'"));
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .s
            .get(self.at..self.at + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err("bad \\u escape"))?;
        self.at += 4;
        Ok(h)
    }

    fn string(&mut self) -> Result<String, String> {
        self.at += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.at) else {
                return Err(self.err("unterminated string"));
            };
            self.at += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.at) else {
                        return Err(self.err("unterminated escape"));
                    };
                    self.at += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) && self.eat("\\u") {
                                let lo = self.hex4()?;
                                0x10000 + ((hi - 0xD800) << 10) + (lo.wrapping_sub(0xDC00) & 0x3ff)
                            } else {
                                hi
                            };
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        _ => return Err(self.err("bad escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(c),
            }
        }
        String::from_utf8(out).map_err(|_| self.err("string is not UTF-8"))
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.at;
        if self.s.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        let mut float = false;
        while let Some(&c) = self.s.get(self.at) {
            match c {
                b'0'..=b'9' => {}
                b'.' | b'e' | b'E' | b'+' | b'-' => float = true,
                _ => break,
            }
            self.at += 1;
        }
        let text =
            std::str::from_utf8(&self.s[start..self.at]).map_err(|_| self.err("bad number"))?;
        if !float {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Value::Int(i));
            }
            if let Ok(u) = text.parse::<u64>() {
                return Ok(Value::UInt(u));
            }
        }
        text.parse::<f64>()
            .map(Value::Float)
            .map_err(|_| self.err("bad number"))
    }
}

/// The element kind numpy would pick for a rectangular nest of these leaves.
#[derive(Clone, Copy, PartialEq, PartialOrd)]
enum Kind {
    Bool,
    Int,
    Float,
}

fn leaf_kind(v: &Value) -> Option<(Kind, f64, i64)> {
    match v {
        Value::Bool(b) => Some((Kind::Bool, f64::from(u8::from(*b)), i64::from(*b))),
        Value::Int(i) => Some((Kind::Int, *i as f64, *i)),
        Value::Float(x) => Some((Kind::Float, *x, 0)),
        _ => None,
    }
}

/// `np.array(d)` when numpy would make a bool, int64 or float64 array of it (every leaf a
/// number or bool, the nesting rectangular); `None` otherwise. A bare number gives a 0-d
/// array, an empty list an empty float64 array, as numpy does.
pub fn numeric_array(d: &Value) -> Option<NdArray> {
    let mut shape: Vec<u64> = Vec::new();
    let mut probe = d;
    while let Value::List(items) = probe {
        shape.push(items.len() as u64);
        match items.first() {
            Some(first) => probe = first,
            None => break,
        }
    }
    let mut leaves: Vec<(Kind, f64, i64)> = Vec::new();
    if !collect(d, &shape, &mut leaves) {
        return None;
    }
    let kind = if leaves.is_empty() {
        Kind::Float
    } else {
        leaves
            .iter()
            .map(|l| l.0)
            .fold(Kind::Bool, |a, b| if b > a { b } else { a })
    };
    let mut data = Vec::with_capacity(leaves.len() * 8);
    let dtype = match kind {
        Kind::Bool => {
            data.extend(leaves.iter().map(|l| u8::from(l.2 != 0)));
            "|b1"
        }
        Kind::Int => {
            leaves
                .iter()
                .for_each(|l| data.extend_from_slice(&l.2.to_le_bytes()));
            "<i8"
        }
        Kind::Float => {
            leaves
                .iter()
                .for_each(|l| data.extend_from_slice(&l.1.to_le_bytes()));
            "<f8"
        }
    };
    NdArray::new(DType::parse(dtype).ok()?, shape, data).ok()
}

fn collect(v: &Value, shape: &[u64], out: &mut Vec<(Kind, f64, i64)>) -> bool {
    match (v, shape.split_first()) {
        (Value::List(items), Some((&n, rest))) => {
            items.len() as u64 == n && items.iter().all(|i| collect(i, rest, out))
        }
        (_, None) => match leaf_kind(v) {
            Some(l) => {
                out.push(l);
                true
            }
            None => false,
        },
        _ => false,
    }
}

// ---- ase.io.jsonio's special objects ----

/// numpy's `str(dtype)` → `dtype.str`, for the dtypes ASE writes.
fn dtype_str(name: &str) -> Option<String> {
    Some(
        match name {
            "float64" => "<f8",
            "float32" => "<f4",
            "float16" => "<f2",
            "int64" => "<i8",
            "int32" => "<i4",
            "int16" => "<i2",
            "int8" => "|i1",
            "uint64" => "<u8",
            "uint32" => "<u4",
            "uint16" => "<u2",
            "uint8" => "|u1",
            "bool" => "|b1",
            "complex128" => "<c16",
            "complex64" => "<c8",
            other if other.starts_with("<U") => other,
            _ => return None,
        }
        .to_string(),
    )
}

fn push_item(dtype: &DType, v: &Value, out: &mut Vec<u8>) -> Option<()> {
    let x = v.as_f64();
    match (dtype.kind(), dtype.itemsize()) {
        (b'f', 8) => out.extend_from_slice(&x?.to_le_bytes()),
        (b'f', 4) => out.extend_from_slice(&(x? as f32).to_le_bytes()),
        (b'b', 1) => out.push(u8::from(x? != 0.0)),
        (b'i' | b'u', n) => {
            let i = match v {
                Value::Int(i) => *i,
                Value::UInt(u) => *u as i64,
                Value::Bool(b) => i64::from(*b),
                other => other.as_f64()? as i64,
            };
            out.extend_from_slice(&i.to_le_bytes()[..n]);
        }
        (b'U', n) => {
            let Value::Str(s) = v else { return None };
            let width = n / 4;
            let chars: Vec<char> = s.chars().collect();
            if chars.len() > width {
                return None;
            }
            for c in &chars {
                out.extend_from_slice(&(*c as u32).to_le_bytes());
            }
            out.resize(out.len() + (width - chars.len()) * 4, 0);
        }
        _ => return None,
    }
    Some(())
}

/// `create_ndarray(shape, dtype, flat)`; complex arrays are stored as flat real pairs.
fn ndarray(spec: &Value) -> Option<NdArray> {
    let Value::List(parts) = spec else {
        return None;
    };
    let [Value::List(shape), Value::Str(dtype), Value::List(flat)] = parts.as_slice() else {
        return None;
    };
    let shape: Vec<u64> = shape
        .iter()
        .map(|d| match d {
            Value::Int(i) => u64::try_from(*i).ok(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let dtype = DType::parse(&dtype_str(dtype)?).ok()?;
    let item = if dtype.kind() == b'c' {
        DType::parse(if dtype.itemsize() == 16 { "<f8" } else { "<f4" }).ok()?
    } else {
        dtype.clone()
    };
    let mut data = Vec::with_capacity(flat.len() * item.itemsize());
    for v in flat {
        push_item(&item, v, &mut data)?;
    }
    NdArray::new(dtype, shape, data).ok()
}

/// Applies `ase.io.jsonio`'s object hook bottom-up: `__ndarray__` → arrays,
/// `__complex__` → complex, `__datetime__` → its ISO string.
pub fn revive(v: Value) -> Value {
    match v {
        Value::List(items) => Value::List(items.into_iter().map(revive).collect()),
        Value::Map(entries) => {
            let entries: Vec<(String, Value)> =
                entries.into_iter().map(|(k, v)| (k, revive(v))).collect();
            if entries.len() == 1 {
                let (k, inner) = &entries[0];
                match k.as_str() {
                    "__ndarray__" => {
                        if let Some(a) = ndarray(inner) {
                            return Value::Array(a);
                        }
                    }
                    "__complex__" => {
                        if let Value::List(p) = inner
                            && let [re, im] = p.as_slice()
                            && let (Some(re), Some(im)) = (re.as_f64(), im.as_f64())
                        {
                            return Value::Complex(re, im);
                        }
                    }
                    "__datetime__" => return inner.clone(),
                    _ => {}
                }
            }
            Value::Map(entries)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_json_extensions_and_types_are_kept() {
        let v = parse(r#"{"a": [1, 2.5, NaN, -Infinity], "b": "x\"\u00e9", "c": null, "a": true}"#)
            .unwrap();
        let Value::Map(m) = v else { panic!() };
        assert_eq!(m[0], ("a".into(), Value::Bool(true)));
        assert_eq!(m[1], ("b".into(), Value::Str("x\"é".into())));
        assert_eq!(m[2].1, Value::Nil);
        assert!(parse("[1, 2").is_err());
        assert!(parse("1 2").is_err());
        assert_eq!(
            parse("18446744073709551615").unwrap(),
            Value::UInt(u64::MAX)
        );
    }

    #[test]
    fn numeric_arrays_follow_numpy() {
        let a = numeric_array(&parse("[[1, 2], [3, true]]").unwrap()).unwrap();
        assert_eq!((a.dtype.as_str(), a.shape.clone()), ("<i8", vec![2, 2]));
        let a = numeric_array(&parse("[1, 2.5]").unwrap()).unwrap();
        assert_eq!(a.dtype.as_str(), "<f8");
        let a = numeric_array(&parse("[]").unwrap()).unwrap();
        assert_eq!((a.dtype.as_str(), a.shape.clone()), ("<f8", vec![0]));
        let a = numeric_array(&parse("5").unwrap()).unwrap();
        assert!(a.shape.is_empty());
        assert!(numeric_array(&parse("[[1], [2, 3]]").unwrap()).is_none());
        assert!(numeric_array(&parse(r#"[1, "a"]"#).unwrap()).is_none());
        assert!(numeric_array(&parse("[1, null]").unwrap()).is_none());
    }
}
