//! Repro's S3 auto-import: the object key, and the upload.
//!
//! `s3://repro-data-store/<app_id>/line_user_id/<channel_id>/<yyyy>/<mm>/<dd>/followed/<name>.csv`
//! for deliverable users, `…/unfollowed/<name>.csv` for blocked users. The
//! date is the upload date. Uploading the same key twice on one day can make
//! Repro skip the first file and process the last twice, so names get a unique
//! suffix unless asked not to.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use serde::Serialize;

use crate::Error;

pub const DEFAULT_BUCKET: &str = "repro-data-store";
/// The date folder is the upload day in Japan, where Repro runs the import.
pub const DEFAULT_TIMEZONE: &str = "Asia/Tokyo";
/// S3's limit on an object key, in UTF-8 bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Used when neither `--region`, `AWS_REGION`/`AWS_DEFAULT_REGION` nor the
/// profile names one.
pub const DEFAULT_REGION: &str = "ap-northeast-1";
/// Files up to this size go up in one PUT; larger ones in parts of this size.
pub const DEFAULT_PART_SIZE: usize = 16 << 20;
/// S3's smallest part (all but the last).
pub const MIN_PART_SIZE: usize = 5 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportType {
    /// Friends: `followed/`.
    Deliverable,
    /// Blocked users: `unfollowed/`.
    Blocked,
}

impl ImportType {
    pub fn dir(self) -> &'static str {
        match self {
            ImportType::Deliverable => "followed",
            ImportType::Blocked => "unfollowed",
        }
    }
}

/// A calendar date (proleptic Gregorian, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    /// `YYYY-MM-DD` or `YYYY/MM/DD` (the key's own form), a real calendar date.
    pub fn parse(s: &str) -> Result<Date, Error> {
        let bad = || {
            Error::Usage(format!(
                "--date {s:?}: expected YYYY-MM-DD or YYYY/MM/DD, a real date"
            ))
        };
        let b = s.as_bytes();
        if b.len() != 10 || !(b[4] == b'-' || b[4] == b'/') || b[7] != b[4] {
            return Err(bad());
        }
        let num = |r: std::ops::Range<usize>| -> Result<u32, Error> {
            let part = s.get(r).ok_or_else(bad)?;
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            part.parse().map_err(|_| bad())
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let year = year as i32;
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(bad());
        }
        Ok(Date { year, month, day })
    }

    pub fn from_unix(secs: u64) -> Date {
        civil_from_days((secs / 86_400) as i64)
    }

    pub fn today_utc() -> Date {
        Date::from_unix(unix_now())
    }

    /// The calendar date at `unix_secs` in the IANA time zone `tz` (e.g. `Asia/Tokyo`).
    pub fn in_time_zone(unix_secs: i64, tz: &str) -> Result<Date, Error> {
        let zone = jiff::tz::TimeZone::get(tz).map_err(|e| {
            Error::Usage(format!(
                "--timezone {tz:?}: not a time zone name like Asia/Tokyo or UTC ({e})"
            ))
        })?;
        let ts = jiff::Timestamp::from_second(unix_secs)
            .map_err(|e| Error::Usage(format!("time {unix_secs}: {e}")))?;
        let d = zone.to_datetime(ts).date();
        Ok(Date {
            year: i32::from(d.year()),
            month: d.month() as u32,
            day: d.day() as u32,
        })
    }

    /// `yyyy/mm/dd`
    pub fn key_path(&self) -> String {
        format!("{:04}/{:02}/{:02}", self.year, self.month, self.day)
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

/// `--now`: an RFC 3339 time (tests pin the clock with it) → Unix seconds.
pub fn parse_now(s: &str) -> Result<i64, Error> {
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_second())
        .map_err(|e| Error::Usage(format!("--now {s:?}: expected an RFC 3339 time ({e})")))
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 → date.
fn civil_from_days(z: i64) -> Date {
    let (year, month, day) = repro_line_core::protocol::civil_from_days(z);
    Date {
        year: year as i32,
        month,
        day,
    }
}

/// Repro's file-name rule (no `/`, no whitespace) plus `.csv` and no control
/// characters.
pub fn check_file_name(name: &str) -> Result<(), Error> {
    let bad = |why: &str| Err(Error::Usage(format!("file name {name:?}: {why}")));
    if name.contains('/') {
        return bad("Repro file names must not contain `/`");
    }
    if name.chars().any(char::is_whitespace) {
        return bad("Repro file names must not contain whitespace; rename the file");
    }
    if name.chars().any(char::is_control) {
        return bad("control characters are not allowed");
    }
    // Characters a URL or a shell would take for something else: the key
    // would not be the name Repro's import reads.
    if let Some(c) = name.chars().find(|c| matches!(c, '?' | '#' | '%' | '\\')) {
        return bad(&format!(
            "{c:?} is not allowed in an S3 import file name; rename the file"
        ));
    }
    match name.strip_suffix(".csv") {
        Some(stem) if !stem.is_empty() && stem != "." && stem != ".." => Ok(()),
        _ => bad("must be NAME.csv (lowercase .csv)"),
    }
}

/// `users.csv` → `users-<hhmmss>-<6 hex>.csv` (UTC time, random hex), so two
/// uploads on one day never share a key.
pub fn unique_name(name: &str, unix_secs: u64, random_hex: &str) -> String {
    let stem = name.strip_suffix(".csv").unwrap_or(name);
    let s = unix_secs % 86_400;
    format!(
        "{stem}-{:02}{:02}{:02}-{random_hex}.csv",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// Six random hex digits.
pub fn random_hex6() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..6].to_string()
}

/// The app ID as a key segment: something Repro issued, so only checked to be
/// one safe path segment.
fn check_app_id(app_id: &str) -> Result<(), Error> {
    let ok = !app_id.is_empty()
        && app_id.len() <= 128
        && app_id != "."
        && app_id != ".."
        && app_id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--app-id {app_id:?}: expected your Repro app ID (printable ASCII, no `/`)"
        )))
    }
}

