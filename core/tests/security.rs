//! Security properties a user relies on: the token never leaks into logs or
//! errors, LINE user IDs are redacted, oversized responses are not buffered.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use repro_line_core::{Client, Config, Error, FlushOutcome, Storage};
use repro_line_emulator::{Emulator, EmulatorConfig};

const TOKEN: &str = "sekret-token-0123456789";
const LINE: &str = "U4af4980629a1b2c3d4e5f60718293a4b";
const LINE_T: &str = "U0000000000000000000000000000000b";
const LOGIN: &str = "1650000000";

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
        login_channels: HashMap::from([("1234567890".to_owned(), vec![LOGIN.to_owned()])]),
        ..EmulatorConfig::default()
    })
    .unwrap();
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let id_token = emu.mint_id_token(LINE_T, LOGIN, exp);
    let mut wrong = config(&emu.url());
    wrong.sdk_token = "wrong-token-42".into();
    let client = Client::new(wrong).unwrap();
    client.set_user_id("user123").unwrap();
    client.set_line_user_id(LINE, None).unwrap();
    client.link_line_id_token(&id_token, None).unwrap();
    // A token whose sub is not a LINE user ID: refused, and the error never holds the token.
    let bad_sub = emu.mint_id_token("not-a-line-id", LOGIN, exp);
    let err = client.link_line_id_token(&bad_sub, None).unwrap_err();
    assert!(matches!(err, Error::InvalidIdToken { .. }), "{err:?}");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(&bad_sub), "token in an error: {shown}");
        assert!(
            !shown.contains(&bad_sub[..20]),
            "token in an error: {shown}"
        );
    }
    let err = client
        .set_line_user_id(&format!("{LINE}x"), None)
        .unwrap_err();
    assert!(
        !err.to_string().contains(LINE),
        "errors redact LINE IDs: {err}"
    );
    assert!(matches!(
        client.flush(Duration::from_secs(10)),
        FlushOutcome::Paused { .. }
    ));
    client.set_sdk_token(TOKEN).unwrap();
    assert_eq!(client.flush(Duration::from_secs(10)), FlushOutcome::Drained);
    let state = emu.state();
    assert!(
        state.links.iter().any(|l| l.line_user_id == LINE_T),
        "the token link was applied: {:?}",
        state.links
    );
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
    // The signature alone is enough to tell a token; none of it may be logged.
    let signature = id_token.rsplit('.').next().unwrap();
    assert!(!logs.contains(signature), "ID token in logs");
    assert!(
        !logs.contains(LINE_T),
        "full LINE user ID (a token's sub) in logs"
    );
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
        FlushOutcome::TimedOut { pending: 1 }
    ));
    let sent = server.join().unwrap();
    assert!(
        sent < 64 << 20,
        "the client kept reading a 256 MiB body ({sent} bytes sent before it closed)"
    );
}

/// `{:?}` of everything that holds an ID token shows no part of it: apps log calls and reports.
#[test]
fn debug_output_never_shows_an_id_token() {
    use repro_line_core::protocol::{IdToken, Op, OpKind};
    use repro_line_core::{Call, DeliveryReport, DeliveryStatus};
    let emu = Emulator::start(EmulatorConfig::default()).unwrap();
    let token = emu.mint_id_token(LINE_T, LOGIN, 4_000_000_000);
    let signature = token.rsplit('.').next().unwrap().to_owned();
    let kind = OpKind::LinkLineIdToken {
        user_id: "user123".into(),
        id_token: IdToken::new(token.clone()),
        channel_id: "1234567890".into(),
    };
    let op = Op {
        op_id: uuid::Uuid::nil(),
        seq: 1,
        at_ms: 0,
        kind: kind.clone(),
    };
    let report = DeliveryReport {
        op_id: op.op_id,
        seq: 1,
        kind: kind.clone(),
        status: DeliveryStatus::Delivered,
    };
    let call = Call::link_id_token(&token, None);
    for shown in [
        format!("{kind:?}"),
        format!("{op:?}"),
        format!("{report:?}"),
        format!("{call:?}"),
        format!("{:#?}", IdToken::new(token.clone())),
    ] {
        assert!(!shown.contains(&signature), "token in {shown}");
        assert!(!shown.contains(&token[..24]), "token in {shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
    // What an app shows instead: the LINE user ID from `sub`.
    assert_eq!(report.kind.line_user_id().as_deref(), Some(LINE_T));
}
