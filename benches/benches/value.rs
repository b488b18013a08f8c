//! The pure-Rust value codec (`asebytes_protocol::codec`): decoding and encoding the
//! fields of one 9-atom ethanol frame, as a columnar store does per written / read frame.

use std::hint::black_box;

use asebytes_protocol::codec::{NdArray, Value, decode, encode_into};
use criterion::{Criterion, criterion_group, criterion_main};

/// The fields of one ethanol frame as values (the shapes `atoms_to_dict` gives).
fn ethanol_values() -> Vec<Value> {
    let arr = |shape: Vec<u64>, n: usize| {
        let items: Vec<f64> = (0..n).map(|i| i as f64 * 0.37).collect();
        Value::Array(NdArray::from_f64s(shape, &items).expect("consistent"))
    };
    let numbers: Vec<i64> = vec![6, 6, 8, 1, 1, 1, 1, 1, 1];
    vec![
        Value::Array(NdArray::from_elements(vec![9], &numbers).expect("consistent")),
        arr(vec![9, 3], 27),
        Value::Float(-97.1),
        arr(vec![9, 3], 27),
        arr(vec![6], 6),
        arr(vec![3, 3], 9),
        Value::Int(7),
        Value::Array(NdArray::from_elements(vec![3], &[true, false, true]).expect("consistent")),
    ]
}

fn bench_value(c: &mut Criterion) {
    let values = ethanol_values();
    let encoded: Vec<Vec<u8>> = values
        .iter()
        .map(|v| {
            let mut out = Vec::new();
            encode_into(v, &mut out).expect("encodable");
            out
        })
        .collect();
    let mut g = c.benchmark_group("value_codec_ethanol_frame");
    g.bench_function("decode_8_fields", |b| {
        b.iter(|| {
            for bytes in &encoded {
                black_box(decode(black_box(bytes)).expect("valid"));
            }
        })
    });
    g.bench_function("encode_8_fields", |b| {
        let mut out = Vec::with_capacity(2048);
        b.iter(|| {
            out.clear();
            for v in &values {
                encode_into(black_box(v), &mut out).expect("encodable");
            }
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench_value);
criterion_main!(benches);
