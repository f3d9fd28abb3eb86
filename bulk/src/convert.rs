//! `csv fix`'s first stage for CDP exports as they come: transcodes from
//! Shift_JIS (CP932) or UTF-16 to UTF-8 (encoding_rs), picks and renames
//! columns into Format 1 or 2 (the `csv` crate), and reads inputs that can be
//! read only once (a pipe, `/dev/stdin`, a FIFO). The result is a temporary
//! UTF-8 file that the fixer then reads twice; memory stays a few buffers.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use encoding_rs::{Decoder, DecoderResult, Encoding, SHIFT_JIS, UTF_16LE};
use serde::Serialize;

use crate::Error;

const BUF: usize = 1 << 20;

/// The encodings `--from-encoding` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SourceEncoding {
    /// Windows-31J / CP932, what Japanese Windows tools call Shift_JIS
    /// (encoding_rs's Shift_JIS is the WHATWG one, which is CP932).
    #[serde(rename = "cp932")]
    Cp932,
    /// UTF-16, little-endian unless a byte order mark says otherwise.
    #[serde(rename = "utf-16")]
    Utf16,
}

impl SourceEncoding {
    pub fn parse(s: &str) -> Result<SourceEncoding, Error> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "cp932" | "shift-jis" | "sjis" | "windows-31j" => Ok(SourceEncoding::Cp932),
            "utf-16" | "utf16" | "utf-16le" => Ok(SourceEncoding::Utf16),
            _ => Err(Error::Usage(format!(
                "--from-encoding {s:?}: expected cp932, shift_jis or utf-16"
            ))),
        }
    }

    fn encoding(self) -> &'static Encoding {
        match self {
            SourceEncoding::Cp932 => SHIFT_JIS,
            SourceEncoding::Utf16 => UTF_16LE,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SourceEncoding::Cp932 => "CP932 (Shift_JIS)",
            SourceEncoding::Utf16 => "UTF-16",
        }
    }
}

/// Which export columns become `line_user_id` (and `user_id`).
#[derive(Debug, Clone, Default)]
pub struct Columns {
    pub line_user_id: String,
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ConvertOptions {
    pub from_encoding: Option<SourceEncoding>,
    pub columns: Option<Columns>,
}

/// What the first stage did (in `csv fix`'s report).
#[derive(Debug, Clone, Serialize)]
pub struct Conversion {
    pub from_encoding: Option<SourceEncoding>,
    /// `line_user_id ← NAME`, `user_id ← NAME`.
    pub columns: Vec<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub elapsed_s: f64,
    /// Input bytes per second, in MB.
    pub mb_per_s: f64,
    /// True when the input could be read only once (pipe, FIFO) and was copied first.
    pub read_once: bool,
}

/// The UTF-8 file the fixer reads, removed on drop.
pub struct Prepared {
    pub path: tempfile::TempPath,
    pub report: Conversion,
}

/// True when `input` can be read twice from the start (a regular file).
pub fn rereadable(input: &Path) -> bool {
    std::fs::metadata(input).is_ok_and(|m| m.is_file())
}

/// The longest line 1 may be before the input is refused: an endless input
/// with no line break (`/dev/zero`) must stop, not fill the disk.
const HEADER_MAX: u64 = 1 << 20;

/// Counts bytes read, and refuses an input whose first line never ends.
struct Counting<R> {
    inner: R,
    n: u64,
    seen_newline: bool,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.n += k as u64;
        if !self.seen_newline {
            // Byte 0x0A ends a line in UTF-8, CP932 (never a trail byte) and UTF-16 alike.
            self.seen_newline = memchr::memchr(b'\n', &buf[..k]).is_some();
            if !self.seen_newline && self.n > HEADER_MAX {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "line 1 runs past 1 MiB with no line break; it must be the header (is this a CSV file?)",
                ));
            }
        }
        Ok(k)
    }
}

/// Decodes to UTF-8 as it reads; a byte sequence the encoding does not have is
/// an error naming its line, never a silent U+FFFD (`csv fix` changes no value).
struct DecodeReader<R> {
    inner: R,
    decoder: Decoder,
    enc: SourceEncoding,
    inbuf: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    eof: bool,
    done: bool,
    out: Vec<u8>,
    out_pos: usize,
    out_len: usize,
    lines: u64,
}

