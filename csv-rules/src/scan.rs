//! The byte-level CSV scanner behind `csv validate`, `csv fix` and `reconcile`.
//!
//! Three paths, fastest first, all ending in the same rule checks:
//! 1. a row that is exactly `U<32 lowercase hex>,<1..=191 plain ASCII>` + the
//!    header's line ending is accepted straight away (the common case);
//! 2. a complete line without any `"` is split on commas and checked;
//! 3. anything else (quotes, a line cut by a block boundary) goes through an
//!    RFC 4180 state machine that keeps its state between calls, so a quoted
//!    field may span lines and blocks. It never buffers more than a small
//!    prefix of a field: memory stays constant whatever the input.
//!
//! Line numbers are physical lines; a record's findings carry the line where
//! the record starts.

use memchr::memchr;
use repro_line_core::validate::{LINE_USER_ID_LEN, MAX_USER_ID_CHARS};
use serde::Serialize;

use crate::rules::{display_value, Column, Finding, Rule};

/// A valid `user_id` is at most 191 × 4 bytes; keeping this much of a field
/// means every valid value is kept whole.
const FIELD_CAP: usize = 800;
/// How much of a record's raw text is kept for `csv fix` rejects (and, without
/// `keep_raw`, for the value shown by `row.columns`).
const RAW_CAP: usize = 64 * 1024;
const RAW_PREVIEW: usize = 256;

pub const HEADER_FORMAT_1: &str = "line_user_id,user_id";
pub const HEADER_FORMAT_2: &str = "line_user_id";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Format {
    /// `line_user_id,user_id`
    #[serde(rename = "1")]
    One,
    /// `line_user_id`
    #[serde(rename = "2")]
    Two,
}

impl Format {
    pub fn fields(self) -> usize {
        match self {
            Format::One => 2,
            Format::Two => 1,
        }
    }
    pub fn header(self) -> &'static str {
        match self {
            Format::One => HEADER_FORMAT_1,
            Format::Two => HEADER_FORMAT_2,
        }
    }
    pub fn number(self) -> u8 {
        match self {
            Format::One => 1,
            Format::Two => 2,
        }
    }
}

/// Which header `csv validate` should demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FormatChoice {
    #[default]
    Auto,
    One,
    Two,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Ending {
    #[serde(rename = "LF")]
    Lf,
    #[serde(rename = "CRLF")]
    CrLf,
}

impl Ending {
    pub fn name(self) -> &'static str {
        match self {
            Ending::Lf => "LF",
            Ending::CrLf => "CRLF",
        }
    }
}

/// A valid LINE user ID as a hash key: the 16 bytes behind 32 lowercase hex
/// digits (the form LINE issues), or the 33 bytes as written otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdKey {
    Hex([u8; 16]),
    Other([u8; LINE_USER_ID_LEN]),
}

impl IdKey {
    /// The key for a string that already passed the `line_user_id` rule.
    pub fn from_valid(id: &[u8]) -> Option<IdKey> {
        if id.len() != LINE_USER_ID_LEN || id[0] != b'U' {
            return None;
        }
        if let Some(k) = hex16(&id[1..]) {
            return Some(IdKey::Hex(k));
        }
        let mut a = [0u8; LINE_USER_ID_LEN];
        a.copy_from_slice(id);
        Some(IdKey::Other(a))
    }

    /// The ID as written in the file.
    pub fn to_id_string(&self) -> String {
        match self {
            IdKey::Hex(k) => {
                let mut s = String::with_capacity(LINE_USER_ID_LEN);
                s.push('U');
                for b in k {
                    s.push(HEX_DIGITS[(b >> 4) as usize] as char);
                    s.push(HEX_DIGITS[(b & 15) as usize] as char);
                }
                s
            }
            IdKey::Other(a) => String::from_utf8_lossy(a).into_owned(),
        }
    }

