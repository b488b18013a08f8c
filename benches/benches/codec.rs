//! Frame codec throughput: encoding and decoding a `Rows` response of 1000 ethanol-sized
//! rows, against a plain `memcpy` of the same number of bytes (the floor).

use std::hint::black_box;

use asebytes_benches::ethanol_rows;
use asebytes_protocol::Response;
use asebytes_protocol::frame::{self, Envelope, HEADER_LEN};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn bench_codec(c: &mut Criterion) {
    let resp = Response::Rows(ethanol_rows(1000));
    let encoded = frame::encode(1, &resp).unwrap();
    let mut g = c.benchmark_group("rows_1000");
    g.throughput(Throughput::Bytes(encoded.len() as u64));
    g.bench_function("encode", |b| {
        let mut buf = Vec::with_capacity(encoded.len());
        b.iter(|| {
            buf.clear();
            frame::encode_into(&mut buf, 1, black_box(&resp)).unwrap();
            black_box(buf.len())
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let env: Envelope<Response> = frame::decode(black_box(&encoded[HEADER_LEN..])).unwrap();
            black_box(env.id)
        })
    });
    g.bench_function("memcpy_floor", |b| {
        let mut dst = vec![0u8; encoded.len()];
        b.iter(|| {
            dst.copy_from_slice(black_box(&encoded));
            black_box(dst[0])
        })
    });
    g.finish();
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
