//! `csv validate`: reads the file in large blocks cut at line breaks, scans the
//! blocks on all cores, and merges the results in file order.
//!
//! Each worker scans its block as if it started a record. The merger checks
//! that guess: if the previous block ended inside a record (a quoted field
//! spanning lines, or a line longer than a block), it throws the guess away
//! and rescans the block with the previous block's scanner state. Line numbers
//! stay exact because every block knows how many line breaks it held.
//!
//! Duplicates: every valid row leaves a 32-byte record (16-byte ID, hash of its
//! user_id, line) in one of 256 partitions chosen by the ID. After the scan
//! each partition goes through a hash map small enough to stay in cache, one
//! partition per core at a time. Memory: a few blocks plus 32 bytes per valid
//! row (a 500 MB file has at most ~14 M rows).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use foldhash::fast::FixedState;
use serde::Serialize;

use crate::outputs::{check_distinct, Named};
use crate::rules::{Column, Finding, Rule, Severity, ERRORS_CSV_HEADER, MAX_FILE_BYTES};
use crate::scan::{
    check_header_with, detect_bom, Ending, Format, FormatChoice, IdKey, LongLine, Record,
    ScanConfig, Scanner, Sink,
};
use crate::Error;

/// Block size for reading: large enough that per-block costs vanish, small
/// enough that a few in flight cost little memory.
pub const DEFAULT_BLOCK_SIZE: usize = 8 << 20;
/// Enough partitions that one partition's map (~10 k IDs for a 500 MB file)
/// stays in a core's L2 cache.
pub const PARTITIONS: usize = 1024;
/// Fixed seed: hashes only need to agree within one run.
const HASH_SEED: u64 = 0x05ee_d1d5_cafe;

#[derive(Debug, Clone)]
pub struct ValidateOptions {
    pub format: FormatChoice,
    /// Write every finding here as CSV `line,column,value,rule,severity`.
    pub errors_out: Option<PathBuf>,
    /// How many findings (the first, in line order) the report keeps.
    pub sample: usize,
    /// Worker threads; 0 = one per core.
    pub threads: usize,
    pub block_size: usize,
    /// Keep the LINE IDs found with conflicting user_ids (for `csv fix`).
    pub collect_conflicts: bool,
    /// The size limit (Repro's 500 MB; smaller in tests).
    pub max_bytes: u64,
    /// Read a file over the limit to its end (for `csv fix`, which splits it).
    /// Otherwise a file known to be too large is not read at all, and an input
    /// of unknown size (a pipe, `/dev/zero`) is read only up to the limit.
    pub scan_oversized: bool,
}

impl Default for ValidateOptions {
    fn default() -> Self {
        ValidateOptions {
            format: FormatChoice::Auto,
            errors_out: None,
            sample: 1000,
            threads: 0,
            block_size: DEFAULT_BLOCK_SIZE,
            collect_conflicts: false,
            max_bytes: MAX_FILE_BYTES,
            scan_oversized: false,
        }
    }
}

/// What `csv validate` found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub file: PathBuf,
    /// The header's format when the header is valid.
    pub format: Option<Format>,
    pub line_ending: Option<Ending>,
    pub bytes: u64,
    pub rows: u64,
    pub errors: u64,
    pub warnings: u64,
    pub valid: bool,
    pub elapsed_s: f64,
    pub mb_per_s: f64,
    /// Findings per rule id.
    pub counts: BTreeMap<String, u64>,
    /// The first findings in line order (see `findings_total`).
    pub findings: Vec<Finding>,
    pub findings_total: u64,
    pub findings_truncated: bool,
    #[serde(skip)]
    pub conflicted: Vec<IdKey>,
    /// With `collect_conflicts`: the lines of every `line_user_id.duplicate`
    /// (the repeats, not the first sighting), in order, for `csv fix`.
    #[serde(skip)]
    pub duplicate_lines: Vec<u64>,
}

impl Report {
    /// `file.csv: Format 1, 3 rows, 0 errors, 1 warning, 0.1 MB in 0.01 s (10 MB/s): VALID`
    pub fn summary_line(&self) -> String {
        let format = match self.format {
            Some(f) => format!("Format {}", f.number()),
            None => "no valid header".to_string(),
        };
        format!(
            "{}: {format}, {} rows, {} error{}, {} warning{}, {:.1} MB in {:.2} s ({:.0} MB/s): {}",
            self.file.display(),
            self.rows,
            self.errors,
            if self.errors == 1 { "" } else { "s" },
            self.warnings,
            if self.warnings == 1 { "" } else { "s" },
            self.bytes as f64 / 1e6,
            self.elapsed_s,
            self.mb_per_s,
            if self.valid { "VALID" } else { "INVALID" }
        )
    }
}

