//! The request builder's inverse: for arbitrary ops, `encode_batch` produces
//! JSON that `serde_json::from_slice::<BatchRequest>` reads back to the same
//! device ID, op IDs, seqs, kinds and formatted times.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use repro_line_core::protocol::{self, BatchRequest, Op, OpKind};

#[derive(Debug, Arbitrary)]
enum Kind {
    Set(String),
    Link(String, String, String),
    Unlink(String, String, String),
}

#[derive(Debug, Arbitrary)]
struct ArbOp {
    op_id: u128,
    seq: u64,
    at_ms: u64,
    kind: Kind,
}

fuzz_target!(|input: (u128, Vec<ArbOp>)| {
    let (device, arb) = input;
    let device = uuid::Uuid::from_u128(device);
    let ops: Vec<Op> = arb
        .into_iter()
        .map(|a| Op {
            op_id: uuid::Uuid::from_u128(a.op_id),
            seq: a.seq,
            at_ms: a.at_ms,
            kind: match a.kind {
                Kind::Set(user_id) => OpKind::SetUserId { user_id },
                Kind::Link(user_id, line_user_id, channel_id) => OpKind::LinkLineId {
                    user_id,
                    line_user_id,
                    channel_id,
                },
                Kind::Unlink(user_id, line_user_id, channel_id) => OpKind::UnlinkLineId {
                    user_id,
                    line_user_id,
                    channel_id,
                },
            },
        })
        .collect();
    let body = protocol::encode_batch(&device, &ops);
    let back: BatchRequest = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => panic!(
            "encode_batch output does not parse as BatchRequest: {e}\n{}",
            String::from_utf8_lossy(&body)
        ),
    };
    assert_eq!(back.device_id, device);
    assert_eq!(back.ops.len(), ops.len());
    for (w, o) in back.ops.iter().zip(&ops) {
        assert_eq!(w.op_id, o.op_id);
        assert_eq!(w.seq, o.seq);
        assert_eq!(w.at, protocol::format_rfc3339_millis(o.at_ms));
        assert_eq!(w.kind, o.kind);
    }
});
