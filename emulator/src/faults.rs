//! Fault injection: a scripted sequence consumed one per batch request, then
//! independent probabilities, drawn from a seeded RNG so runs reproduce.

use std::fmt;
use std::str::FromStr;

/// What the emulator does to one batch request instead of (or on top of) serving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Serve normally (`200`, `ok` or `none` in a script).
    None,
    Status401,
    Status403,
    Status413,
    Status429,
    Status500,
    Status503,
    /// Close the connection without answering and without applying.
    ResetBefore,
    /// Apply and commit, then close the connection without answering (the response is lost).
    ResetAfter,
}

impl Fault {
    /// The name used in specs, in `Stats::faults` and in `RequestRecord::fault`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::None => "200",
            Fault::Status401 => "401",
            Fault::Status403 => "403",
            Fault::Status413 => "413",
            Fault::Status429 => "429",
            Fault::Status500 => "500",
            Fault::Status503 => "503",
            Fault::ResetBefore => "reset_before",
            Fault::ResetAfter => "reset_after",
        }
    }

    fn parse(s: &str) -> Option<Fault> {
        Some(match s.trim() {
            "200" | "ok" | "none" => Fault::None,
            "401" => Fault::Status401,
            "403" => Fault::Status403,
            "413" => Fault::Status413,
            "429" => Fault::Status429,
            "500" => Fault::Status500,
            "503" => Fault::Status503,
            "reset_before" => Fault::ResetBefore,
            "reset_after" => Fault::ResetAfter,
            _ => return None,
        })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `--faults` spec, e.g.
/// `503=0.15,429=0.15,reset_after=0.1,reset_before=0.05,500=0.05,retry_after=1,latency_ms=0,seed=7`
/// or `script=503;500;reset_after;200` (consumed first, one entry per batch request).
/// `Default` injects nothing. See `emulator/README.md`.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    /// Probability of each fault per batch request, in spec order; they sum to at most 1.
    pub probabilities: Vec<(Fault, f64)>,
    /// Consumed one per batch request before any probability applies.
    pub script: Vec<Fault>,
    /// `Retry-After` seconds sent with injected 429/503.
    pub retry_after_secs: u64,
    /// Delay added to every batch request before it is answered.
    pub latency_ms: u64,
    pub seed: u64,
}

impl Default for FaultSpec {
    fn default() -> Self {
        FaultSpec {
            probabilities: Vec::new(),
            script: Vec::new(),
            retry_after_secs: 1,
            latency_ms: 0,
            seed: 1,
        }
    }
}

impl FaultSpec {
    /// True when no request will ever be faulted or delayed.
    pub fn is_none(&self) -> bool {
        self.latency_ms == 0
            && self.script.iter().all(|f| *f == Fault::None)
            && self.probabilities.iter().all(|(_, p)| *p == 0.0)
    }
}

const KEYS: &str = "401, 403, 413, 429, 500, 503, reset_before, reset_after, retry_after, latency_ms, seed, script";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultSpecError {
    #[error("bad fault spec: `{part}` is not key=value (keys: {KEYS})")]
    NotKeyValue { part: String },
    #[error("bad fault spec: unknown key `{key}` (keys: {KEYS})")]
    UnknownKey { key: String },
    #[error("bad fault spec: key `{key}` given twice")]
    DuplicateKey { key: String },
    #[error("bad fault spec: `{key}` is a probability in [0, 1], got `{value}`")]
    BadProbability { key: String, value: String },
    #[error("bad fault spec: `{key}` needs a whole number ≥ 0, got `{value}`")]
    BadNumber { key: String, value: String },
    #[error("bad fault spec: unknown script entry `{entry}` (entries: 200, {KEYS_FAULTS})")]
    BadScriptEntry { entry: String },
    #[error("bad fault spec: the fault probabilities sum to {sum}, above 1")]
    ProbabilitySum { sum: f64 },
}

const KEYS_FAULTS: &str = "401, 403, 413, 429, 500, 503, reset_before, reset_after";

impl FromStr for FaultSpec {
    type Err = FaultSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = FaultSpec::default();
        let mut seen: Vec<String> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| FaultSpecError::NotKeyValue { part: part.into() })?;
            if seen.iter().any(|k| k == key) {
                return Err(FaultSpecError::DuplicateKey { key: key.into() });
            }
            seen.push(key.into());
            let number = || {
                value.parse::<u64>().map_err(|_| FaultSpecError::BadNumber {
                    key: key.into(),
                    value: value.into(),
                })
            };
            match key {
                "retry_after" => spec.retry_after_secs = number()?,
                "latency_ms" => spec.latency_ms = number()?,
                "seed" => spec.seed = number()?,
                "script" => {
                    for entry in value.split(';').map(str::trim).filter(|e| !e.is_empty()) {
                        let fault =
                            Fault::parse(entry).ok_or_else(|| FaultSpecError::BadScriptEntry {
                                entry: entry.into(),
                            })?;
                        spec.script.push(fault);
                    }
                }
                other => match Fault::parse(other) {
                    Some(Fault::None) | None => {
                        return Err(FaultSpecError::UnknownKey { key: other.into() })
                    }
                    Some(fault) => {
                        let p = value
                            .parse::<f64>()
                            .ok()
                            .filter(|p| (0.0..=1.0).contains(p))
                            .ok_or_else(|| FaultSpecError::BadProbability {
                                key: key.into(),
                                value: value.into(),
                            })?;
                        spec.probabilities.push((fault, p));
                    }
                },
            }
        }
        let sum: f64 = spec.probabilities.iter().map(|(_, p)| p).sum();
        // Tolerate float noise such as 0.7 + 0.2 + 0.1.
        if sum > 1.0 + 1e-9 {
            return Err(FaultSpecError::ProbabilitySum { sum });
        }
        Ok(spec)
    }
}

