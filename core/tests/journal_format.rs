//! The journal's on-disk format across versions: journals written by earlier
//! releases (checked in under `tests/fixtures/`) open with every queued call intact.

use std::path::{Path, PathBuf};

use repro_line_core::engine::EngineConfig;
use repro_line_core::session::{Next, Session};
use repro_line_core::store::codec;
use repro_line_core::store::file::FileStore;
use repro_line_core::Error;

const T0: u64 = 1_795_867_200_000;
const ID_TOKEN: &str =
    "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJVNGFmNDk4MDYyOWExYjJjM2Q0ZTVmNjA3MTgyOTNhNGIifQ.c2ln";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A state dir holding a copy of fixture `name` as its journal.
fn state_dir_with(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture(name), dir.path().join("journal.log")).unwrap();
    dir
}

fn open(dir: &Path) -> Session {
    Session::open(
        EngineConfig::default(),
        Some("1234567890".into()),
        Box::new(FileStore::open(dir).unwrap()),
    )
    .unwrap()
}

/// The request the queue produces once the stored backoff has passed.
fn queued_request(s: &mut Session) -> serde_json::Value {
    s.request_flush();
    let until = match s.poll(T0 + 22) {
        Next::WaitUntil(t) => t,
        other => panic!("the stored backoff must hold, got {other:?}"),
    };
    assert_eq!(until, T0 + 30_022, "the 503's Retry-After: 30 survives");
    match s.poll(until) {
        Next::Send(req) => {
            assert_eq!(req.retry_count, 1, "the failed attempt is remembered");
            serde_json::from_slice(&req.body).unwrap()
        }
        other => panic!("expected a request, got {other:?}"),
    }
}

fn expected_queued_body() -> serde_json::Value {
    serde_json::json!({
        "device_id": "b9deb215-dc33-4382-9060-e5e79ac547a9",
        "ops": [
            {"op_id": "01a22c5f-e48c-7340-9800-ef69e497254b", "seq": 3, "at": "2026-11-28T12:00:00.010Z",
             "type": "link_line_id_token", "user_id": "alice", "id_token": ID_TOKEN, "channel_id": "2000000001"},
            {"op_id": "01a22c5f-e48c-7340-9800-ef6acb9801b3", "seq": 4, "at": "2026-11-28T12:00:00.011Z",
             "type": "unlink_line_id", "user_id": "alice",
             "line_user_id": "U4af4980629a1b2c3d4e5f60718293a4b", "channel_id": "1234567890"},
            {"op_id": "01a22c5f-e48c-7340-9800-ef6be02b9e4c", "seq": 5, "at": "2026-11-28T12:00:00.012Z",
             "type": "set_user_id", "user_id": "bob"},
            {"op_id": "01a22c5f-e48c-7340-9800-ef6c35f3046b", "seq": 6, "at": "2026-11-28T12:00:00.012Z",
             "type": "link_line_id", "user_id": "bob",
             "line_user_id": "U0123456789abcdef0123456789abcdef", "channel_id": "1234567890"},
        ]
    })
}

/// `v0-queued.journal` was written by the headerless format (commit 286ca24): two calls
/// delivered (a `Done`), four queued (one of each kind, incl. `link_line_id_token`), the
/// last batch answered 503 with Retry-After: 30 (a `Backoff`), and a bulk checkpoint.
#[test]
fn a_headerless_journal_opens_with_every_queued_call() {
    let dir = state_dir_with("v0-queued.journal");
    let mut s = open(dir.path());
    assert!(!s.recovery().is_damaged(), "{:?}", s.recovery());
    assert_eq!(s.pending_ops(), 4);
    assert_eq!(s.user_id(), Some("bob"));
    assert!(s.opted_in());
    assert_eq!(s.checkpoint("register:/users.csv:1"), Some(42));
    assert_eq!(queued_request(&mut s), expected_queued_body());
}

