//! The dashboard's LINE user import, over HTTP. `POST /v1/line_user_imports
//! ?channel_id=C&type=deliverable|blocked` with the CSV as the body starts a job
//! (`Uploading` → `Import Completed` | `Error`) that runs on a blocking thread.
//!
//! The file is checked by repro-line-csv's validator, the rules of
//! `repro-line csv validate`; one error rejects the whole file (nothing is
//! applied), as the dashboard does. What an import writes: `Db::apply_import`.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

use http_body_util::{BodyExt, Full};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE, LOCATION};
use hyper::{Method, Request, Response, StatusCode};
use repro_line_core::protocol::{format_rfc3339_millis, HEADER_TOKEN};
use repro_line_csv::rules::{ERRORS_CSV_HEADER, MAX_FILE_BYTES};
use repro_line_csv::scan::{check_header, stream_records, Record, ScanConfig, Sink};
use repro_line_csv::{validate_file, Finding, Format, FormatChoice, Report, ValidateOptions};
use tempfile::NamedTempFile;
use uuid::Uuid;

use crate::http::{self, error, json, method_not_allowed, Resp};
use crate::jobs::{ImportType, Job, JobStatus};
use crate::shared::Shared;
use crate::state::ImportRow;

pub(crate) const IMPORT_PATH: &str = "/v1/line_user_imports";
/// Repro's 500 MB plus a little, so a file just over the limit still becomes a
/// job whose errors.csv names `file.too_large` instead of a bare 413.
const MAX_UPLOAD_BYTES: u64 = MAX_FILE_BYTES + (1 << 20);
#[derive(Debug, thiserror::Error)]
enum ImportError {
    #[error("cannot create a temporary file: {0}")]
    Temp(std::io::Error),
    #[error("cannot validate the upload: {0}")]
    Validate(#[from] repro_line_csv::Error),
    #[error("cannot read the upload: {0}")]
    Read(std::io::Error),
    #[error("storage: {0}")]
    Storage(#[from] rusqlite::Error),
}

/// `/v1/line_user_imports[/{job_id}[/errors.csv]]`; `rest` is the path after the prefix.
pub(crate) async fn route(
    shared: &Arc<Shared>,
    method: Method,
    rest: &str,
    req: Request<Incoming>,
) -> Resp {
    // Same token as the batch route, checked first so job IDs cannot be probed.
    let token = req
        .headers()
        .get(HEADER_TOKEN)
        .and_then(|v| v.to_str().ok());
    let authorized = token == Some(shared.lock().token.as_str());
    if !authorized {
        drain(req).await;
        return error(StatusCode::UNAUTHORIZED, "missing or invalid X-Repro-Token");
    }
    let parts: Vec<&str> = rest.split('/').skip(1).collect();
    match (parts.as_slice(), method) {
        ([], Method::POST) => create(shared, req).await,
        ([], _) => method_not_allowed("POST"),
        ([id], Method::GET) => match shared.lock().imports.get(id) {
            Some(job) => json(StatusCode::OK, job),
            None => no_job(id),
        },
        ([id, "errors.csv"], Method::GET) => errors_csv(shared, id).await,
        ([_] | [_, "errors.csv"], _) => method_not_allowed("GET"),
        _ => error(
            StatusCode::NOT_FOUND,
            &format!("no route for {IMPORT_PATH}{rest}"),
        ),
    }
}

/// Reads (and discards) a small body so the client reliably sees an early answer.
async fn drain(req: Request<Incoming>) {
    let _ = http::read_body(req.into_body(), 0).await;
}

fn no_job(id: &str) -> Resp {
    error(StatusCode::NOT_FOUND, &format!("no import job {id:?}"))
}

/// A 400 naming the broken rule: `{"error": {"code": 400, "rule", "message"}}`.
fn bad_request(rule: &str, message: &str) -> Resp {
    json(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({"error": {"code": 400, "rule": rule, "message": message}}),
    )
}

#[derive(Debug, Clone)]
struct Params {
    channel_id: String,
    kind: ImportType,
}

fn parse_params(query: Option<&str>) -> Result<Params, (&'static str, String)> {
    let (mut channel, mut kind) = (None, None);
    for (key, value) in http::query_pairs(query) {
        let slot = match key.as_str() {
            "channel_id" => &mut channel,
            "type" => &mut kind,
            other => {
                return Err((
                    "query.unknown",
                    format!("unknown query parameter {other:?}; expected channel_id and type"),
                ))
            }
        };
        if slot.replace(value).is_some() {
            return Err(("query.repeated", format!("{key} is given more than once")));
        }
    }
    let channel_id = channel.ok_or((
        "channel_id.missing",
        "the query needs channel_id (your LINE channel ID)".to_owned(),
    ))?;
    repro_line_core::validate::channel_id(&channel_id)
        .map_err(|e| ("channel_id.invalid", e.to_string()))?;
    let kind = match kind.as_deref() {
        Some("deliverable") => ImportType::Deliverable,
        Some("blocked") => ImportType::Blocked,
        Some(other) => {
            return Err((
                "type.invalid",
                format!("type must be `deliverable` or `blocked`, got {other:?}"),
            ))
        }
        None => {
            return Err((
                "type.missing",
                "the query needs type=deliverable or type=blocked".to_owned(),
            ))
        }
    };
    Ok(Params { channel_id, kind })
}

/// Absent, or a type a CSV upload plausibly carries; a form or JSON body is a client mistake.
fn csv_content_type(value: Option<&HeaderValue>) -> bool {
    let Some(v) = value else { return true };
    let mime = v
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    matches!(
        mime.as_str(),
        "text/csv" | "application/csv" | "text/plain" | "application/octet-stream"
    )
}

async fn create(shared: &Arc<Shared>, req: Request<Incoming>) -> Resp {
    let params = match parse_params(req.uri().query()) {
        Ok(p) => p,
        Err((rule, message)) => {
            drain(req).await;
            return bad_request(rule, &message);
        }
    };
    if !csv_content_type(req.headers().get(CONTENT_TYPE)) {
        drain(req).await;
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the CSV file itself as the body, with Content-Type: text/csv",
        );
    }
    let (upload, bytes) = match receive(req.into_body()).await {
        Upload::Stored(file, bytes) => (file, bytes),
        Upload::TooLarge => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                "the body is above {MAX_UPLOAD_BYTES} bytes (Repro takes at most 500 MB per file)"
            ),
            )
        }
        Upload::Broken(e) => {
            return error(StatusCode::BAD_REQUEST, &format!("unreadable body: {e}"))
        }
        Upload::Storage(e) => {
            tracing::error!(error = %e, "cannot store an import upload");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("cannot store the upload: {e}"),
            );
        }
    };
    let job_id = Uuid::now_v7();
    shared.lock().imports.insert(Job {
        job_id,
        channel_id: params.channel_id.clone(),
        kind: params.kind,
        format: None,
        status: JobStatus::Uploading,
        bytes,
        rows: 0,
        imported: 0,
        created: 0,
        errors: 0,
        warnings: 0,
        message: None,
        created_at: format_rfc3339_millis(http::now_ms()),
        finished_at: None,
        errors_csv: None,
    });
    tracing::info!(job = %job_id, channel = %params.channel_id, kind = ?params.kind, bytes, "import accepted");
    let worker = Arc::clone(shared);
    tokio::task::spawn_blocking(move || run(&worker, job_id, &params, upload));
    let mut resp = json(
        StatusCode::ACCEPTED,
        &serde_json::json!({"job_id": job_id, "status": JobStatus::Uploading}),
    );
    if let Ok(location) = HeaderValue::from_str(&format!("{IMPORT_PATH}/{job_id}")) {
        resp.headers_mut().insert(LOCATION, location);
    }
    resp
}

