//! Cost of field encryption per cell: encrypt and decrypt one short value (an SSN) and one
//! 1 KiB value, the blind index of a value, and deriving a column's blind-index key.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use pgvigil::crypto::{decrypt, encrypt, ColumnPath, EnvMasterKey, KeyringFile};

fn bench_crypto(c: &mut Criterion) {
    let master = EnvMasterKey::from_base64(&STANDARD.encode([7u8; 32])).expect("master key");
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let ring = KeyringFile::generate(&master, now)
        .and_then(|f| f.unlock(&master))
        .expect("keyring");
    let column = ColumnPath::new("default", "public", "customers", "ssn").expect("column");

    let mut group = c.benchmark_group("cell");
    for (name, value) in [("ssn", b"123-45-6789".to_vec()), ("1KiB", vec![b'x'; 1024])] {
        let stored = encrypt(&ring, &value, &column).expect("encrypt");
        group.throughput(Throughput::Bytes(value.len() as u64));
        group.bench_function(format!("encrypt/{name}"), |b| {
            b.iter(|| encrypt(&ring, black_box(&value), &column))
        });
        group.bench_function(format!("decrypt/{name}"), |b| {
            b.iter(|| decrypt(&ring, black_box(&stored), &column))
        });
    }
    group.finish();

    let key = ring.blind_index_key(&column);
    c.bench_function("blind_index/ssn", |b| {
        b.iter(|| key.index(black_box(b"123-45-6789")))
    });
    c.bench_function("blind_index_key/derive", |b| {
        b.iter(|| ring.blind_index_key(black_box(&column)))
    });
}

criterion_group!(benches, bench_crypto);
criterion_main!(benches);
