//! Cost of `sql::analyze` on the statement shapes the proxy sees most: a pgbench point
//! select, a 3-way join, and a 50-statement script (what a migration tool sends).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pgvigil::sql::analyze;

const PGBENCH_SELECT: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";

const THREE_WAY_JOIN: &str = "/* actor='alice',request_id='r-42' */ \
    SELECT c.name, o.total, i.sku FROM customers c \
    JOIN orders o ON o.customer_id = c.id \
    JOIN items i ON i.order_id = o.id \
    WHERE c.ssn = $1 AND o.created > now() - interval '7 days' \
    ORDER BY o.total DESC LIMIT 20";

fn script() -> String {
    (0..50)
        .map(|i| match i % 5 {
            0 => format!("INSERT INTO t{i} (a, b) VALUES ({i}, 'v{i}');"),
            1 => format!("UPDATE t{i} SET a = a + {i} WHERE b = 'k{i}';"),
            2 => format!("SELECT a, b FROM t{i} WHERE a > {i};"),
            3 => format!("CREATE TABLE IF NOT EXISTS t{i} (a int, b text);"),
            _ => format!("DELETE FROM t{i} WHERE a = {i};"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn bench_analyze(c: &mut Criterion) {
    c.bench_function("analyze/pgbench_select", |b| {
        b.iter(|| analyze(black_box(PGBENCH_SELECT)))
    });
    c.bench_function("analyze/three_way_join", |b| {
        b.iter(|| analyze(black_box(THREE_WAY_JOIN)))
    });
    let script = script();
    c.bench_function("analyze/script_50_statements", |b| {
        b.iter(|| analyze(black_box(&script)))
    });
}

criterion_group!(benches, bench_analyze);
criterion_main!(benches);
