//! Criterion micro-benchmarks of the hot paths: journal framing, batch encoding,
//! response decoding, and a whole call on the memory store and the file store.
//! `cargo bench -p repro-line-benches --bench core`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use repro_line_benches::{line_id, CHANNEL};
use repro_line_core::protocol::{self, Op, OpKind};
use repro_line_core::retry::{self, Outcome};
use repro_line_core::store::{codec, file::FileStore, Record};
use repro_line_core::{MemoryStore, Policy, Session};
use uuid::Uuid;

fn op(seq: u64) -> Op {
    Op {
        op_id: Uuid::now_v7(),
        seq,
        at_ms: 1_795_867_200_123 + seq,
        kind: OpKind::LinkLineId {
            user_id: "bench-user".into(),
            line_user_id: line_id(seq),
            channel_id: CHANNEL.into(),
        },
    }
}

fn codec_benches(c: &mut Criterion) {
    let record = Record::Op(op(1));
    c.bench_function("codec/encode_op_record", |b| {
        let mut buf = Vec::with_capacity(512);
        b.iter(|| {
            buf.clear();
            codec::encode_into(&mut buf, black_box(&record));
            black_box(buf.len())
        })
    });
    let mut journal = Vec::new();
    for s in 1..=10_000 {
        codec::encode_into(&mut journal, &Record::Op(op(s)));
    }
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(10_000));
    g.sample_size(20);
    g.bench_function("decode_all_10k_ops", |b| {
        b.iter(|| black_box(codec::decode_all(black_box(&journal)).records.len()))
    });
    g.finish();
}

fn protocol_benches(c: &mut Criterion) {
    let ops: Vec<Op> = (1..=100).map(op).collect();
    let device = Uuid::new_v4();
    let mut g = c.benchmark_group("protocol");
    g.throughput(Throughput::Elements(100));
    g.bench_function("encode_batch_100", |b| {
        b.iter(|| black_box(protocol::encode_batch(&device, black_box(&ops)).len()))
    });
    let ids: Vec<Uuid> = ops.iter().map(|o| o.op_id).collect();
    let body = format!(
        "{{\"results\":[{}]}}",
        ids.iter()
            .map(|id| format!("{{\"op_id\":\"{id}\",\"status\":\"applied\"}}"))
            .collect::<Vec<_>>()
            .join(",")
    )
    .into_bytes();
    let policy = repro_line_core::Policy::default();
    let outcome = Outcome::Response {
        status: 200,
        retry_after: None,
        body,
    };
    g.bench_function("decide_200_with_100_results", |b| {
        b.iter(|| {
            let answer = protocol::classify(black_box(&outcome), 0, &ids);
            black_box(retry::decide(&policy, 0, answer, 0, 0.5))
        })
    });
    g.finish();
}

fn session_benches(c: &mut Criterion) {
    let cfg = Policy {
        max_queue_ops: 1_000_000,
        ..Policy::default()
    };
    let ids: Vec<String> = (0..1_000_000).map(line_id).collect();
    let mut g = c.benchmark_group("session");
    for (name, file) in [("call_memory_store", false), ("call_file_store", true)] {
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let store: Box<dyn repro_line_core::Store> = if file {
                        Box::new(FileStore::open(dir.path()).expect("file store"))
                    } else {
                        Box::new(MemoryStore::new())
                    };
                    let mut s =
                        Session::open(cfg.clone(), Some(CHANNEL.into()), store).expect("session");
                    s.set_user_id(1, "bench-user").expect("user");
                    (s, 0usize, dir)
                },
                |(s, i, _dir)| {
                    *i += 1;
                    s.set_line_user_id(2, &ids[*i % ids.len()], None)
                        .expect("call accepted");
                },
                BatchSize::NumIterations(10_000),
            )
        });
    }
    g.finish();
}

criterion_group!(benches, codec_benches, protocol_benches, session_benches);
criterion_main!(benches);
