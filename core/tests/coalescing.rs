//! Coalescing must never change what the endpoint ends up with. For random call
//! sequences (with deliveries interleaved, so some ops are already sent), the
//! reference model's final state is the same with the engine's coalescing as
//! when every call is applied one by one — and every call gets exactly one report.

use proptest::prelude::*;
use repro_line_core::engine::{Action, Engine};
use repro_line_core::model::Model;
use repro_line_core::protocol::{Op, OpKind};
use repro_line_core::retry::Outcome;
use repro_line_core::Event;
use repro_line_core::Policy;
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Step {
    Set(u8),
    Link(u8, u8),
    Unlink(u8, u8),
    /// A token link of `line(l)` on channel `c`; token variant 2 has a forged signature,
    /// which the endpoint refuses (1008): the client cannot tell, so coalescing must not rely on it.
    TokenLink(u8, u8, u8),
    Deliver,
    FailDelivery,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u8..3).prop_map(Step::Set),
        4 => (0u8..2, 0u8..2).prop_map(|(l, c)| Step::Link(l, c)),
        4 => (0u8..2, 0u8..2).prop_map(|(l, c)| Step::Unlink(l, c)),
        4 => (0u8..2, 0u8..2, 0u8..3).prop_map(|(l, c, t)| Step::TokenLink(l, c, t)),
        1 => Just(Step::Deliver),
        1 => Just(Step::FailDelivery),
    ]
}

fn line(l: u8) -> String {
    format!("U{:032x}", l)
}

