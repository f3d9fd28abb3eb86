//! The gateway as a real process (`repro-line gateway --config FILE`) against a local
//! moto (S3) and the emulator (LINE's JWKS), all on 127.0.0.1.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::bulk_common::*;

pub const RAW_TOKEN: &str = "raw-app-token";
pub const VERIFIED_TOKEN: &str = "verified-app-token";
pub const CHANNEL: &str = "1234567890";
pub const LOGIN: &str = "1650000000";

/// The body of a `set_user_id` op (without op_id/seq/at).
pub fn set(user: &str) -> String {
    format!(r#""type":"set_user_id","user_id":"{user}""#)
}

/// The body of a raw `link_line_id` op on [`CHANNEL`].
pub fn link(user: &str, line: &str) -> String {
    format!(
        r#""type":"link_line_id","user_id":"{user}","line_user_id":"{line}","channel_id":"{CHANNEL}""#
    )
}

/// A fresh op ID.
pub fn id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The test config on any free port.
pub fn write_config(dir: &Path, line_api: &str, s3: &str, export_secs: f64) -> PathBuf {
    write_config_on(dir, 0, line_api, s3, export_secs)
}

/// The test config: app `raw` (identity any), app `verified` (identity id_token).
pub fn write_config_on(
    dir: &Path,
    port: u16,
    line_api: &str,
    s3: &str,
    export_secs: f64,
) -> PathBuf {
    let text = format!(
        r#"gateway_id = "gwtest"
listen = "127.0.0.1:{port}"
store = "sqlite://{store}"
line_api = "{line_api}"
export_interval_secs = {export_secs}
device_rate = 1000.0
header_timeout_secs = 2

[s3]
endpoint = "{s3}"

[[apps]]
name = "raw"
tokens = ["{RAW_TOKEN}"]
repro_app_id = "rawapp"
identity = "any"
cors_origins = ["http://localhost:8080"]
[[apps.channels]]
id = "{CHANNEL}"

[[apps]]
name = "verified"
tokens = ["{VERIFIED_TOKEN}"]
repro_app_id = "verifiedapp"
[[apps.channels]]
id = "{CHANNEL}"
login_channels = ["{LOGIN}"]
"#,
        store = dir.join("gateway.db").display()
    );
    write(dir, "gateway.toml", text)
}

/// A running `repro-line gateway`, killed (SIGKILL) on drop unless stopped.
pub struct GatewayProc {
    pub child: Child,
    pub url: String,
    pub port: u16,
}

impl GatewayProc {
    pub fn start(config: &Path) -> GatewayProc {
        let mut c = bin();
        c.args(["gateway", "--config", s(config)]);
        for k in [
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT",
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_S3",
        ] {
            c.env_remove(k);
        }
        // moto accepts any credentials; without them the S3 client would look elsewhere.
        c.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("REPRO_LINE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = c.spawn().expect("start repro-line gateway");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        GatewayProc { child, url, port }
    }

    /// SIGTERM, then wait for the graceful exit (in-flight requests, final export).
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait");
        std::mem::forget(self);
        status
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
    }

    /// POST a batch body with this token; (status, body as JSON or Null).
    pub fn post(&self, token: &str, body: &str) -> (u16, serde_json::Value) {
        let (status, _, body) = http_with(
            self.port,
            "POST",
            "/v1/identity/batch",
            &[
                ("X-Repro-Token", token),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        );
        (
            status,
            serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) = http_with(self.port, "GET", path, &[], b"");
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

impl Drop for GatewayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One batch POST; `None` when the connection fails or breaks (the gateway is down).
pub fn try_post(port: u16, token: &str, body: &str) -> Option<(u16, serde_json::Value)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let head = format!(
        "POST /v1/identity/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Repro-Token: {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let status: u16 = text.split(' ').nth(1)?.parse().ok()?;
    let (_, json) = text.split_once("\r\n\r\n")?;
    Some((
        status,
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
    ))
}

/// A moto_server on a chosen port (so it can be stopped and started again at the same URL).
pub struct MotoAt {
    child: Child,
    pub port: u16,
}

impl MotoAt {
    pub fn start(port: u16) -> MotoAt {
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server on PATH (scripts/ensure-moto.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let (status, _, body) = http(port, "PUT", "/repro-data-store", b"");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        MotoAt { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
    }

    /// Every key under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let (status, _, body) = http(
            self.port,
            "GET",
            &format!("/repro-data-store?list-type=2&prefix={prefix}"),
            b"",
        );
        assert_eq!(status, 200);
        let xml = String::from_utf8_lossy(&body);
        xml.split("<Key>")
            .skip(1)
            .filter_map(|p| p.split("</Key>").next())
            .map(str::to_owned)
            .collect()
    }

    pub fn get(&self, key: &str) -> String {
        let (status, _, body) = http(self.port, "GET", &format!("/repro-data-store/{key}"), b"");
        assert_eq!(status, 200, "{key}");
        String::from_utf8(body).unwrap()
    }

    /// (line_user_id, user_id) rows of every file under `prefix`, file by file.
    pub fn rows(&self, prefix: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for key in self.keys(prefix) {
            for line in self.get(&key).lines().skip(1) {
                let (l, u) = line.split_once(',').unwrap();
                out.push((l.to_owned(), u.to_owned()));
            }
        }
        out
    }
}

impl Drop for MotoAt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `<app>/line_user_id/<channel>/<yyyy>/<mm>/<dd>/followed/` for today in Tokyo.
pub fn followed_prefix(app_id: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let date = repro_line_bulk::s3::Date::from_unix(secs + 9 * 3600);
    format!(
        "{app_id}/line_user_id/{CHANNEL}/{}/followed/",
        date.key_path()
    )
}

pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn at_now() -> String {
    repro_line_core::protocol::format_rfc3339_millis(now_s() * 1000)
}

/// Polls `f` every 100 ms until it returns `Some`, at most `secs` seconds.
pub fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A batch body with ops given as (op_id, seq, JSON fields after `at`).
pub fn batch_json(device: &str, ops: &[(String, u64, String)]) -> String {
    let ops: Vec<String> = ops
        .iter()
        .map(|(id, seq, rest)| {
            format!(
                r#"{{"op_id":"{id}","seq":{seq},"at":"{}",{rest}}}"#,
                at_now()
            )
        })
        .collect();
    format!(r#"{{"device_id":"{device}","ops":[{}]}}"#, ops.join(","))
}

/// A loopback TCP proxy in front of the gateway that, for every `reset_every`-th response,
/// closes the client's connection instead of forwarding it: the gateway has applied the
/// batch, the client never hears so ("reset after apply"). A dead upstream closes the client
/// connection too (as a crashed server would).
pub struct ResetProxy {
    pub port: u16,
    pub resets: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl ResetProxy {
    pub fn start(upstream: u16, reset_every: u64) -> ResetProxy {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let responses = Arc::new(AtomicU64::new(0));
        let resets = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (r2, s2) = (Arc::clone(&resets), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !s2.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                let _ = client.set_nonblocking(false);
                let (responses, resets) = (Arc::clone(&responses), Arc::clone(&r2));
                std::thread::spawn(move || {
                    proxy_one(client, upstream, reset_every, &responses, &resets)
                });
            }
        });
        ResetProxy { port, resets, stop }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ResetProxy {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

fn proxy_one(
    client: std::net::TcpStream,
    upstream: u16,
    reset_every: u64,
    responses: &std::sync::atomic::AtomicU64,
    resets: &std::sync::atomic::AtomicU64,
) {
    use std::io::{Read, Write};
    use std::net::Shutdown;
    use std::sync::atomic::Ordering;
    let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", upstream)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let (Ok(mut c_in), Ok(mut s_out)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = c_in.read(&mut buf) {
            if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s_out.shutdown(Shutdown::Write);
    });
    let (mut s_in, mut c_out) = (server, client);
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s_in.read(&mut buf) {
            Ok(n) if n > 0 => {
                // A response's first bytes: the batch is committed upstream by now.
                if buf[..n].starts_with(b"HTTP/")
                    && (responses.fetch_add(1, Ordering::SeqCst) + 1).is_multiple_of(reset_every)
                {
                    resets.fetch_add(1, Ordering::SeqCst);
                    break;
                }
                if c_out.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            _ => break,
        }
    }
    let _ = c_out.shutdown(Shutdown::Both);
    let _ = s_in.shutdown(Shutdown::Both);
}
