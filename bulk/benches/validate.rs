//! `cargo bench -p repro-line-bulk`: validator throughput on a generated
//! Format 1 file (64 MB, page-cached), all cores and one core. The full-size
//! comparison with Python and `wc -l` is scripts/bench-csv.sh.

use std::io::Write;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use repro_line_bulk::{validate_file, ValidateOptions};

fn file(dir: &tempfile::TempDir, target: usize) -> std::path::PathBuf {
    let path = dir.path().join("bench.csv");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    let mut n = 21usize;
    w.write_all(b"line_user_id,user_id\n").expect("write");
    let mut i: u128 = 0;
    while n < target {
        let row = format!(
            "U{:032x},user-{:x}\n",
            i.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
            i
        );
        n += row.len();
        w.write_all(row.as_bytes()).expect("write");
        i += 1;
    }
    w.flush().expect("flush");
    path
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = file(&dir, 64_000_000);
    let bytes = std::fs::metadata(&path).expect("meta").len();
    let mut g = c.benchmark_group("csv_validate");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    for threads in [0usize, 1] {
        let name = if threads == 0 {
            "all_cores"
        } else {
            "one_worker"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let opts = ValidateOptions {
                    threads,
                    ..Default::default()
                };
                let r = validate_file(&path, &opts).expect("validate");
                assert!(r.valid);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