impl<R: Read> DecodeReader<R> {
    fn new(inner: R, enc: SourceEncoding) -> Self {
        DecodeReader {
            inner,
            // BOM sniffing: a UTF-8 or UTF-16 BOM wins over the named encoding, and is dropped.
            decoder: enc.encoding().new_decoder(),
            enc,
            inbuf: vec![0; BUF],
            in_pos: 0,
            in_len: 0,
            eof: false,
            done: false,
            out: vec![0; BUF],
            out_pos: 0,
            out_len: 0,
            lines: 1,
        }
    }

    fn refill_out(&mut self) -> io::Result<()> {
        while self.out_pos == self.out_len && !self.done {
            if self.in_pos == self.in_len && !self.eof {
                let k = loop {
                    match self.inner.read(&mut self.inbuf) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        r => break r?,
                    }
                };
                self.in_pos = 0;
                self.in_len = k;
                self.eof = k == 0;
            }
            let (res, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.inbuf[self.in_pos..self.in_len],
                &mut self.out,
                self.eof,
            );
            self.in_pos += read;
            self.out_pos = 0;
            self.out_len = written;
            match res {
                DecoderResult::InputEmpty => self.done = self.eof,
                DecoderResult::OutputFull => {}
                DecoderResult::Malformed(..) => {
                    let line = self.lines
                        + memchr::memchr_iter(b'\n', &self.out[..written]).count() as u64;
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "line {line}: bytes that are not {}; is --from-encoding right?",
                            self.enc.name()
                        ),
                    ));
                }
            }
            self.lines += memchr::memchr_iter(b'\n', &self.out[..written]).count() as u64;
        }
        Ok(())
    }
}

impl<R: Read> Read for DecodeReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.refill_out()?;
        let n = (self.out_len - self.out_pos).min(buf.len());
        buf[..n].copy_from_slice(&self.out[self.out_pos..self.out_pos + n]);
        self.out_pos += n;
        Ok(n)
    }
}

/// Runs the first stage: `input` → a temporary UTF-8 file in `dir`.
pub fn prepare(input: &Path, dir: &Path, opts: &ConvertOptions) -> Result<Prepared, Error> {
    let started = Instant::now();
    let read_err = |source: io::Error| {
        if source.kind() == io::ErrorKind::InvalidData {
            Error::Input {
                path: input.to_path_buf(),
                reason: source.to_string(),
            }
        } else {
            Error::Read {
                path: input.to_path_buf(),
                source,
            }
        }
    };
    let werr = |source| Error::Write {
        path: dir.to_path_buf(),
        source,
    };
    let file = File::open(input).map_err(read_err)?;
    let read_once = !rereadable(input);
    let mut counting = Counting {
        inner: file,
        n: 0,
        seen_newline: false,
    };
    let tmp = tempfile::Builder::new()
        .prefix(".repro-line-input-")
        .suffix(".csv")
        .tempfile_in(dir)
        .map_err(werr)?;
    let (tmp_file, tmp_path) = tmp.into_parts();
    let mut out = BufWriter::with_capacity(BUF, tmp_file);
    let source: Box<dyn Read + '_> = match opts.from_encoding {
        Some(enc) => Box::new(DecodeReader::new(&mut counting, enc)),
        None => Box::new(&mut counting),
    };
    let mut columns = Vec::new();
    let bytes_out = match &opts.columns {
        None => copy(source, &mut out).map_err(read_err)?,
        Some(c) => {
            columns.push(format!("line_user_id ← {}", c.line_user_id));
            if let Some(u) = &c.user_id {
                columns.push(format!("user_id ← {u}"));
            }
            select_columns(input, source, &mut out, c)?
        }
    };
    out.flush().map_err(werr)?;
    drop(out);
    let secs = started.elapsed().as_secs_f64();
    let bytes_in = counting.n;
    Ok(Prepared {
        path: tmp_path,
        report: Conversion {
            from_encoding: opts.from_encoding,
            columns,
            bytes_in,
            bytes_out,
            elapsed_s: secs,
            mb_per_s: if secs > 0.0 {
                bytes_in as f64 / 1e6 / secs
            } else {
                0.0
            },
            read_once,
        },
    })
}

fn copy(mut r: impl Read, w: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; BUF];
    let mut total = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// Writes `line_user_id[,user_id]` from the named columns of every record.
