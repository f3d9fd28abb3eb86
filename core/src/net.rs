//! What every repro-line HTTP client shares, whatever it talks to (the SDK's
//! endpoint, LINE's Messaging API): the TLS set-up, `Retry-After`, and
//! exponential backoff with jitter drawn from a seeded generator (so a run can
//! be replayed in a test, and parallel processes still spread out).

use std::time::Duration;

pub use crate::protocol::parse_retry_after;

/// `base × 2^attempt`, capped at `cap`, times `factor` (the jitter; see [`Jitter`]).
/// `attempt` counts failures so far (0 for the first). Never panics.
pub fn backoff(base: Duration, cap: Duration, attempt: u32, factor: f64) -> Duration {
    let ceiling = base
        .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
        .min(cap);
    let factor = if factor.is_finite() {
        factor.max(0.0)
    } else {
        1.0
    };
    Duration::try_from_secs_f64(ceiling.as_secs_f64() * factor).unwrap_or(ceiling)
}

/// A seeded generator (xorshift64*) for jitter, the session's op IDs and the emulator's fault draws:
/// reproducible from its seed, no cryptographic quality needed, and a crate would
/// add size to the wasm build.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    pub fn new(seed: u64) -> Self {
        // xorshift never leaves 0.
        Jitter(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// Seeded from the OS RNG (a v4 UUID's random bits), for processes that must not retry in step.
    pub fn from_os_rng() -> Self {
        let (hi, lo) = uuid::Uuid::new_v4().as_u64_pair();
        Jitter::new(hi ^ lo)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [1 − spread, 1 + spread): a factor for [`backoff`].
    pub fn factor(&mut self, spread: f64) -> f64 {
        1.0 - spread + 2.0 * spread * self.next_unit()
    }
}

/// The TLS set-up every repro-line HTTPS client uses (the SDK's driver and the bulk
/// tools' LINE API client): rustls with ring and the Mozilla roots. Why not the
/// platform verifier: on Android it needs JNI initialisation from app code, and
/// ring is smaller than aws-lc.
#[cfg(feature = "native")]
pub fn tls_client_config() -> Result<rustls::ClientConfig, crate::Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| crate::Error::Internal(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn backoff_doubles_up_to_the_cap_and_scales_by_the_factor() {
        let cap = Duration::from_secs(60);
        assert_eq!(backoff(S, cap, 0, 1.0), S);
        assert_eq!(backoff(S, cap, 3, 1.0), 8 * S);
        assert_eq!(backoff(S, cap, 30, 1.0), cap);
        assert_eq!(backoff(S, cap, 3, 0.5), 4 * S);
        assert_eq!(backoff(S, cap, 3, f64::NAN), 8 * S);
        assert_eq!(backoff(S, cap, 3, -1.0), Duration::ZERO);
        assert_eq!(
            backoff(Duration::MAX, Duration::MAX, 3, 1e300),
            Duration::MAX
        );
    }

    #[test]
    fn jitter_replays_from_its_seed_and_stays_in_range() {
        let (mut a, mut b) = (Jitter::new(7), Jitter::new(7));
        let draws: Vec<f64> = (0..1000).map(|_| a.factor(0.2)).collect();
        assert!(draws.iter().all(|f| (0.8..1.2).contains(f)));
        assert_eq!(draws, (0..1000).map(|_| b.factor(0.2)).collect::<Vec<_>>());
        let mean = draws.iter().sum::<f64>() / 1000.0;
        assert!((mean - 1.0).abs() < 0.02, "centred: {mean}");
        let mut zero = Jitter::new(0);
        assert!(
            (0..10).any(|_| zero.next_unit() > 0.0),
            "a zero seed is not stuck"
        );
        assert_ne!(
            Jitter::from_os_rng().next_unit(),
            Jitter::from_os_rng().next_unit()
        );
    }
}
