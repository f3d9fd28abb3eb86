//! Helpers for the bulk CLI tests: run the binary (and its common command
//! lines), make CSVs, a local S3 (moto_server), an in-process emulator with its
//! import endpoint, and raw HTTP on loopback.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_repro-line"))
}

/// Runs `repro-line ARGS` with no inherited AWS settings.
pub fn run(args: &[&str]) -> Output {
    run_env(args, &[])
}

pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = bin();
    c.args(args);
    for k in [
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(Stdio::null());
    c.output().expect("run repro-line")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code, showing the output when it differs.
pub fn assert_code(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

pub fn line_id(i: u64) -> String {
    format!(
        "U{:032x}",
        (i as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
    )
}

/// A Format 2 file (`line_user_id`) holding `ids`.
pub fn format2<I: IntoIterator<Item = String>>(ids: I) -> String {
    let mut s = String::from("line_user_id\n");
    for id in ids {
        s.push_str(&id);
        s.push('\n');
    }
    s
}

/// A valid Format 1 file with `rows` rows.
pub fn format1(rows: u64) -> String {
    let mut s = String::from("line_user_id,user_id\n");
    for i in 0..rows {
        s.push_str(&format!("{},user-{i}\n", line_id(i)));
    }
    s
}

pub fn write(dir: &Path, name: &str, data: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).expect("write test file");
    p
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One HTTP/1.1 request on loopback; returns (status, headers, body). It carries
/// a dummy `Authorization` header: moto (which checks no signatures) answers
/// anonymous reads of private objects with 403.
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let auth = "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00";
    http_with(port, method, path, &[("Authorization", auth)], body)
}

/// One HTTP/1.1 request on loopback with these extra headers; (status, headers, body).
pub fn http_with(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).expect("send");
    stream.write_all(body).expect("send body");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, head, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..end])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&b[end + 2..end + 2 + size]);
        b = &b[end + 2 + size + 2..];
    }
}

/// A moto_server on 127.0.0.1, killed on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    pub fn start() -> Moto {
        let port = free_port();
        let child = match Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!(
                "cannot start moto_server ({e}): the S3 upload tests need it on PATH; run `pip install 'moto[server]'` (scripts/ensure-moto.sh does)"
            ),
        };
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return moto;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto_server did not listen on 127.0.0.1:{port} within 60 s");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Started, with the `repro-data-store` bucket created.
    pub fn with_bucket() -> Moto {
        let moto = Moto::start();
        let (status, _, body) = http(moto.port, "PUT", "/repro-data-store", b"");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        moto
    }

    /// `GET` an object of `repro-data-store`: (status, body).
    pub fn object(&self, key: &str) -> (u16, Vec<u8>) {
        let (status, _, body) = http(self.port, "GET", &format!("/repro-data-store/{key}"), b"");
        (status, body)
    }

    /// An object that must exist.
    pub fn get_object(&self, key: &str) -> Vec<u8> {
        let (status, body) = self.object(key);
        assert_eq!(status, 200, "GET {key}: {}", String::from_utf8_lossy(&body));
        body
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Today's date in Japan (UTC+9 all year: Asia/Tokyo has no daylight saving
/// time), the default date folder, as `yyyy/mm/dd`.
pub fn today_path() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 9 * 3600;
    let (y, m, d) = repro_line_core::protocol::civil_from_days((secs / 86_400) as i64);
    format!("{y:04}/{m:02}/{d:02}")
}

/// `repro-line reconcile --users U --followers F --pattern P -o OUT [--blocked-out B]`.
pub fn reconcile(
    users: &Path,
    followers: &Path,
    pattern: &str,
    out: &Path,
    blocked_out: Option<&Path>,
) -> Output {
    let mut args = vec![
        "reconcile",
        "--users",
        s(users),
        "--followers",
        s(followers),
        "--pattern",
        pattern,
        "-o",
        s(out),
    ];
    if let Some(b) = blocked_out {
        args.extend(["--blocked-out", s(b)]);
    }
    run(&args)
}

/// The app and channel every `s3 upload` test uses.
pub const S3_APP: &str = "app1";
pub const S3_CHANNEL: &str = "1234567890";
/// Static credentials moto accepts.
pub const S3_CREDS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
];

/// `repro-line s3 upload FILE --app-id app1 --channel-id 1234567890 --type KIND
/// --endpoint-url URL EXTRA…` with `env` (e.g. [`S3_CREDS`]).
pub fn s3_upload(
    file: &Path,
    kind: &str,
    endpoint: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut args = vec![
        "s3",
        "upload",
        s(file),
        "--app-id",
        S3_APP,
        "--channel-id",
        S3_CHANNEL,
        "--type",
        kind,
        "--endpoint-url",
        endpoint,
    ];
    args.extend_from_slice(extra);
    run_env(&args, env)
}

/// The emulator's SDK token (`EmulatorConfig::default()`), also the import endpoint's.
pub const EMU_TOKEN: &str = "test-token";

/// An emulator on a free loopback port, in memory; stops on drop.
pub fn emulator() -> repro_line_emulator::Emulator {
    repro_line_emulator::Emulator::start(repro_line_emulator::EmulatorConfig::default())
        .expect("start the emulator")
}

/// Uploads `file` to the emulator's import endpoint (like the dashboard's import)
/// and waits for the job to finish; returns the job's JSON.
pub fn import_file(
    emu: &repro_line_emulator::Emulator,
    channel: &str,
    kind: &str,
    file: &Path,
) -> serde_json::Value {
    let body = std::fs::read(file).expect("read the file to import");
    let headers = [("X-Repro-Token", EMU_TOKEN), ("Content-Type", "text/csv")];
    let path = format!("/v1/line_user_imports?channel_id={channel}&type={kind}");
    let (status, _, reply) = http_with(emu.port(), "POST", &path, &headers, &body);
    let text = String::from_utf8_lossy(&reply).into_owned();
    assert_eq!(status, 202, "{text}");
    let accepted: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let job_id = accepted["job_id"].as_str().expect("job_id").to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, reply) = http_with(
            emu.port(),
            "GET",
            &format!("/v1/line_user_imports/{job_id}"),
            &headers[..1],
            b"",
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&reply));
        let job: serde_json::Value = serde_json::from_slice(&reply).expect("JSON");
        if job["status"] != "Uploading" {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "import job {job_id} still Uploading"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The job's errors.csv.
pub fn import_errors_csv(emu: &repro_line_emulator::Emulator, job: &serde_json::Value) -> String {
    let path = format!(
        "/v1/line_user_imports/{}/errors.csv",
        job["job_id"].as_str().expect("job_id")
    );
    let (status, _, body) = http_with(
        emu.port(),
        "GET",
        &path,
        &[("X-Repro-Token", EMU_TOKEN)],
        b"",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    String::from_utf8(body).expect("UTF-8 errors.csv")
}