/// Values are copied byte for byte (quoted only where CSV needs it); a record
/// too short to have a column gets an empty value, which the fixer rejects.
fn select_columns(
    input: &Path,
    source: impl Read,
    out: &mut impl Write,
    c: &Columns,
) -> Result<u64, Error> {
    let bad_input = |reason: String| Error::Input {
        path: input.to_path_buf(),
        reason,
    };
    let csv_err = |e: csv::Error| match e.into_kind() {
        csv::ErrorKind::Io(e) if e.kind() == io::ErrorKind::InvalidData => bad_input(e.to_string()),
        csv::ErrorKind::Io(source) => Error::Read {
            path: input.to_path_buf(),
            source,
        },
        other => bad_input(format!("{other:?}")),
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(BUF)
        .from_reader(source);
    let mut header = csv::ByteRecord::new();
    if !reader.read_byte_record(&mut header).map_err(csv_err)? {
        return Err(bad_input(
            "the file is empty; line 1 must be the header".into(),
        ));
    }
    let names: Vec<String> = header
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let f = if i == 0 {
                f.strip_prefix("\u{feff}".as_bytes()).unwrap_or(f)
            } else {
                f
            };
            String::from_utf8_lossy(f).trim().to_string()
        })
        .collect();
    let find = |flag: &str, name: &str| -> Result<usize, Error> {
        names.iter().position(|n| n == name).ok_or_else(|| {
            Error::Usage(format!(
                "{flag} {name:?}: line 1 has no such column; it has: {}",
                names.join(", ")
            ))
        })
    };
    let id_col = find("--line-user-id-column", &c.line_user_id)?;
    let uid_col = match &c.user_id {
        Some(u) => Some(find("--user-id-column", u)?),
        None => None,
    };
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .buffer_capacity(BUF)
        .from_writer(CountingWrite { inner: out, n: 0 });
    let wr = |e: csv::Error| Error::Internal(format!("writing the converted file: {e}"));
    match uid_col {
        Some(_) => w.write_record(["line_user_id", "user_id"]).map_err(wr)?,
        None => w.write_record(["line_user_id"]).map_err(wr)?,
    }
    let mut rec = csv::ByteRecord::new();
    while reader.read_byte_record(&mut rec).map_err(csv_err)? {
        let id = rec.get(id_col).unwrap_or_default();
        match uid_col {
            Some(u) => w.write_record([id, rec.get(u).unwrap_or_default()]),
            None => w.write_record([id]),
        }
        .map_err(wr)?;
    }
    w.flush().map_err(|source| Error::Write {
        path: PathBuf::from("converted file"),
        source,
    })?;
    let n = w
        .into_inner()
        .map_err(|e| Error::Internal(format!("writing the converted file: {e}")))?
        .n;
    Ok(n)
}

struct CountingWrite<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for CountingWrite<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bytes: &[u8], opts: &ConvertOptions) -> Result<String, Error> {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.csv");
        std::fs::write(&input, bytes).unwrap();
        let p = prepare(&input, dir.path(), opts)?;
        Ok(std::fs::read_to_string(&p.path).unwrap())
    }

    #[test]
    fn cp932_and_utf16_to_utf8() {
        let text = "line_user_id,user_id\nU00000000000000000000000000000001,山田\n";
        let (sjis, _, bad) = SHIFT_JIS.encode(text);
        assert!(!bad);
        let opts = ConvertOptions {
            from_encoding: Some(SourceEncoding::Cp932),
            columns: None,
        };
        assert_eq!(run(&sjis, &opts).unwrap(), text);
        let mut utf16 = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        let opts = ConvertOptions {
            from_encoding: Some(SourceEncoding::Utf16),
            columns: None,
        };
        assert_eq!(run(&utf16, &opts).unwrap(), text);
    }

    #[test]
    fn malformed_bytes_name_their_line() {
        let opts = ConvertOptions {
            from_encoding: Some(SourceEncoding::Cp932),
            columns: None,
        };
        let e = run(b"line_user_id\nU1\n\x81\x20\n", &opts).unwrap_err();
        assert!(e.to_string().contains("line 3"), "{e}");
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn selects_and_renames_columns() {
        let opts = ConvertOptions {
            from_encoding: None,
            columns: Some(Columns {
                line_user_id: "LINE ID".into(),
                user_id: Some("member".into()),
            }),
        };
        let got = run(
            b"\xef\xbb\xbfname,member,LINE ID\n\"A, B\",m1,U1\nC,\"m,2\",U2\nshort\n",
            &opts,
        )
        .unwrap();
        assert_eq!(got, "line_user_id,user_id\nU1,m1\nU2,\"m,2\"\n,\n");
        let e = run(
            b"a,b\n1,2\n",
            &ConvertOptions {
                from_encoding: None,
                columns: Some(Columns {
                    line_user_id: "LINE ID".into(),
                    user_id: None,
                }),
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("it has: a, b"), "{e}");
    }
}
