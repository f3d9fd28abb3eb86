//! `reconcile`: your users (Format 1) against your LINE followers.
//!
//! - Pattern 3: deliverable = users whose LINE ID is a follower (Format 1).
//! - Pattern 1: deliverable = all users (Format 1), blocked = users whose LINE
//!   ID is not a follower (Format 2).
//!
//! The followers go into a hash set of 16-byte keys (the 32 hex digits
//! decoded); the users are streamed through the scanner, so memory is the set
//! plus a block, whatever the size of the users file.

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use foldhash::fast::FixedState;
use serde::Serialize;

use crate::outputs::{check_distinct, AtomicFile, Named};
use crate::rules::{Finding, Severity, MAX_FILE_BYTES};
use crate::scan::{
    check_header, stream_records, Format, FormatChoice, IdKey, Record, ScanConfig, Sink,
};
use crate::validate::{partition, validate_file, ValidateOptions, PARTITIONS as PARTS};
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Pattern {
    /// All users deliverable, non-followers blocked.
    #[serde(rename = "1")]
    One,
    /// Users ∩ followers deliverable.
    #[serde(rename = "3")]
    Three,
}

#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    pub users: PathBuf,
    pub followers: PathBuf,
    pub pattern: Pattern,
    pub out: PathBuf,
    /// Pattern 1 only (required there).
    pub blocked_out: Option<PathBuf>,
}

/// A row left out because it breaks a rule.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub file: PathBuf,
    pub line: u64,
    pub rule: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReconcileReport {
    pub pattern: Pattern,
    pub followers: u64,
    pub users: u64,
    pub deliverable: u64,
    pub blocked: u64,
    /// Rows left out because they break a rule (see `skipped_examples`).
    pub skipped: u64,
    pub skipped_examples: Vec<Skipped>,
    pub elapsed_s: f64,
    pub outputs: Vec<PathBuf>,
    /// Outputs over Repro's 500 MB limit: split them with `csv fix`.
    pub oversized: Vec<PathBuf>,
    /// Outputs `csv validate` would call invalid (exit 1).
    pub invalid_outputs: Vec<InvalidOutput>,
}

/// An output that would fail `csv validate`, with its errors per rule.
#[derive(Debug, Clone, Serialize)]
pub struct InvalidOutput {
    pub file: PathBuf,
    pub errors: u64,
    pub counts: std::collections::BTreeMap<String, u64>,
}

impl ReconcileReport {
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} users, {} followers → {} deliverable",
            self.users, self.followers, self.deliverable
        );
        if self.pattern == Pattern::One {
            s.push_str(&format!(", {} blocked", self.blocked));
        }
        s.push_str(&format!(" in {:.2} s", self.elapsed_s));
        for o in &self.outputs {
            s.push_str(&format!("\nwrote {}", o.display()));
        }
        for o in &self.oversized {
            s.push_str(&format!(
                "\nNOTE {} is over 500 MB: split it with `repro-line csv fix {} -o OUT.csv --split-mb 500`",
                o.display(),
                o.display()
            ));
        }
        for o in &self.invalid_outputs {
            let by: Vec<String> = o.counts.iter().map(|(r, n)| format!("{r}: {n}")).collect();
            s.push_str(&format!(
                "\nINVALID {} would fail `repro-line csv validate` ({} error(s): {}); Repro would reject it. \
                 A LINE ID with two user IDs in --users is a conflict: fix the users file, or run \
                 `repro-line csv fix {} -o FIXED.csv` to move those rows aside",
                o.file.display(),
                o.errors,
                by.join(", "),
                o.file.display()
            ));
        }
        if self.skipped > 0 {
            s.push_str(&format!(
                "\nSKIPPED {} row(s) that break a rule (run `repro-line csv validate` on the inputs):",
                self.skipped
            ));
            for k in &self.skipped_examples {
                s.push_str(&format!(
                    "\n  {} line {}: {}",
                    k.file.display(),
                    k.line,
                    k.rule
                ));
            }
        }
        s
    }
}

const EXAMPLES: usize = 10;

/// Follower IDs: the usual (hex) ones in sorted partitions, others in a set.
/// A lookup into one 100+ MB hash table costs a cache and TLB miss each; the
/// users are instead looked up a block at a time, partition by partition.
struct Followers {
    parts: Vec<Vec<u128>>,
    other: HashSet<[u8; 33], FixedState>,
}

impl Followers {
    fn new() -> Self {
        Followers {
            parts: (0..PARTS).map(|_| Vec::new()).collect(),
            other: HashSet::with_hasher(FixedState::with_seed(7)),
        }
    }