    /// Appends the ID as written in the file.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            IdKey::Hex(k) => {
                out.push(b'U');
                for b in k {
                    out.push(HEX_DIGITS[(b >> 4) as usize]);
                    out.push(HEX_DIGITS[(b & 15) as usize]);
                }
            }
            IdKey::Other(a) => out.extend_from_slice(a),
        }
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex digit → value, anything else → 0xFF (the SWAR decoder's reference).
#[cfg(test)]
static HEX: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Bytes a fast-path `user_id` may hold: printable ASCII but `,` and `"`.
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x7F {
        t[b] = b != b'"' as usize && b != b',' as usize;
        b += 1;
    }
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Per byte of `x` (all bytes < 0x80): 0x80 where `lo <= byte <= hi`.
#[inline(always)]
fn bytes_between(x: u64, lo: u8, hi: u8) -> u64 {
    let ge = x.wrapping_add(ONES * (0x80 - lo as u64));
    let le = (ONES * (0x80 + hi as u64)).wrapping_sub(x);
    ge & le & HIGH
}

/// 8 lowercase hex digits (little-endian load) → 4 bytes, 8 at a time.
#[inline(always)]
fn hex8(x: u64) -> Option<u32> {
    if x & HIGH != 0 {
        return None;
    }
    let digit = bytes_between(x, b'0', b'9');
    let lower = bytes_between(x, b'a', b'f');
    if (digit | lower) != HIGH {
        return None;
    }
    // '0'..'9' → low nibble; 'a'..'f' → low nibble + 9.
    let nib = (x & (ONES * 0x0F)) + (lower >> 7) * 9;
    // Byte i holds the nibble of digit i; digit 2k is the high half of byte k.
    let pairs = ((nib & 0x000F_000F_000F_000F) << 4) | ((nib & 0x0F00_0F00_0F00_0F00) >> 8);
    let packed = (pairs | (pairs >> 8)) & 0x0000_FFFF_0000_FFFF;
    Some(((packed | (packed >> 16)) & 0xFFFF_FFFF) as u32)
}

/// 32 lowercase hex digits → 16 bytes.
#[inline]
pub fn hex16(s: &[u8]) -> Option<[u8; 16]> {
    let s: &[u8; 32] = s.try_into().ok()?;
    let mut out = [0u8; 16];
    for (i, chunk) in s.chunks_exact(8).enumerate() {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        let v = hex8(u64::from_le_bytes(w))?;
        out[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    Some(out)
}

/// Length of the run of [`PLAIN`] bytes at the start of `s`, 8 bytes at a time.
#[inline]
fn plain_run(s: &[u8]) -> usize {
    let mut i = 0;
    while i + 8 <= s.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[i..i + 8]);
        let x = u64::from_le_bytes(w);
        // Flags are exact for the lowest flagged byte (borrows only run upwards).
        let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        let bad = (x & HIGH)
            | (x.wrapping_sub(ONES * 0x20) & !x & HIGH)
            | has_zero(x ^ (ONES * b',' as u64))
            | has_zero(x ^ (ONES * b'"' as u64))
            | has_zero(x ^ (ONES * 0x7F));
        if bad != 0 {
            return i + (bad.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < s.len() && PLAIN[s[i] as usize] {
        i += 1;
    }
    i
}

/// One complete record, handed to the [`Sink`] after its findings.
#[derive(Debug)]
pub struct Record<'a> {
    /// Line where the record starts.
    pub line: u64,
    /// The record's bytes without its line ending (cut at 64 KiB, see
    /// `raw_truncated`; only a short prefix unless `keep_raw`).
    pub raw: &'a [u8],
    pub raw_truncated: bool,
    /// Set when the record is valid apart from warnings and its line ending:
    /// the LINE ID it registers.
    pub key: Option<IdKey>,
    /// The decoded `user_id` (empty for Format 2); meaningful when `key` is set.
    pub user_id: &'a [u8],
    /// An empty line.
    pub blank: bool,
}

/// Where the scanner reports. `finding` calls for a record come before its
/// `record` call.
pub trait Sink {
    fn finding(&mut self, f: Finding);
    fn record(&mut self, r: &Record<'_>);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteProblem {
    StrayQuote,
    TextAfterClose,
    Unterminated,
}

impl QuoteProblem {
    fn message(self) -> &'static str {
        match self {
            QuoteProblem::StrayQuote => {
                "a quote inside an unquoted field (quote the whole field and double the quote)"
            }
            QuoteProblem::TextAfterClose => "text after a closing quote",
            QuoteProblem::Unterminated => {
                "a quoted field that never closes (it runs to the end of the file)"
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScanConfig {
    pub format: Format,
    /// The header's line ending; rows must match it.
    pub ending: Option<Ending>,
    /// Keep up to 64 KiB of each record's raw text (for `csv fix`).
    pub keep_raw: bool,
    /// Use the fast paths (false only in tests, to compare against the state machine).
    pub fast: bool,
}

impl ScanConfig {
    pub fn new(format: Format, ending: Option<Ending>) -> Self {
        ScanConfig {
            format,
            ending,
            keep_raw: false,
            fast: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    RecordStart,
    InRecord,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum FState {
    #[default]
    Start,
    Unquoted,
    Quoted,
    /// A `"` inside a quoted field: the next byte says whether it closed it.
    QuoteSeen,
    /// Text after a closing quote (already reported); read like unquoted text.
    AfterClose,
}

/// Incremental UTF-8 validation with character counting and control-character
/// detection, for fields that arrive in pieces.
#[derive(Debug, Clone, Copy, Default)]
struct Utf8 {
    need: u8,
    lo: u8,
    hi: u8,
    cp: u32,
    bad: bool,
}

#[derive(Debug, Clone, Default)]
struct FieldAcc {
    buf: Vec<u8>,
    len: u64,
    utf8: Utf8,
    chars: u64,
    control: Option<char>,
    quoted: bool,
    quote_problem: Option<QuoteProblem>,
}

impl FieldAcc {
    #[inline]
    fn push(&mut self, b: u8) {
        self.len += 1;
        if self.buf.len() < FIELD_CAP {
            self.buf.push(b);
        }
        let u = &mut self.utf8;
        if u.bad {
            return;
        }
        if u.need == 0 {
            match b {
                0x00..=0x7F => self.char_done(b as u32),
                0xC2..=0xDF => {
                    *u = Utf8 {
                        need: 1,
                        lo: 0x80,
                        hi: 0xBF,
                        cp: (b & 0x1F) as u32,
                        bad: false,
                    }
                }
                0xE0 => {
                    *u = Utf8 {
                        need: 2,
                        lo: 0xA0,
                        hi: 0xBF,
                        cp: (b & 0x0F) as u32,
                        bad: false,
                    }
                }
                0xE1..=0xEC | 0xEE..=0xEF => {
                    *u = Utf8 {
                        need: 2,
                        lo: 0x80,
                        hi: 0xBF,
                        cp: (b & 0x0F) as u32,
                        bad: false,
                    }
                }
                0xED => {
                    *u = Utf8 {
                        need: 2,
                        lo: 0x80,
                        hi: 0x9F,
                        cp: (b & 0x0F) as u32,
                        bad: false,
                    }
                }
                0xF0 => {
                    *u = Utf8 {
                        need: 3,
                        lo: 0x90,
                        hi: 0xBF,
                        cp: (b & 0x07) as u32,
                        bad: false,
                    }
                }
                0xF1..=0xF3 => {
                    *u = Utf8 {
                        need: 3,
                        lo: 0x80,
                        hi: 0xBF,
                        cp: (b & 0x07) as u32,
                        bad: false,
                    }
                }
                0xF4 => {
                    *u = Utf8 {
                        need: 3,
                        lo: 0x80,
                        hi: 0x8F,
                        cp: (b & 0x07) as u32,
                        bad: false,
                    }
                }
                _ => u.bad = true,
            }
        } else if b >= u.lo && b <= u.hi {
            u.cp = (u.cp << 6) | (b & 0x3F) as u32;
            u.need -= 1;
            u.lo = 0x80;
            u.hi = 0xBF;
            if u.need == 0 {
                let cp = u.cp;
                self.char_done(cp);
            }
        } else {
            u.bad = true;
        }
    }

    #[inline]
    fn char_done(&mut self, cp: u32) {
        self.chars += 1;
        if self.control.is_none() {
            if let Some(c) = char::from_u32(cp) {
                if c.is_control() {
                    self.control = Some(c);
                }
            }
        }
    }

    fn view(&self) -> FieldView<'_> {
        FieldView {
            value: &self.buf,
            len: self.len,
            utf8_ok: !self.utf8.bad && self.utf8.need == 0,
            chars: self.chars,
            control: self.control,
            quoted: self.quoted,
            quote_problem: self.quote_problem,
        }
    }
}

/// What the rule checks need to know about one field, however it was read.
#[derive(Debug, Clone, Copy)]
struct FieldView<'a> {
    /// The decoded value, or its first [`FIELD_CAP`] bytes.
    value: &'a [u8],
    len: u64,
    utf8_ok: bool,
    chars: u64,
    control: Option<char>,
    quoted: bool,
    quote_problem: Option<QuoteProblem>,
}

impl<'a> FieldView<'a> {
    /// A whole unquoted field from a complete line.
    fn of_slice(s: &'a [u8]) -> Self {
        let (utf8_ok, chars, control) = if s.is_ascii() {
            let control = s
                .iter()
                .find(|&&b| b < 0x20 || b == 0x7F)
                .map(|&b| b as char);
            (true, s.len() as u64, control)
        } else {
            match std::str::from_utf8(s) {
                Ok(t) => (
                    true,
                    t.chars().count() as u64,
                    t.chars().find(|c| c.is_control()),
                ),
                Err(_) => (false, 0, None),
            }
        };
        FieldView {
            value: s,
            len: s.len() as u64,
            utf8_ok,
            chars,
            control,
            quoted: false,
            quote_problem: None,
        }
    }

    fn shown(&self) -> String {
        display_value(self.value, self.len > self.value.len() as u64)
    }
}

/// The state machine's partial record.
#[derive(Debug, Clone, Default)]
struct Partial {
    start_line: u64,
    nfields: usize,
    fstate: FState,
    pending_cr: bool,
    field: FieldAcc,
    f0: FieldAcc,
    f1: FieldAcc,
    extra_quote: Vec<QuoteProblem>,
    raw: Vec<u8>,
    raw_truncated: bool,
}

/// A resumable scanner over the rows after the header.
#[derive(Debug, Clone)]
pub struct Scanner {
    cfg: ScanConfig,
    /// The physical line being read.
    line: u64,
    mode: Mode,
    rec: Partial,
}

impl Scanner {
    /// A scanner whose first byte is at the start of physical line `line`.
    pub fn new(cfg: ScanConfig, line: u64) -> Self {
        Scanner {
            cfg,
            line,
            mode: Mode::RecordStart,
            rec: Partial::default(),
        }
    }

    /// True when the next byte starts a record: a block starting here may be
    /// scanned independently.
    pub fn at_record_start(&self) -> bool {
        self.mode == Mode::RecordStart
    }

    /// The physical line the next byte is on.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The lowest line a record reported from here on can carry.
    pub fn pending_start_line(&self) -> u64 {
        match self.mode {
            Mode::InRecord => self.rec.start_line,
            _ => self.line,
        }
    }

    /// Moves every line number by `by` (a block scanned from line 1 becomes
    /// absolute once its place in the file is known).
    pub fn shift_lines(&mut self, by: u64) {
        self.line += by;
        self.rec.start_line += by;
    }

    pub fn config(&self) -> &ScanConfig {
        &self.cfg
    }

    /// Scans `data`; a record cut at the end stays pending for the next call.
    pub fn scan<S: Sink>(&mut self, data: &[u8], sink: &mut S) {
        let mut pos = 0;
        if self.mode == Mode::InRecord {
            pos = self.slow(data, 0, sink);
            if self.mode == Mode::InRecord {
                return;
            }
        }
        while pos < data.len() {
            if self.cfg.fast {
                if let Some(next) = self.fast_row(data, pos, sink) {
                    pos = next;
                    continue;
                }
                if let Some(k) = memchr(b'\n', &data[pos..]) {
                    let end = pos + k;
                    let content = &data[pos..end];
                    if memchr(b'"', content).is_none() {
                        let (content, ending) = match content.last() {
                            Some(b'\r') => (&content[..content.len() - 1], Ending::CrLf),
                            _ => (content, Ending::Lf),
                        };
                        self.line_record(content, ending, sink);
                        self.line += 1;
                        pos = end + 1;
                        continue;
                    }
                }
            }
            self.begin_slow();
            pos = self.slow(data, pos, sink);
            if self.mode == Mode::InRecord {
                return;
            }
        }
    }

    /// End of input: completes a pending record (one without a final line break).
    pub fn finish<S: Sink>(&mut self, sink: &mut S) {
        if self.mode != Mode::InRecord {
            return;
        }
        if self.rec.pending_cr {
            self.rec.pending_cr = false;
            self.raw_push(b'\r');
            self.content_byte(b'\r');
        }
        if self.rec.fstate == FState::Quoted {
            self.rec.field.quote_problem = Some(QuoteProblem::Unterminated);
        }
        self.end_record(None, sink);
    }

    /// Path 1: `U<32 hex>,<plain ASCII>` + the expected line ending.
    #[inline]
    fn fast_row<S: Sink>(&mut self, data: &[u8], pos: usize, sink: &mut S) -> Option<usize> {
        let d = &data[pos..];
        if d.len() < 34 || d[0] != b'U' {
            return None;
        }
        let key = hex16(&d[1..33])?;
        let (uid_end, ending, next) = match self.cfg.format {
            Format::One => {
                if d[33] != b',' {
                    return None;
                }
                let n = plain_run(&d[34..]);
                if n == 0 || n > MAX_USER_ID_CHARS {
                    return None;
                }
                // Spaces around the user_id earn a warning: the full check does it.
                if d[34] == b' ' || d[33 + n] == b' ' {
                    return None;
                }
                let i = 34 + n;
                if i >= d.len() {
                    return None;
                }
                match d[i] {
                    b'\n' => (i, Ending::Lf, i + 1),
                    b'\r' if d.get(i + 1) == Some(&b'\n') => (i, Ending::CrLf, i + 2),
                    _ => return None,
                }
            }
            Format::Two => match d[33] {
                b'\n' => (33, Ending::Lf, 34),
                b'\r' if d.get(34) == Some(&b'\n') => (33, Ending::CrLf, 35),
                _ => return None,
            },
        };
        if self.cfg.ending.is_some_and(|e| e != ending) {
            return None;
        }
        let user_id = if uid_end > 34 {
            &d[34..uid_end]
        } else {
            &[][..]
        };
        sink.record(&Record {
            line: self.line,
            raw: &d[..uid_end],
            raw_truncated: false,
            key: Some(IdKey::Hex(key)),
            user_id,
            blank: false,
        });
        self.line += 1;
        Some(pos + next)
    }

    /// Path 2: a complete line with no quotes.
    fn line_record<S: Sink>(&mut self, content: &[u8], ending: Ending, sink: &mut S) {
        let (f0, rest) = match memchr(b',', content) {
            None => (content, None),
            Some(k) => (&content[..k], Some(&content[k + 1..])),
        };
        let (f1, nfields) = match rest {
            None => (None, 1),
            Some(r) => match memchr(b',', r) {
                None => (Some(r), 2),
                Some(k) => (
                    Some(&r[..k]),
                    3 + memchr::memchr_iter(b',', &r[k + 1..]).count(),
                ),
            },
        };
        let v0 = FieldView::of_slice(f0);
        let v1 = f1.map(FieldView::of_slice);
        self.check_record(
            self.line,
            nfields,
            v0,
            v1,
            &[],
            Some(ending),
            content,
            false,
            sink,
        );
    }

    fn begin_slow(&mut self) {
        self.mode = Mode::InRecord;
        let r = &mut self.rec;
        r.start_line = self.line;
        r.nfields = 0;
        r.fstate = FState::Start;
        r.pending_cr = false;
        r.field = FieldAcc::default();
        r.f0 = FieldAcc::default();
        r.f1 = FieldAcc::default();
        r.extra_quote.clear();
        r.raw.clear();
        r.raw_truncated = false;
    }

    #[inline]
    fn raw_push(&mut self, b: u8) {
        let cap = if self.cfg.keep_raw {
            RAW_CAP
        } else {
            RAW_PREVIEW
        };
        if self.rec.raw.len() < cap {
            self.rec.raw.push(b);
        } else {
            self.rec.raw_truncated = true;
        }
    }

    /// A data byte outside a quoted section.
    #[inline]
    fn content_byte(&mut self, b: u8) {
        let r = &mut self.rec;
        match r.fstate {
            FState::Start => r.fstate = FState::Unquoted,
            FState::QuoteSeen => {
                r.field
                    .quote_problem
                    .get_or_insert(QuoteProblem::TextAfterClose);
                r.fstate = FState::AfterClose;
            }
            FState::Unquoted | FState::AfterClose | FState::Quoted => {}
        }
        r.field.push(b);
    }

    /// Path 3: the RFC 4180 state machine from `i`. Returns where the record
    /// ended, or `data.len()` with the record still pending.
    fn slow<S: Sink>(&mut self, data: &[u8], mut i: usize, sink: &mut S) -> usize {
        while i < data.len() {
            let b = data[i];
            if self.rec.pending_cr {
                self.rec.pending_cr = false;
                if b == b'\n' {
                    self.end_record(Some(Ending::CrLf), sink);
                    self.line += 1;
                    return i + 1;
                }
                self.raw_push(b'\r');
                self.content_byte(b'\r');
            }
            if self.rec.fstate == FState::Quoted {
                self.raw_push(b);
                if b == b'"' {
                    self.rec.fstate = FState::QuoteSeen;
                } else {
                    if b == b'\n' {
                        self.line += 1;
                    }
                    self.rec.field.push(b);
                }
                i += 1;
                continue;
            }
            match b {
                b'\n' => {
                    self.end_record(Some(Ending::Lf), sink);
                    self.line += 1;
                    return i + 1;
                }
                b'\r' => self.rec.pending_cr = true,
                b',' => {
                    self.raw_push(b);
                    self.end_field();
                }
                b'"' => {
                    self.raw_push(b);
                    let r = &mut self.rec;
                    match r.fstate {
                        FState::Start => {
                            r.fstate = FState::Quoted;
                            r.field.quoted = true;
                        }
                        FState::QuoteSeen => {
                            r.field.push(b'"');
                            r.fstate = FState::Quoted;
                        }
                        FState::Unquoted => {
                            r.field
                                .quote_problem
                                .get_or_insert(QuoteProblem::StrayQuote);
                            r.field.push(b);
                        }
                        FState::AfterClose | FState::Quoted => r.field.push(b),
                    }
                }
                _ => {
                    self.raw_push(b);
                    self.content_byte(b);
                }
            }
            i += 1;
        }
        data.len()
    }

    fn end_field(&mut self) {
        let r = &mut self.rec;
        let field = std::mem::take(&mut r.field);
        match r.nfields {
            0 => r.f0 = field,
            1 => r.f1 = field,
            _ => {
                if let Some(p) = field.quote_problem {
                    r.extra_quote.push(p);
                }
            }
        }
        r.nfields += 1;
        r.fstate = FState::Start;
    }

    fn end_record<S: Sink>(&mut self, ending: Option<Ending>, sink: &mut S) {
        self.end_field();
        self.mode = Mode::RecordStart;
        let r = std::mem::take(&mut self.rec);
        let v1 = (r.nfields >= 2).then(|| r.f1.view());
        self.check_record(
            r.start_line,
            r.nfields,
            r.f0.view(),
            v1,
            &r.extra_quote,
            ending,
            &r.raw,
            r.raw_truncated,
            sink,
        );
        // Keep the allocations for the next slow record.
        self.rec.raw = r.raw;
        self.rec.extra_quote = r.extra_quote;
    }

    /// The rule checks, shared by all three paths.
    #[allow(clippy::too_many_arguments)]
    fn check_record<S: Sink>(
        &self,
        line: u64,
        nfields: usize,
        f0: FieldView<'_>,
        f1: Option<FieldView<'_>>,
        extra_quote: &[QuoteProblem],
        ending: Option<Ending>,
        raw: &[u8],
        raw_truncated: bool,
        sink: &mut S,
    ) {
        if nfields == 1 && f0.len == 0 && !f0.quoted {
            sink.finding(Finding::new(
                line,
                None,
                Rule::RowBlank,
                String::new(),
                "blank line".into(),
            ));
            sink.record(&Record {
                line,
                raw,
                raw_truncated,
                key: None,
                user_id: &[],
                blank: true,
            });
            return;
        }
        let format = self.cfg.format;
        let mut bad = false;
        if nfields != format.fields() {
            bad = true;
            sink.finding(Finding::new(
                line,
                None,
                Rule::RowColumns,
                display_value(raw, raw_truncated),
                format!(
                    "{nfields} field{} where Format {} rows have {}",
                    if nfields == 1 { "" } else { "s" },
                    format.number(),
                    format.fields()
                ),
            ));
        }
        for (i, v) in std::iter::once(Some(&f0))
            .chain(std::iter::once(f1.as_ref()))
            .enumerate()
        {
            if let Some(p) = v.and_then(|v| v.quote_problem) {
                bad = true;
                sink.finding(Finding::new(
                    line,
                    Column::from_index(i),
                    Rule::CsvQuote,
                    display_value(raw, raw_truncated),
                    p.message().into(),
                ));
            }
        }
        for p in extra_quote {
            bad = true;
            sink.finding(Finding::new(
                line,
                None,
                Rule::CsvQuote,
                display_value(raw, raw_truncated),
                p.message().into(),
            ));
        }
        let key = check_line_user_id(line, &f0, sink);
        bad |= key.is_none();
        let mut user_id: &[u8] = &[];
        if format == Format::One {
            if let Some(v1) = &f1 {
                bad |= !check_user_id(line, v1, sink);
                user_id = v1.value;
            }
        }
        if let (Some(want), Some(got)) = (self.cfg.ending, ending) {
            if want != got {
                sink.finding(Finding::new(
                    line,
                    None,
                    Rule::LineEndingInconsistent,
                    String::new(),
                    format!(
                        "row ends with {} but the header ends with {}",
                        got.name(),
                        want.name()
                    ),
                ));
            }
        }
        sink.record(&Record {
            line,
            raw,
            raw_truncated,
            key: if bad { None } else { key },
            user_id,
            blank: false,
        });
    }
}

/// True when a field has no value to check: broken quoting (reported as csv.quote,
/// so the value is undefined) or invalid UTF-8 (reported here instead of the field's rules).
fn unreadable<S: Sink>(line: u64, col: Column, v: &FieldView<'_>, sink: &mut S) -> bool {
    if v.quote_problem.is_some() {
        return true;
    }
    if !v.utf8_ok {
        sink.finding(Finding::new(
            line,
            Some(col),
            Rule::EncodingUtf8,
            v.shown(),
            format!("{} is not valid UTF-8", col.name()),
        ));
        return true;
    }
    false
}

/// The `line_user_id` rules; `Some(key)` when the value is a valid ID.
fn check_line_user_id<S: Sink>(line: u64, v: &FieldView<'_>, sink: &mut S) -> Option<IdKey> {
    let col = Some(Column::LineUserId);
    if unreadable(line, Column::LineUserId, v, sink) {
        return None;
    }
    if v.len == 0 {
        sink.finding(Finding::new(
            line,
            col,
            Rule::LineUserIdEmpty,
            String::new(),
            "line_user_id is empty".into(),
        ));
        return None;
    }
    let valid = v.len == LINE_USER_ID_LEN as u64
        && std::str::from_utf8(v.value)
            .map(|s| repro_line_core::validate::line_user_id(s).is_ok())
            .unwrap_or(false);
    if !valid {
        sink.finding(Finding::new(
            line,
            col,
            Rule::LineUserIdInvalid,
            v.shown(),
            format!(
                "a LINE user ID is U followed by 32 ASCII letters or digits; this is {} characters{}",
                v.chars,
                looks_like(v.value)
            ),
        ));
        return None;
    }
    let key = IdKey::from_valid(v.value);
    if matches!(key, Some(IdKey::Other(_))) {
        sink.finding(Finding::new(
            line,
            col,
            Rule::LineUserIdNotLowerHex,
            v.shown(),
            "LINE issues U + 32 lowercase hex digits; this one has other letters or uppercase"
                .into(),
        ));
    }
    key
}

/// What an invalid `line_user_id` looks like instead, when that is clear: the
/// usual mix-ups are the account's @-ID and the user's display name.
fn looks_like(value: &[u8]) -> &'static str {
    let text = String::from_utf8_lossy(value);
    let trimmed = text.trim();
    if trimmed.len() != text.len() && repro_line_core::validate::line_user_id(trimmed).is_ok() {
        return " (with spaces around it; a LINE user ID has none)";
    }
    if trimmed.starts_with('@') {
        return "; this looks like a LINE @-ID (the account's search ID), not a LINE user ID, \
                which comes from the Messaging API (webhooks, follower IDs) or LINE Login";
    }
    if !trimmed.is_ascii() || trimmed.contains(' ') {
        return "; this looks like a display name, not a LINE user ID, \
                which comes from the Messaging API (webhooks, follower IDs) or LINE Login";
    }
    ""
}

/// The `user_id` rules; false on an error (warnings allowed).
fn check_user_id<S: Sink>(line: u64, v: &FieldView<'_>, sink: &mut S) -> bool {
    let col = Some(Column::UserId);
    if unreadable(line, Column::UserId, v, sink) {
        return false;
    }
    if v.len == 0 {
        sink.finding(Finding::new(
            line,
            col,
            Rule::UserIdEmpty,
            String::new(),
            "empty user_id: this LINE ID is imported without a user ID".into(),
        ));
        return true;
    }
    let mut ok = true;
    if v.chars > MAX_USER_ID_CHARS as u64 {
        ok = false;
        sink.finding(Finding::new(
            line,
            col,
            Rule::UserIdTooLong,
            v.shown(),
            format!("{} characters; at most {MAX_USER_ID_CHARS}", v.chars),
        ));
    }
    if let Some(c) = v.control {
        ok = false;
        sink.finding(Finding::new(
            line,
            col,
            Rule::UserIdControl,
            v.shown(),
            format!("contains the control character U+{:04X}", c as u32),
        ));
    }
    if spaced(v) {
        sink.finding(Finding::new(
            line,
            col,
            Rule::UserIdWhitespace,
            v.shown(),
            "starts or ends with a space; Repro keeps it, so it will not match the user ID your app sets".into(),
        ));
    }
    ok
}

/// Leading or trailing whitespace (ASCII or full-width) around a UTF-8 value;
/// only the start is known when the value was cut.
fn spaced(v: &FieldView<'_>) -> bool {
    let Ok(text) = std::str::from_utf8(v.value) else {
        // Cut inside a character: look at the start only.
        return v.value.first() == Some(&b' ');
    };
    // Control characters (a stray CR, a tab) are user_id.control already.
    let space = |c: char| c.is_whitespace() && !c.is_control();
    let whole = v.len == v.value.len() as u64;
    text.chars().next().is_some_and(space) || (whole && text.chars().next_back().is_some_and(space))
}

/// What line 1 says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The format the header names, if it is valid (and matches `--format`).
    pub format: Option<Format>,
    /// The format to read rows as: the header's, or the best guess.
    pub scan_format: Format,
    pub ending: Option<Ending>,
}

/// Facts about a line 1 too long to keep whole: only its start is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongLine {
    pub has_comma: bool,
    /// A CR that is not the one before the final LF.
    pub has_bare_cr: bool,
}

/// Checks line 1 (`line` is without its `\n`; BOM already removed).
pub fn check_header<S: Sink>(line: &[u8], choice: FormatChoice, sink: &mut S) -> Header {
    check_header_with(line, None, choice, sink)
}

/// [`check_header`] for a line of which `line` is only the start (plus a
/// final CR if the whole line had one); `long` describes the whole line.
pub fn check_header_with<S: Sink>(
    line: &[u8],
    long: Option<LongLine>,
    choice: FormatChoice,
    sink: &mut S,
) -> Header {
    let (content, ending) = match line.last() {
        Some(b'\r') => (&line[..line.len() - 1], Ending::CrLf),
        _ => (line, Ending::Lf),
    };
    let named = if content == HEADER_FORMAT_1.as_bytes() {
        Some(Format::One)
    } else if content == HEADER_FORMAT_2.as_bytes() {
        Some(Format::Two)
    } else {
        None
    };
    let forced = match choice {
        FormatChoice::Auto => None,
        FormatChoice::One => Some(Format::One),
        FormatChoice::Two => Some(Format::Two),
    };
    let format = match (named, forced) {
        (Some(n), Some(f)) if n != f => None,
        (n, _) => n,
    };
    if format.is_none() {
        let mut message = match forced {
            Some(f) => format!(
                "line 1 must be exactly `{}` (Format {})",
                f.header(),
                f.number()
            ),
            None => format!(
                "line 1 must be exactly `{HEADER_FORMAT_1}` (Format 1) or `{HEADER_FORMAT_2}` (Format 2)"
            ),
        };
        let bare_cr = match long {
            Some(l) => l.has_bare_cr,
            None => memchr(b'\r', content).is_some(),
        };
        if bare_cr {
            message.push_str("; it holds a bare CR: save the file with LF or CRLF line endings");
        }
        sink.finding(Finding::new(
            1,
            None,
            Rule::HeaderInvalid,
            display_value(content, false),
            message,
        ));
    }
    let has_comma = match long {
        Some(l) => l.has_comma,
        None => memchr(b',', content).is_some(),
    };
    let scan_format =
        format
            .or(forced)
            .or(named)
            .unwrap_or(if has_comma { Format::One } else { Format::Two });
    Header {
        format,
        scan_format,
        ending: Some(ending),
    }
}

/// Byte order marks we recognise at the start of a file, and their names.
pub fn detect_bom(data: &[u8]) -> Option<(usize, &'static str)> {
    if data.starts_with(&[0xEF, 0xBB, 0xBF]) {
        Some((3, "UTF-8"))
    } else if data.starts_with(&[0xFF, 0xFE]) {
        Some((2, "UTF-16 LE"))
    } else if data.starts_with(&[0xFE, 0xFF]) {
        Some((2, "UTF-16 BE"))
    } else {
        None
    }
}

/// What [`stream_records`] saw before the rows.
#[derive(Debug)]
pub struct Streamed<T> {
    /// What the header callback returned.
    pub header: T,
    /// A byte order mark preceded the header (and was skipped).
    pub bom: bool,
}

/// The one way through a CSV's rows: reads `reader` in blocks, skips a byte order
/// mark and the header line (which `on_header` checks, getting it without its
/// `\n`, and turns into the scanner's configuration or an error), then feeds
/// every following byte to one [`Scanner`] that reports to `sink`. `stop` is
/// asked after each block and at the end, so a sink that failed (a full disk)
/// ends the stream. `Ok(None)`: the input is empty.
pub fn stream_records<S: Sink, T, E>(
    reader: impl std::io::Read + Send + 'static,
    sink: &mut S,
    on_header: impl FnOnce(&[u8], &mut S) -> Result<(ScanConfig, T), E>,
    mut stop: impl FnMut(&mut S) -> Option<E>,
    read_err: impl Fn(std::io::Error) -> E,
) -> Result<Option<Streamed<T>>, E> {
    let mut reader = crate::validate::BlockReader::new(reader);
    let mut buf = vec![0u8; crate::validate::DEFAULT_BLOCK_SIZE];
    let mut on_header = Some(on_header);
    let mut started: Option<(Scanner, Streamed<T>)> = None;
    loop {
        let n = reader.fill(&mut buf).map_err(&read_err)?;
        if n == 0 {
            break;
        }
        let mut data = &buf[..n];
        if started.is_none() {
            let bom = detect_bom(data).map(|(k, _)| k);
            data = &data[bom.unwrap_or(0)..];
            let end = memchr(b'\n', data).unwrap_or(data.len());
            if let Some(check) = on_header.take() {
                let (cfg, header) = check(&data[..end], sink)?;
                let streamed = Streamed {
                    header,
                    bom: bom.is_some(),
                };
                started = Some((Scanner::new(cfg, 2), streamed));
            }
            data = data.get(end + 1..).unwrap_or(&[]);
        }
        if let Some((scanner, _)) = &mut started {
            scanner.scan(data, sink);
        }
        if let Some(e) = stop(sink) {
            return Err(e);
        }
    }
    let Some((mut scanner, streamed)) = started else {
        return Ok(None);
    };
    scanner.finish(sink);
    match stop(sink) {
        Some(e) => Err(e),
        None => Ok(Some(streamed)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// (line, raw, key, user_id, blank)
    pub(crate) type Rec = (u64, Vec<u8>, Option<IdKey>, Vec<u8>, bool);

    #[derive(Default, Debug)]
    pub(crate) struct Collect {
        pub findings: Vec<Finding>,
        pub records: Vec<Rec>,
    }

    impl Sink for Collect {
        fn finding(&mut self, f: Finding) {
            self.findings.push(f);
        }
        fn record(&mut self, r: &Record<'_>) {
            self.records
                .push((r.line, r.raw.to_vec(), r.key, r.user_id.to_vec(), r.blank));
        }
    }

    pub(crate) fn scan_rows(
        format: Format,
        ending: Ending,
        rows: &[u8],
        fast: bool,
        chunk: usize,
    ) -> Collect {
        let mut cfg = ScanConfig::new(format, Some(ending));
        cfg.fast = fast;
        cfg.keep_raw = true;
        let mut s = Scanner::new(cfg, 2);
        let mut c = Collect::default();
        for part in rows.chunks(chunk.max(1)) {
            s.scan(part, &mut c);
        }
        s.finish(&mut c);
        c
    }

    fn rules(c: &Collect) -> Vec<(u64, &'static str)> {
        c.findings.iter().map(|f| (f.line, f.rule.id())).collect()
    }

    const ID: &str = "U4af4980629a1b2c3d4e5f60718293a4b";

    fn one(rows: &str) -> Vec<(u64, &'static str)> {
        let fast = scan_rows(Format::One, Ending::Lf, rows.as_bytes(), true, usize::MAX);
        let slow = scan_rows(Format::One, Ending::Lf, rows.as_bytes(), false, 3);
        assert_eq!(
            fast.findings, slow.findings,
            "fast and slow paths disagree on {rows:?}"
        );
        assert_eq!(
            fast.records, slow.records,
            "fast and slow paths disagree on {rows:?}"
        );
        rules(&fast)
    }

    #[test]
    fn fast_path_accepts_plain_rows() {
        let c = scan_rows(
            Format::One,
            Ending::Lf,
            format!("{ID},user-1\n{ID},x\n").as_bytes(),
            true,
            usize::MAX,
        );
        assert!(c.findings.is_empty());
        assert_eq!(c.records.len(), 2);
        assert_eq!(c.records[1].0, 3);
        assert_eq!(c.records[0].3, b"user-1");
        assert!(matches!(c.records[0].2, Some(IdKey::Hex(_))));
    }

    #[test]
    fn rule_row_blank() {
        assert_eq!(one(&format!("\n{ID},a\n")), vec![(2, "row.blank")]);
    }

    #[test]
    fn rule_row_columns() {
        assert_eq!(
            one(&format!("{ID}\n{ID},a,b\n")),
            vec![(2, "row.columns"), (3, "row.columns")]
        );
        let c = scan_rows(
            Format::Two,
            Ending::Lf,
            format!("{ID},\n").as_bytes(),
            true,
            99,
        );
        assert_eq!(rules(&c), vec![(2, "row.columns")]);
    }

    #[test]
    fn rule_csv_quote() {
        assert_eq!(one(&format!("{ID},a\"b\n")), vec![(2, "csv.quote")]);
        assert_eq!(one(&format!("{ID},\"a\"b\n")), vec![(2, "csv.quote")]);
        assert_eq!(one(&format!("{ID},\"ab\n{ID},c\n")), vec![(2, "csv.quote")]);
        // Properly quoted fields are fine, including an escaped quote.
        assert_eq!(one(&format!("\"{ID}\",\"a,\"\"b\"\n")), vec![]);
    }

    #[test]
    fn quoted_values_are_decoded() {
        let c = scan_rows(
            Format::One,
            Ending::Lf,
            format!("{ID},\"a,\"\"b\"\n").as_bytes(),
            true,
            5,
        );
        assert_eq!(c.records[0].3, b"a,\"b");
        assert!(c.records[0].2.is_some());
    }

    #[test]
    fn rule_line_ending_inconsistent() {
        assert_eq!(
            one(&format!("{ID},a\r\n{ID},b\n")),
            vec![(2, "line_ending.inconsistent")]
        );
        let c = scan_rows(
            Format::One,
            Ending::CrLf,
            format!("{ID},a\r\n{ID},b\n").as_bytes(),
            true,
            7,
        );
        assert_eq!(rules(&c), vec![(3, "line_ending.inconsistent")]);
    }

    #[test]
    fn rule_line_user_id() {
        assert_eq!(one(",a\n"), vec![(2, "line_user_id.empty")]);
        assert_eq!(one("U123,a\n"), vec![(2, "line_user_id.invalid")]);
        assert_eq!(
            one(&format!("{},a\n", ID.replace('4', "-"))),
            vec![(2, "line_user_id.invalid")]
        );
        assert_eq!(
            one(&format!("{},a\n", ID.to_uppercase().replacen('U', "u", 1))),
            vec![(2, "line_user_id.invalid")]
        );
        assert_eq!(
            one(&format!("{},a\n", ID.to_uppercase())),
            vec![(2, "line_user_id.not_lower_hex")]
        );
        assert_eq!(
            one(&format!("{}z,a\n", &ID[..32])),
            vec![(2, "line_user_id.not_lower_hex")]
        );
    }

    #[test]
    fn rule_encoding_utf8() {
        let mut bytes = format!("{ID},ab").into_bytes();
        bytes.extend_from_slice(&[0xC3, 0x28, b'\n']);
        let fast = scan_rows(Format::One, Ending::Lf, &bytes, true, 99);
        let slow = scan_rows(Format::One, Ending::Lf, &bytes, false, 1);
        assert_eq!(rules(&fast), vec![(2, "encoding.utf8")]);
        assert_eq!(fast.findings, slow.findings);
    }

    #[test]
    fn rule_user_id() {
        assert_eq!(one(&format!("{ID},\n")), vec![(2, "user_id.empty")]);
        assert_eq!(one(&format!("{ID},{}\n", "a".repeat(191))), vec![]);
        assert_eq!(
            one(&format!("{ID},{}\n", "a".repeat(192))),
            vec![(2, "user_id.too_long")]
        );
        // Characters, not bytes: 191 three-byte characters are fine.
        assert_eq!(one(&format!("{ID},{}\n", "あ".repeat(191))), vec![]);
        assert_eq!(
            one(&format!("{ID},{}\n", "あ".repeat(192))),
            vec![(2, "user_id.too_long")]
        );
        assert_eq!(one(&format!("{ID},a\tb\n")), vec![(2, "user_id.control")]);
        assert_eq!(
            one(&format!("{ID},\"a\nb\"\n")),
            vec![(2, "user_id.control")]
        );
        assert_eq!(
            one(&format!("{ID},a\u{85}b\n")),
            vec![(2, "user_id.control")]
        );
        assert_eq!(
            one(&format!("{ID},{}\u{7}\n", "a".repeat(200))),
            vec![(2, "user_id.too_long"), (2, "user_id.control")]
        );
    }

    #[test]
    fn multi_line_record_keeps_line_numbers() {
        let rows = format!("{ID},\"a\nb\nc\"\n{ID},x\n");
        let c = scan_rows(Format::One, Ending::Lf, rows.as_bytes(), true, 4);
        assert_eq!(rules(&c), vec![(2, "user_id.control")]);
        assert_eq!(c.records[1].0, 5);
    }

    #[test]
    fn last_row_without_newline() {
        assert_eq!(one(&format!("{ID},a\n{ID},b")), vec![]);
        let c = scan_rows(
            Format::One,
            Ending::Lf,
            format!("{ID},a\r").as_bytes(),
            true,
            99,
        );
        assert_eq!(rules(&c), vec![(2, "user_id.control")]);
    }

    #[test]
    fn header_rules() {
        let mut c = Collect::default();
        let h = check_header(b"line_user_id,user_id\r", FormatChoice::Auto, &mut c);
        assert_eq!(h.format, Some(Format::One));
        assert_eq!(h.ending, Some(Ending::CrLf));
        let h = check_header(b"line_user_id", FormatChoice::One, &mut c);
        assert_eq!(h.format, None);
        assert_eq!(h.scan_format, Format::One);
        let h = check_header(b"\"line_user_id\"", FormatChoice::Auto, &mut c);
        assert_eq!(h.format, None);
        assert_eq!(h.scan_format, Format::Two);
        assert_eq!(c.findings.len(), 2);
    }

    #[test]
    fn swar_helpers_match_tables() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut w = *b"0123abcd";
                w[pos] = b;
                let want = w.iter().all(|&c| HEX[c as usize] != 0xFF);
                assert_eq!(hex8(u64::from_le_bytes(w)).is_some(), want, "{w:?}");
                let mut s = *b"abcdefgh-xyz";
                s[pos] = b;
                let want = s
                    .iter()
                    .position(|&c| !PLAIN[c as usize])
                    .unwrap_or(s.len());
                assert_eq!(plain_run(&s), want, "{s:?}");
            }
        }
        assert_eq!(
            hex16(b"00112233445566778899aabbccddeeff").unwrap(),
            [
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff
            ]
        );
        assert_eq!(
            hex16(b"0123456789abcdef0123456789abcdef").unwrap()[..8],
            [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]
        );
    }

    #[test]
    fn hex16_round_trip() {
        let k = IdKey::from_valid(ID.as_bytes()).unwrap();
        assert_eq!(k.to_id_string(), ID);
        let upper = ID.to_uppercase();
        let k = IdKey::from_valid(upper.as_bytes()).unwrap();
        assert!(matches!(k, IdKey::Other(_)));
        assert_eq!(k.to_id_string(), upper);
    }

    /// `stream_records` skips the BOM and the header, reads rows with the header's
    /// line ending from line 2, and says when the input was empty or a sink stopped it.
    #[test]
    fn stream_records_skips_bom_and_header_and_numbers_rows_from_line_2() {
        let csv = b"\xEF\xBB\xBFline_user_id,user_id\r\nU4af4980629a1b2c3d4e5f60718293a4b,u1\r\nU4af4980629a1b2c3d4e5f60718293a4c,u2\r\n";
        let mut c = Collect::default();
        let mut seen = Vec::new();
        let streamed = stream_records(
            std::io::Cursor::new(csv.to_vec()),
            &mut c,
            |header, sink| {
                seen = header.to_vec();
                let h = check_header(header, FormatChoice::Auto, sink);
                let mut cfg = ScanConfig::new(h.scan_format, h.ending);
                cfg.keep_raw = true;
                Ok::<_, String>((cfg, h.format))
            },
            |_| None,
            |e| e.to_string(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(seen, b"line_user_id,user_id\r");
        assert!(streamed.bom);
        assert_eq!(streamed.header, Some(Format::One));
        assert!(c.findings.is_empty(), "{:?}", c.findings);
        let lines: Vec<(u64, &[u8])> = c.records.iter().map(|r| (r.0, &r.3[..])).collect();
        assert_eq!(lines, [(2, &b"u1"[..]), (3, &b"u2"[..])]);

        let empty = stream_records(
            std::io::Cursor::new(Vec::new()),
            &mut Collect::default(),
            |_, _| Ok::<_, String>((ScanConfig::new(Format::One, None), ())),
            |_| None,
            |e| e.to_string(),
        );
        assert!(matches!(empty, Ok(None)));

        let stopped = stream_records(
            std::io::Cursor::new(csv.to_vec()),
            &mut Collect::default(),
            |_, _| Ok::<_, String>((ScanConfig::new(Format::One, None), ())),
            |c| (!c.records.is_empty()).then(|| "disk full".to_owned()),
            |e| e.to_string(),
        );
        assert_eq!(stopped.unwrap_err(), "disk full");
    }
}
