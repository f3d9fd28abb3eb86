//! The endpoint response path on arbitrary input: `protocol::classify` then
//! `retry::decide` with any status, Retry-After and body, and `protocol::decode_batch_response`.
//! Never panics; a 200 is only accepted with one result per op, in order;
//! every wait is bounded by the documented caps.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use repro_line_core::protocol;
use repro_line_core::retry::{self, Outcome, Verdict};
use repro_line_core::Policy;

#[derive(Debug, Arbitrary)]
struct Input {
    attempt: u32,
    status: u16,
    retry_after: Option<String>,
    now_ms: u64,
    jitter: f64,
    op_ids: Vec<u128>,
    network: bool,
    body: Vec<u8>,
}

fuzz_target!(|input: Input| {
    let policy = Policy::default();
    let _ = protocol::decode_batch_response(&input.body);
    let op_ids: Vec<uuid::Uuid> = input
        .op_ids
        .iter()
        .map(|v| uuid::Uuid::from_u128(*v))
        .collect();
    let outcome = if input.network {
        Outcome::Network {
            timeout: input.status % 2 == 0,
            message: String::new(),
        }
    } else {
        Outcome::Response {
            status: input.status,
            retry_after: input.retry_after.clone(),
            body: input.body.clone(),
        }
    };
    let answer = protocol::classify(&outcome, input.now_ms, &op_ids);
    let verdict = retry::decide(&policy, input.attempt, answer, input.now_ms, input.jitter);
    match verdict {
        Verdict::Results(resp) => {
            assert_eq!(input.status, 200);
            assert_eq!(resp.results.len(), op_ids.len());
            for (r, id) in resp.results.iter().zip(&op_ids) {
                assert_eq!(&r.op_id, id);
            }
        }
        Verdict::RetryAt { not_before_ms } => {
            assert!(not_before_ms >= input.now_ms);
            let wait = not_before_ms - input.now_ms;
            assert!(
                wait <= policy.backoff_cap_ms.max(policy.retry_after_cap_ms + 1),
                "wait {wait} above the caps"
            );
        }
        Verdict::Split => assert_eq!(input.status, 413),
        Verdict::DropMalformed => assert_eq!(input.status, 400),
        Verdict::DropRejected { status, .. } => assert!((400..500).contains(&status)),
        Verdict::Pause(_) => assert!(matches!(
            input.status,
            401 | 403 | 404 | 405 | 410 | 501 | 505
        )),
    }
    if let Some(v) = &input.retry_after {
        let _ = protocol::parse_retry_after(v, input.now_ms);
    }
});
