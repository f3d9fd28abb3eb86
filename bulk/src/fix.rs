//! `csv fix`: makes an importable file out of a nearly-right one without
//! changing any value. It strips the BOM, writes LF line endings, drops blank
//! lines and exact duplicate rows, moves every row that breaks a rule to a
//! rejects file (with the line and the rules), and splits the output into
//! parts under the size limit, each with the header.
//!
//! Two passes: the first (the validator) finds LINE IDs that appear with
//! different user_ids; every row of such an ID is rejected, since which
//! user_id is right cannot be known. The second writes.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use foldhash::fast::FixedState;
use serde::Serialize;

use crate::convert::{prepare, rereadable, Conversion, ConvertOptions};
use crate::outputs::{check_distinct, AtomicFile, Named, Pending};
use crate::rules::{Finding, Rule, Severity, MAX_FILE_BYTES};
use crate::scan::{stream_records, Ending, Format, FormatChoice, IdKey, Record, ScanConfig, Sink};
use crate::validate::{validate_file, ValidateOptions};
use crate::Error;

/// The smallest part size: a header and the longest valid row fit many times.
pub const MIN_SPLIT_BYTES: u64 = 4096;

#[derive(Debug, Clone)]
pub struct FixOptions {
    pub out: PathBuf,
    /// Default: OUT with `.csv` replaced by `.rejects.csv`.
    pub rejects: Option<PathBuf>,
    /// Largest part, header included (default 500,000,000 bytes).
    pub split_bytes: u64,
    pub format: FormatChoice,
    /// Transcoding and column mapping before the fix.
    pub convert: ConvertOptions,
}

