//! Python `complex` as msgpack-numpy stores it: the text of `repr(z)` (`"(1+2j)"`, `"2j"`),
//! written exactly as CPython writes it and read back as `complex(text)` does.
//!
//! Part of [`crate::codec`]; used by the tree codec and by the Python client, so a complex
//! written by either is byte-identical to the reference's.

use super::reader::{Corrupt, corrupt};

/// `repr(complex(re, im))`, byte for byte as CPython writes it: a `+0.0` real part gives
/// just `"<im>j"`, anything else `"(<re><±im>j)"`, each part in `repr(float)`'s shortest
/// round-trip digits without a trailing `.0`.
pub fn complex_repr(re: f64, im: f64) -> String {
    let mut out = String::with_capacity(24);
    if re == 0.0 && re.is_sign_positive() {
        float_repr(im, false, &mut out);
        out.push('j');
    } else {
        out.push('(');
        float_repr(re, false, &mut out);
        float_repr(im, true, &mut out);
        out.push_str("j)");
    }
    out
}

/// CPython's `PyOS_double_to_string(x, 'r', 0, flags, NULL)` without `Py_DTSF_ADD_DOT_0`:
/// shortest digits, exponent form below 1e-4 and from 1e16 on (`1e+16`, `1.5e-05`),
/// `nan` without a sign, `inf`. `sign` forces a leading `+` on non-negative values.
fn float_repr(x: f64, sign: bool, out: &mut String) {
    if x.is_nan() {
        out.push_str(if sign { "+nan" } else { "nan" });
        return;
    }
    if x.is_sign_negative() {
        out.push('-');
    } else if sign {
        out.push('+');
    }
    if x.is_infinite() {
        out.push_str("inf");
        return;
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as CPython's repr.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let decpt = exp + 1; // the value is 0.<digits> * 10**decpt
    if decpt <= -4 || decpt > 16 {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.unsigned_abs()));
    } else if decpt <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', decpt.unsigned_abs() as usize));
        out.push_str(&digits);
    } else {
        let decpt = decpt as usize;
        if decpt < digits.len() {
            out.push_str(&digits[..decpt]);
            out.push('.');
            out.push_str(&digits[decpt..]);
        } else {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', decpt - digits.len()));
        }
    }
}

/// `complex(text)` for the texts `repr` gives and the usual hand-written forms:
/// `"(1+2j)"`, `"1-2j"`, `"2j"`, `"-j"`, `"1.5"`, `"(nan+infj)"`, surrounding spaces.
pub fn parse_complex(text: &str) -> Result<(f64, f64), Corrupt> {
    let bad = || corrupt(format!("cannot decode stored complex value {text:?}"));
    let mut s = text.trim();
    if let Some(inner) = s.strip_prefix('(') {
        s = inner.strip_suffix(')').ok_or_else(bad)?.trim();
    }
    let Some(body) = s.strip_suffix(['j', 'J']) else {
        return Ok((parse_float(s).ok_or_else(bad)?, 0.0));
    };
    // The imaginary part starts at the last sign that is not an exponent's.
    let b = body.as_bytes();
    let split = (1..b.len())
        .rev()
        .find(|&i| matches!(b[i], b'+' | b'-') && !matches!(b[i - 1], b'e' | b'E'));
    let (re, im) = match split {
        Some(i) => (parse_float(&body[..i]).ok_or_else(bad)?, &body[i..]),
        None => (0.0, body),
    };
    let im = match im {
        "" | "+" => 1.0,
        "-" => -1.0,
        _ => parse_float(im).ok_or_else(bad)?,
    };
    Ok((re, im))
}

/// A float as Python's `float(text)` reads the forms `repr` writes.
fn parse_float(s: &str) -> Option<f64> {
    if s.is_empty() || s.contains(char::is_whitespace) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_cpython() {
        for (re, im, text) in [
            (1.0, 2.0, "(1+2j)"),
            (0.0, 2.0, "2j"),
            (-0.0, 2.0, "(-0+2j)"),
            (0.0, 0.0, "0j"),
            (0.0, -0.0, "-0j"),
            (1.5, -2.25, "(1.5-2.25j)"),
            (1e16, 1e-5, "(1e+16+1e-05j)"),
            (1e15, 1e-4, "(1000000000000000+0.0001j)"),
            (f64::NAN, f64::INFINITY, "(nan+infj)"),
            (f64::NEG_INFINITY, -f64::NAN, "(-inf+nanj)"),
            (0.1, 1.0 / 3.0, "(0.1+0.3333333333333333j)"),
            (123.456, 1e300, "(123.456+1e+300j)"),
            (5e-324, 0.0, "(5e-324+0j)"),
        ] {
            assert_eq!(complex_repr(re, im), text);
        }
    }

    #[test]
    fn parse_reads_what_repr_writes() {
        for (re, im) in [
            (1.0, 2.0),
            (0.0, -3.5),
            (-0.0, 0.0),
            (1e-300, -1e300),
            (1e16, 1e-5),
        ] {
            let (r, i) = parse_complex(&complex_repr(re, im)).unwrap();
            assert_eq!(
                (r.to_bits(), i.to_bits()),
                (f64::to_bits(re), f64::to_bits(im))
            );
        }
        assert_eq!(parse_complex(" (1-j) ").unwrap(), (1.0, -1.0));
        assert_eq!(parse_complex("j").unwrap(), (0.0, 1.0));
        assert_eq!(parse_complex("2.5").unwrap(), (2.5, 0.0));
        let (r, i) = parse_complex("(nan-infj)").unwrap();
        assert!(r.is_nan() && i == f64::NEG_INFINITY);
        for bad in ["", "(", "(1+2j", "1+", "abc", "1 + 2j", "1+2jj"] {
            assert!(parse_complex(bad).is_err(), "{bad:?}");
        }
    }
}