/// Unpadded base64url, enough to build a token payload.
fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | *b as u32) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// Token variant `t` whose `sub` is `line(l)`; variant 2's signature is forged.
fn token(l: u8, t: u8) -> String {
    let payload = b64url(format!(r#"{{"sub":"{}"}}"#, line(l)).as_bytes());
    let sig = if t == 2 {
        "forged".to_owned()
    } else {
        format!("sig{t}")
    };
    format!("eyJhbGciOiJFUzI1NiJ9.{payload}.{sig}")
}

/// The endpoint: the reference model, plus signature verification (a forged token is 1008).
fn endpoint_apply(model: &mut Model, kind: &OpKind) -> Result<(), u32> {
    if let OpKind::LinkLineIdToken { id_token, .. } = kind {
        if id_token.ends_with(".forged") {
            return Err(repro_line_core::protocol::CODE_INVALID_ID_TOKEN);
        }
    }
    model.apply(kind)
}

fn run(steps: &[Step], max_batch_ops: usize) -> (Model, Model, usize, usize) {
    let cfg = Policy {
        max_batch_ops,
        max_queue_ops: 10_000,
        max_op_age_ms: u64::MAX / 4,
        debounce_ms: 0,
        ..Policy::default()
    };
    let mut engine = Engine::new(cfg);
    let mut one_by_one = Model::default();
    let mut endpoint = Model::default();
    let mut current_user: Option<String> = None;
    let mut calls = 0usize;
    let mut reports = 0usize;
    let mut now = 1_000u64;
    let mut seq = 0u64;
    let mut applied_ids = std::collections::HashSet::new();

    let mut deliver = |engine: &mut Engine,
                       now: &mut u64,
                       fail: bool,
                       endpoint: &mut Model,
                       reports: &mut usize| {
        *now += 1_000_000;
        if let Action::Send(b) = engine.poll(*now) {
            // The endpoint applies each op_id at most once, like the emulator.
            let mut results = Vec::new();
            for op in &b.ops {
                let status = if applied_ids.insert(op.op_id) {
                    if endpoint_apply(endpoint, &op.kind).is_ok() {
                        "applied"
                    } else {
                        "rejected"
                    }
                } else {
                    "duplicate"
                };
                results.push(format!(
                    r#"{{"op_id":"{}","status":"{status}","error":{{"code":1002,"message":"x"}}}}"#,
                    op.op_id
                ));
            }
            let outcome = if fail {
                Outcome::Network {
                    timeout: false,
                    message: "response lost after apply".into(),
                }
            } else {
                Outcome::Response {
                    status: 200,
                    retry_after: None,
                    body: format!(r#"{{"results":[{}]}}"#, results.join(",")).into_bytes(),
                }
            };
            engine.on_outcome(*now, b.id, &outcome, 0.0);
        }
        *reports += engine
            .take_events()
            .iter()
            .filter(|e| matches!(e, Event::Op(_)))
            .count();
    };

    for s in steps {
        let kind = match s {
            Step::Set(u) => {
                current_user = Some(format!("user{u}"));
                OpKind::SetUserId {
                    user_id: format!("user{u}"),
                }
            }
            Step::Link(l, c) | Step::Unlink(l, c) => {
                let Some(user_id) = current_user.clone() else {
                    continue;
                }; // the SDK refuses: UserIdNotSet
                let (line_user_id, channel_id) = (line(*l), format!("c{c}"));
                if matches!(s, Step::Link(..)) {
                    OpKind::LinkLineId {
                        user_id,
                        line_user_id,
                        channel_id,
                    }
                } else {
                    OpKind::UnlinkLineId {
                        user_id,
                        line_user_id,
                        channel_id,
                    }
                }
            }
            Step::TokenLink(l, c, t) => {
                let Some(user_id) = current_user.clone() else {
                    continue;
                };
                OpKind::LinkLineIdToken {
                    user_id,
                    id_token: token(*l, *t).into(),
                    channel_id: format!("c{c}"),
                }
            }
            Step::Deliver | Step::FailDelivery => {
                deliver(
                    &mut engine,
                    &mut now,
                    matches!(s, Step::FailDelivery),
                    &mut endpoint,
                    &mut reports,
                );
                assert_eq!(
                    engine.pending(),
                    calls - reports,
                    "pending = calls not yet reported"
                );
                continue;
            }
        };
        let _ = endpoint_apply(&mut one_by_one, &kind);
        seq += 1;
        calls += 1;
        engine.enqueue(Op {
            op_id: Uuid::from_u128(seq as u128),
            seq,
            at_ms: now,
            kind,
        });
        assert_eq!(
            engine.pending(),
            calls - reports,
            "pending = calls not yet reported"
        );
    }
    for _ in 0..10_000 {
        if engine.pending() == 0 {
            break;
        }
        deliver(&mut engine, &mut now, false, &mut endpoint, &mut reports);
    }
    (one_by_one, endpoint, calls, reports)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn coalescing_preserves_the_final_state(steps in prop::collection::vec(step(), 0..60), max_batch in 1usize..5) {
        let (one_by_one, endpoint, calls, reports) = run(&steps, max_batch);
        prop_assert_eq!(endpoint, one_by_one);
        prop_assert_eq!(reports, calls, "one report per call");
    }
}

#[test]
fn link_then_unlink_is_not_reducible() {
    // user1 takes L over from user0, then unlinks: L ends unlinked. Dropping the
    // pair would leave L with user0, so the engine must keep both.
    let steps = [
        Step::Set(0),
        Step::Link(0, 0),
        Step::Deliver,
        Step::Set(1),
        Step::Link(0, 0),
        Step::Unlink(0, 0),
    ];
    let (one_by_one, endpoint, _, _) = run(&steps, 100);
    assert!(one_by_one.links.is_empty());
    assert_eq!(endpoint, one_by_one);
}

#[test]
fn a_token_link_is_a_link_of_its_sub_only_when_verification_cannot_matter() {
    // An unlink then a forged token link of the same sub: the unlink must still happen.
    let steps = [
        Step::Set(0),
        Step::Link(0, 0),
        Step::Deliver,
        Step::Unlink(0, 0),
        Step::TokenLink(0, 0, 2),
    ];
    let (one_by_one, endpoint, _, _) = run(&steps, 100);
    assert!(one_by_one.links.is_empty());
    assert_eq!(endpoint, one_by_one);

    // A valid token link after a raw link of its sub still links it (an id_token-only
    // endpoint refuses the raw one with 1007, so neither may absorb the other)…
    let mut engine = Engine::new(Policy::default());
    let kinds = [
        OpKind::SetUserId {
            user_id: "u".into(),
        },
        OpKind::LinkLineId {
            user_id: "u".into(),
            line_user_id: line(0),
            channel_id: "c0".into(),
        },
        OpKind::LinkLineIdToken {
            user_id: "u".into(),
            id_token: token(0, 0).into(),
            channel_id: "c0".into(),
        },
        // …while the same token twice in a row is one op, reported twice.
        OpKind::LinkLineIdToken {
            user_id: "u".into(),
            id_token: token(0, 0).into(),
            channel_id: "c0".into(),
        },
    ];
    for (seq, kind) in (1u64..).zip(kinds) {
        engine.enqueue(Op {
            op_id: Uuid::from_u128(seq as u128),
            seq,
            at_ms: 0,
            kind,
        });
    }
    assert_eq!(engine.queued_ops(), 3);
    assert_eq!(engine.pending(), 4);
}