enum Upload {
    Stored(NamedTempFile, u64),
    TooLarge,
    Broken(String),
    Storage(String),
}

/// Streams the body into a temporary file (written on a blocking thread), so a
/// 500 MB upload costs disk, not memory.
async fn receive(mut body: Incoming) -> Upload {
    if body.size_hint().lower() > MAX_UPLOAD_BYTES {
        return Upload::TooLarge;
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<NamedTempFile> {
        let mut file = tempfile::Builder::new()
            .prefix("repro-line-import-")
            .suffix(".csv")
            .tempfile()?;
        let mut w = BufWriter::with_capacity(1 << 20, file.as_file_mut());
        while let Some(chunk) = rx.blocking_recv() {
            w.write_all(&chunk)?;
        }
        w.flush()?;
        drop(w);
        Ok(file)
    });
    let mut total = 0u64;
    let mut failed = None;
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                failed = Some(Upload::Broken(e.to_string()));
                break;
            }
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total = total.saturating_add(data.len() as u64);
        if total > MAX_UPLOAD_BYTES {
            failed = Some(Upload::TooLarge);
            break;
        }
        // A closed channel means the writer failed; its error is read below.
        if tx.send(data).await.is_err() {
            break;
        }
    }
    drop(tx);
    let written = writer.await;
    if let Some(f) = failed {
        return f;
    }
    match written {
        Ok(Ok(file)) => Upload::Stored(file, total),
        Ok(Err(e)) => Upload::Storage(e.to_string()),
        Err(e) => Upload::Storage(e.to_string()),
    }
}