    fn insert(&mut self, k: &IdKey) {
        match k {
            IdKey::Hex(h) => self.parts[partition(h)].push(u128::from_le_bytes(*h)),
            IdKey::Other(o) => {
                self.other.insert(*o);
            }
        }
    }

    fn seal(&mut self) {
        for p in &mut self.parts {
            p.sort_unstable();
            p.dedup();
            p.shrink_to_fit();
        }
    }

    fn len(&self) -> u64 {
        (self.parts.iter().map(Vec::len).sum::<usize>() + self.other.len()) as u64
    }
}

/// Keeps the first few rule-breaking rows of a file.
struct Skips<'a> {
    file: &'a Path,
    count: u64,
    examples: Vec<Skipped>,
    row_failed: bool,
}

impl Skips<'_> {
    fn finding(&mut self, f: &Finding) {
        if f.severity != Severity::Error || f.rule.fixed_by_fix() {
            return;
        }
        if !self.row_failed && self.examples.len() < EXAMPLES {
            self.examples.push(Skipped {
                file: self.file.to_path_buf(),
                line: f.line,
                rule: f.rule.id().to_string(),
            });
        }
        self.row_failed = true;
    }

    /// True if the row is usable.
    fn record(&mut self, r: &Record<'_>) -> bool {
        let failed = std::mem::take(&mut self.row_failed);
        if r.blank {
            return false;
        }
        if failed || r.key.is_none() {
            self.count += 1;
            return false;
        }
        true
    }
}

struct FollowerSink<'a> {
    set: Followers,
    skips: Skips<'a>,
}

impl Sink for FollowerSink<'_> {
    fn finding(&mut self, f: Finding) {
        self.skips.finding(&f);
    }
    fn record(&mut self, r: &Record<'_>) {
        if self.skips.record(r) {
            if let Some(k) = &r.key {
                self.set.insert(k);
            }
        }
    }
}

/// One output file: written beside its target and renamed at the end, so no half-written
/// output is left (an [`AtomicFile`]), with a running byte count for the size check.
struct Output {
    file: AtomicFile,
    bytes: u64,
}

impl Output {
    fn create(path: &Path, header: &str) -> Result<Output, Error> {
        let mut file = AtomicFile::create(path)?;
        file.write_all(header.as_bytes())?;
        Ok(Output {
            file,
            bytes: header.len() as u64,
        })
    }

    #[inline]
    fn write(&mut self, parts: &[&[u8]]) -> Result<(), Error> {
        for p in parts {
            self.file.write_all(p)?;
            self.bytes += p.len() as u64;
        }
        Ok(())
    }

    fn commit(self) -> Result<(PathBuf, u64), Error> {
        Ok((self.file.commit()?, self.bytes))
    }
}

const BATCH_ROWS: usize = 1 << 18;

struct UserSink<'a> {
    followers: &'a Followers,
    pattern: Pattern,
    deliverable: Output,
    blocked: Option<Output>,
    skips: Skips<'a>,
    users: u64,
    n_deliverable: u64,
    n_blocked: u64,
    /// The current block's valid rows, each with `\n`, back to back.
    rows: Vec<u8>,
    /// Per row: end offset in `rows`, and its key.
    batch: Vec<(usize, IdKey)>,
    follows: Vec<bool>,
    probes: Vec<(u128, u32)>,
    id_buf: Vec<u8>,
}

impl UserSink<'_> {
    /// Looks up the block's rows partition by partition, then writes them in order.
    fn flush(&mut self) -> Result<(), Error> {
        let n = self.batch.len();
        self.follows.clear();
        self.follows.resize(n, false);
        let mut offsets = vec![0u32; PARTS + 1];
        for (_, k) in &self.batch {
            if let IdKey::Hex(h) = k {
                offsets[partition(h) + 1] += 1;
            }
        }
        for p in 0..PARTS {
            offsets[p + 1] += offsets[p];
        }
        // (key, row) grouped by partition, so the probes read sequentially.
        self.probes.clear();
        self.probes.resize(offsets[PARTS] as usize, (0, 0));
        let mut next = offsets.clone();
        for (i, (_, k)) in self.batch.iter().enumerate() {
            match k {
                IdKey::Hex(h) => {
                    let slot = &mut next[partition(h)];
                    if let Some(o) = self.probes.get_mut(*slot as usize) {
                        *o = (u128::from_le_bytes(*h), i as u32);
                    }
                    *slot += 1;
                }
                IdKey::Other(o) => self.follows[i] = self.followers.other.contains(o),
            }
        }
        for p in 0..PARTS {
            let set = &self.followers.parts[p];
            for &(key, i) in &self.probes[offsets[p] as usize..offsets[p + 1] as usize] {
                if let Some(f) = self.follows.get_mut(i as usize) {
                    *f = set.binary_search(&key).is_ok();
                }
            }
        }
        let mut start = 0;
        for (i, &(end, key)) in self.batch.iter().enumerate() {
            let row = &self.rows[start..end];
            start = end;
            let follows = self.follows[i];
            match self.pattern {
                Pattern::Three => {
                    if follows {
                        self.n_deliverable += 1;
                        self.deliverable.write(&[row])?;
                    }
                }
                Pattern::One => {
                    self.n_deliverable += 1;
                    self.deliverable.write(&[row])?;
                    if !follows {
                        if let Some(b) = &mut self.blocked {
                            self.n_blocked += 1;
                            self.id_buf.clear();
                            key.write_to(&mut self.id_buf);
                            self.id_buf.push(b'\n');
                            b.write(&[&self.id_buf])?;
                        }
                    }
                }
            }
        }
        self.batch.clear();
        self.rows.clear();
        Ok(())
    }
}

