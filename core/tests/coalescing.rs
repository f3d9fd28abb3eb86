//! Coalescing must never change what the endpoint ends up with. For random call
//! sequences (with deliveries interleaved, so some ops are already sent), the
//! reference model's final state is the same with the engine's coalescing as
//! when every call is applied one by one — and every call gets exactly one report.

use proptest::prelude::*;
use repro_line_core::engine::{Action, Engine, EngineConfig};
use repro_line_core::model::Model;
use repro_line_core::protocol::{Op, OpKind};
use repro_line_core::retry::Outcome;
use repro_line_core::Event;
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Step {
    Set(u8),
    Link(u8, u8),
    Unlink(u8, u8),
    Deliver,
    FailDelivery,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0u8..3).prop_map(Step::Set),
        4 => (0u8..2, 0u8..2).prop_map(|(l, c)| Step::Link(l, c)),
        4 => (0u8..2, 0u8..2).prop_map(|(l, c)| Step::Unlink(l, c)),
        1 => Just(Step::Deliver),
        1 => Just(Step::FailDelivery),
    ]
}

fn line(l: u8) -> String {
    format!("U{:032x}", l)
}

fn run(steps: &[Step], max_batch_ops: usize) -> (Model, Model, usize, usize) {
    let cfg = EngineConfig {
        max_batch_ops,
        max_queue_ops: 10_000,
        max_op_age_ms: u64::MAX / 4,
        debounce_ms: 0,
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
                    if endpoint.apply(&op.kind).is_ok() {
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
        let _ = one_by_one.apply(&kind);
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
