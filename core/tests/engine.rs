//! The delivery engine driven by a simulated clock: no sockets, no sleeps.

use repro_line_core::engine::{Action, Batch, Engine};
use repro_line_core::protocol::{Op, OpKind};
use repro_line_core::retry::Outcome;
use repro_line_core::Policy;
use repro_line_core::{DeliveryState, DeliveryStatus, DropReason, Event, PauseReason};
use uuid::Uuid;

const LINE: &str = "U4af4980629a1b2c3d4e5f60718293a4b";

fn cfg() -> Policy {
    Policy {
        max_batch_ops: 100,
        max_queue_ops: 10_000,
        max_op_age_ms: 7 * 86_400_000,
        debounce_ms: 200,
        ..Policy::default()
    }
}

struct Sim {
    engine: Engine,
    now: u64,
    seq: u64,
}

impl Sim {
    fn new(cfg: Policy) -> Sim {
        Sim {
            engine: Engine::new(cfg),
            now: 1_000_000,
            seq: 0,
        }
    }
    fn call(&mut self, kind: OpKind) -> Uuid {
        self.seq += 1;
        let op_id = Uuid::from_u128(self.seq as u128);
        self.engine.enqueue(Op {
            op_id,
            seq: self.seq,
            at_ms: self.now,
            kind,
        });
        op_id
    }
    fn set(&mut self, u: &str) -> Uuid {
        self.call(OpKind::SetUserId { user_id: u.into() })
    }
    fn link(&mut self, u: &str) -> Uuid {
        self.call(OpKind::LinkLineId {
            user_id: u.into(),
            line_user_id: LINE.into(),
            channel_id: "c1".into(),
        })
    }
    fn unlink(&mut self, u: &str) -> Uuid {
        self.call(OpKind::UnlinkLineId {
            user_id: u.into(),
            line_user_id: LINE.into(),
            channel_id: "c1".into(),
        })
    }
    /// Advances the clock to whatever the engine waits for and returns the batch it sends.
    fn next_batch(&mut self) -> Batch {
        for _ in 0..10 {
            match self.engine.poll(self.now) {
                Action::Send(b) => return b,
                Action::WaitUntil(t) => {
                    assert!(t > self.now, "WaitUntil must be in the future");
                    self.now = t;
                }
                Action::Idle => panic!("engine idle with {} pending", self.engine.pending()),
            }
        }
        panic!("no batch")
    }
    fn respond(&mut self, b: &Batch, status: u16, retry_after: Option<&str>) {
        let body = if status == 200 {
            ok_body(b, "applied")
        } else {
            Vec::new()
        };
        self.engine.on_outcome(
            self.now,
            b.id,
            &Outcome::Response {
                status,
                retry_after: retry_after.map(Into::into),
                body,
            },
            1.0,
        );
    }
    fn reports(&mut self) -> Vec<(u64, DeliveryStatus)> {
        self.engine
            .take_events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Op(r) => Some((r.seq, r.status)),
                Event::State(_) => None,
            })
            .collect()
    }
}

