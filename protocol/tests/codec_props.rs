//! Properties of the value codec: any value survives encode → decode unchanged, and hostile
//! bytes (truncated, lying about lengths, nested without end) give an error, never a panic
//! or an allocation the input does not justify.

use asebytes_protocol::codec::{DType, MAX_DEPTH, NdArray, NdScalar, Value, decode, encode};
use proptest::prelude::*;

const DTYPES: &[&str] = &[
    "|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "<f2", "<f4", "<f8", "<c8",
    "<c16", ">f8", ">i4", "<U3", "|S2",
];

fn array() -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(DTYPES),
        proptest::collection::vec(0u64..4, 0..4),
    )
        .prop_flat_map(|(dtype, shape)| {
            let dtype = DType::parse(dtype).expect("dtype");
            let n = shape.iter().product::<u64>() as usize * dtype.itemsize();
            proptest::collection::vec(any::<u8>(), n).prop_map(move |data| {
                Value::Array(NdArray::new(dtype.clone(), shape.clone(), data).expect("array"))
            })
        })
}

fn scalar() -> impl Strategy<Value = Value> {
    proptest::sample::select(&DTYPES[..14]).prop_flat_map(|dtype| {
        let dtype = DType::parse(dtype).expect("dtype");
        proptest::collection::vec(any::<u8>(), dtype.itemsize()).prop_map(move |data| {
            Value::Scalar(NdScalar::new(dtype.clone(), data).expect("scalar"))
        })
    })
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        (i64::MAX as u64 + 1..=u64::MAX).prop_map(Value::UInt),
        any::<f64>().prop_map(Value::Float),
        ".{0,40}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Value::Bin),
        (any::<f64>(), any::<f64>()).prop_map(|(a, b)| Value::Complex(a, b)),
        array(),
        scalar(),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
            proptest::collection::btree_map(".{0,8}", inner, 0..8)
                .prop_map(|m| Value::Map(m.into_iter().collect())),
        ]
    })
}

/// Compared through `Debug`, so NaN equals NaN and -0.0 differs from 0.0.
fn dbg(v: &Value) -> String {
    format!("{v:?}")
}

proptest! {
    #[test]
    fn every_value_round_trips(v in value()) {
        let bytes = encode(&v).expect("encode");
        let back = decode(&bytes).expect("decode");
        prop_assert_eq!(dbg(&back), dbg(&v));
        prop_assert_eq!(encode(&back).expect("re-encode"), bytes);
    }

    #[test]
    fn every_truncation_is_an_error(v in value()) {
        let bytes = encode(&v).expect("encode");
        for cut in 0..bytes.len() {
            prop_assert!(decode(&bytes[..cut]).is_err(), "prefix of {} bytes decoded", cut);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn corrupted_values_never_panic(v in value(), at in any::<prop::sample::Index>(), b in any::<u8>()) {
        let mut bytes = encode(&v).expect("encode");
        if !bytes.is_empty() {
            let i = at.index(bytes.len());
            bytes[i] = b;
        }
        let _ = decode(&bytes);
    }
}

#[test]
fn huge_announced_lengths_are_refused_before_allocating() {
    // array32 / map32 / str32 / bin32 announcing 4 GiB with nothing behind them.
    for head in [
        &b"\xdd\xff\xff\xff\xff"[..],
        b"\xdf\xff\xff\xff\xff",
        b"\xdb\xff\xff\xff\xff",
        b"\xc6\xff\xff\xff\xff",
    ] {
        assert!(decode(head).is_err(), "{head:?}");
    }
    // An ndarray whose shape claims 2**62 elements of a 1-byte buffer.
    let mut b =
        b"\x85\xc4\x02nd\xc3\xc4\x04type\xa3<f8\xc4\x04kind\xc4\x00\xc4\x05shape\x92".to_vec();
    b.extend_from_slice(
        b"\xcf\x40\x00\x00\x00\x00\x00\x00\x00\xcf\x40\x00\x00\x00\x00\x00\x00\x00",
    );
    b.extend_from_slice(b"\xc4\x04data\xc4\x01\x00");
    assert!(decode(&b).is_err());
    // A 65-dimensional shape.
    let mut b =
        b"\x85\xc4\x02nd\xc3\xc4\x04type\xa3|u1\xc4\x04kind\xc4\x00\xc4\x05shape\xdc\x00\x41"
            .to_vec();
    b.extend(std::iter::repeat_n(1u8, 65));
    b.extend_from_slice(b"\xc4\x04data\xc4\x01\x00");
    assert!(decode(&b).is_err());
}

#[test]
fn deep_nesting_is_refused_both_ways() {
    let depth = MAX_DEPTH as usize + 10;
    let mut lists = vec![0x91u8; depth];
    lists.push(0xc0);
    assert!(
        decode(&lists)
            .unwrap_err()
            .to_string()
            .contains("nested deeper")
    );
    let mut maps = b"\x81\xa1k".repeat(depth);
    maps.push(0xc0);
    assert!(decode(&maps).is_err());
    // A million nested lists: still an error, not a stack overflow.
    let mut deep = vec![0x91u8; 1_000_000];
    deep.push(0xc0);
    assert!(decode(&deep).is_err());

    let mut v = Value::Nil;
    for _ in 0..depth {
        v = Value::List(vec![v]);
    }
    assert!(encode(&v).is_err());
    let mut ok = Value::Nil;
    for _ in 0..MAX_DEPTH {
        ok = Value::List(vec![ok]);
    }
    assert!(decode(&encode(&ok).expect("at the limit")).is_ok());
}

#[test]
fn inconsistent_values_are_not_encoded() {
    let a = NdArray {
        dtype: DType::f8(),
        shape: vec![2],
        data: vec![0; 8],
    };
    assert!(encode(&Value::Array(a)).is_err());
    let s = NdScalar {
        dtype: DType::f8(),
        data: vec![0; 4],
    };
    assert!(encode(&Value::Scalar(s)).is_err());
}

#[test]
fn nesting_at_the_limit_fits_a_small_thread_stack() {
    // Stores decode on daemon threads; the deepest accepted value must fit well within a
    // default 2 MiB thread stack, even in a debug build (decoding does not recurse).
    let mut lists = vec![0x91u8; MAX_DEPTH as usize];
    lists.push(0xc0);
    let mut maps = b"\x81\xa1k".repeat(MAX_DEPTH as usize);
    maps.push(0xc0);
    std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let v = decode(&lists).expect("lists at the limit");
            assert!(decode(&maps).is_ok());
            assert_eq!(encode(&v).expect("encode at the limit"), lists);
        })
        .expect("spawn")
        .join()
        .expect("no stack overflow");
}
