//! A minimal ingestion endpoint for delivery benchmarks: HTTP/1.1 keep-alive on
//! 127.0.0.1, answers `POST /v1/identity/batch` with 200 and one result per op
//! (`applied`, or `duplicate` for an op_id seen before), parsing nothing but the
//! op_ids, so the server's cost stays out of the client's numbers (it runs in its
//! own process). `GET /stats` answers the counters as JSON.
//!
//! `rl-sink [--port 0]` prints `{"url": "http://127.0.0.1:PORT"}` once listening.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use repro_line_benches::Args;
use serde_json::json;

#[derive(Default)]
struct Stats {
    requests: u64,
    ops: u64,
    duplicates: u64,
    bytes: u64,
    body_bytes: u64,
    seen: HashSet<[u8; 36]>,
}

fn main() {
    let args = Args::from_env();
    let port = args.num("port", 0);
    let listener = TcpListener::bind(("127.0.0.1", port as u16)).expect("bind");
    let addr = listener.local_addr().expect("addr");
    println!("{}", json!({"url": format!("http://{addr}")}));
    let _ = std::io::stdout().flush();
    let stats = Arc::new(Mutex::new(Stats::default()));
    for stream in listener.incoming().flatten() {
        let stats = Arc::clone(&stats);
        std::thread::spawn(move || {
            let _ = serve(stream, &stats);
        });
    }
}

fn serve(stream: TcpStream, stats: &Mutex<Stats>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut body = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut head_bytes = line.len();
        let request_line = line.trim_end().to_owned();
        let mut content_length = 0usize;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            head_bytes += line.len();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((name, value)) = l.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        body.resize(content_length, 0);
        reader.read_exact(&mut body)?;
        let response = if request_line.starts_with("GET /stats") {
            let s = stats.lock().unwrap_or_else(|e| e.into_inner());
            json!({
                "requests": s.requests,
                "ops": s.ops,
                "distinct": s.seen.len(),
                "duplicates": s.duplicates,
                "bytes": s.bytes,
                "body_bytes": s.body_bytes,
            })
            .to_string()
        } else {
            answer(&body, head_bytes, stats)
        };
        write!(
            out,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{}",
            response.len(),
            response
        )?;
    }
}

/// `{"results":[{"op_id":…,"status":"applied"|"duplicate"},…]}` for every `"op_id":"…"` in the body.
fn answer(body: &[u8], head_bytes: usize, stats: &Mutex<Stats>) -> String {
    const KEY: &[u8] = b"\"op_id\":\"";
    let mut ids: Vec<[u8; 36]> = Vec::with_capacity(100);
    let mut i = 0;
    while let Some(pos) = find(&body[i..], KEY) {
        let start = i + pos + KEY.len();
        if let Some(id) = body.get(start..start + 36) {
            ids.push(id.try_into().expect("36 bytes"));
        }
        i = start;
    }
    let mut out = String::with_capacity(16 + ids.len() * 70);
    out.push_str("{\"results\":[");
    let mut s = stats.lock().unwrap_or_else(|e| e.into_inner());
    s.requests += 1;
    s.bytes += (head_bytes + body.len()) as u64;
    s.body_bytes += body.len() as u64;
    for (n, id) in ids.iter().enumerate() {
        s.ops += 1;
        let fresh = s.seen.insert(*id);
        if !fresh {
            s.duplicates += 1;
        }
        if n > 0 {
            out.push(',');
        }
        out.push_str("{\"op_id\":\"");
        out.push_str(std::str::from_utf8(id).unwrap_or_default());
        out.push_str(if fresh {
            "\",\"status\":\"applied\"}"
        } else {
            "\",\"status\":\"duplicate\"}"
        });
    }
    out.push_str("]}");
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
