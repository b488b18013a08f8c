//! Byte compatibility with the reference: every case in `golden/codec_cases.rs` was made by
//! `msgpack.packb(v, default=msgpack_numpy.encode)` (`gen_codec_golden.py` regenerates it).
//! Decoding gives the expected [`Value`]; encoding that value gives the same bytes back.

use asebytes_protocol::codec::Value::*;
use asebytes_protocol::codec::{DType, NdArray, NdScalar, Value, decode, encode};

// Generated one line per case; formatting it would only make regeneration noisy.
#[rustfmt::skip]
#[path = "golden/codec_cases.rs"]
mod cases;

/// Bytes from hex.
fn h(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex length");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A numpy array value.
fn arr(dtype: &str, shape: &[u64], data: &str) -> Value {
    let dtype = DType::parse(dtype).expect("golden dtype");
    Array(NdArray::new(dtype, shape.to_vec(), h(data)).expect("golden array"))
}

/// A numpy scalar value.
fn sc(dtype: &str, data: &str) -> Value {
    let dtype = DType::parse(dtype).expect("golden dtype");
    Scalar(NdScalar::new(dtype, h(data)).expect("golden scalar"))
}

/// Values compared through `Debug`, so NaN equals NaN and -0.0 differs from 0.0.
fn same(a: &Value, b: &Value) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

#[test]
fn golden_bytes_decode_to_their_values_and_encode_back_identically() {
    let cases = cases::roundtrip();
    assert!(cases.len() > 150, "the golden table is complete");
    for (name, hex, expected) in cases {
        let bytes = h(hex);
        let got = decode(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            same(&got, &expected),
            "{name}: decoded {got:?}, expected {expected:?}"
        );
        let back = encode(&expected).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(back, bytes, "{name}: encoding differs from the reference");
    }
}

#[test]
fn other_writers_layouts_decode_as_the_reference_decodes_them() {
    for (name, hex, expected) in cases::decode_only() {
        let got = decode(&h(hex)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            same(&got, &expected),
            "{name}: decoded {got:?}, expected {expected:?}"
        );
    }
}

#[test]
fn pickles_records_non_str_keys_and_malformed_values_are_refused() {
    for (name, hex) in cases::refused() {
        assert!(decode(&h(hex)).is_err(), "{name} must be refused");
    }
}

#[test]
fn refusals_say_why() {
    let cases = cases::refused();
    let find = |n: &str| h(cases.iter().find(|c| c.0 == n).expect("case").1);
    let msg = |n: &str| decode(&find(n)).unwrap_err().to_string();
    assert!(
        msg("object_array").contains("never unpickles"),
        "{}",
        msg("object_array")
    );
    assert!(msg("structured_array").contains("structured"));
    assert!(msg("int_key").contains("str"));
    assert!(msg("array_short_data").contains("bytes"));
}

#[test]
fn golden_values_report_their_shape_and_numbers() {
    let cases = cases::roundtrip();
    let get = |n: &str| cases.iter().find(|c| c.0 == n).expect("case").2.clone();
    assert_eq!(get("array_f8_2x3x2").shape(), Some(&[2u64, 3, 2][..]));
    assert_eq!(get("array_f8_0d").ndim(), Some(0));
    assert_eq!(get("scalar_int64_5").as_f64(), Some(3.0));
    assert_eq!(get("scalar_bool_0").as_f64(), Some(1.0));
    assert_eq!(get("scalar_float16_10").as_f64(), Some(1.5));
    assert_eq!(get("int_minus_129").as_i64(), Some(-129));
    let pos = get("array_f8_positions");
    let a = pos.as_array().expect("array");
    assert_eq!(a.to_f64s().map(|v| v.len()), Some(27));
    let be = get("array_i4_be_3");
    let le = be.as_array().expect("array").to_little_endian();
    assert_eq!(le.dtype.as_str(), "<i4");
    assert_eq!(
        le.to_vec::<i32>(),
        be.as_array().expect("array").to_vec::<i32>()
    );
}