/// Everything that names one upload.
#[derive(Debug, Clone)]
pub struct KeySpec<'a> {
    pub app_id: &'a str,
    pub channel_id: &'a str,
    pub import_type: ImportType,
    pub date: Date,
    /// The final file name (after [`unique_name`] if wanted).
    pub file_name: &'a str,
}

/// `<app_id>/line_user_id/<channel_id>/<yyyy>/<mm>/<dd>/<followed|unfollowed>/<file_name>`
pub fn object_key(spec: &KeySpec<'_>) -> Result<String, Error> {
    check_app_id(spec.app_id)?;
    repro_line_core::validate::channel_id(spec.channel_id)
        .map_err(|e| Error::Usage(format!("--channel-id: {e}")))?;
    check_file_name(spec.file_name)?;
    let key = format!(
        "{}/line_user_id/{}/{}/{}/{}",
        spec.app_id,
        spec.channel_id,
        spec.date.key_path(),
        spec.import_type.dir(),
        spec.file_name
    );
    if key.len() > MAX_KEY_BYTES {
        return Err(Error::Usage(format!(
            "the S3 key would be {} bytes; S3 allows at most {MAX_KEY_BYTES}: use a shorter file name",
            key.len()
        )));
    }
    Ok(key)
}

/// S3's bucket naming rules: 3–63 characters, lowercase letters, digits, `.`
/// and `-`, starting and ending with a letter or digit.
pub fn check_bucket(bucket: &str) -> Result<(), Error> {
    let b = bucket.as_bytes();
    let ok = (3..=63).contains(&b.len())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric);
    if ok {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "--bucket {bucket:?}: not an S3 bucket name (3-63 lowercase letters, digits, `.` or `-`)"
        )))
    }
}

pub fn s3_uri(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// The SDK's rule for any URL that carries credentials: https unless the host
/// is loopback. Checked before anything connects.
pub fn check_endpoint_url(flag: &str, url: &str) -> Result<(), Error> {
    match repro_line_core::endpoint::batch_url(url) {
        Ok(_) => Ok(()),
        Err(repro_line_core::Error::InsecureEndpoint(_)) => Err(Error::Usage(format!(
            "{flag} {url}: credentials would go in cleartext; use https (http only on loopback: 127.0.0.1, ::1, localhost)"
        ))),
        Err(e) => Err(Error::Usage(format!("{flag} {url}: {e}"))),
    }
}

/// The name to upload `local` as: its own name, checked, with the unique
/// suffix unless `keep_name`.
pub fn upload_name(local: &Path, keep_name: bool, unix_secs: u64) -> Result<String, Error> {
    let name = local
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Usage(format!("{}: not a UTF-8 file name", local.display())))?;
    check_file_name(name)?;
    Ok(if keep_name {
        name.to_string()
    } else {
        unique_name(name, unix_secs, &random_hex6())
    })
}

