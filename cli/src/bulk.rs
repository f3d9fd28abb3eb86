//! Bulk tools (CSV import validation, S3 auto-import, LINE followers, reconcile).
//! Only wiring lives here; the logic is in `repro-line-bulk`.
//!
//! Exit codes: 0 done (warnings allowed), 1 the input is invalid or rows were
//! left out, 2 a file, the network or an argument could not be used.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use repro_line_bulk::convert::{Columns, ConvertOptions, SourceEncoding};
use repro_line_bulk::fix::{fix_file, FixOptions};
use repro_line_bulk::followers::{fetch_followers, FollowersEvent, FollowersOptions, Secret};
use repro_line_bulk::reconcile::{reconcile, Pattern, ReconcileOptions};
use repro_line_bulk::s3::{self, Date, ImportType, KeySpec, UploadOptions};
use repro_line_bulk::{validate_file, Error, Format, FormatChoice, ValidateOptions};

/// How many findings `csv validate` prints (all of them go to --errors-out).
const SHOWN_FINDINGS: usize = 20;

#[derive(Debug, Subcommand)]
pub enum BulkCommand {
    /// Check and repair Repro LINE-import CSV files.
    #[command(subcommand)]
    Csv(CsvCommand),
    /// Repro's S3 auto-import: object keys and uploads.
    #[command(subcommand)]
    S3(S3Command),
    /// LINE Messaging API helpers.
    #[command(subcommand)]
    Line(LineCommand),
    /// Match your users against your LINE followers (import patterns 1 and 3).
    Reconcile(ReconcileArgs),
}

#[derive(Debug, Subcommand)]
pub enum CsvCommand {
    /// Check an import CSV against Repro's rules, streaming, with exact line numbers.
    ///
    /// Exit 0: valid (warnings allowed). 1: invalid. 2: unreadable.
    Validate(ValidateArgs),
    /// Write an importable copy: strip the BOM, LF line endings, drop blank lines and
    /// exact duplicate rows, move rule-breaking rows to a rejects file, split under
    /// the size limit. Never changes a value.
    Fix(FixArgs),
}

#[derive(Debug, Subcommand)]
pub enum S3Command {
    /// Print the s3:// URI a file must be uploaded to for Repro's auto-import.
    Key(KeyArgs),
    /// Validate a file, then upload it to its auto-import key.
    Upload(UploadArgs),
}

