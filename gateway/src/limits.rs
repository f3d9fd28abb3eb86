//! Token-bucket rate limits (per device, per client IP): pure, clock passed in.

use std::collections::HashMap;
use std::hash::Hash;

pub struct RateLimiter<K> {
    rate_per_s: f64,
    burst: f64,
    buckets: HashMap<K, (f64, u64)>,
    last_sweep_ms: u64,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `rate_per_s` sustained, bursts of twice that (at least 1).
    pub fn new(rate_per_s: f64) -> Self {
        RateLimiter {
            rate_per_s,
            burst: (rate_per_s * 2.0).max(1.0),
            buckets: HashMap::new(),
            last_sweep_ms: 0,
        }
    }

    /// `Ok` takes one token; `Err(secs)` is the `Retry-After` until one is available.
    pub fn check(&mut self, key: &K, now_ms: u64) -> Result<(), u64> {
        self.sweep(now_ms);
        let (rate, burst) = (self.rate_per_s, self.burst);
        let (tokens, at) = self.buckets.entry(key.clone()).or_insert((burst, now_ms));
        let refill = now_ms.saturating_sub(*at) as f64 / 1000.0 * rate;
        *tokens = (*tokens + refill).min(burst);
        *at = now_ms;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }

    /// Forgets buckets that have refilled, so memory follows active clients only.
    fn sweep(&mut self, now_ms: u64) {
        if now_ms.saturating_sub(self.last_sweep_ms) < 10_000 {
            return;
        }
        self.last_sweep_ms = now_ms;
        let (rate, burst) = (self.rate_per_s, self.burst);
        self.buckets.retain(|_, (tokens, at)| {
            *tokens + now_ms.saturating_sub(*at) as f64 / 1000.0 * rate < burst
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_limits_then_refills() {
        let mut l = RateLimiter::new(2.0);
        for _ in 0..4 {
            assert!(l.check(&"d", 0).is_ok());
        }
        assert_eq!(l.check(&"d", 0), Err(1));
        assert!(l.check(&"other", 0).is_ok(), "per key");
        assert!(l.check(&"d", 500).is_ok(), "one token after 0.5 s at 2/s");
        assert!(l.check(&"d", 500).is_err());
        l.check(&"x", 60_000).unwrap();
        assert!(!l.buckets.contains_key(&"d"), "refilled buckets are swept");
    }
}