/// Reads whole lines in blocks; a line longer than a block is cut (the scanner
/// carries its state across).
pub struct BlockReader {
    file: Box<dyn Read + Send>,
    leftover: Vec<u8>,
    eof: bool,
    pub bytes: u64,
}

impl BlockReader {
    pub fn new(file: impl Read + Send + 'static) -> Self {
        BlockReader {
            file: Box::new(file),
            leftover: Vec::new(),
            eof: false,
            bytes: 0,
        }
    }

    /// Fills `buf` (whose length is the block size) and returns how many bytes
    /// form the block; 0 at the end of the file.
    pub fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = self.leftover.len();
        buf[..n].copy_from_slice(&self.leftover);
        self.leftover.clear();
        while n < buf.len() && !self.eof {
            match self.file.read(&mut buf[n..]) {
                Ok(0) => self.eof = true,
                Ok(k) => {
                    n += k;
                    self.bytes += k as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.eof {
            return Ok(n);
        }
        match memchr::memrchr(b'\n', &buf[..n]) {
            Some(k) => {
                self.leftover.extend_from_slice(&buf[k + 1..n]);
                Ok(k + 1)
            }
            None => Ok(n),
        }
    }

    pub fn at_eof(&self) -> bool {
        self.eof && self.leftover.is_empty()
    }
}

/// A valid row for the duplicate check: 28 bytes.
#[derive(Debug, Clone, Copy, Default)]
struct DupRec {
    key: [u8; 16],
    /// Hash of the user_id: equal IDs with unequal hashes conflict.
    uid: [u8; 8],
    /// Line relative to the block's `base`.
    line: u32,
}

#[derive(Debug, Clone, Copy)]
struct OddRec {
    key: [u8; 33],
    uid: u64,
    line: u64,
}

/// Duplicate-check records of one block, grouped by partition:
/// partition `p` is `recs[offsets[p]..offsets[p + 1]]`, in file order.
#[derive(Debug, Default)]
struct BlockDups {
    base: u64,
    recs: Vec<DupRec>,
    offsets: Vec<u32>,
    odd: Vec<OddRec>,
}

impl BlockDups {
    fn part(&self, p: usize) -> &[DupRec] {
        match (self.offsets.get(p), self.offsets.get(p + 1)) {
            (Some(&a), Some(&b)) => self.recs.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }
}

#[inline]
/// The partition of a LINE ID key (bulk reconcile partitions its sets the same way).
pub fn partition(key: &[u8; 16]) -> usize {
    // Mix all bytes: IDs are random in practice, but test data often is not.
    let a = u64::from_le_bytes([
        key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
    ]);
    let b = u64::from_le_bytes([
        key[8], key[9], key[10], key[11], key[12], key[13], key[14], key[15],
    ]);
    ((a ^ b.rotate_left(29)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize
}

/// Counting sort of a block's records into partitions (exact-size, so the
/// records of a whole file take 28 bytes each and nothing more).
/// `sorted` is a reusable buffer: the scatter goes to warm memory, and the
/// result is one sequential copy into a vector of the exact size.
fn group(recs: &[DupRec], sorted: &mut Vec<DupRec>, base: u64, odd: Vec<OddRec>) -> BlockDups {
    let mut offsets = vec![0u32; PARTITIONS + 1];
    for r in recs {
        offsets[partition(&r.key) + 1] += 1;
    }
    for p in 0..PARTITIONS {
        offsets[p + 1] += offsets[p];
    }
    let mut next = offsets.clone();
    if sorted.len() < recs.len() {
        sorted.resize(recs.len(), DupRec::default());
    }
    for r in recs {
        let slot = &mut next[partition(&r.key)];
        if let Some(o) = sorted.get_mut(*slot as usize) {
            *o = *r;
        }
        *slot += 1;
    }
    BlockDups {
        base,
        recs: sorted[..recs.len()].to_vec(),
        offsets,
        odd,
    }
}

/// A worker's reusable record buffers.
type Scratch = (Vec<DupRec>, Vec<DupRec>);

/// The sink a block is scanned into.
struct BlockSink {
    findings: Vec<Finding>,
    rows: u64,
    /// Record lines are stored relative to this line.
    base: u64,
    recs: Vec<DupRec>,
    /// Reusable buffer for [`group`].
    sorted: Vec<DupRec>,
    odd: Vec<OddRec>,
    hasher: FixedState,
}

impl BlockSink {
    fn new(base: u64, scratch: Scratch) -> Self {
        BlockSink {
            findings: Vec::new(),
            rows: 0,
            base,
            recs: scratch.0,
            sorted: scratch.1,
            odd: Vec::new(),
            hasher: FixedState::with_seed(HASH_SEED),
        }
    }

    /// Groups the records; returns them and the scratch buffer for reuse.
    fn into_dups(mut self, block_base: u64) -> (BlockDups, Scratch, Vec<Finding>, u64) {
        let dups = group(
            &self.recs,
            &mut self.sorted,
            block_base + self.base,
            std::mem::take(&mut self.odd),
        );
        self.recs.clear();
        (dups, (self.recs, self.sorted), self.findings, self.rows)
    }
}

impl Sink for BlockSink {
    fn finding(&mut self, f: Finding) {
        self.findings.push(f);
    }

    #[inline]
    fn record(&mut self, r: &Record<'_>) {
        if r.blank {
            return;
        }
        self.rows += 1;
        match r.key {
            Some(IdKey::Hex(key)) => {
                let uid = hash_bytes(&self.hasher, r.user_id);
                // A block holds at most a few million lines; saturate rather than wrap.
                let line = u32::try_from(r.line.saturating_sub(self.base)).unwrap_or(u32::MAX);
                self.recs.push(DupRec {
                    key,
                    uid: uid.to_ne_bytes(),
                    line,
                });
            }
            Some(IdKey::Other(key)) => {
                let uid = hash_bytes(&self.hasher, r.user_id);
                self.odd.push(OddRec {
                    key,
                    uid,
                    line: r.line - self.base.min(r.line),
                });
            }
            None => {}
        }
    }
}

#[inline]
fn hash_bytes(h: &FixedState, bytes: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    h.hash_one(bytes)
}

/// Collects findings in line order: counts, the first `sample`, and (for
/// `--errors-out`) every one in a temporary file.
struct Findings {
    counts: BTreeMap<Rule, u64>,
    total: u64,
    errors: u64,
    warnings: u64,
    sample: Vec<Finding>,
    sample_max: usize,
    spill: Option<BufWriter<File>>,
}

impl Findings {
    fn new(sample_max: usize, spill: bool) -> io::Result<Self> {
        Ok(Findings {
            counts: BTreeMap::new(),
            total: 0,
            errors: 0,
            warnings: 0,
            sample: Vec::new(),
            sample_max,
            spill: if spill {
                Some(BufWriter::with_capacity(1 << 20, tempfile::tempfile()?))
            } else {
                None
            },
        })
    }

    fn count(&mut self, f: &Finding) {
        *self.counts.entry(f.rule).or_insert(0) += 1;
        self.total += 1;
        match f.severity {
            Severity::Error => self.errors += 1,
            Severity::Warning => self.warnings += 1,
        }
    }

    fn push(&mut self, f: Finding) -> io::Result<()> {
        self.count(&f);
        if let Some(w) = &mut self.spill {
            w.write_all(f.csv_row().as_bytes())?;
        }
        if self.sample.len() < self.sample_max {
            self.sample.push(f);
        }
        Ok(())
    }
}

/// Merges two line-ordered finding lists, stable (scan findings first on ties).
fn merge_sorted(a: Vec<Finding>, b: Vec<Finding>, max: usize) -> Vec<Finding> {
    let mut out = Vec::with_capacity((a.len() + b.len()).min(max));
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    while out.len() < max {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => x.line <= y.line,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_a { a.next() } else { b.next() };
        match next {
            Some(f) => out.push(f),
            None => break,
        }
    }
    out
}

enum Msg {
    Block(Box<BlockResult>),
    ReadDone { jobs: u64 },
    ReadError(io::Error),
}

struct Job {
    seq: u64,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

struct BlockResult {
    job: Job,
    scanner: Scanner,
    dups: BlockDups,
    findings: Vec<Finding>,
    rows: u64,
}

fn open(path: &Path) -> Result<(File, std::fs::Metadata), Error> {
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if meta.is_dir() {
        return Err(read_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a directory",
        )));
    }
    Ok((file, meta))
}

/// Validates `path`. `Err` only when the file cannot be read (exit 2).
pub fn validate_file(path: &Path, opts: &ValidateOptions) -> Result<Report, Error> {
    if let Some(errors_out) = &opts.errors_out {
        check_distinct(
            &[Named::new("input", path)],
            &[Named::new("--errors-out", errors_out)],
        )?;
    }
    let (file, meta) = open(path)?;
    validate_reader(path, file, meta.is_file().then_some(meta.len()), opts)
}

/// Validates CSV bytes from any reader. `name` is only reported; `size`, when
/// known up front, is checked against the limit before reading.
pub fn validate_reader(
    name: &Path,
    source: impl Read + Send + 'static,
    size: Option<u64>,
    opts: &ValidateOptions,
) -> Result<Report, Error> {
    let started = Instant::now();
    let path = name;
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut findings =
        Findings::new(opts.sample, opts.errors_out.is_some()).map_err(|source| Error::Write {
            path: std::env::temp_dir(),
            source,
        })?;
    let spill_err = |source| Error::Write {
        path: opts.errors_out.clone().unwrap_or_default(),
        source,
    };
    // Findings known only at the end (duplicates, file-level), merged in by line.
    let mut late: Vec<Finding> = Vec::new();

    if let Some(len) = size.filter(|&n| n > opts.max_bytes) {
        if !opts.scan_oversized {
            // Known from the size alone: say so now rather than after reading gigabytes.
            let mut f = too_large(len, opts.max_bytes);
            f.message
                .push_str(" (the file was not read; validate the parts)");
            findings.push(f).map_err(spill_err)?;
            if let Some(path) = &opts.errors_out {
                write_errors_out(path, findings.spill.take(), &[])?;
            }
            let sample = std::mem::take(&mut findings.sample);
            return Ok(build_report(
                path,
                None,
                None,
                len,
                0,
                &findings,
                sample,
                started.elapsed(),
                Vec::new(),
            ));
        }
        findings
            .push(too_large(len, opts.max_bytes))
            .map_err(spill_err)?;
    }
    // An input of unknown size is read up to the limit and a byte: an endless
    // one (`/dev/zero`) stops there.
    let bounded = size.is_none() && !opts.scan_oversized;
    let source: Box<dyn Read + Send> = if bounded {
        Box::new(source.take(opts.max_bytes.saturating_add(1)))
    } else {
        Box::new(source)
    };

    // No block larger than the input: a small file should not cost 8 MiB buffers.
    let fits = size.map_or(usize::MAX, |n| {
        usize::try_from(n).unwrap_or(usize::MAX).saturating_add(1)
    });
    let block_size = opts.block_size.min(fits).max(64);
    let mut reader = BlockReader::new(source);
    let mut first = vec![0u8; block_size];
    let first_len = reader.fill(&mut first).map_err(read_err)?;

    let mut header_format = None;
    let mut header_ending = None;
    let mut rows = 0u64;
    let mut conflicted = Vec::new();
    let mut total_bytes = size.unwrap_or(0);

    if first_len == 0 {
        findings
            .push(Finding::new(
                0,
                None,
                Rule::FileEmpty,
                String::new(),
                "the file is empty; line 1 must be the header".into(),
            ))
            .map_err(spill_err)?;
    } else {
        let data = &first[..first_len];
        let mut start = 0;
        if let Some((n, name)) = detect_bom(data) {
            findings
                .push(Finding::new(
                    1,
                    None,
                    Rule::EncodingBom,
                    String::new(),
                    format!("the file starts with a {name} byte order mark; Repro wants UTF-8 without BOM"),
                ))
                .map_err(spill_err)?;
            start = n;
        }
        // Line 1, and where the rows start. A header longer than a block is
        // read to its end here, keeping only its start for the message.
        // (For a long line, whether it holds a comma anywhere: the guess of the
        // rows' format when the header is invalid.)
        let mut long = None;
        let (header_line, body_start, body_end, skipped) =
            match memchr::memchr(b'\n', &data[start..]) {
                Some(k) => (
                    data[start..start + k].to_vec(),
                    start + k + 1,
                    first_len,
                    0u64,
                ),
                None if reader.at_eof() => (data[start..].to_vec(), first_len, first_len, 0),
                None => {
                    let mut comma = memchr::memchr(b',', &data[start..]).is_some();
                    let mut crs = memchr::memchr_iter(b'\r', &data[start..]).count();
                    let mut prefix = data[start..first_len.min(start + 1024)].to_vec();
                    if prefix.last() == Some(&b'\r') {
                        prefix.pop();
                    }
                    let mut last = data.last().copied().unwrap_or(0);
                    let mut skipped = first_len as u64;
                    let (cr, body_start, body_end) = loop {
                        let n = reader.fill(&mut first).map_err(read_err)?;
                        if n == 0 {
                            break (last == b'\r', 0, 0);
                        }
                        match memchr::memchr(b'\n', &first[..n]) {
                            Some(k) => {
                                comma |= memchr::memchr(b',', &first[..k]).is_some();
                                crs += memchr::memchr_iter(b'\r', &first[..k]).count();
                                let before = if k > 0 { first[k - 1] } else { last };
                                break (before == b'\r', k + 1, n);
                            }
                            None => {
                                comma |= memchr::memchr(b',', &first[..n]).is_some();
                                crs += memchr::memchr_iter(b'\r', &first[..n]).count();
                                last = first[n - 1];
                                skipped += n as u64;
                            }
                        }
                    };
                    if cr {
                        prefix.push(b'\r');
                    }
                    long = Some(LongLine {
                        has_comma: comma,
                        has_bare_cr: crs > usize::from(cr),
                    });
                    (prefix, body_start, body_end, skipped)
                }
            };
        let mut header_sink = HeaderSink::default();
        let header = check_header_with(&header_line, long, opts.format, &mut header_sink);
        for f in header_sink.0 {
            findings.push(f).map_err(spill_err)?;
        }
        header_format = header.format;
        header_ending = header.ending;
        let cfg = ScanConfig::new(header.scan_format, header.ending);
        let carry = Scanner::new(cfg.clone(), 2);
        let out = run_pipeline(
            reader,
            first,
            body_start,
            body_end,
            carry,
            cfg,
            opts,
            &mut findings,
        )?;
        rows = out.rows;
        let threads = worker_count(opts.threads);
        let (hits, keys) = duplicate_pass(&out.blocks, threads, opts.collect_conflicts);
        late.extend(hits);
        conflicted = keys;
        if size.is_none() {
            total_bytes = skipped + body_start as u64 + out.bytes;
            if total_bytes > opts.max_bytes {
                let mut f = too_large(total_bytes, opts.max_bytes);
                if bounded {
                    f.message = format!(
                        "over {} bytes (stopped reading there); Repro accepts at most 500 MB per file: split it with `repro-line csv fix --split-mb 500`",
                        opts.max_bytes
                    );
                }
                late.push(f);
            }
        }
        if rows == 0 && findings.errors == 0 && header.format.is_some() {
            late.push(Finding::new(
                0,
                None,
                Rule::FileNoRows,
                String::new(),
                "the file has a header but no rows".into(),
            ));
        }
    }
    late.sort_by_key(|f| f.line);
    for f in &late {
        findings.count(f);
    }
    let duplicate_lines = if opts.collect_conflicts {
        late.iter()
            .filter(|f| f.rule == Rule::LineUserIdDuplicate)
            .map(|f| f.line)
            .collect()
    } else {
        Vec::new()
    };

    if let Some(path) = &opts.errors_out {
        write_errors_out(path, findings.spill.take(), &late)?;
    }
    let sample_max = findings.sample_max;
    let sample = merge_sorted(std::mem::take(&mut findings.sample), late, sample_max);
    let elapsed = started.elapsed();
    let mut report = build_report(
        path,
        header_format,
        header_ending,
        total_bytes,
        rows,
        &findings,
        sample,
        elapsed,
        conflicted,
    );
    report.duplicate_lines = duplicate_lines;
    Ok(report)
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    path: &Path,
    format: Option<Format>,
    ending: Option<Ending>,
    bytes: u64,
    rows: u64,
    f: &Findings,
    sample: Vec<Finding>,
    elapsed: Duration,
    conflicted: Vec<IdKey>,
) -> Report {
    let secs = elapsed.as_secs_f64();
    Report {
        file: path.to_path_buf(),
        format,
        line_ending: ending,
        bytes,
        rows,
        errors: f.errors,
        warnings: f.warnings,
        valid: f.errors == 0,
        elapsed_s: secs,
        mb_per_s: if secs > 0.0 {
            bytes as f64 / 1e6 / secs
        } else {
            0.0
        },
        counts: f
            .counts
            .iter()
            .map(|(r, n)| (r.id().to_string(), *n))
            .collect(),
        findings_truncated: (sample.len() as u64) < f.total,
        findings: sample,
        findings_total: f.total,
        conflicted,
        duplicate_lines: Vec::new(),
    }
}

fn too_large(bytes: u64, max: u64) -> Finding {
    Finding::new(
        0,
        None,
        Rule::FileTooLarge,
        String::new(),
        format!(
            "{bytes} bytes; Repro accepts at most 500 MB ({max} bytes) per file: split it with `repro-line csv fix --split-mb 500`"
        ),
    )
}

#[derive(Default)]
struct HeaderSink(Vec<Finding>);

impl Sink for HeaderSink {
    fn finding(&mut self, f: Finding) {
        self.0.push(f);
    }
    fn record(&mut self, _: &Record<'_>) {}
}

pub fn worker_count(requested: usize) -> usize {
    if requested > 0 {
        return requested;
    }
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 16)
}

struct PipelineOut {
    rows: u64,
    bytes: u64,
    blocks: Vec<BlockDups>,
}

/// Reader thread → worker threads → this thread (in-order merge).
#[allow(clippy::too_many_arguments)]
fn run_pipeline(
    mut reader: BlockReader,
    first: Vec<u8>,
    first_start: usize,
    first_end: usize,
    mut carry: Scanner,
    cfg: ScanConfig,
    opts: &ValidateOptions,
    findings: &mut Findings,
) -> Result<PipelineOut, Error> {
    let threads = worker_count(opts.threads);
    let block_size = first.len();
    let spill_err = |source| Error::Write {
        path: opts.errors_out.clone().unwrap_or_default(),
        source,
    };
    let (job_tx, job_rx) = crossbeam_channel::bounded::<Job>(threads + 1);
    let (msg_tx, msg_rx) = crossbeam_channel::unbounded::<Msg>();
    let (free_tx, free_rx) = crossbeam_channel::unbounded::<Vec<u8>>();
    for _ in 0..threads + 2 {
        let _ = free_tx.send(vec![0u8; block_size]);
    }

    std::thread::scope(|s| -> Result<PipelineOut, Error> {
        for _ in 0..threads {
            let job_rx = job_rx.clone();
            let msg_tx = msg_tx.clone();
            let cfg = cfg.clone();
            s.spawn(move || {
                let mut scratch: Scratch = Default::default();
                for job in job_rx.iter() {
                    let mut scanner = Scanner::new(cfg.clone(), 1);
                    let mut sink = BlockSink::new(0, std::mem::take(&mut scratch));
                    scanner.scan(&job.buf[job.start..job.end], &mut sink);
                    // Lines are block-relative (line 1 = the block's first line) until the merger places the block.
                    let (dups, back, findings, rows) = sink.into_dups(0);
                    scratch = back;
                    let r = BlockResult {
                        job,
                        scanner,
                        dups,
                        findings,
                        rows,
                    };
                    if msg_tx.send(Msg::Block(Box::new(r))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(job_rx);
        {
            let msg_tx = msg_tx.clone();
            let job_tx = job_tx.clone();
            let free_rx = free_rx.clone();
            let first_job = Job {
                seq: 0,
                buf: first,
                start: first_start,
                end: first_end,
            };
            s.spawn(move || {
                if job_tx.send(first_job).is_err() {
                    return;
                }
                let mut seq = 1u64;
                loop {
                    let Ok(mut buf) = free_rx.recv() else { return };
                    match reader.fill(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            let job = Job {
                                seq,
                                buf,
                                start: 0,
                                end: n,
                            };
                            seq += 1;
                            if job_tx.send(job).is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = msg_tx.send(Msg::ReadError(e));
                            return;
                        }
                    }
                }
                let _ = msg_tx.send(Msg::ReadDone { jobs: seq });
            });
        }
        drop(job_tx);
        drop(msg_tx);

        let mut pending: BTreeMap<u64, Box<BlockResult>> = BTreeMap::new();
        let mut next = 0u64;
        let mut total_jobs: Option<u64> = None;
        let mut rows = 0u64;
        let mut bytes = 0u64;
        let mut blocks = Vec::new();
        let mut base = carry.line() - 1;
        loop {
            if total_jobs.is_some_and(|t| next >= t) {
                break;
            }
            let msg = match msg_rx.recv() {
                Ok(m) => m,
                Err(_) => {
                    return Err(Error::Internal(
                        "a validation worker stopped unexpectedly".into(),
                    ))
                }
            };
            match msg {
                Msg::ReadError(e) => {
                    return Err(Error::Read {
                        path: PathBuf::from("input"),
                        source: e,
                    })
                }
                Msg::ReadDone { jobs } => total_jobs = Some(jobs),
                Msg::Block(r) => {
                    pending.insert(r.job.seq, r);
                }
            }
            while let Some(r) = pending.remove(&next) {
                let BlockResult {
                    job,
                    scanner,
                    mut dups,
                    findings: found,
                    rows: block_rows,
                } = *r;
                bytes += (job.end - job.start) as u64;
                if carry.at_record_start() {
                    for mut f in found {
                        f.line += base;
                        findings.push(f).map_err(spill_err)?;
                    }
                    dups.base += base;
                    rows += block_rows;
                    blocks.push(dups);
                    carry = scanner;
                    carry.shift_lines(base);
                } else {
                    // The guess was wrong: this block continues a record.
                    let mut sink = BlockSink::new(carry.pending_start_line(), Default::default());
                    carry.scan(&job.buf[job.start..job.end], &mut sink);
                    let (dups, _, found, block_rows) = sink.into_dups(0);
                    for f in found {
                        findings.push(f).map_err(spill_err)?;
                    }
                    rows += block_rows;
                    blocks.push(dups);
                }
                base = carry.line() - 1;
                let _ = free_tx.send(job.buf);
                next += 1;
            }
        }
        let mut sink = BlockSink::new(carry.pending_start_line(), Default::default());
        carry.finish(&mut sink);
        let (dups, _, found, block_rows) = sink.into_dups(0);
        for f in found {
            findings.push(f).map_err(spill_err)?;
        }
        rows += block_rows;
        blocks.push(dups);
        drop(free_tx);
        Ok(PipelineOut {
            rows,
            bytes,
            blocks,
        })
    })
}

/// Finds repeated LINE IDs, one partition per thread at a time.
/// Remembers the first line of `key`; for a repeat, returns (first line, whether
/// its user_id differs from the first one's).
#[inline]
fn seen_before<K: std::hash::Hash + Eq, U: Copy + PartialEq>(
    seen: &mut HashMap<K, (U, u64), FixedState>,
    key: K,
    uid: U,
    line: u64,
) -> Option<(u64, bool)> {
    match seen.entry(key) {
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert((uid, line));
            None
        }
        std::collections::hash_map::Entry::Occupied(o) => {
            let (first_uid, first) = *o.get();
            Some((first, first_uid != uid))
        }
    }
}

fn duplicate_pass(
    blocks: &[BlockDups],
    threads: usize,
    collect: bool,
) -> (Vec<Finding>, Vec<IdKey>) {
    struct Hit {
        line: u64,
        first: u64,
        conflict: bool,
        key: IdKey,
    }
    let threads = threads.clamp(1, PARTITIONS);
    let mut hits: Vec<Hit> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut hits = Vec::new();
                    let mut p = t;
                    while p < PARTITIONS {
                        let n: usize = blocks.iter().map(|b| b.part(p).len()).sum();
                        let mut map: HashMap<[u8; 16], ([u8; 8], u64), FixedState> =
                            HashMap::with_capacity_and_hasher(n, FixedState::with_seed(HASH_SEED));
                        for b in blocks {
                            for r in b.part(p) {
                                let line = b.base + r.line as u64;
                                if let Some((first, conflict)) =
                                    seen_before(&mut map, r.key, r.uid, line)
                                {
                                    hits.push(Hit {
                                        line,
                                        first,
                                        conflict,
                                        key: IdKey::Hex(r.key),
                                    });
                                }
                            }
                        }
                        p += threads;
                    }
                    hits
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut odd: HashMap<[u8; 33], (u64, u64), FixedState> =
        HashMap::with_hasher(FixedState::with_seed(HASH_SEED));
    for b in blocks {
        for r in &b.odd {
            let line = b.base + r.line;
            if let Some((first, conflict)) = seen_before(&mut odd, r.key, r.uid, line) {
                hits.push(Hit {
                    line,
                    first,
                    conflict,
                    key: IdKey::Other(r.key),
                });
            }
        }
    }
    hits.sort_unstable_by_key(|h| h.line);
    let mut keys: Vec<IdKey> = if collect {
        hits.iter().filter(|h| h.conflict).map(|h| h.key).collect()
    } else {
        Vec::new()
    };
    keys.sort_unstable();
    keys.dedup();
    let findings = hits
        .into_iter()
        .map(|h| {
            let (rule, message) = if h.conflict {
                (
                    Rule::LineUserIdConflict,
                    format!("line {} has this LINE ID with a different user_id", h.first),
                )
            } else {
                (
                    Rule::LineUserIdDuplicate,
                    format!("repeats line {}", h.first),
                )
            };
            Finding::new(
                h.line,
                Some(Column::LineUserId),
                rule,
                h.key.to_id_string(),
                message,
            )
        })
        .collect();
    (findings, keys)
}

/// Writes `--errors-out`: the spilled scan findings merged with the late ones.
fn write_errors_out(
    path: &Path,
    spill: Option<BufWriter<File>>,
    late: &[Finding],
) -> Result<(), Error> {
    let werr = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    // Written in place, not through a rename: callers (the emulator) may hold
    // the file open. It is never an input: `validate_file` refuses that.
    let out = File::create(path).map_err(werr)?;
    let mut out = BufWriter::with_capacity(1 << 20, out);
    out.write_all(ERRORS_CSV_HEADER.as_bytes()).map_err(werr)?;
    let mut late = late.iter().peekable();
    if let Some(spill) = spill {
        let mut file = spill.into_inner().map_err(|e| werr(e.into_error()))?;
        file.rewind().map_err(werr)?;
        let mut lines = BufReader::with_capacity(1 << 20, file);
        let mut row = String::new();
        loop {
            row.clear();
            if lines.read_line(&mut row).map_err(werr)? == 0 {
                break;
            }
            let line: u64 = row
                .split(',')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            while let Some(f) = late.next_if(|f| f.line < line) {
                out.write_all(f.csv_row().as_bytes()).map_err(werr)?;
            }
            out.write_all(row.as_bytes()).map_err(werr)?;
        }
    }
    for f in late {
        out.write_all(f.csv_row().as_bytes()).map_err(werr)?;
    }
    out.flush().map_err(werr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "U4af4980629a1b2c3d4e5f60718293a4b";

    fn write(dir: &tempfile::TempDir, name: &str, data: &[u8]) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                format!(
                    "U{:032x}",
                    (i as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
                )
            })
            .collect()
    }

    #[test]
    fn small_blocks_give_the_same_answer() {
        let dir = tempfile::tempdir().unwrap();
        let mut data = String::from("line_user_id,user_id\n");
        for (i, id) in ids(300).iter().enumerate() {
            match i % 50 {
                7 => data.push_str(&format!("{id},\"multi\nline\"\n")),
                9 => data.push_str(&format!("{id},{}\n", "x".repeat(300))),
                11 => data.push_str(&format!("{ID},dup\n")),
                _ => data.push_str(&format!("{id},user{i}\n")),
            }
        }
        let p = write(&dir, "a.csv", data.as_bytes());
        let big = validate_file(&p, &ValidateOptions::default()).unwrap();
        for (bs, threads) in [(64, 1), (97, 2), (500, 3), (4096, 2)] {
            let small = validate_file(
                &p,
                &ValidateOptions {
                    block_size: bs,
                    threads,
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(small.findings, big.findings, "block size {bs}");
            assert_eq!(small.rows, big.rows);
        }
        assert_eq!(big.rows, 300);
        assert!(big.counts.contains_key("line_user_id.duplicate"));
    }

    #[test]
    fn errors_out_is_line_ordered() {
        let dir = tempfile::tempdir().unwrap();
        let data = format!("line_user_id,user_id\n{ID},a\nbad,a\n{ID},a\n{ID},b\nbad2,x\n");
        let p = write(&dir, "a.csv", data.as_bytes());
        let out = dir.path().join("errors.csv");
        let r = validate_file(
            &p,
            &ValidateOptions {
                errors_out: Some(out.clone()),
                ..Default::default()
            },
        )
        .unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let lines: Vec<u64> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(lines, vec![3, 4, 5, 6]);
        assert!(text.contains("line_user_id.conflict,error"));
        assert_eq!(r.errors, 3);
        assert_eq!(r.warnings, 1);
    }

    #[test]
    fn file_level_rules() {
        let dir = tempfile::tempdir().unwrap();
        let r = validate_file(&write(&dir, "e.csv", b""), &Default::default()).unwrap();
        assert_eq!(r.counts.get("file.empty"), Some(&1));
        let r = validate_file(
            &write(&dir, "h.csv", b"line_user_id\n"),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(r.counts.get("file.no_rows"), Some(&1));
        assert!(r.valid);
        let r = validate_file(
            &write(
                &dir,
                "b.csv",
                format!("\u{feff}line_user_id\n{ID}\n").as_bytes(),
            ),
            &Default::default(),
        )
        .unwrap();
        assert_eq!(r.counts.get("encoding.bom"), Some(&1));
        assert_eq!(r.format, Some(Format::Two));
        assert_eq!(r.errors, 1);
        assert!(matches!(
            validate_file(&dir.path().join("missing.csv"), &Default::default()),
            Err(Error::Read { .. })
        ));
    }

    #[test]
    fn over_long_header_is_skipped_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let data = format!("{}\n{ID}\n", "h".repeat(1000));
        let r = validate_file(
            &write(&dir, "l.csv", data.as_bytes()),
            &ValidateOptions {
                block_size: 100,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r.counts.get("header.invalid"), Some(&1));
        assert_eq!(r.rows, 1);
        assert_eq!(r.errors, 1);
        // Its line ending is the real one, not that of the part in the first block
        // (found by the fuzzer).
        for cut in [98usize, 99, 100, 101] {
            let data = format!("{}\r\n{ID}\r\n", "h".repeat(cut));
            let r = validate_file(
                &write(&dir, "crlf.csv", data.as_bytes()),
                &ValidateOptions {
                    block_size: 100,
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(r.findings.len(), 1, "{cut}: {:?}", r.findings);
            assert_eq!(r.rows, 1);
        }
    }
}
