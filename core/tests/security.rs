//! Security properties a user relies on: the token never leaks into logs or
//! errors, LINE user IDs are redacted, oversized responses are not buffered.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use repro_line_core::{Client, Config, Error, FlushResult, Storage};
use repro_line_emulator::{Emulator, EmulatorConfig};

const TOKEN: &str = "sekret-token-0123456789";
const LINE: &str = "U4af4980629a1b2c3d4e5f60718293a4b";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn config(url: &str) -> Config {
    let mut c = Config::new(TOKEN, url, Storage::Memory(Default::default()));
    c.default_channel_id = Some("1234567890".into());
    c.debounce = Duration::from_millis(10);
    c.request_timeout = Duration::from_secs(3);
    c
}

#[test]
fn secrets_stay_out_of_logs_errors_and_memory() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();

    // A full delivery cycle with faults, at TRACE.
    let emu = Emulator::start(EmulatorConfig {
        port: 0,
        token: TOKEN.into(),
        faults: "script=500".parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .unwrap();
    let mut wrong = config(&emu.url());
    wrong.sdk_token = "wrong-token-42".into();
    let client = Client::new(wrong).unwrap();
    client.set_user_id("user123").unwrap();
    client.set_line_user_id(LINE, None).unwrap();
    let err = client
        .set_line_user_id(&format!("{LINE}x"), None)
        .unwrap_err();
    assert!(
        !err.to_string().contains(LINE),
        "errors redact LINE IDs: {err}"
    );
    assert!(matches!(
        client.flush(Duration::from_secs(10)),
        FlushResult::Paused { .. }
    ));
    client.set_sdk_token(TOKEN).unwrap();
    assert_eq!(client.flush(Duration::from_secs(10)), FlushResult::Drained);
    for e in [
        Error::InvalidConfig("x".into()),
        Error::InsecureEndpoint("http://x".into()),
    ] {
        assert!(!e.to_string().contains(TOKEN));
    }
    drop(client);
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
    assert!(
        logs.contains("TRACE") || logs.contains("DEBUG"),
        "logs were captured"
    );
    assert!(!logs.contains(TOKEN), "token in logs");
    assert!(!logs.contains("wrong-token-42"), "token in logs");
    assert!(!logs.contains(LINE), "full LINE user ID in logs");

    // A 256 MiB answer: the client stops reading at 1 MiB (socket buffers absorb a few MiB more) and backs off, never buffering it all.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let mut buf = [0u8; 65536];
        let _ = sock.read(&mut buf);
        let total = 256 << 20;
        let _ = sock.write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: {total}\r\ncontent-type: application/json\r\n\r\n").as_bytes());
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0usize;
        sock.set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        while sent < total {
            match sock.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    let client = Client::new(config(&url)).unwrap();
    client.set_user_id("user123").unwrap();
    assert!(matches!(
        client.flush(Duration::from_secs(2)),
        FlushResult::TimedOut { pending: 1 }
    ));
    let sent = server.join().unwrap();
    assert!(
        sent < 64 << 20,
        "the client kept reading a 256 MiB body ({sent} bytes sent before it closed)"
    );
}
