//! Cost of the per-message hot path: cutting frames off a read buffer, decoding the client
//! messages the proxy inspects, and the server-side views (RowDescription, CommandComplete).

use bytes::BytesMut;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pgvigil::protocol::{backend, build, frame, frontend};

/// A pgbench -S -M extended round: Bind, Describe portal, Execute, Sync.
fn extended_batch() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&build::bind("", ""));
    v.extend_from_slice(b"D\0\0\0\x06P\0");
    v.extend_from_slice(b"E\0\0\0\x09\0\0\0\0\0");
    v.extend_from_slice(b"S\0\0\0\x04");
    v
}

/// 1000 DataRows of ~100 bytes, as a result set arrives from the server.
fn result_set() -> Vec<u8> {
    let mut v = Vec::new();
    let value = [b'x'; 96];
    for _ in 0..1000 {
        v.push(b'D');
        v.extend_from_slice(&(4 + 2 + 4 + value.len() as u32).to_be_bytes());
        v.extend_from_slice(&1u16.to_be_bytes());
        v.extend_from_slice(&(value.len() as u32).to_be_bytes());
        v.extend_from_slice(&value);
    }
    v
}

fn bench_split(c: &mut Criterion) {
    let rows = result_set();
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Bytes(rows.len() as u64));
    g.bench_function("split_1000_datarows", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&rows[..]);
            let mut n = 0;
            while let Ok(Some(f)) = frame::split_frame(&mut buf, frame::DEFAULT_MAX_MESSAGE) {
                n += f.bytes.len();
            }
            black_box(n)
        })
    });
    g.finish();
}

fn bench_decode(c: &mut Criterion) {
    let batch = extended_batch();
    c.bench_function("framing/decode_extended_round", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&batch[..]);
            while let Ok(Some(f)) = frame::split_frame(&mut buf, frame::DEFAULT_MAX_MESSAGE) {
                black_box(frontend::decode(&f).is_ok());
            }
        })
    });
    let query = build::query("SELECT abalance FROM pgbench_accounts WHERE aid = 42");
    c.bench_function("framing/decode_query", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(&query[..]);
            if let Ok(Some(f)) = frame::split_frame(&mut buf, frame::DEFAULT_MAX_MESSAGE) {
                black_box(frontend::decode(&f).is_ok());
            }
        })
    });
    let mut rd = vec![0u8, 1];
    rd.extend_from_slice(b"abalance\0");
    rd.extend_from_slice(&16397i32.to_be_bytes());
    rd.extend_from_slice(&3i16.to_be_bytes());
    rd.extend_from_slice(&[0; 12]);
    c.bench_function("framing/row_description", |b| {
        b.iter(|| black_box(backend::row_description(&rd)))
    });
    c.bench_function("framing/command_tag_rows", |b| {
        b.iter(|| black_box(backend::tag_rows(black_box("SELECT 1000"))))
    });
}

criterion_group!(benches, bench_split, bench_decode);
criterion_main!(benches);