#[derive(Debug, Clone)]
pub struct UploadOptions {
    pub bucket: String,
    /// e.g. `http://127.0.0.1:5000` for a local S3 (path-style requests).
    pub endpoint_url: Option<String>,
    pub region: Option<String>,
    pub part_size: usize,
    /// Parts in flight at once.
    pub concurrency: usize,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            bucket: DEFAULT_BUCKET.to_string(),
            endpoint_url: None,
            region: None,
            part_size: DEFAULT_PART_SIZE,
            concurrency: 4,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UploadOutcome {
    pub uri: String,
    pub bytes: u64,
    pub parts: u64,
    pub elapsed_s: f64,
}

/// Static credentials and region from the shared AWS files, for when the
/// environment has none: `AWS_PROFILE` (default `default`) in
/// `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`) and
/// `AWS_CONFIG_FILE` (default `~/.aws/config`). SSO and role profiles are not
/// read; export their credentials (`aws configure export-credentials --format env`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProfileCredentials {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
}

/// Reads `[section]` `key = value` pairs from an AWS-style INI text.
fn ini_section(text: &str, section: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside {
            if let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
    }
    out
}

pub fn profile_credentials() -> ProfileCredentials {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let profile = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let home = env("HOME").unwrap_or_default();
    let creds_path =
        env("AWS_SHARED_CREDENTIALS_FILE").unwrap_or_else(|| format!("{home}/.aws/credentials"));
    let config_path = env("AWS_CONFIG_FILE").unwrap_or_else(|| format!("{home}/.aws/config"));
    let mut c = ProfileCredentials::default();
    if let Ok(text) = std::fs::read_to_string(&creds_path) {
        for (k, v) in ini_section(&text, &profile) {
            match k.as_str() {
                "aws_access_key_id" => c.access_key_id = Some(v),
                "aws_secret_access_key" => c.secret_access_key = Some(v),
                "aws_session_token" => c.session_token = Some(v),
                _ => {}
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(&config_path) {
        let section = if profile == "default" {
            "default".to_string()
        } else {
            format!("profile {profile}")
        };
        for (k, v) in ini_section(&text, &section) {
            if k == "region" {
                c.region = Some(v);
            }
        }
    }
    c
}

fn s3_err(e: impl std::fmt::Display) -> Error {
    Error::S3(e.to_string())
}

/// Uploads `path` to `key`. `progress(done, total)` is called as bytes are handed
/// to the uploader. Credentials: the standard AWS environment variables, else
/// the shared profile files, else the instance/container role.
pub fn upload_file(
    path: &Path,
    key: &str,
    opts: &UploadOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<UploadOutcome, Error> {
    let started = std::time::Instant::now();
    check_bucket(&opts.bucket)?;
    // Credentials and the file go to this URL: never in cleartext off loopback.
    if let Some(url) = &opts.endpoint_url {
        check_endpoint_url("--endpoint-url", url)?;
    }
    for var in ["AWS_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"] {
        if let Some(url) = std::env::var(var).ok().filter(|v| !v.is_empty()) {
            check_endpoint_url(var, &url)?;
        }
    }
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let total = file.metadata().map_err(read_err)?.len();
    let part_size = opts.part_size.max(MIN_PART_SIZE);

    // reqwest's rustls has no built-in provider here (the SDK picks ring); install it once.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(&opts.bucket);
    let profile = profile_credentials();
    if env("AWS_ACCESS_KEY_ID").is_none() {
        if let (Some(id), Some(secret)) = (&profile.access_key_id, &profile.secret_access_key) {
            builder = builder
                .with_access_key_id(id)
                .with_secret_access_key(secret);
            if let Some(t) = &profile.session_token {
                builder = builder.with_token(t);
            }
        }
    }
    let region = opts
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or(profile.region)
        .unwrap_or_else(|| DEFAULT_REGION.to_string());
    builder = builder.with_region(region);
    if let Some(url) = &opts.endpoint_url {
        builder = builder
            .with_endpoint(url)
            .with_allow_http(url.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    let store = builder.build().map_err(s3_err)?;
    let location = object_store::path::Path::parse(key).map_err(s3_err)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("async runtime: {e}")))?;
    let parts = runtime.block_on(async {
        if total <= part_size as u64 {
            let mut bytes = Vec::with_capacity(total as usize);
            file.read_to_end(&mut bytes).map_err(read_err)?;
            progress(bytes.len() as u64, total);
            store
                .put(&location, PutPayload::from(bytes))
                .await
                .map_err(s3_err)?;
            return Ok::<u64, Error>(1);
        }
        let upload = store.put_multipart(&location).await.map_err(s3_err)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, part_size);
        let mut buf = vec![0u8; part_size];
        let mut done = 0u64;
        let mut parts = 0u64;
        loop {
            let mut n = 0;
            while n < buf.len() {
                match file.read(&mut buf[n..]) {
                    Ok(0) => break,
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = writer.abort().await;
                        return Err(read_err(e));
                    }
                }
            }
            if n == 0 {
                break;
            }
            if let Err(e) = writer.wait_for_capacity(opts.concurrency.max(1)).await {
                let _ = writer.abort().await;
                return Err(s3_err(e));
            }
            writer.put(bytes::Bytes::copy_from_slice(&buf[..n]));
            parts += 1;
            done += n as u64;
            progress(done, total);
        }
        writer.finish().await.map_err(s3_err)?;
        Ok(parts)
    })?;
    // Check what landed: the size S3 reports must be the file's.
    let meta = runtime.block_on(store.head(&location)).map_err(s3_err)?;
    if meta.size != total {
        return Err(Error::S3(format!(
            "uploaded object is {} bytes, the file {total}",
            meta.size
        )));
    }
    Ok(UploadOutcome {
        uri: s3_uri(&opts.bucket, key),
        bytes: total,
        parts,
        elapsed_s: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(Date::from_unix(0).to_string(), "1970-01-01");
        assert_eq!(Date::from_unix(951_782_400).to_string(), "2000-02-29");
        assert_eq!(Date::from_unix(1_767_225_599).to_string(), "2025-12-31");
        assert_eq!(Date::parse("2024-02-29").unwrap().key_path(), "2024/02/29");
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "24-01-01",
            "2024-00-10",
            "2024-01-32",
            "2024/01-01",
            "+024-01-01",
        ] {
            assert!(Date::parse(bad).is_err(), "{bad}");
        }
        // Every day round-trips through the calendar.
        let mut d = 0u64;
        while d < 200 * 365 {
            let date = Date::from_unix(d * 86_400);
            assert_eq!(Date::parse(&date.to_string()).unwrap(), date);
            d += 1;
        }
    }

    #[test]
    fn keys() {
        let spec = KeySpec {
            app_id: "app1",
            channel_id: "1234567890",
            import_type: ImportType::Blocked,
            date: Date::parse("2025-03-07").unwrap(),
            file_name: "blocked.csv",
        };
        assert_eq!(
            s3_uri(DEFAULT_BUCKET, &object_key(&spec).unwrap()),
            "s3://repro-data-store/app1/line_user_id/1234567890/2025/03/07/unfollowed/blocked.csv"
        );
        for bad in [
            "a b.csv",
            "a\tb.csv",
            "users.txt",
            ".csv",
            "users.CSV",
            "a/b.csv",
        ] {
            assert!(
                object_key(&KeySpec {
                    file_name: bad,
                    ..spec.clone()
                })
                .is_err(),
                "{bad}"
            );
        }
        assert!(object_key(&KeySpec {
            channel_id: "12 34",
            ..spec.clone()
        })
        .is_err());
        assert!(object_key(&KeySpec {
            app_id: "a/b",
            ..spec
        })
        .is_err());
    }

    #[test]
    fn unique_names() {
        assert_eq!(
            unique_name("users.csv", 3_661, "abc123"),
            "users-010101-abc123.csv"
        );
        let h = random_hex6();
        assert_eq!(h.len(), 6);
        assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
        let n = upload_name(Path::new("/tmp/x/users.csv"), false, 0).unwrap();
        assert!(
            n.starts_with("users-")
                && n.ends_with(".csv")
                && n.len() == "users-hhmmss-abcdef.csv".len()
        );
        assert_eq!(
            upload_name(Path::new("users.csv"), true, 0).unwrap(),
            "users.csv"
        );
        assert!(upload_name(Path::new("my users.csv"), true, 0).is_err());
    }

    #[test]
    fn ini() {
        let text = "[default]\naws_access_key_id = A\n[profile x]\nregion = r\n[x]\nAWS_SECRET_ACCESS_KEY=S\n";
        assert_eq!(
            ini_section(text, "default"),
            vec![("aws_access_key_id".into(), "A".into())]
        );
        assert_eq!(
            ini_section(text, "profile x"),
            vec![("region".into(), "r".into())]
        );
        assert_eq!(
            ini_section(text, "x"),
            vec![("aws_secret_access_key".into(), "S".into())]
        );
    }
}