/// Canonical form; parses back to an equal spec.
impl fmt::Display for FaultSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (fault, p) in &self.probabilities {
            write!(f, "{fault}={p},")?;
        }
        if !self.script.is_empty() {
            let script: Vec<&str> = self.script.iter().map(|s| s.name()).collect();
            write!(f, "script={},", script.join(";"))?;
        }
        write!(
            f,
            "retry_after={},latency_ms={},seed={}",
            self.retry_after_secs, self.latency_ms, self.seed
        )
    }
}

/// Reproducible draws from the fault spec's seed: the same generator as the SDK's jitter.
type Rng = repro_line_core::net::Jitter;

/// The live fault state: the spec, what is left of its script, and the RNG.
#[derive(Debug)]
pub(crate) struct Injector {
    pub(crate) spec: FaultSpec,
    script_pos: usize,
    rng: Rng,
}

impl Injector {
    pub(crate) fn new(spec: FaultSpec) -> Injector {
        let rng = Rng::new(spec.seed);
        Injector {
            spec,
            script_pos: 0,
            rng,
        }
    }

    pub(crate) fn next_fault(&mut self) -> Fault {
        if let Some(f) = self.spec.script.get(self.script_pos) {
            self.script_pos += 1;
            return *f;
        }
        if self.spec.probabilities.is_empty() {
            return Fault::None;
        }
        let draw = self.rng.next_unit();
        let mut acc = 0.0;
        for (fault, p) in &self.spec.probabilities {
            acc += p;
            if draw < acc {
                return *fault;
            }
        }
        Fault::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_probabilities_script_and_options() {
        let s: FaultSpec =
            "503=0.15,429=0.15,reset_after=0.1,retry_after=2,latency_ms=5,seed=7,script=500;ok;401"
                .parse()
                .unwrap();
        assert_eq!(
            s.probabilities,
            vec![
                (Fault::Status503, 0.15),
                (Fault::Status429, 0.15),
                (Fault::ResetAfter, 0.1)
            ]
        );
        assert_eq!(s.retry_after_secs, 2);
        assert_eq!(s.latency_ms, 5);
        assert_eq!(s.seed, 7);
        assert_eq!(
            s.script,
            vec![Fault::Status500, Fault::None, Fault::Status401]
        );
        assert_eq!("".parse::<FaultSpec>().unwrap(), FaultSpec::default());
        assert_eq!(" , ".parse::<FaultSpec>().unwrap(), FaultSpec::default());
        assert_eq!(
            s.to_string().parse::<FaultSpec>().unwrap(),
            s,
            "Display round-trips"
        );
    }

    #[test]
    fn script_is_consumed_before_probabilities() {
        let mut inj = Injector::new("503=1,script=500;200;reset_after".parse().unwrap());
        let got: Vec<Fault> = (0..5).map(|_| inj.next_fault()).collect();
        assert_eq!(
            got,
            [
                Fault::Status500,
                Fault::None,
                Fault::ResetAfter,
                Fault::Status503,
                Fault::Status503
            ]
        );
    }

    #[test]
    fn probabilities_are_respected_and_reproducible() {
        let spec: FaultSpec = "503=0.3,500=0.1,seed=42".parse().unwrap();
        let draw = |spec: &FaultSpec| {
            let mut inj = Injector::new(spec.clone());
            (0..10_000).map(|_| inj.next_fault()).collect::<Vec<_>>()
        };
        let a = draw(&spec);
        let n503 = a.iter().filter(|f| **f == Fault::Status503).count();
        let n500 = a.iter().filter(|f| **f == Fault::Status500).count();
        assert!((2_700..3_300).contains(&n503), "{n503}");
        assert!((800..1_200).contains(&n500), "{n500}");
        assert_eq!(draw(&spec), a, "same seed, same draws");
        let other: FaultSpec = "503=0.3,500=0.1,seed=43".parse().unwrap();
        assert_ne!(draw(&other), a, "another seed, other draws");
    }

    #[test]
    fn full_probability_always_fires() {
        let mut inj = Injector::new("reset_before=1.0".parse().unwrap());
        assert!((0..1000).all(|_| inj.next_fault() == Fault::ResetBefore));
    }
}