fn ok_body(b: &Batch, status: &str) -> Vec<u8> {
    let results: Vec<String> = b
        .ops
        .iter()
        .map(|o| format!(r#"{{"op_id":"{}","status":"{status}"}}"#, o.op_id))
        .collect();
    format!(r#"{{"results":[{}]}}"#, results.join(",")).into_bytes()
}

fn seqs(b: &Batch) -> Vec<u64> {
    b.ops.iter().map(|o| o.seq).collect()
}

#[test]
fn debounce_groups_a_burst_into_one_request() {
    let mut sim = Sim::new(cfg());
    let start = sim.now;
    sim.set("u1");
    for _ in 0..9 {
        sim.now += 10;
        sim.set(&format!("u{}", sim.seq + 1));
    }
    let b = sim.next_batch();
    assert_eq!(b.ops.len(), 10);
    assert_eq!(
        sim.now,
        start + 200,
        "sent when the first call's debounce ran out"
    );
    assert_eq!(b.retry_count, 0);
}

#[test]
fn a_full_batch_goes_at_once_and_a_burst_needs_few_requests() {
    let mut sim = Sim::new(cfg());
    for i in 0..1000 {
        sim.set(&format!("user{i}"));
    }
    let mut requests = 0;
    let mut delivered = 0;
    while sim.engine.pending() > 0 {
        let b = sim.next_batch();
        requests += 1;
        delivered += b.ops.len();
        sim.respond(&b, 200, None);
    }
    assert_eq!(delivered, 1000);
    assert!(requests <= 11, "{requests} requests");
}

#[test]
fn a_failed_batch_is_retried_as_the_head_with_the_same_ops() {
    let mut sim = Sim::new(cfg());
    sim.set("a");
    sim.link("a");
    let first = sim.next_batch();
    sim.unlink("a"); // arrives while the first batch is in flight
    sim.respond(&first, 500, None);
    let t_fail = sim.now;
    let retry = sim.next_batch();
    assert_eq!(
        seqs(&retry),
        seqs(&first),
        "same ops, newer ones not mixed in"
    );
    assert_eq!(retry.ops, first.ops, "same op_ids");
    assert_eq!(retry.retry_count, 1);
    assert!(sim.now <= t_fail + 1_000, "first backoff at most 1 s");
    sim.respond(&retry, 200, None);
    let next = sim.next_batch();
    assert_eq!(seqs(&next), vec![3]);
    assert_eq!(next.retry_count, 0, "a new batch starts at 0");
}

#[test]
fn backoff_grows_and_never_fires_early() {
    let mut sim = Sim::new(cfg());
    sim.set("a");
    let mut last_fail = 0;
    for attempt in 0..12u32 {
        let b = sim.next_batch();
        assert_eq!(b.retry_count, attempt);
        if attempt > 0 {
            let expected = (1000u64 << (attempt - 1).min(20)).min(300_000);
            assert_eq!(
                sim.now - last_fail,
                expected,
                "attempt {attempt} (jitter 1.0 = full step)"
            );
        }
        sim.engine.on_outcome(
            sim.now,
            b.id,
            &Outcome::Network {
                timeout: true,
                message: "t".into(),
            },
            1.0,
        );
        last_fail = sim.now;
    }
    assert_eq!(sim.engine.pending(), 1, "no attempt cap: nothing dropped");
}

#[test]
fn retry_after_pauses_the_pipeline() {
    for status in [429, 503] {
        let mut sim = Sim::new(cfg());
        sim.set("a");
        let b = sim.next_batch();
        sim.respond(&b, status, Some("30"));
        let failed_at = sim.now;
        sim.set("b");
        assert_eq!(
            sim.engine.poll(sim.now + 30_000),
            Action::WaitUntil(failed_at + 30_001)
        );
        let again = sim.next_batch();
        assert_eq!(sim.now, failed_at + 30_001);
        assert_eq!(seqs(&again), vec![1]);
    }
}

#[test]
fn payload_too_large_splits_then_drops_a_single_op() {
    let mut sim = Sim::new(cfg());
    for i in 0..8 {
        sim.set(&format!("u{i}"));
    }
    let b = sim.next_batch();
    assert_eq!(b.ops.len(), 8);
    sim.respond(&b, 413, None);
    let half = sim.next_batch();
    assert_eq!(seqs(&half), vec![1, 2, 3, 4]);
    sim.respond(&half, 200, None);
    let other = sim.next_batch();
    assert_eq!(seqs(&other), vec![5, 6, 7, 8]);
    sim.respond(&other, 413, None);
    let two = sim.next_batch();
    assert_eq!(seqs(&two), vec![5, 6]);
    sim.respond(&two, 413, None);
    let one = sim.next_batch();
    assert_eq!(seqs(&one), vec![5]);
    sim.respond(&one, 413, None);
    let reports = sim.reports();
    assert!(reports.contains(&(
        5,
        DeliveryStatus::Dropped {
            reason: DropReason::PayloadTooLarge
        }
    )));
    let next = sim.next_batch();
    assert_eq!(seqs(&next), vec![6]);
}

#[test]
fn malformed_batch_is_dropped_and_never_resent() {
    let mut sim = Sim::new(cfg());
    sim.set("a");
    sim.set("b");
    let b = sim.next_batch();
    sim.respond(&b, 400, None);
    let reports = sim.reports();
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| r.1
        == DeliveryStatus::Dropped {
            reason: DropReason::MalformedBatch
        }));
    assert_eq!(sim.engine.pending(), 0);
    assert_eq!(sim.engine.poll(sim.now + 1_000_000), Action::Idle);
}

#[test]
fn other_client_errors_reject_with_the_http_status() {
    let mut sim = Sim::new(cfg());
    sim.set("a");
    let b = sim.next_batch();
    sim.respond(&b, 422, None);
    assert_eq!(
        sim.reports(),
        vec![(
            1,
            DeliveryStatus::Rejected {
                code: 422,
                message: "HTTP 422".into()
            }
        )]
    );
}

#[test]
fn auth_failure_keeps_ops_reports_once_and_resumes() {
    let mut sim = Sim::new(cfg());
    sim.set("a");
    let b = sim.next_batch();
    sim.respond(&b, 401, None);
    sim.set("b");
    assert_eq!(
        sim.engine.poll(sim.now + 3_600_000),
        Action::Idle,
        "stopped sending"
    );
    let events = sim.engine.take_events();
    assert_eq!(
        events,
        vec![Event::State(DeliveryState::Paused(PauseReason::AuthFailed))]
    );
    assert_eq!(sim.engine.pending(), 2, "every op kept");
    sim.engine.resume();
    assert_eq!(
        sim.engine.take_events(),
        vec![Event::State(DeliveryState::Resumed)]
    );
    let again = sim.next_batch();
    assert_eq!(
        seqs(&again),
        vec![1],
        "resent exactly the paused batch first"
    );
}

#[test]
fn misconfigured_endpoint_pauses() {
    for status in [404, 405, 410, 501, 505] {
        let mut sim = Sim::new(cfg());
        sim.set("a");
        let b = sim.next_batch();
        sim.respond(&b, status, None);
        assert_eq!(
            sim.engine.paused(),
            Some(PauseReason::EndpointMisconfigured),
            "{status}"
        );
        assert_eq!(sim.engine.pending(), 1);
    }
}

#[test]
fn per_op_results_are_reported_in_order() {
    let mut sim = Sim::new(cfg());
    sim.set("a");
    sim.link("a");
    sim.set("b");
    let b = sim.next_batch();
    let body = format!(
        r#"{{"results":[{{"op_id":"{}","status":"applied"}},{{"op_id":"{}","status":"rejected","error":{{"code":1002,"message":"user ID not registered"}}}},{{"op_id":"{}","status":"duplicate"}}]}}"#,
        b.ops[0].op_id, b.ops[1].op_id, b.ops[2].op_id
    );
    sim.engine.on_outcome(
        sim.now,
        b.id,
        &Outcome::Response {
            status: 200,
            retry_after: None,
            body: body.into_bytes(),
        },
        1.0,
    );
    assert_eq!(
        sim.reports(),
        vec![
            (1, DeliveryStatus::Delivered),
            (
                2,
                DeliveryStatus::Rejected {
                    code: 1002,
                    message: "user ID not registered".into()
                }
            ),
            (3, DeliveryStatus::Duplicate),
        ]
    );
}

#[test]
fn queue_full_drops_the_oldest_not_in_flight() {
    let mut sim = Sim::new(Policy {
        max_batch_ops: 2,
        max_queue_ops: 3,
        ..cfg()
    });
    sim.set("a");
    sim.set("b");
    let inflight = sim.next_batch();
    assert_eq!(seqs(&inflight), vec![1, 2]);
    sim.set("c");
    sim.set("d"); // queue: 1,2 (in flight), 3, 4 → over 3: drop 3
    assert_eq!(
        sim.reports(),
        vec![(
            3,
            DeliveryStatus::Dropped {
                reason: DropReason::QueueFull
            }
        )]
    );
    sim.respond(&inflight, 200, None);
    let next = sim.next_batch();
    assert_eq!(seqs(&next), vec![4]);
}

#[test]
fn old_ops_expire() {
    let mut sim = Sim::new(Policy {
        max_op_age_ms: 60_000,
        ..cfg()
    });
    sim.set("a");
    let b = sim.next_batch();
    sim.engine.on_outcome(
        sim.now,
        b.id,
        &Outcome::Network {
            timeout: false,
            message: "down".into(),
        },
        1.0,
    );
    sim.now += 61_000;
    assert_eq!(sim.engine.poll(sim.now), Action::Idle);
    assert_eq!(
        sim.reports(),
        vec![(
            1,
            DeliveryStatus::Dropped {
                reason: DropReason::Expired
            }
        )]
    );
}

/// Expiry behind a queue whose front was already delivered (vacated slots before the live
/// ops): exactly the old ops are reported expired, in order, and the young ones are sent in order.
#[test]
fn expiry_after_deliveries_keeps_the_young_ops_in_order() {
    let mut sim = Sim::new(Policy {
        max_op_age_ms: 60_000,
        max_batch_ops: 2,
        ..cfg()
    });
    for u in ["a", "b", "c", "d", "e"] {
        sim.set(u);
    }
    let b = sim.next_batch();
    assert_eq!(seqs(&b), vec![1, 2]);
    sim.respond(&b, 200, None);
    sim.reports();
    let old = sim.now;
    sim.now = old + 30_000;
    sim.set("f");
    sim.set("g");
    sim.now = old + 61_000;
    let next = sim.next_batch();
    let expired = DeliveryStatus::Dropped {
        reason: DropReason::Expired,
    };
    assert_eq!(
        sim.reports(),
        vec![(3, expired.clone()), (4, expired.clone()), (5, expired)]
    );
    assert_eq!(seqs(&next), vec![6, 7]);
    assert_eq!(sim.engine.pending(), 2);
}

#[test]
fn coalesced_calls_get_the_survivors_report() {
    let mut sim = Sim::new(cfg());
    sim.set("a");
    sim.set("a");
    sim.link("a");
    sim.unlink("a");
    sim.link("a"); // unlink+link → link; then link+link → first link
    let b = sim.next_batch();
    assert_eq!(seqs(&b), vec![1, 3]);
    sim.respond(&b, 200, None);
    let mut reports = sim.reports();
    reports.sort_by_key(|r| r.0);
    assert_eq!(reports.len(), 5, "one report per call");
    assert!(reports.iter().all(|r| r.1 == DeliveryStatus::Delivered));
}

#[test]
fn link_then_unlink_is_kept() {
    let mut sim = Sim::new(cfg());
    sim.set("a");
    sim.link("a");
    sim.unlink("a");
    let b = sim.next_batch();
    assert_eq!(seqs(&b), vec![1, 2, 3]);
}

#[test]
fn sent_ops_are_never_coalesced() {
    let mut sim = Sim::new(cfg());
    sim.set("a");
    let b = sim.next_batch();
    sim.set("a"); // same value, but the first is in flight
    sim.respond(&b, 500, None);
    let retry = sim.next_batch();
    assert_eq!(seqs(&retry), vec![1]);
    sim.respond(&retry, 200, None);
    let next = sim.next_batch();
    assert_eq!(seqs(&next), vec![2]);
}

#[test]
fn opt_out_purges_everything_not_in_flight() {
    let mut sim = Sim::new(cfg());
    sim.set("a");
    let b = sim.next_batch();
    sim.set("b");
    sim.set("c");
    sim.engine.purge(DropReason::OptedOut);
    let reports = sim.reports();
    assert_eq!(reports.len(), 2);
    assert!(reports.iter().all(|r| r.1
        == DeliveryStatus::Dropped {
            reason: DropReason::OptedOut
        }));
    sim.respond(&b, 200, None);
    assert_eq!(sim.reports(), vec![(1, DeliveryStatus::Delivered)]);
}

#[test]
fn calls_after_a_flush_wait_for_the_debounce_again() {
    let mut sim = Sim::new(cfg());
    sim.set("a");
    sim.engine.request_flush();
    let b = sim.engine.poll(sim.now);
    let Action::Send(b) = b else {
        panic!("flush sends at once")
    };
    sim.respond(&b, 200, None);
    sim.set("b");
    assert_eq!(sim.engine.poll(sim.now), Action::WaitUntil(sim.now + 200));
}

#[test]
fn a_huge_purge_is_journaled_in_bounded_records() {
    let mut sim = Sim::new(Policy {
        max_queue_ops: 20_000,
        ..cfg()
    });
    for i in 0..12_000 {
        sim.set(&format!("u{i}"));
    }
    let _ = sim.engine.take_journal();
    sim.engine.purge(DropReason::OptedOut);
    let journal = sim.engine.take_journal();
    assert_eq!(journal.len(), 3, "12,000 seqs in records of at most 5,000");
}

const YEAR_MS: u64 = 365 * 86_400_000;

/// A device a year ahead got `Retry-After: 3600`; after the clock was corrected the
/// journaled wait reached a year ahead and nothing was sent (issue 11, item 8).
#[test]
fn a_clock_moved_back_waits_at_most_the_granted_interval() {
    let mut sim = Sim::new(cfg());
    sim.now += YEAR_MS; // the wrong clock
    sim.set("u1");
    let b = sim.next_batch();
    sim.respond(&b, 429, Some("3600"));
    let (_, until, granted) = sim.engine.backoff();
    assert_eq!(granted, sim.now);
    assert_eq!(until, sim.now + 3_600_001);
    sim.now -= YEAR_MS; // corrected
    match sim.engine.poll(sim.now) {
        Action::WaitUntil(t) => assert_eq!(t, sim.now + 3_600_001, "the hour granted, not a year"),
        other => panic!("{other:?}"),
    }
    // The cut is journaled, so a restart keeps it.
    let (_, until, granted) = sim.engine.backoff();
    assert_eq!((until, granted), (sim.now + 3_600_001, sim.now));
    sim.now += 3_600_001;
    assert!(matches!(sim.engine.poll(sim.now), Action::Send(_)));
}

#[test]
fn a_backoff_is_never_longer_than_its_cap_from_now_even_when_restored() {
    // A journal from an older version: a backoff a year ahead, grant time unknown.
    let now = 10 * YEAR_MS;
    let mut engine = Engine::new(cfg());
    engine.enqueue(Op {
        op_id: Uuid::from_u128(1),
        seq: 1,
        at_ms: now,
        kind: OpKind::SetUserId {
            user_id: "u".into(),
        },
    });
    let entries: Vec<_> = engine.entries().cloned().collect();
    let mut restored = Engine::restore(cfg(), entries.clone(), (3, now + YEAR_MS, 0));
    match restored.poll(now) {
        Action::WaitUntil(t) => assert!(t <= now + 3_600_001, "held to Retry-After's cap"),
        other => panic!("{other:?}"),
    }
    // A backoff of 4 s granted "a year from now": 4 s from now, at most.
    let mut restored = Engine::restore(cfg(), entries, (3, now + YEAR_MS + 4_000, now + YEAR_MS));
    assert_eq!(restored.poll(now), Action::WaitUntil(now + 4_000));
}

#[test]
fn a_clock_jumping_forward_sends_at_once_and_expiry_drops_are_reported() {
    let mut sim = Sim::new(cfg());
    sim.set("u1");
    let b = sim.next_batch();
    sim.respond(&b, 503, Some("60"));
    sim.now += 120_000; // forward past the wait: sent at once
    assert!(matches!(sim.engine.poll(sim.now), Action::Send(_)));
    let mut sim = Sim::new(cfg());
    sim.set("u1");
    sim.link("u1");
    sim.now += 8 * 86_400_000; // forward past max_op_age (7 days)
    assert_eq!(sim.engine.poll(sim.now), Action::Idle);
    let reports = sim.reports();
    assert_eq!(reports.len(), 2, "every expired call is reported");
    assert!(reports.iter().all(|(_, s)| *s
        == DeliveryStatus::Dropped {
            reason: DropReason::Expired
        }));
    assert_eq!(sim.engine.pending(), 0);
}