impl Sink for UserSink<'_> {
    fn finding(&mut self, f: Finding) {
        self.skips.finding(&f);
    }
    fn record(&mut self, r: &Record<'_>) {
        if !self.skips.record(r) {
            return;
        }
        if let Some(key) = r.key {
            self.users += 1;
            self.rows.extend_from_slice(r.raw);
            self.rows.push(b'\n');
            self.batch.push((self.rows.len(), key));
        }
    }
}

/// Reads a CSV with the scanner: BOM tolerated, header required (and, with
/// `want`, of that format). Returns the format.
fn stream<S: Sink>(
    path: &Path,
    want: Option<Format>,
    sink: &mut S,
    error: impl Fn(&mut S) -> Option<Error>,
) -> Result<Format, Error> {
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let choice = match want {
        None => FormatChoice::Auto,
        Some(Format::One) => FormatChoice::One,
        Some(Format::Two) => FormatChoice::Two,
    };
    let streamed = stream_records(
        file,
        sink,
        |line, _| {
            let header = check_header(line, choice, &mut HeaderFindings);
            let Some(f) = header.format else {
                let reason = match want {
                    Some(f) => format!(
                        "line 1 must be exactly `{}` (Format {})",
                        f.header(),
                        f.number()
                    ),
                    None => format!(
                        "line 1 must be exactly `{}` or `{}`",
                        Format::One.header(),
                        Format::Two.header()
                    ),
                };
                return Err(Error::Input {
                    path: path.to_path_buf(),
                    reason,
                });
            };
            let mut cfg = ScanConfig::new(f, header.ending);
            cfg.keep_raw = true;
            Ok((cfg, f))
        },
        error,
        read_err,
    )?;
    match streamed {
        Some(s) => Ok(s.header),
        None => Err(Error::Input {
            path: path.to_path_buf(),
            reason: "the file is empty; line 1 must be the header".into(),
        }),
    }
}

#[derive(Default)]
struct HeaderFindings;