/// The validator's verdict, and the rows when there is nothing to reject.
struct Checked {
    report: Report,
    errors_csv: NamedTempFile,
    rows: Option<Vec<ImportRow>>,
}

fn check(upload: &Path) -> Result<Checked, ImportError> {
    let errors_csv = tempfile::Builder::new()
        .prefix("repro-line-import-errors-")
        .suffix(".csv")
        .tempfile()
        .map_err(ImportError::Temp)?;
    let opts = ValidateOptions {
        errors_out: Some(errors_csv.path().to_path_buf()),
        // Every finding goes to errors.csv; none is needed in memory.
        sample: 0,
        ..ValidateOptions::default()
    };
    let report = validate_file(upload, &opts)?;
    let rows = match report.format {
        Some(format) if report.errors == 0 => {
            Some(read_rows(upload, format).map_err(ImportError::Read)?)
        }
        _ => None,
    };
    Ok(Checked {
        report,
        errors_csv,
        rows,
    })
}

/// Collects the rows of a file the validator has passed (its findings are already known).
struct Rows {
    format: Format,
    rows: Vec<ImportRow>,
}

impl Sink for Rows {
    fn finding(&mut self, _: Finding) {}

    fn record(&mut self, r: &Record<'_>) {
        let Some(key) = r.key else { return };
        let user_id = (self.format == Format::One && !r.user_id.is_empty())
            .then(|| String::from_utf8_lossy(r.user_id).into_owned());
        self.rows.push(ImportRow {
            line_user_id: key.to_id_string(),
            user_id,
        });
    }
}

/// Reads the rows with the validator's own scanner, so the values are decoded
/// (quotes) exactly as they were checked.
fn read_rows(path: &Path, format: Format) -> std::io::Result<Vec<ImportRow>> {
    let mut sink = Rows {
        format,
        rows: Vec::new(),
    };
    stream_records(
        File::open(path)?,
        &mut sink,
        |header, sink| {
            let ending = check_header(header, FormatChoice::Auto, sink).ending;
            Ok((ScanConfig::new(format, ending), ()))
        },
        |_| None,
        |e| e,
    )?;
    Ok(sink.rows)
}

/// The job itself: validate, then apply in one transaction unless the file breaks a rule.
fn run(shared: &Shared, job_id: Uuid, params: &Params, upload: NamedTempFile) {
    let checked = check(upload.path());
    drop(upload);
    let mut guard = shared.lock();
    let inner = &mut *guard;
    let Some(job) = inner.imports.0.get_mut(&job_id) else {
        tracing::info!(job = %job_id, "import job dropped by a reset before it finished; nothing applied");
        return;
    };
    let outcome = checked.and_then(|c| {
        job.format = c.report.format.map(|f| f.number());
        job.rows = c.report.rows;
        job.errors = c.report.errors;
        job.warnings = c.report.warnings;
        job.errors_csv = Some(c.errors_csv);
        match c.rows {
            Some(rows) => {
                let blocked = params.kind == ImportType::Blocked;
                Ok(Some(inner.db.apply_import(
                    &params.channel_id,
                    blocked,
                    &rows,
                )?))
            }
            None => Ok(None),
        }
    });
    match outcome {
        Ok(Some(tally)) => {
            job.status = JobStatus::Completed;
            job.imported = tally.imported;
            job.created = tally.created;
        }
        Ok(None) => {
            job.status = JobStatus::Error;
            job.message = Some(format!(
                "the file breaks {} rule(s) (errors.csv lists them); nothing was imported",
                job.errors
            ));
        }
        Err(e) => {
            tracing::error!(job = %job_id, error = %e, "import job failed");
            job.status = JobStatus::Error;
            job.message = Some(format!("{e}; nothing was imported"));
        }
    }
    job.finished_at = Some(format_rfc3339_millis(http::now_ms()));
    tracing::info!(
        job = %job_id,
        status = ?job.status,
        rows = job.rows,
        imported = job.imported,
        errors = job.errors,
        warnings = job.warnings,
        "import finished"
    );
}