#[test]
fn a_headerless_opted_out_journal_stays_opted_out() {
    let dir = state_dir_with("v0-opted-out.journal");
    let s = open(dir.path());
    assert!(!s.recovery().is_damaged(), "{:?}", s.recovery());
    assert!(!s.opted_in());
    assert_eq!(s.pending_ops(), 0);
    assert_eq!(s.user_id(), Some("carol"));
    assert_eq!(
        s.device_id().to_string(),
        "9132ff0c-24d5-40c9-b1d8-fbe847ef072b"
    );
}

fn journal(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("journal.log")).unwrap()
}

/// One frame as the codec writes it: magic, payload length, CRC-32, payload.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = b"RL".to_vec();
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(&codec::crc32(payload).to_le_bytes());
    f.extend_from_slice(payload);
    f
}

#[test]
fn a_headerless_journal_is_rewritten_with_a_header_once_and_reopens_the_same() {
    let dir = state_dir_with("v0-queued.journal");
    drop(open(dir.path()));
    let migrated = journal(dir.path());
    let decoded = codec::decode_all(&migrated);
    assert_eq!(decoded.format, codec::FORMAT);
    assert!(decoded.skipped.is_empty());
    let mut s = open(dir.path());
    assert!(!s.recovery().is_damaged());
    assert_eq!(s.checkpoint("register:/users.csv:1"), Some(42));
    assert_eq!(queued_request(&mut s), expected_queued_body());
    drop(s);
    // A current journal is not rewritten on open: only appended to.
    let before = journal(dir.path());
    drop(open(dir.path()));
    assert_eq!(journal(dir.path()), before);
}

/// The v0 fixture as the current format writes it, with its header replaced by `header`.
fn current_journal_with(header: &[u8], extra: &[u8]) -> tempfile::TempDir {
    let dir = state_dir_with("v0-queued.journal");
    drop(open(dir.path()));
    let migrated = journal(dir.path());
    let mut current = Vec::new();
    codec::encode_header(&mut current);
    assert!(
        migrated.starts_with(&current),
        "compaction writes the header first"
    );
    let mut bytes = frame(header);
    bytes.extend_from_slice(&migrated[current.len()..]);
    bytes.extend_from_slice(extra);
    std::fs::write(dir.path().join("journal.log"), bytes).unwrap();
    dir
}

fn open_err(dir: &Path) -> Error {
    Session::open(
        EngineConfig::default(),
        Some("1234567890".into()),
        Box::new(FileStore::open(dir).unwrap()),
    )
    .unwrap_err()
}

#[test]
fn a_journal_of_a_newer_format_is_refused_and_left_untouched() {
    let next = codec::FORMAT + 1;
    // A newer header may carry fields after the format number.
    let dir = current_journal_with(&[0, next, 7, 7], &[]);
    let before = journal(dir.path());
    let err = open_err(dir.path());
    assert_eq!(
        err,
        Error::JournalTooNew {
            format: codec::FORMAT + 1,
            record_tag: None
        }
    );
    let message = err.to_string();
    assert!(message.contains("newer repro-line"), "{message}");
    assert!(message.contains("left untouched"), "{message}");
    assert_eq!(journal(dir.path()), before, "byte for byte");

    // The same journal under the current header opens with every call.
    let dir = current_journal_with(&[0, codec::FORMAT], &[]);
    let mut s = open(dir.path());
    assert_eq!(queued_request(&mut s), expected_queued_body());
}

/// A current-format journal holding an intact record of an unknown type is refused,
/// not compacted away: its checksum holds, so it is not damage but a writer this
/// version does not understand, and the calls in it must not be lost.
#[test]
fn an_unknown_record_type_is_refused_and_left_untouched() {
    let unknown = frame(&[42, 1, 2, 3]);
    let dir = current_journal_with(&[0, codec::FORMAT], &unknown);
    let before = journal(dir.path());
    assert_eq!(
        open_err(dir.path()),
        Error::JournalTooNew {
            format: codec::FORMAT,
            record_tag: Some(42)
        }
    );
    assert_eq!(journal(dir.path()), before, "byte for byte");

    // Damage is still damage: a flipped byte in that frame is skipped, the rest restored.
    let mut damaged = before.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x55;
    std::fs::write(dir.path().join("journal.log"), damaged).unwrap();
    let mut s = open(dir.path());
    assert_eq!(queued_request(&mut s), expected_queued_body());
}