impl FixOptions {
    pub fn new(out: PathBuf) -> Self {
        FixOptions {
            out,
            rejects: None,
            split_bytes: MAX_FILE_BYTES,
            format: FormatChoice::Auto,
            convert: ConvertOptions::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Part {
    pub path: PathBuf,
    pub bytes: u64,
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FixReport {
    pub input: PathBuf,
    pub format: Format,
    pub rows_read: u64,
    pub rows_written: u64,
    pub duplicates_dropped: u64,
    pub blank_lines_dropped: u64,
    pub line_endings_normalised: u64,
    pub bom_stripped: bool,
    pub rejected: u64,
    pub rejects_file: Option<PathBuf>,
    /// Rejected rows per rule.
    pub rejected_by_rule: BTreeMap<String, u64>,
    /// Warnings the validator gave the input (rows kept), per rule.
    pub warnings_by_rule: BTreeMap<String, u64>,
    pub parts: Vec<Part>,
    /// The first stage, when it ran (`--from-encoding`, column mapping, or an
    /// input that can be read only once).
    pub conversion: Option<Conversion>,
}

impl FixReport {
    pub fn summary(&self) -> String {
        let mut s = String::new();
        if let Some(c) = &self.conversion {
            if let Some(enc) = c.from_encoding {
                s.push_str(&format!(
                    "transcoded {:.1} MB from {} to UTF-8 in {:.2} s ({:.0} MB/s)\n",
                    c.bytes_in as f64 / 1e6,
                    enc.name(),
                    c.elapsed_s,
                    c.mb_per_s
                ));
            }
            if !c.columns.is_empty() {
                s.push_str(&format!("columns: {}\n", c.columns.join(", ")));
            }
        }
        for p in &self.parts {
            s.push_str(&format!(
                "wrote {} (Format {}, {} rows, {:.1} MB)\n",
                p.path.display(),
                self.format.number(),
                p.rows,
                p.bytes as f64 / 1e6
            ));
        }
        let mut fixed = Vec::new();
        if self.bom_stripped {
            fixed.push("stripped the byte order mark".to_string());
        }
        if self.line_endings_normalised > 0 {
            fixed.push(format!(
                "normalised {} line ending(s) to LF",
                self.line_endings_normalised
            ));
        }
        if self.duplicates_dropped > 0 {
            fixed.push(format!(
                "dropped {} exact duplicate row(s)",
                self.duplicates_dropped
            ));
        }
        if self.blank_lines_dropped > 0 {
            fixed.push(format!(
                "dropped {} blank line(s)",
                self.blank_lines_dropped
            ));
        }
        if !fixed.is_empty() {
            s.push_str(&fixed.join("; "));
            s.push('\n');
        }
        match &self.rejects_file {
            Some(path) if self.rejected > 0 => {
                let by: Vec<String> = self
                    .rejected_by_rule
                    .iter()
                    .map(|(r, n)| format!("{r}: {n}"))
                    .collect();
                s.push_str(&format!(
                    "REJECTED {} row(s) that break a rule → {} ({}); they are not in the output\n",
                    self.rejected,
                    path.display(),
                    by.join(", ")
                ));
            }
            _ => s.push_str("no rows rejected\n"),
        }
        s
    }
}

/// `fixed.csv` → `fixed`, so parts are `fixed.part-001.csv` and rejects `fixed.rejects.csv`.
fn stem_path(out: &Path) -> PathBuf {
    match out.to_str().and_then(|s| s.strip_suffix(".csv")) {
        Some(stem) => PathBuf::from(stem),
        None => out.to_path_buf(),
    }
}

fn with_suffix(stem: &Path, suffix: &str) -> PathBuf {
    let mut s = stem.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Output parts, each under the limit and each starting with the header.
/// They are renamed into place only when the whole input has been read.
struct Parts {
    stem: PathBuf,
    limit: u64,
    header: Vec<u8>,
    current: Option<(AtomicFile, Part)>,
    done: Vec<(Pending, Part)>,
}

impl Parts {
    fn open_next(&mut self) -> Result<(), Error> {
        self.close()?;
        let path = part_path(&self.stem, self.done.len() + 1);
        let mut w = AtomicFile::create(&path)?;
        w.write_all(&self.header)?;
        self.current = Some((
            w,
            Part {
                path,
                bytes: self.header.len() as u64,
                rows: 0,
            },
        ));
        Ok(())
    }

    fn write_row(&mut self, raw: &[u8]) -> Result<(), Error> {
        let need = raw.len() as u64 + 1;
        let full = match &self.current {
            None => true,
            Some((_, p)) => p.rows > 0 && p.bytes + need > self.limit,
        };
        if full {
            self.open_next()?;
        }
        if let Some((w, p)) = &mut self.current {
            w.write_all(raw)?;
            w.write_all(b"\n")?;
            p.bytes += need;
            p.rows += 1;
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), Error> {
        if let Some((w, p)) = self.current.take() {
            self.done.push((w.close()?, p));
        }
        Ok(())
    }

    /// Renames the parts into place; a single part becomes OUT itself.
    fn finish(mut self, out: &Path) -> Result<Vec<Part>, Error> {
        if self.current.is_none() && self.done.is_empty() {
            self.open_next()?; // header only
        }
        self.close()?;
        let single = self.done.len() == 1;
        let mut parts = Vec::with_capacity(self.done.len());
        for (pending, mut p) in self.done {
            if single {
                p.path = out.to_path_buf();
            }
            pending.persist(&p.path)?;
            parts.push(p);
        }
        Ok(parts)
    }
}

fn part_path(stem: &Path, n: usize) -> PathBuf {
    with_suffix(stem, &format!(".part-{n:03}.csv"))
}

/// If `p` is named like a part (`….part-NNN.csv`), the part of `stem` with that number.
fn part_twin(stem: &Path, p: &Path) -> Option<PathBuf> {
    let name = p.file_name()?.to_str()?;
    let digits = name.strip_suffix(".csv")?.rsplit_once(".part-")?.1;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(with_suffix(stem, &format!(".part-{digits}.csv")))
}

struct Rejects {
    path: PathBuf,
    w: Option<AtomicFile>,
}

impl Rejects {
    fn write(
        &mut self,
        line: u64,
        rules: &[Rule],
        raw: &[u8],
        truncated: bool,
    ) -> Result<(), Error> {
        if self.w.is_none() {
            let mut w = AtomicFile::create(&self.path)?;
            w.write_all(b"line,rules,record\n")?;
            self.w = Some(w);
        }
        if let Some(w) = &mut self.w {
            let rules: Vec<&str> = rules.iter().map(|r| r.id()).collect();
            let mut row = format!("{line},{},\"", rules.join(";")).into_bytes();
            // The record exactly as it was (any bytes), quoted.
            for &b in raw {
                if b == b'"' {
                    row.push(b'"');
                }
                row.push(b);
            }
            if truncated {
                row.extend_from_slice("…[cut at 64 KiB]".as_bytes());
            }
            row.extend_from_slice(b"\"\n");
            w.write_all(&row)?;
        }
        Ok(())
    }

    fn finish(self) -> Result<bool, Error> {
        match self.w {
            Some(w) => {
                w.commit()?;
                Ok(true)
            }
            None => {
                // A rejects file left from an earlier run would mislead.
                if self.path.exists() {
                    let _ = std::fs::remove_file(&self.path);
                }
                Ok(false)
            }
        }
    }
}

struct FixSink {
    conflicted: HashSet<IdKey, FixedState>,
    /// The validator's duplicate lines (sorted), and how far the writer got:
    /// no hash set of every ID here, which cost more than the rest of the pass.
    duplicate_lines: Vec<u64>,
    next_duplicate: usize,
    parts: Parts,
    rejects: Rejects,
    pending: Vec<Rule>,
    rows_read: u64,
    rows_written: u64,
    duplicates: u64,
    blank: u64,
    line_endings: u64,
    rejected: u64,
    rejected_by_rule: BTreeMap<String, u64>,
    error: Option<Error>,
}

impl FixSink {
    /// Records arrive in line order, as the duplicate lines are.
    fn is_duplicate(&mut self, line: u64) -> bool {
        while self
            .duplicate_lines
            .get(self.next_duplicate)
            .is_some_and(|&d| d < line)
        {
            self.next_duplicate += 1;
        }
        self.duplicate_lines.get(self.next_duplicate) == Some(&line)
    }

    fn handle(&mut self, r: &Record<'_>) -> Result<(), Error> {
        if r.blank {
            self.blank += 1;
            return Ok(());
        }
        self.rows_read += 1;
        let mut rules = std::mem::take(&mut self.pending);
        if rules.is_empty() {
            match r.key {
                Some(k) if self.conflicted.contains(&k) => rules.push(Rule::LineUserIdConflict),
                Some(_) => {
                    if !self.is_duplicate(r.line) {
                        self.rows_written += 1;
                        return self.parts.write_row(r.raw);
                    }
                    self.duplicates += 1;
                    return Ok(());
                }
                None => rules.push(Rule::RowColumns), // unreachable: no key means an error was reported
            }
        }
        self.rejected += 1;
        for rule in &rules {
            *self
                .rejected_by_rule
                .entry(rule.id().to_string())
                .or_insert(0) += 1;
        }
        self.rejects.write(r.line, &rules, r.raw, r.raw_truncated)
    }
}

impl Sink for FixSink {
    fn finding(&mut self, f: Finding) {
        if f.rule == Rule::LineEndingInconsistent {
            self.line_endings += 1;
        }
        if f.severity == Severity::Error
            && !f.rule.fixed_by_fix()
            && !self.pending.contains(&f.rule)
        {
            self.pending.push(f.rule);
        }
    }

    fn record(&mut self, r: &Record<'_>) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.handle(r) {
            self.error = Some(e);
        }
    }
}

/// No output may be the input or another output, parts included
/// (`csv fix o.part-001.csv -o o.csv` would overwrite its input with part 1).
fn check_outputs(input: &Path, out: &Path, stem: &Path, rejects: &Path) -> Result<(), Error> {
    let inputs = [Named::new("input", input)];
    check_distinct(
        &inputs,
        &[Named::new("-o", out), Named::new("--rejects", rejects)],
    )?;
    for (flag, p) in [("input", input), ("--rejects", rejects)] {
        if let Some(twin) = part_twin(stem, p) {
            let part = [Named::new("part", &twin)];
            let named = [Named::new(flag, p)];
            let r = if flag == "input" {
                check_distinct(&named, &part)
            } else {
                check_distinct(&[], &[Named::new(flag, p), part[0]])
            };
            r.map_err(|_| {
                Error::Usage(format!(
                    "{flag} {} is where `-o {}` puts a part when it splits; it would be overwritten: write the output elsewhere",
                    p.display(),
                    out.display()
                ))
            })?;
        }
    }
    Ok(())
}

/// Fixes `input` into `opts.out` (or its parts).
pub fn fix_file(input: &Path, opts: &FixOptions) -> Result<FixReport, Error> {
    if opts.split_bytes < MIN_SPLIT_BYTES || opts.split_bytes > MAX_FILE_BYTES {
        return Err(Error::Usage(format!(
            "the part size must be between {MIN_SPLIT_BYTES} bytes and 500 MB (Repro's limit); got {} bytes",
            opts.split_bytes
        )));
    }
    let stem = stem_path(&opts.out);
    let rejects_path = opts
        .rejects
        .clone()
        .unwrap_or_else(|| with_suffix(&stem, ".rejects.csv"));
    check_outputs(input, &opts.out, &stem, &rejects_path)?;

    // Exports to convert, and inputs that can be read only once, go through a
    // temporary UTF-8 copy beside the output first (the fixer reads twice).
    let needs_copy = opts.convert.from_encoding.is_some()
        || opts.convert.columns.is_some()
        || !rereadable(input);
    let prepared = if needs_copy {
        let dir = match opts.out.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Some(prepare(input, &dir, &opts.convert)?)
    } else {
        None
    };
    let source: &Path = match &prepared {
        Some(p) => &p.path,
        None => input,
    };

    let mut check = validate_file(
        source,
        &ValidateOptions {
            format: opts.format,
            sample: 0,
            collect_conflicts: true,
            scan_oversized: true,
            ..Default::default()
        },
    )?;
    let Some(format) = check.format else {
        let reason = if check.counts.contains_key(Rule::FileEmpty.id()) {
            "the file is empty".to_string()
        } else {
            format!(
                "line 1 is not a valid header: it must be exactly `{}` or `{}` (fix it by hand; `csv fix` never guesses)",
                Format::One.header(),
                Format::Two.header()
            )
        };
        return Err(Error::Input {
            path: input.to_path_buf(),
            reason,
        });
    };

    let read_err = |source| Error::Read {
        path: input.to_path_buf(),
        source,
    };
    let file = File::open(source).map_err(read_err)?;
    let mut sink = FixSink {
        conflicted: check.conflicted.iter().copied().collect::<HashSet<_, _>>(),
        duplicate_lines: std::mem::take(&mut check.duplicate_lines),
        next_duplicate: 0,
        parts: Parts {
            stem: stem.clone(),
            limit: opts.split_bytes,
            header: format!("{}\n", format.header()).into_bytes(),
            current: None,
            done: Vec::new(),
        },
        rejects: Rejects {
            path: rejects_path.clone(),
            w: None,
        },
        pending: Vec::new(),
        rows_read: 0,
        rows_written: 0,
        duplicates: 0,
        blank: 0,
        line_endings: 0,
        rejected: 0,
        rejected_by_rule: BTreeMap::new(),
        error: None,
    };
    // The header was validated above: it only sets the line ending rows must match.
    let streamed = stream_records(
        file,
        &mut sink,
        |header, _| {
            let ending = if header.ends_with(b"\r") {
                Ending::CrLf
            } else {
                Ending::Lf
            };
            let mut cfg = ScanConfig::new(format, Some(ending));
            cfg.keep_raw = true;
            Ok((cfg, ()))
        },
        |sink| sink.error.take(),
        read_err,
    )?;
    let bom_stripped = streamed.is_some_and(|s| s.bom);
    let parts = sink.parts.finish(&opts.out)?;
    let wrote_rejects = sink.rejects.finish()?;
    Ok(FixReport {
        input: input.to_path_buf(),
        format,
        rows_read: sink.rows_read,
        rows_written: sink.rows_written,
        duplicates_dropped: sink.duplicates,
        blank_lines_dropped: sink.blank,
        line_endings_normalised: sink.line_endings,
        bom_stripped,
        rejected: sink.rejected,
        rejects_file: wrote_rejects.then_some(rejects_path),
        rejected_by_rule: sink.rejected_by_rule,
        warnings_by_rule: check
            .counts
            .iter()
            .filter(|(r, _)| Rule::from_id(r).is_some_and(|r| r.severity() == Severity::Warning))
            .map(|(r, n)| (r.clone(), *n))
            .collect(),
        parts,
        conversion: prepared.map(|p| p.report),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "U4af4980629a1b2c3d4e5f60718293a4b";
    const B: &str = "U00000000000000000000000000000001";
    const C: &str = "U00000000000000000000000000000002";

    #[test]
    fn fixes_without_changing_values() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        let data = format!(
            "\u{feff}line_user_id,user_id\r\n{A},\"a,b\"\r\n{A},\"a,b\"\r\n\r\n{B},x\n{C},one\r\n{C},two\r\nbad,y\r\n"
        );
        std::fs::write(&input, data).unwrap();
        let out = dir.path().join("fixed.csv");
        let r = fix_file(&input, &FixOptions::new(out.clone())).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            format!("line_user_id,user_id\n{A},\"a,b\"\n{B},x\n")
        );
        assert!(r.bom_stripped);
        assert_eq!(r.duplicates_dropped, 1);
        assert_eq!(r.blank_lines_dropped, 1);
        assert_eq!(r.line_endings_normalised, 1);
        assert_eq!(r.rejected, 3);
        let rejects = std::fs::read_to_string(dir.path().join("fixed.rejects.csv")).unwrap();
        assert_eq!(
            rejects,
            format!("line,rules,record\n6,line_user_id.conflict,\"{C},one\"\n7,line_user_id.conflict,\"{C},two\"\n8,line_user_id.invalid,\"bad,y\"\n")
        );
        let check = validate_file(&out, &Default::default()).unwrap();
        assert!(check.valid && check.warnings == 0, "{check:?}");
    }

    #[test]
    fn drops_every_repeat_including_odd_ids() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        let odd = "U4AF4980629A1B2C3D4E5F60718293A4B"; // passes the rule, not lowercase hex
        let data = format!("line_user_id\n{A}\n{odd}\n{A}\n{odd}\n{B}\n{A}\n\n{odd}\n");
        std::fs::write(&input, data).unwrap();
        let out = dir.path().join("o.csv");
        let r = fix_file(&input, &FixOptions::new(out.clone())).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            format!("line_user_id\n{A}\n{odd}\n{B}\n")
        );
        assert_eq!(
            (r.duplicates_dropped, r.rows_written, r.rejected),
            (4, 3, 0)
        );
    }

    #[test]
    fn splits_into_parts_with_headers() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        let mut data = String::from("line_user_id\n");
        for i in 0..1000u32 {
            data.push_str(&format!("U{i:032x}\n"));
        }
        std::fs::write(&input, &data).unwrap();
        let out = dir.path().join("out.csv");
        let mut opts = FixOptions::new(out.clone());
        opts.split_bytes = 10_000;
        let r = fix_file(&input, &opts).unwrap();
        assert_eq!(r.parts.len(), 4);
        let mut joined = String::from("line_user_id\n");
        for p in &r.parts {
            let text = std::fs::read_to_string(&p.path).unwrap();
            assert!(text.len() <= 10_000);
            assert!(text.starts_with("line_user_id\n"));
            joined.push_str(&text["line_user_id\n".len()..]);
        }
        assert_eq!(joined, data);
        assert!(!out.exists());
        assert!(r.parts[0].path.ends_with("out.part-001.csv"));
    }

    #[test]
    fn refuses_a_bad_header_and_the_input_as_output() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(&input, format!("id\n{A}\n")).unwrap();
        let e = fix_file(&input, &FixOptions::new(dir.path().join("o.csv"))).unwrap_err();
        assert_eq!(e.exit_code(), 1, "{e}");
        let e = fix_file(&input, &FixOptions::new(input.clone())).unwrap_err();
        assert!(matches!(e, Error::Usage(_)));
    }
}