/// `line,column,value,rule,severity`, as `repro-line csv validate --errors-out` writes it.
async fn errors_csv(shared: &Shared, id: &str) -> Resp {
    let file = {
        let inner = shared.lock();
        let Some(job) = inner.imports.get(id) else {
            return no_job(id);
        };
        if job.status == JobStatus::Uploading {
            return error(
                StatusCode::CONFLICT,
                "the job is still Uploading; errors.csv is ready once it has finished",
            );
        }
        // A handle opened now still reads the file if the job is forgotten meanwhile.
        job.errors_csv.as_ref().map(NamedTempFile::reopen)
    };
    let body = match file {
        None => Ok(ERRORS_CSV_HEADER.as_bytes().to_vec()),
        Some(Err(e)) => Err(e.to_string()),
        Some(Ok(mut f)) => tokio::task::spawn_blocking(move || {
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).map(|_| buf)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string())),
    };
    match body {
        Ok(body) => {
            let mut resp = Response::new(Full::new(Bytes::from(body)));
            resp.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            resp
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot read errors.csv: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_millis(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            format_rfc3339_millis(1_767_225_599_999),
            "2025-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn params_name_the_broken_rule() {
        let rule = |q: &str| parse_params(Some(q)).err().map(|(r, _)| r);
        assert_eq!(rule("channel_id=123&type=blocked"), None);
        assert_eq!(rule("type=blocked"), Some("channel_id.missing"));
        assert_eq!(
            rule("channel_id=12-3&type=blocked"),
            Some("channel_id.invalid")
        );
        assert_eq!(rule("channel_id=123"), Some("type.missing"));
        assert_eq!(rule("channel_id=123&type=friends"), Some("type.invalid"));
        assert_eq!(
            rule("channel_id=1&channel_id=2&type=blocked"),
            Some("query.repeated")
        );
        assert_eq!(rule("channel=1&type=blocked"), Some("query.unknown"));
        let p = parse_params(Some("type=deliverable&channel_id=abc123")).unwrap();
        assert_eq!(
            (p.channel_id.as_str(), p.kind),
            ("abc123", ImportType::Deliverable)
        );
    }

    #[test]
    fn content_types() {
        let ok = |v: &'static str| csv_content_type(Some(&HeaderValue::from_static(v)));
        assert!(csv_content_type(None));
        assert!(ok("text/csv"));
        assert!(ok("Text/CSV; charset=utf-8"));
        assert!(!ok("multipart/form-data; boundary=x"));
        assert!(!ok("application/json"));
    }

    #[test]
    fn rows_are_decoded_like_the_validator_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.csv");
        let a = "U4af4980629a1b2c3d4e5f60718293a4b";
        let b = "U00000000000000000000000000000000";
        std::fs::write(
            &p,
            format!("line_user_id,user_id\r\n{a},\"x,\"\"y\"\r\n{b},\r\n"),
        )
        .unwrap();
        let rows = read_rows(&p, Format::One).unwrap();
        assert_eq!(
            rows,
            [
                ImportRow {
                    line_user_id: a.into(),
                    user_id: Some("x,\"y".into())
                },
                ImportRow {
                    line_user_id: b.into(),
                    user_id: None
                }
            ]
        );
        std::fs::write(&p, format!("line_user_id\n{a}")).unwrap();
        assert_eq!(
            read_rows(&p, Format::Two).unwrap(),
            [ImportRow {
                line_user_id: a.into(),
                user_id: None
            }]
        );
    }
}