impl Sink for HeaderFindings {
    fn finding(&mut self, _: Finding) {}
    fn record(&mut self, _: &Record<'_>) {}
}

pub fn reconcile(opts: &ReconcileOptions) -> Result<ReconcileReport, Error> {
    let started = Instant::now();
    if opts.pattern == Pattern::One && opts.blocked_out.is_none() {
        return Err(Error::Usage(
            "pattern 1 writes two files: pass --blocked-out FILE for the blocked list".into(),
        ));
    }
    let mut outs = vec![Named::new("-o", &opts.out)];
    if let Some(b) = &opts.blocked_out {
        outs.push(Named::new("--blocked-out", b));
    }
    check_distinct(
        &[
            Named::new("--users", &opts.users),
            Named::new("--followers", &opts.followers),
        ],
        &outs,
    )?;
    let mut fs = FollowerSink {
        set: Followers::new(),
        skips: Skips {
            file: &opts.followers,
            count: 0,
            examples: Vec::new(),
            row_failed: false,
        },
    };
    stream(&opts.followers, None, &mut fs, |_| None)?;
    let mut followers = fs.set;
    followers.seal();
    let follower_skips = fs.skips;
    let n_followers = followers.len();

    let deliverable = Output::create(&opts.out, "line_user_id,user_id\n")?;
    let blocked = match (&opts.blocked_out, opts.pattern) {
        (Some(p), Pattern::One) => Some(Output::create(p, "line_user_id\n")?),
        _ => None,
    };
    let mut us = UserSink {
        followers: &followers,
        pattern: opts.pattern,
        deliverable,
        blocked,
        skips: Skips {
            file: &opts.users,
            count: 0,
            examples: Vec::new(),
            row_failed: false,
        },
        users: 0,
        n_deliverable: 0,
        n_blocked: 0,
        rows: Vec::new(),
        batch: Vec::new(),
        follows: Vec::new(),
        probes: Vec::new(),
        id_buf: Vec::with_capacity(40),
    };
    // Rows are looked up in batches: the larger the batch, the more lookups
    // share each partition's cache lines (256 k rows ≈ 15 MB of buffer).
    stream(&opts.users, Some(Format::One), &mut us, |s| {
        if s.batch.len() >= BATCH_ROWS {
            s.flush().err()
        } else {
            None
        }
    })?;
    us.flush()?;
    let mut outputs = Vec::new();
    let (p, bytes) = us.deliverable.commit()?;
    outputs.push((p, bytes));
    if let Some(b) = us.blocked {
        outputs.push(b.commit()?);
    }
    let mut examples = follower_skips.examples;
    examples.extend(us.skips.examples);
    examples.truncate(EXAMPLES);
    // What `csv validate` would say of each output (a LINE ID on two user IDs
    // in --users makes a conflict): the import would reject such a file.
    let mut invalid_outputs = Vec::new();
    for (p, _) in &outputs {
        let check = validate_file(
            p,
            &ValidateOptions {
                sample: EXAMPLES,
                max_bytes: u64::MAX,
                ..Default::default()
            },
        )?;
        if !check.valid {
            invalid_outputs.push(InvalidOutput {
                file: p.clone(),
                errors: check.errors,
                counts: check
                    .counts
                    .into_iter()
                    .filter(|(r, _)| {
                        crate::Rule::from_id(r).is_some_and(|r| r.severity() == Severity::Error)
                    })
                    .collect(),
            });
        }
    }
    let oversized = outputs
        .iter()
        .filter(|(_, b)| *b > MAX_FILE_BYTES)
        .map(|(p, _)| p.clone())
        .collect();
    Ok(ReconcileReport {
        pattern: opts.pattern,
        followers: n_followers,
        users: us.users,
        deliverable: us.n_deliverable,
        blocked: us.n_blocked,
        skipped: follower_skips.count + us.skips.count,
        skipped_examples: examples,
        elapsed_s: started.elapsed().as_secs_f64(),
        outputs: outputs.into_iter().map(|(p, _)| p).collect(),
        oversized,
        invalid_outputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u32) -> String {
        format!("U{i:032x}")
    }

    #[test]
    fn patterns_one_and_three() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users.csv");
        let followers = dir.path().join("followers.csv");
        let mut u = String::from("line_user_id,user_id\n");
        for i in 0..10 {
            u.push_str(&format!("{},user{i}\n", id(i)));
        }
        u.push_str("bad,user-bad\n");
        std::fs::write(&users, u).unwrap();
        let mut f = String::from("line_user_id\n");
        for i in (0..20).step_by(2) {
            f.push_str(&format!("{}\n", id(i)));
        }
        std::fs::write(&followers, f).unwrap();

        let out = dir.path().join("deliverable.csv");
        let r = reconcile(&ReconcileOptions {
            users: users.clone(),
            followers: followers.clone(),
            pattern: Pattern::Three,
            out: out.clone(),
            blocked_out: None,
        })
        .unwrap();
        assert_eq!(r.deliverable, 5);
        assert_eq!(r.skipped, 1);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with("line_user_id,user_id\n"));
        assert!(text.contains(&format!("{},user4\n", id(4))));
        assert!(!text.contains(&id(3)));

        let blocked = dir.path().join("blocked.csv");
        let r = reconcile(&ReconcileOptions {
            users,
            followers,
            pattern: Pattern::One,
            out: out.clone(),
            blocked_out: Some(blocked.clone()),
        })
        .unwrap();
        assert_eq!((r.deliverable, r.blocked), (10, 5));
        let b = std::fs::read_to_string(&blocked).unwrap();
        assert_eq!(
            b,
            format!(
                "line_user_id\n{}\n{}\n{}\n{}\n{}\n",
                id(1),
                id(3),
                id(5),
                id(7),
                id(9)
            )
        );
    }

    #[test]
    fn users_must_be_format_1() {
        let dir = tempfile::tempdir().unwrap();
        let f2 = dir.path().join("f.csv");
        std::fs::write(&f2, format!("line_user_id\n{}\n", id(1))).unwrap();
        let e = reconcile(&ReconcileOptions {
            users: f2.clone(),
            followers: f2,
            pattern: Pattern::Three,
            out: dir.path().join("o.csv"),
            blocked_out: None,
        })
        .unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(!dir.path().join("o.csv").exists());
    }
}
