//! Every limit and interval of the SDK in one plain struct. Native `Config`,
//! the wasm options and the FFI config each build one; [`Policy::validate`]
//! is the one place a configuration is checked. Pure data: no `native`
//! feature needed, so the web build and tests share it.

use crate::Error;

/// Limits and intervals. `Default` is the native SDK's; [`Policy::web`] the browser's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Ops per request, 1 to [`crate::protocol::MAX_BATCH_OPS`].
    pub max_batch_ops: usize,
    /// Queue bound after coalescing; the oldest op not in flight is dropped beyond it.
    pub max_queue_ops: usize,
    /// Undelivered ops older than this are dropped (reported `Expired`).
    pub max_op_age_ms: u64,
    /// How long the first call of a burst waits for company before a request is sent.
    pub debounce_ms: u64,
    /// How long one request may take before it counts as a network failure.
    pub request_timeout_ms: u64,
    /// First backoff step.
    pub backoff_base_ms: u64,
    /// Backoff never waits longer than this between attempts.
    pub backoff_cap_ms: u64,
    /// A `Retry-After` longer than this is treated as this (a misconfigured server
    /// must not park clients for days).
    pub retry_after_cap_ms: u64,
    /// Compaction starts when the journal is larger than this…
    pub compact_min_bytes: u64,
    /// …and larger than this many times the bytes the live queue needs.
    pub compact_ratio: u64,
    /// A drained queue is compacted once the journal grew this much since the last
    /// compaction, so a small or full disk gets its space back after delivery.
    pub drained_compact_growth: u64,
    /// How often the native driver fsyncs the journal while calls keep coming. A call is
    /// safe from a SIGKILL once its `write(2)` returns; the fsync only guards against an
    /// OS crash or power loss, and grouping keeps fdatasync off most calls' path.
    pub sync_interval_ms: u64,
    /// Calls the mobile wrappers hold before `setup` (refused beyond it).
    pub max_buffered_calls: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_batch_ops: 100,
            max_queue_ops: 10_000,
            max_op_age_ms: 7 * 24 * 3600 * 1000,
            debounce_ms: 200,
            request_timeout_ms: 30_000,
            backoff_base_ms: 1_000,
            backoff_cap_ms: 5 * 60 * 1_000,
            retry_after_cap_ms: 60 * 60 * 1_000,
            compact_min_bytes: 1 << 20,
            compact_ratio: 4,
            drained_compact_growth: 4 << 10,
            sync_interval_ms: 200,
            max_buffered_calls: 1_000,
        }
    }
}

impl Policy {
    /// The browser's defaults: as native, but a queue of 1,000. Browsers give an origin
    /// about 5 MB of `localStorage` and the journal has a 512 KiB budget there; 10,000
    /// queued ops would not fit, so the bound is chosen to stay well inside it.
    pub fn web() -> Policy {
        Policy {
            max_queue_ops: 1_000,
            ..Policy::default()
        }
    }

    /// Checks every rule; the error names the field and the rule.
    pub fn validate(&self) -> Result<(), Error> {
        let max = crate::protocol::MAX_BATCH_OPS;
        // Messages pushed by hand, not `format!` (the browser build links no `core::fmt`).
        let num = |m: &mut String, n: usize| crate::text::push_u64(m, n as u64);
        if !(1..=max).contains(&self.max_batch_ops) {
            let mut m = String::from("max_batch_ops is ");
            num(&mut m, self.max_batch_ops);
            m.push_str("; it must be 1 to ");
            num(&mut m, max);
            return Err(Error::InvalidConfig(m));
        }
        if self.max_queue_ops < self.max_batch_ops {
            let mut m = String::from("max_queue_ops (");
            num(&mut m, self.max_queue_ops);
            m.push_str(") must be at least max_batch_ops (");
            num(&mut m, self.max_batch_ops);
            m.push(')');
            return Err(Error::InvalidConfig(m));
        }
        if self.request_timeout_ms == 0 {
            return Err(Error::InvalidConfig(
                "request_timeout must be above zero".into(),
            ));
        }
        if self.backoff_base_ms == 0 || self.backoff_cap_ms < self.backoff_base_ms {
            let mut m = String::from("backoff_base_ms (");
            crate::text::push_u64(&mut m, self.backoff_base_ms);
            m.push_str(") must be above zero and at most backoff_cap_ms (");
            crate::text::push_u64(&mut m, self.backoff_cap_ms);
            m.push(')');
            return Err(Error::InvalidConfig(m));
        }
        Ok(())
    }
}

/// The SDK token travels in an HTTP header: a control character (a pasted `\n`) could
/// never be sent, so it would be retried forever. Refused at once instead.
pub fn check_sdk_token(token: &str) -> Result<(), Error> {
    if crate::text::trim(token).is_empty() {
        return Err(Error::InvalidConfig("sdk_token is empty".into()));
    }
    if !token.as_bytes().iter().all(|b| matches!(b, 0x21..=0x7e)) {
        return Err(Error::InvalidConfig(
            "sdk_token must be printable ASCII without spaces or control characters (it is sent in the X-Repro-Token header)".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(p: Policy) -> String {
        match p.validate() {
            Err(Error::InvalidConfig(m)) => m,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid_and_the_web_queue_is_smaller() {
        assert_eq!(Policy::default().validate(), Ok(()));
        assert_eq!(Policy::web().validate(), Ok(()));
        assert_eq!(Policy::default().max_queue_ops, 10_000);
        assert_eq!(Policy::web().max_queue_ops, 1_000);
    }

    #[test]
    fn each_rule_names_its_field() {
        let d = Policy::default;
        for n in [0, 101] {
            let m = refused(Policy {
                max_batch_ops: n,
                ..d()
            });
            assert!(m.contains("max_batch_ops") && m.contains("1 to 100"), "{m}");
        }
        let m = refused(Policy {
            max_queue_ops: 99,
            ..d()
        });
        assert!(m.contains("max_queue_ops (99)"), "{m}");
        let m = refused(Policy {
            request_timeout_ms: 0,
            ..d()
        });
        assert!(m.contains("request_timeout"), "{m}");
        let m = refused(Policy {
            backoff_cap_ms: 10,
            ..d()
        });
        assert!(m.contains("backoff_base_ms"), "{m}");
    }

    /// The full texts, as the `format!` templates wrote them before the hand-written ones.
    #[test]
    fn messages_are_word_for_word_as_before() {
        let d = Policy::default;
        let p = Policy {
            max_batch_ops: 101,
            ..d()
        };
        assert_eq!(
            refused(p),
            format!("max_batch_ops is {}; it must be 1 to 100", 101)
        );
        let p = Policy {
            max_queue_ops: 99,
            ..d()
        };
        assert_eq!(
            refused(p),
            format!(
                "max_queue_ops ({}) must be at least max_batch_ops ({})",
                99, 100
            )
        );
        let p = Policy {
            backoff_base_ms: 70,
            backoff_cap_ms: 10,
            ..d()
        };
        assert_eq!(
            refused(p),
            format!(
                "backoff_base_ms ({}) must be above zero and at most backoff_cap_ms ({})",
                70, 10
            )
        );
    }

    #[test]
    fn tokens_that_cannot_be_sent_are_refused() {
        assert!(check_sdk_token("abc-123").is_ok());
        for bad in ["", "  ", "a b", "tok\n", "tök"] {
            assert!(
                matches!(check_sdk_token(bad), Err(Error::InvalidConfig(_))),
                "{bad:?}"
            );
        }
    }
}
