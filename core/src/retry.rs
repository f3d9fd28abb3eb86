//! The retry policy: one pure table from (policy, attempt, the protocol's
//! reading of a response, now, jitter) to what the engine does next. The wire
//! (request bodies, response JSON, `Retry-After`) is `protocol`'s; no clock,
//! randomness or bytes here, so every row of the table is tested with plain numbers.

use crate::policy::Policy;
use crate::protocol::{Answer, BatchResponse};

/// Kept here for the drivers that name it `retry::Outcome`; it belongs to the protocol.
pub use crate::protocol::Outcome;

/// Defines [`PauseReason`] once, for core and for the FFI crate's `#[uniffi::remote(Enum)]`
/// (see `define_delivery_enums!` in `engine.rs`).
#[doc(hidden)]
#[macro_export]
macro_rules! define_pause_reason {
    ($(#[$meta:meta])*) => {
        /// Why delivery stopped until something changes.
        $(#[$meta])*
        pub enum PauseReason {
            /// 401/403: the SDK token is wrong or revoked. Resumes on `set_sdk_token` or the next start.
            AuthFailed,
            /// 404/405/410/501/505: the endpoint URL is wrong. Resumes on the next start.
            EndpointMisconfigured,
        }
    };
}

define_pause_reason!(#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]);

impl PauseReason {
    /// The snake_case name (the web's `reason`).
    pub fn as_str(self) -> &'static str {
        match self {
            PauseReason::AuthFailed => "auth_failed",
            PauseReason::EndpointMisconfigured => "endpoint_misconfigured",
        }
    }
}

/// The policy's answer for one outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// 200 with one result per op, in order.
    Results(BatchResponse),
    /// Resend the same ops, not before `not_before_ms`.
    RetryAt { not_before_ms: u64 },
    /// 413: halve the batch and try again.
    Split,
    /// 400: the batch is malformed; drop it and never resend.
    DropMalformed,
    /// Another 4xx: drop the batch's ops, reporting them rejected with the HTTP status as code.
    DropRejected { status: u16, message: String },
    /// Keep every op and stop sending.
    Pause(PauseReason),
}

/// Exponential backoff with full jitter: `jitter × min(cap, base × 2^attempt)`.
/// `attempt` counts failures of this batch so far (0 for the first failure); `jitter` is in [0, 1].
///
/// Exactly what [`crate::net::backoff`] (every repro-line HTTP client's) gives for these
/// millisecond inputs, in milliseconds (the tests below pin it), without `Duration` or
/// `u128`: their multiplication and float conversion were ~1 KB of the wasm build. The
/// product and the cap are whole milliseconds; `Duration` then rounds the jittered seconds
/// to the nearest nanosecond and `as_millis` floors that. Here both at once: for the seconds
/// `t = mant / 2^k`, `floor((t * 1e9 + 1/2) / 1e6)` in integers. (A tie, half a nanosecond
/// below a whole millisecond, cannot occur: `t * 1e9` would need the factor 5^9 that
/// `2e6 * m - 1` never has, so std's half-to-even rule never changes the milliseconds.)
pub fn backoff_ms(policy: &Policy, attempt: u32, jitter: f64) -> u64 {
    let times = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
    // In whole milliseconds (a product past u64 is above any cap).
    let ceiling = policy
        .backoff_base_ms
        .saturating_mul(u64::from(times))
        .min(policy.backoff_cap_ms);
    // net::backoff's `clamp`, then NaN as 1 (its `max(0.0)` changes only -0.0, which waits 0 ms too).
    let factor = if jitter.is_nan() {
        1.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    // `Duration::as_secs_f64`, then the jittered wait in seconds: finite, not negative,
    // below 2^55 (the factor is at most 1).
    let secs = (ceiling / 1000) as f64 + ((ceiling % 1000) * 1_000_000) as f64 / 1e9;
    let bits = (secs * factor).to_bits();
    let mant = (bits & ((1 << 52) - 1)) | (1 << 52);
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1023;
    if exp >= 52 {
        return (mant << (exp - 52)).saturating_mul(1000); // whole seconds
    }
    // t = mant / 2^k; below 2^-11 s (k >= 64: 0 and subnormals too) it rounds to 0 ms.
    let k = (52 - exp) as u32;
    if k >= 64 {
        return 0;
    }
    // t * 1000 = a / 2^k (a < 2^63); it rounds up to the next millisecond when the rest
    // is within half a nanosecond of it: (2^k - r) / 2^k <= 1 / 2e6.
    let (a, p) = (mant * 1000, 1u64 << k);
    let r = a & (p - 1);
    (a >> k) + u64::from(p - r <= p / 2_000_000)
}

/// What to do after `answer`, the `attempt`-th failure so far (0 for the first) of a batch.
pub fn decide(policy: &Policy, attempt: u32, answer: Answer, now_ms: u64, jitter: f64) -> Verdict {
    let (status, retry_after_ms, message) = match answer {
        Answer::Results(resp) => return Verdict::Results(resp),
        Answer::Status {
            status,
            retry_after_ms,
            message,
        } => (status, retry_after_ms, message),
        // A 200 we cannot match to our ops is a server fault: resending is safe (same op_ids).
        // Status 0 is none of the statuses below: the backoff applies.
        Answer::UnmatchedResults | Answer::Network => (0, None, None),
    };
    // Every retry is one `RetryAt` (built once: smaller in the wasm build).
    let wait = match (status, retry_after_ms) {
        // `now_ms` is truncated to the millisecond: one more keeps us from arriving
        // up to 1 ms before the server's deadline.
        (429 | 503, Some(wait)) => wait.min(policy.retry_after_cap_ms).saturating_add(1),
        (408 | 429 | 503, _) => backoff_ms(policy, attempt, jitter),
        (413, _) => return Verdict::Split,
        (400, _) => return Verdict::DropMalformed,
        (401 | 403, _) => return Verdict::Pause(PauseReason::AuthFailed),
        (404 | 405 | 410 | 501 | 505, _) => {
            return Verdict::Pause(PauseReason::EndpointMisconfigured)
        }
        (400..=499, _) => {
            return Verdict::DropRejected {
                status,
                message: message.unwrap_or_else(|| {
                    let mut m = String::from("HTTP "); // not `format!`: no `core::fmt` in the browser build
                    crate::text::push_u64(&mut m, u64::from(status));
                    m
                }),
            };
        }
        // 5xx, and 1xx/3xx/other 2xx (not part of the protocol): treated like a server fault.
        _ => backoff_ms(policy, attempt, jitter),
    };
    Verdict::RetryAt {
        not_before_ms: now_ms.saturating_add(wait),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::classify;
    use proptest::prelude::*;
    use std::time::Duration;

    /// The `Duration` arithmetic `backoff_ms` replaced (the reference): `net::backoff` in ms.
    fn backoff_ms_with_duration(policy: &Policy, attempt: u32, jitter: f64) -> u64 {
        let wait = crate::net::backoff(
            Duration::from_millis(policy.backoff_base_ms),
            Duration::from_millis(policy.backoff_cap_ms),
            attempt,
            jitter.clamp(0.0, 1.0),
        );
        u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)
    }

    /// `decide` as it was before its retries shared one `RetryAt` (the reference).
    fn decide_before(
        policy: &Policy,
        attempt: u32,
        answer: Answer,
        now_ms: u64,
        jitter: f64,
    ) -> Verdict {
        let backoff = || Verdict::RetryAt {
            not_before_ms: now_ms.saturating_add(backoff_ms(policy, attempt, jitter)),
        };
        let (status, retry_after_ms, message) = match answer {
            Answer::Results(resp) => return Verdict::Results(resp),
            Answer::UnmatchedResults | Answer::Network => return backoff(),
            Answer::Status {
                status,
                retry_after_ms,
                message,
            } => (status, retry_after_ms, message),
        };
        match status {
            429 | 503 => match retry_after_ms {
                Some(wait) => Verdict::RetryAt {
                    not_before_ms: now_ms
                        .saturating_add(wait.min(policy.retry_after_cap_ms))
                        .saturating_add(1),
                },
                None => backoff(),
            },
            408 => backoff(),
            413 => Verdict::Split,
            400 => Verdict::DropMalformed,
            401 | 403 => Verdict::Pause(PauseReason::AuthFailed),
            404 | 405 | 410 | 501 | 505 => Verdict::Pause(PauseReason::EndpointMisconfigured),
            500..=599 => backoff(),
            _ if (400..500).contains(&status) => Verdict::DropRejected {
                status,
                message: message.unwrap_or_else(|| format!("HTTP {status}")),
            },
            _ => backoff(),
        }
    }

    proptest! {
        #[test]
        fn decide_equals_the_reference(
            kind in 0u8..3,
            status in prop_oneof![0u16..1000, any::<u16>()],
            retry_after_ms in proptest::option::of(prop_oneof![0u64..1_000_000, any::<u64>()]),
            message in proptest::option::of("[a-z]{0,8}"),
            attempt in 0u32..40,
            now_ms in prop_oneof![0u64..1 << 45, any::<u64>()],
            jitter in 0.0f64..=1.0,
            cap in prop_oneof![0u64..1_000_000, any::<u64>()],
        ) {
            let policy = Policy { retry_after_cap_ms: cap, ..Policy::default() };
            let answer = match kind {
                0 => Answer::Network,
                1 => Answer::UnmatchedResults,
                _ => Answer::Status { status, retry_after_ms, message },
            };
            prop_assert_eq!(
                super::decide(&policy, attempt, answer.clone(), now_ms, jitter),
                decide_before(&policy, attempt, answer, now_ms, jitter)
            );
        }
    }

    fn with_backoff(base: u64, cap: u64) -> Policy {
        Policy {
            backoff_base_ms: base,
            backoff_cap_ms: cap,
            ..Policy::default()
        }
    }

    #[test]
    fn backoff_equals_the_duration_arithmetic_at_the_edges() {
        let jitters = [
            0.0,
            -0.0,
            1.0,
            0.5,
            1e-300,
            5e-324,
            0.999_999_999_999,
            0.1,
            0.3,
            0.7,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -1.0,
            2.0,
        ];
        // Jitters whose wait falls on, or one to three ulps around, a whole millisecond.
        for ceiling in [1u64, 3, 7, 999, 1000, 1001, 4_000, 299_999, 86_400_000] {
            let p = with_backoff(ceiling, ceiling);
            for m in (0..=ceiling).step_by((ceiling / 97).max(1) as usize) {
                let exact = m as f64 / ceiling as f64;
                for d in -3i64..=3 {
                    let j = f64::from_bits(exact.to_bits().saturating_add_signed(d));
                    assert_eq!(
                        backoff_ms(&p, 0, j),
                        backoff_ms_with_duration(&p, 0, j),
                        "{ceiling} {j}"
                    );
                }
            }
        }
        let ms = [
            0,
            1,
            7,
            999,
            1000,
            1001,
            4_000,
            299_999,
            1 << 40,
            u64::MAX / 1000,
            u64::MAX - 1,
            u64::MAX,
        ];
        for &base in &ms {
            for &cap in &ms {
                for attempt in [0, 1, 5, 31, 32, 33, 63, 64, u32::MAX] {
                    for &j in &jitters {
                        let p = with_backoff(base, cap);
                        assert_eq!(
                            backoff_ms(&p, attempt, j),
                            backoff_ms_with_duration(&p, attempt, j),
                            "{base} {cap} {attempt} {j}"
                        );
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn backoff_equals_the_duration_arithmetic(
            base in prop_oneof![0u64..10_000, any::<u64>()],
            cap in prop_oneof![0u64..10_000_000, any::<u64>()],
            attempt in prop_oneof![0u32..70, any::<u32>()],
            jitter in prop_oneof![0.0f64..=1.0, any::<f64>(), (0u64..1 << 20).prop_map(|k| k as f64 / (1 << 20) as f64)],
        ) {
            let p = with_backoff(base, cap);
            prop_assert_eq!(backoff_ms(&p, attempt, jitter), backoff_ms_with_duration(&p, attempt, jitter));
        }
    }

    /// The wire read, then the table: what the engine does with a raw outcome.
    fn decide(
        policy: &Policy,
        attempt: u32,
        outcome: &Outcome,
        now_ms: u64,
        jitter: f64,
        op_ids: &[uuid::Uuid],
    ) -> Verdict {
        super::decide(
            policy,
            attempt,
            classify(outcome, now_ms, op_ids),
            now_ms,
            jitter,
        )
    }

    static P: std::sync::LazyLock<Policy> = std::sync::LazyLock::new(Policy::default);

    fn resp(status: u16, retry_after: Option<&str>) -> Outcome {
        Outcome::Response {
            status,
            retry_after: retry_after.map(str::to_owned),
            body: Vec::new(),
        }
    }

    #[test]
    fn backoff_doubles_from_one_second_up_to_five_minutes() {
        let full: Vec<u64> = (0..12).map(|a| backoff_ms(&P, a, 1.0)).collect();
        assert_eq!(
            full,
            [
                1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000,
                300_000, 300_000
            ]
        );
        assert_eq!(backoff_ms(&P, 3, 0.0), 0);
        assert_eq!(backoff_ms(&P, 3, 0.5), 4_000);
        assert_eq!(
            backoff_ms(&P, u32::MAX, 1.0),
            P.backoff_cap_ms,
            "no overflow, no attempt cap"
        );
    }

    #[test]
    fn transient_failures_back_off() {
        for outcome in [
            Outcome::Network {
                timeout: true,
                message: "timeout".into(),
            },
            Outcome::Network {
                timeout: false,
                message: "reset".into(),
            },
            resp(408, None),
            resp(500, None),
            resp(502, None),
            resp(504, None),
            resp(599, None),
        ] {
            assert_eq!(
                decide(&P, 2, &outcome, 10_000, 1.0, &[]),
                Verdict::RetryAt {
                    not_before_ms: 14_000
                },
                "{outcome:?}"
            );
        }
    }

    #[test]
    fn rate_limits_honour_retry_after() {
        for status in [429, 503] {
            assert_eq!(
                decide(&P, 0, &resp(status, Some("7")), 1_000, 1.0, &[]),
                Verdict::RetryAt {
                    not_before_ms: 8_001
                }
            );
            // Retry-After wins even when the backoff would be longer.
            assert_eq!(
                decide(&P, 9, &resp(status, Some("1")), 1_000, 1.0, &[]),
                Verdict::RetryAt {
                    not_before_ms: 2_001
                }
            );
            // Capped at one hour.
            assert_eq!(
                decide(&P, 0, &resp(status, Some("999999")), 0, 1.0, &[]),
                Verdict::RetryAt {
                    not_before_ms: P.retry_after_cap_ms + 1
                }
            );
            // Without the header: the backoff.
            assert_eq!(
                decide(&P, 1, &resp(status, None), 0, 1.0, &[]),
                Verdict::RetryAt {
                    not_before_ms: 2_000
                }
            );
            assert_eq!(
                decide(&P, 1, &resp(status, Some("garbage")), 0, 1.0, &[]),
                Verdict::RetryAt {
                    not_before_ms: 2_000
                }
            );
        }
        let now = 1_795_867_200_000;
        assert_eq!(
            decide(
                &P,
                0,
                &resp(429, Some("Sat, 28 Nov 2026 12:00:30 GMT")),
                now,
                1.0,
                &[]
            ),
            Verdict::RetryAt {
                not_before_ms: now + 30_001
            }
        );
    }

    #[test]
    fn client_errors_follow_the_table() {
        assert_eq!(decide(&P, 0, &resp(413, None), 0, 1.0, &[]), Verdict::Split);
        assert_eq!(
            decide(&P, 0, &resp(400, None), 0, 1.0, &[]),
            Verdict::DropMalformed
        );
        assert_eq!(
            decide(&P, 0, &resp(401, None), 0, 1.0, &[]),
            Verdict::Pause(PauseReason::AuthFailed)
        );
        assert_eq!(
            decide(&P, 0, &resp(403, None), 0, 1.0, &[]),
            Verdict::Pause(PauseReason::AuthFailed)
        );
        for s in [404, 405, 410, 501, 505] {
            assert_eq!(
                decide(&P, 0, &resp(s, None), 0, 1.0, &[]),
                Verdict::Pause(PauseReason::EndpointMisconfigured),
                "{s}"
            );
        }
        let body = br#"{"error":{"code":7,"message":"unprocessable"}}"#.to_vec();
        assert_eq!(
            decide(
                &P,
                0,
                &Outcome::Response {
                    status: 422,
                    retry_after: None,
                    body
                },
                0,
                1.0,
                &[]
            ),
            Verdict::DropRejected {
                status: 422,
                message: "unprocessable".into()
            }
        );
        assert_eq!(
            decide(&P, 0, &resp(418, None), 0, 1.0, &[]),
            Verdict::DropRejected {
                status: 418,
                message: "HTTP 418".into()
            }
        );
    }

    #[test]
    fn the_table_reads_no_bytes() {
        let status = |status, retry_after_ms, message: Option<&str>| Answer::Status {
            status,
            retry_after_ms,
            message: message.map(str::to_owned),
        };
        let table = |a| super::decide(&P, 0, a, 1_000, 1.0);
        assert_eq!(
            table(status(503, Some(7_000), None)),
            Verdict::RetryAt {
                not_before_ms: 8_001
            }
        );
        assert_eq!(
            table(status(422, None, Some("unprocessable"))),
            Verdict::DropRejected {
                status: 422,
                message: "unprocessable".into()
            }
        );
        // Retry-After only matters for 429/503; a message only for a rejection.
        assert_eq!(table(status(413, Some(5), Some("x"))), Verdict::Split);
        for a in [Answer::Network, Answer::UnmatchedResults] {
            assert_eq!(
                table(a),
                Verdict::RetryAt {
                    not_before_ms: 2_000
                }
            );
        }
        let results = BatchResponse {
            results: Vec::new(),
        };
        assert_eq!(
            table(Answer::Results(results.clone())),
            Verdict::Results(results)
        );
    }

    #[test]
    fn ok_needs_one_result_per_op_in_order() {
        let a = uuid::Uuid::from_u128(1);
        let b = uuid::Uuid::from_u128(2);
        let body = format!(r#"{{"results":[{{"op_id":"{a}","status":"applied"}},{{"op_id":"{b}","status":"duplicate"}}]}}"#).into_bytes();
        let ok = Outcome::Response {
            status: 200,
            retry_after: None,
            body,
        };
        assert!(matches!(
            decide(&P, 0, &ok, 0, 1.0, &[a, b]),
            Verdict::Results(_)
        ));
        assert_eq!(
            decide(&P, 0, &ok, 0, 1.0, &[b, a]),
            Verdict::RetryAt {
                not_before_ms: 1_000
            }
        );
        assert_eq!(
            decide(&P, 0, &ok, 0, 1.0, &[a]),
            Verdict::RetryAt {
                not_before_ms: 1_000
            }
        );
        let junk = Outcome::Response {
            status: 200,
            retry_after: None,
            body: b"<html>".to_vec(),
        };
        assert_eq!(
            decide(&P, 0, &junk, 0, 1.0, &[a]),
            Verdict::RetryAt {
                not_before_ms: 1_000
            }
        );
    }
}