#[derive(Debug, Subcommand)]
pub enum LineCommand {
    /// Download every follower's LINE user ID (Format 2 CSV).
    Followers(FollowersArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// Whichever the header names.
    Auto,
    /// `line_user_id,user_id`
    #[value(name = "1")]
    One,
    /// `line_user_id`
    #[value(name = "2")]
    Two,
}

impl From<FormatArg> for FormatChoice {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Auto => FormatChoice::Auto,
            FormatArg::One => FormatChoice::One,
            FormatArg::Two => FormatChoice::Two,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TypeArg {
    /// Friends who can receive messages (`followed/`).
    #[value(alias = "followed")]
    Deliverable,
    /// Users who blocked the account (`unfollowed/`).
    #[value(alias = "unfollowed")]
    Blocked,
}

impl From<TypeArg> for ImportType {
    fn from(t: TypeArg) -> Self {
        match t {
            TypeArg::Deliverable => ImportType::Deliverable,
            TypeArg::Blocked => ImportType::Blocked,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PatternArg {
    /// Deliverable = all users (Format 1); blocked = users not among the followers (Format 2).
    #[value(name = "1")]
    One,
    /// Deliverable = users who are followers (Format 1).
    #[value(name = "3")]
    Three,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The CSV file.
    file: PathBuf,
    /// Which header to require.
    #[arg(long, value_enum, default_value = "auto")]
    format: FormatArg,
    /// Write every finding as CSV `line,column,value,rule,severity`.
    #[arg(long, value_name = "FILE")]
    errors_out: Option<PathBuf>,
    /// Print one JSON object (summary, counts per rule, first findings) on stdout.
    #[arg(long)]
    json: bool,
    /// Worker threads (default: one per core).
    #[arg(long, hide = true, default_value_t = 0)]
    threads: usize,
}

#[derive(Debug, Args)]
pub struct FixArgs {
    /// The CSV file to fix (left untouched).
    file: PathBuf,
    /// The fixed file. When it must be split: OUT-stem.part-001.csv, .part-002.csv, …
    #[arg(short, long, value_name = "OUT")]
    out: PathBuf,
    /// Largest output part in MB (1 MB = 1,000,000 bytes), header included; at most 500.
    #[arg(long, default_value_t = 500.0, value_name = "MB")]
    split_mb: f64,
    /// Where rejected rows go (default: OUT with .csv replaced by .rejects.csv).
    #[arg(long, value_name = "FILE")]
    rejects: Option<PathBuf>,
    /// Which header to require.
    #[arg(long, value_enum, default_value = "auto")]
    format: FormatArg,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Take `line_user_id` from this column of the export (other columns are dropped).
    #[arg(long, value_name = "NAME")]
    line_user_id_column: Option<String>,
    /// Take `user_id` from this column (Format 1); without it the output is Format 2.
    #[arg(long, value_name = "NAME", requires = "line_user_id_column")]
    user_id_column: Option<String>,
    /// The export's encoding: cp932 (= shift_jis, Windows-31J) or utf-16; transcoded to UTF-8.
    #[arg(long, value_name = "ENCODING")]
    from_encoding: Option<String>,
}

#[derive(Debug, Args)]
pub struct KeyTarget {
    /// Your Repro app ID.
    #[arg(long)]
    app_id: String,
    /// The LINE channel ID.
    #[arg(long)]
    channel_id: String,
    /// Deliverable users (friends; folder `followed`) or blocked users (folder `unfollowed`).
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    import_type: TypeArg,
    /// Upload date, YYYY-MM-DD or YYYY/MM/DD [default: today in --timezone]. Repro reads the folder of the upload day.
    #[arg(long)]
    date: Option<String>,
    /// IANA time zone of the date folder (Repro's import runs on Japan time).
    #[arg(long, default_value = s3::DEFAULT_TIMEZONE, value_name = "ZONE")]
    timezone: String,
    /// The current time, RFC 3339 (for tests).
    #[arg(long, hide = true)]
    now: Option<String>,
    /// Use the file name as is, without the unique `-<UTC hhmmss>-<6 hex>` suffix.
    /// Uploading one name twice on a day can make Repro skip one file and process the other twice.
    #[arg(long)]
    keep_name: bool,
}

#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(flatten)]
    target: KeyTarget,
    /// The CSV file (only its name is used). Names must end in .csv and hold no `/` or whitespace.
    file: PathBuf,
    /// Bucket in the printed URI.
    #[arg(long, default_value = s3::DEFAULT_BUCKET)]
    bucket: String,
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The CSV files (e.g. the parts `csv fix --split-mb` writes), uploaded
    /// concurrently, each to its own key. Names must end in .csv and hold no
    /// `/`, whitespace or `?#%\`.
    #[arg(required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    target: KeyTarget,
    #[arg(long, default_value = s3::DEFAULT_BUCKET)]
    bucket: String,
    /// S3-compatible endpoint, e.g. http://127.0.0.1:5000 (path-style requests).
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// AWS region [default: AWS_REGION, AWS_DEFAULT_REGION, the profile's, else ap-northeast-1].
    #[arg(long)]
    region: Option<String>,
    /// Upload even if validation finds errors.
    #[arg(long)]
    force: bool,
    /// Multipart part size in MiB (at least 5).
    #[arg(long, hide = true, default_value_t = 16)]
    part_size_mib: usize,
    /// Files uploaded at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    concurrency: usize,
}

#[derive(Debug, Args)]
pub struct FollowersArgs {
    /// Name of the environment variable holding the channel access token (the token is never printed).
    #[arg(long, value_name = "VAR")]
    channel_token_env: String,
    /// Messaging API base URL.
    #[arg(long, default_value = repro_line_bulk::followers::DEFAULT_API_BASE, value_name = "URL")]
    api_base: String,
    /// Output CSV (Format 2: `line_user_id`).
    #[arg(short, long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// All your users, Format 1 (`line_user_id,user_id`).
    #[arg(long, value_name = "FILE")]
    users: PathBuf,
    /// Your LINE followers (from `repro-line line followers`), Format 2 or 1.
    #[arg(long, value_name = "FILE")]
    followers: PathBuf,
    /// Import pattern: 3 = users ∩ followers; 1 = all users + blocked list.
    #[arg(long, value_enum)]
    pattern: PatternArg,
    /// Deliverable users (Format 1).
    #[arg(short, long, value_name = "FILE")]
    out: PathBuf,
    /// Pattern 1: users who are not followers (Format 2).
    #[arg(long, value_name = "FILE")]
    blocked_out: Option<PathBuf>,
}

pub fn run(cmd: BulkCommand) -> i32 {
    let result = match cmd {
        BulkCommand::Csv(CsvCommand::Validate(a)) => validate(a),
        BulkCommand::Csv(CsvCommand::Fix(a)) => fix(a),
        BulkCommand::S3(S3Command::Key(a)) => key(a),
        BulkCommand::S3(S3Command::Upload(a)) => upload(a),
        BulkCommand::Line(LineCommand::Followers(a)) => followers(a),
        BulkCommand::Reconcile(a) => reconcile_cmd(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, Error> {
    serde_json::to_string(v).map_err(|e| Error::Internal(format!("JSON: {e}")))
}

fn validate(a: ValidateArgs) -> Result<i32, Error> {
    let opts = ValidateOptions {
        format: a.format.into(),
        errors_out: a.errors_out.clone(),
        sample: if a.json { 1000 } else { SHOWN_FINDINGS },
        threads: a.threads,
        ..Default::default()
    };
    let r = validate_file(&a.file, &opts)?;
    if a.json {
        println!("{}", to_json(&r)?);
    } else {
        for f in &r.findings {
            println!("{f}");
        }
        if r.findings_truncated {
            let more = r.findings_total - r.findings.len() as u64;
            match &a.errors_out {
                Some(_) => println!("… {more} more"),
                None => println!("… {more} more (all of them: --errors-out FILE)"),
            }
        }
        if let Some(p) = &a.errors_out {
            println!("wrote {} finding(s) to {}", r.findings_total, p.display());
        }
        println!("{}", r.summary_line());
    }
    Ok(i32::from(!r.valid))
}

fn fix(a: FixArgs) -> Result<i32, Error> {
    if !a.split_mb.is_finite() || a.split_mb <= 0.0 {
        return Err(Error::Usage(format!(
            "--split-mb {}: expected a positive number",
            a.split_mb
        )));
    }
    let from_encoding = match &a.from_encoding {
        Some(e) => Some(SourceEncoding::parse(e)?),
        None => None,
    };
    let opts = FixOptions {
        out: a.out,
        rejects: a.rejects,
        split_bytes: (a.split_mb * 1e6) as u64,
        format: a.format.into(),
        convert: ConvertOptions {
            from_encoding,
            columns: a.line_user_id_column.map(|line_user_id| Columns {
                line_user_id,
                user_id: a.user_id_column,
            }),
        },
    };
    let r = fix_file(&a.file, &opts)?;
    if a.json {
        println!("{}", to_json(&r)?);
    } else {
        print!("{}", r.summary());
    }
    let spaced = r
        .warnings_by_rule
        .get(repro_line_bulk::Rule::UserIdWhitespace.id())
        .copied()
        .unwrap_or(0);
    if spaced > 0 {
        eprintln!(
            "warning: {spaced} user ID(s) start or end with a space (kept as they are; `csv validate` shows the lines): they will not match the user IDs your app sets"
        );
    }
    // Rows left out are something a script must notice.
    Ok(i32::from(r.rejected > 0))
}

/// The current time in Unix seconds (`--now` pins it).
fn now_secs(t: &KeyTarget) -> Result<i64, Error> {
    match &t.now {
        Some(n) => s3::parse_now(n),
        None => Ok(s3::unix_now() as i64),
    }
}

fn resolve_date(t: &KeyTarget, now: i64) -> Result<Date, Error> {
    let today = Date::in_time_zone(now, &t.timezone)?;
    match &t.date {
        None => Ok(today),
        Some(d) => {
            let d = Date::parse(d)?;
            if d != today {
                eprintln!(
                    "note: --date {d} is not today ({today} in {}); Repro reads the folder of the upload day",
                    t.timezone
                );
            }
            Ok(d)
        }
    }
}

/// The time and the date folder, worked out once per command.
fn when(t: &KeyTarget) -> Result<(i64, Date), Error> {
    let now = now_secs(t)?;
    Ok((now, resolve_date(t, now)?))
}

fn object_key(
    t: &KeyTarget,
    (now, date): (i64, Date),
    file: &std::path::Path,
) -> Result<String, Error> {
    let name = s3::upload_name(file, t.keep_name, now.max(0) as u64)?;
    s3::object_key(&KeySpec {
        app_id: &t.app_id,
        channel_id: &t.channel_id,
        import_type: t.import_type.into(),
        date,
        file_name: &name,
    })
}

fn key(a: KeyArgs) -> Result<i32, Error> {
    s3::check_bucket(&a.bucket)?;
    let key = object_key(&a.target, when(&a.target)?, &a.file)?;
    println!("{}", s3::s3_uri(&a.bucket, &key));
    Ok(0)
}

fn progress_bar(len: Option<u64>, template: &str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = match len {
        Some(n) => ProgressBar::with_draw_target(Some(n), target),
        None => ProgressBar::with_draw_target(None, target),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

fn upload(a: UploadArgs) -> Result<i32, Error> {
    // Everything that can be checked without the network, first: the URL
    // (credentials never go in cleartext off loopback), the bucket, the keys.
    if let Some(url) = &a.endpoint_url {
        s3::check_endpoint_url("--endpoint-url", url)?;
    }
    s3::check_bucket(&a.bucket)?;
    let keys = unique_keys(&a)?;
    let mut total = 0u64;
    let mut invalid = Vec::new();
    for file in &a.files {
        let check = validate_file(file, &ValidateOptions::default())?;
        eprintln!("{}", check.summary_line());
        if !check.valid {
            for f in check.findings.iter().take(SHOWN_FINDINGS) {
                eprintln!("{f}");
            }
            invalid.push((file.clone(), check.errors));
        }
        match (a.target.import_type, check.format) {
            (TypeArg::Blocked, Some(Format::One)) => {
                eprintln!("note: blocked lists are usually Format 2 (`line_user_id` only)")
            }
            (TypeArg::Deliverable, Some(Format::Two)) => eprintln!(
                "warning: {} is Format 2 (`line_user_id` only) uploaded as deliverable: its {} user(s) will be broadcast-only, not linked to a Repro user ID; upload Format 1 (`line_user_id,user_id`) to link them",
                file.display(),
                check.rows
            ),
            _ => {}
        }
        total += check.bytes;
    }
    if let Some((path, errors)) = invalid.first() {
        if a.force {
            eprintln!("warning: uploading invalid file(s) because of --force");
        } else {
            return Err(Error::Invalid {
                path: path.clone(),
                errors: *errors,
            });
        }
    }
    let opts = UploadOptions {
        bucket: a.bucket.clone(),
        endpoint_url: a.endpoint_url.clone(),
        region: a.region.clone(),
        part_size: a.part_size_mib.saturating_mul(1 << 20),
        ..Default::default()
    };
    let bar = progress_bar(
        Some(total),
        "uploading {msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    );
    bar.set_message(format!("{} file(s)", a.files.len()));
    let started = std::time::Instant::now();
    let results = upload_all(&a.files, &keys, &opts, a.concurrency.max(1), &bar);
    bar.finish_and_clear();
    let mut failed = 0;
    let mut bytes = 0;
    let mut parts = 0;
    for (file, r) in a.files.iter().zip(&results) {
        match r {
            Ok(o) => {
                bytes += o.bytes;
                parts += o.parts;
                println!("{}", o.uri);
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {}: {e}", file.display());
            }
        }
    }
    eprintln!(
        "uploaded {} of {} file(s), {bytes} bytes in {parts} part(s), {:.1} s{}",
        a.files.len() - failed,
        a.files.len(),
        started.elapsed().as_secs_f64(),
        if failed > 0 {
            format!("; {failed} failed (upload them again: each gets a new key)")
        } else {
            String::new()
        }
    );
    Ok(if failed > 0 { 2 } else { 0 })
}

/// One key per file, no two alike (Repro may skip or double a file whose key repeats).
fn unique_keys(a: &UploadArgs) -> Result<Vec<String>, Error> {
    let mut keys: Vec<String> = Vec::with_capacity(a.files.len());
    let when = when(&a.target)?;
    for file in &a.files {
        let mut key = object_key(&a.target, when, file)?;
        let mut tries = 0;
        while keys.contains(&key) {
            if a.target.keep_name || tries > 8 {
                return Err(Error::Usage(format!(
                    "{} would get the key of an earlier file ({key}); give the files different names",
                    file.display()
                )));
            }
            key = object_key(&a.target, when, file)?;
            tries += 1;
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Uploads the files `concurrency` at a time; one result per file, in order.
fn upload_all(
    files: &[PathBuf],
    keys: &[String],
    opts: &UploadOptions,
    concurrency: usize,
    bar: &ProgressBar,
) -> Vec<Result<s3::UploadOutcome, Error>> {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let sent = AtomicU64::new(0);
    let results: Mutex<Vec<Option<Result<s3::UploadOutcome, Error>>>> =
        Mutex::new((0..files.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..concurrency.min(files.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (Some(file), Some(key)) = (files.get(i), keys.get(i)) else {
                    return;
                };
                let mut mine = 0u64;
                let r = s3::upload_file(file, key, opts, &mut |done, _| {
                    let now = sent.fetch_add(done.saturating_sub(mine), Ordering::Relaxed);
                    bar.set_position(now + done.saturating_sub(mine));
                    mine = mine.max(done);
                });
                if let Ok(mut all) = results.lock() {
                    if let Some(slot) = all.get_mut(i) {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Internal("upload did not run".into()))))
        .collect()
}

fn followers(a: FollowersArgs) -> Result<i32, Error> {
    let token = std::env::var(&a.channel_token_env).map_err(|_| {
        Error::Usage(format!(
            "environment variable {} is not set (it should hold the channel access token)",
            a.channel_token_env
        ))
    })?;
    s3::check_endpoint_url("--api-base", &a.api_base)?;
    let mut opts = FollowersOptions::new(Secret::new(token), a.out.clone());
    opts.api_base = a.api_base.clone();
    let tty = std::io::stderr().is_terminal();
    let bar = progress_bar(None, "{spinner} {msg}");
    bar.enable_steady_tick(Duration::from_millis(200));
    let mut on_event = |e: &FollowersEvent| match e {
        FollowersEvent::Page { pages, followers } => {
            let msg = format!("{followers} followers ({pages} pages)");
            if tty {
                bar.set_message(msg);
            } else if pages % 10 == 1 {
                eprintln!("{msg}");
            }
        }
        FollowersEvent::Waiting {
            reason,
            wait,
            attempt,
        } => {
            let msg = format!(
                "{reason}: waiting {:.1} s (retry {attempt})",
                wait.as_secs_f64()
            );
            if tty {
                bar.set_message(msg);
            } else {
                eprintln!("{msg}");
            }
        }
    };
    let report = fetch_followers(&opts, &mut on_event);
    bar.finish_and_clear();
    let report = report?;
    eprintln!(
        "{} followers in {} pages ({} retries) in {:.1} s",
        report.followers, report.pages, report.retries, report.elapsed_s
    );
    if report.invalid_skipped > 0 {
        eprintln!(
            "warning: left out {} ID(s) that are not valid LINE user IDs",
            report.invalid_skipped
        );
    }
    println!("{}", report.out.display());
    Ok(0)
}

fn reconcile_cmd(a: ReconcileArgs) -> Result<i32, Error> {
    let opts = ReconcileOptions {
        users: a.users,
        followers: a.followers,
        pattern: match a.pattern {
            PatternArg::One => Pattern::One,
            PatternArg::Three => Pattern::Three,
        },
        out: a.out,
        blocked_out: a.blocked_out,
    };
    let r = reconcile(&opts)?;
    println!("{}", r.summary());
    Ok(i32::from(r.skipped > 0 || !r.invalid_outputs.is_empty()))
}
