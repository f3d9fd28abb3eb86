//! Storage faults against the real file store (`<dir>/journal.log`) and the
//! capacity-limited memory store: a torn last record at every byte offset,
//! random byte flips (proptest), a read-only directory, and a full filesystem.
//! In every case the client starts, never panics, keeps every intact op,
//! reports what it could not keep (`Client::recovery()`), and a call that
//! cannot be stored fails with a typed error instead of being lost silently.
//!
//! The read-only and full-disk cases need mounts (a read-only bind mount, a
//! 64 KiB tmpfs). Tests run as root, where `chmod` does not stop writes, so
//! without mount permission those cases fall back to a file used as a directory
//! and a path under /proc (for open), or print why they are skipped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use proptest::prelude::*;
use repro_line_core::store::file::FileStore;
use repro_line_core::store::{codec, Record};
use repro_line_core::{
    Client, Config, Error, FlushOutcome, MemoryStore, Policy, Session, Storage, StorageError,
};

const TOKEN: &str = "storage-faults";
const CHANNEL: &str = "1234567890";

/// The tests here run one at a time. A child process (this file spawns `mount`/`umount`)
/// holds a copy of every open descriptor of the test process until it execs, the flock on
/// a state dir included: a client reopened in another test thread at that moment would
/// see its own dir "in use".
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn line(i: u64) -> String {
    format!("U{i:032x}")
}

/// An endpoint nobody listens on: ops stay queued, so `pending_ops` counts what the store kept.
/// One for the whole run: a state dir holding ops is bound to its endpoint.
fn down_endpoint() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(9);
        format!("http://127.0.0.1:{port}")
    })
    .clone()
}

fn config(storage: Storage) -> Config {
    let mut c = Config::new(TOKEN, down_endpoint(), storage);
    c.default_channel_id = Some(CHANNEL.into());
    // No request before the test is done looking (the first attempt would journal Sent/Backoff).
    c.debounce = Duration::from_secs(3600);
    c
}

/// Writes a journal of `set_user_id` + `links` link ops with the session alone
/// (no delivery thread), so the file ends with an `Op` record. Returns the frame
/// start offsets of every record.
fn write_journal(dir: &Path, links: u64) -> Vec<usize> {
    let store = FileStore::open(dir).unwrap();
    let mut s = Session::open(Policy::default(), Some(CHANNEL.into()), Box::new(store)).unwrap();
    // Real call times: ops older than max_op_age (7 days) would be dropped as Expired at start.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    s.set_user_id(now, "member-1").unwrap();
    for i in 0..links {
        s.set_line_user_id(now + i, &line(i), None).unwrap();
    }
    drop(s);
    frame_starts(&std::fs::read(dir.join("journal.log")).unwrap())
}

/// Start offsets of the frames of an intact journal (re-encoding is deterministic).
fn frame_starts(bytes: &[u8]) -> Vec<usize> {
    let decoded = codec::decode_all(bytes);
    assert!(decoded.skipped.is_empty());
    let mut starts = Vec::new();
    let mut buf = Vec::new();
    if decoded.format > 0 {
        codec::encode_header(&mut buf);
    }
    for r in &decoded.records {
        starts.push(buf.len());
        codec::encode_into(&mut buf, r);
    }
    assert_eq!(buf, bytes, "re-encoding reproduces the journal");
    starts
}

fn op_seqs(bytes: &[u8]) -> BTreeSet<u64> {
    codec::decode_all(bytes)
        .records
        .into_iter()
        .filter_map(|r| match r {
            Record::Op(op) => Some(op.seq),
            _ => None,
        })
        .collect()
}

#[test]
fn a_torn_last_record_at_every_byte_offset_keeps_every_complete_op() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let starts = write_journal(&src, 5);
    let full = std::fs::read(src.join("journal.log")).unwrap();
    let last = *starts.last().unwrap();
    assert!(matches!(
        codec::decode_all(&full[last..]).records[..],
        [Record::Op(_)]
    ));
    let intact_ops = 6; // set_user_id + 5 links
    println!("torn last record: {} byte offsets tried", full.len() - last);
    for cut in last..full.len() {
        let dir = tmp.path().join(format!("cut-{cut}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("journal.log"), &full[..cut]).unwrap();
        let client = Client::new(config(Storage::Directory(dir.clone())))
            .unwrap_or_else(|e| panic!("cut at {cut}: client did not start: {e}"));
        assert_eq!(client.pending_ops(), intact_ops - 1, "cut at {cut}");
        let rec = client.recovery();
        assert_eq!(rec.restored_ops, intact_ops - 1, "cut at {cut}");
        assert_eq!(
            rec.skipped_bytes,
            cut - last,
            "cut at {cut}: reports exactly the torn bytes"
        );
        assert_eq!(rec.skipped_ranges, usize::from(cut > last), "cut at {cut}");
        assert_eq!(client.user_id().as_deref(), Some("member-1"));
        // The torn bytes were rewritten away: a new call lands after clean frames.
        client.set_line_user_id(&line(99), None).unwrap();
        client.shutdown(Duration::ZERO);
        let after = std::fs::read(dir.join("journal.log")).unwrap();
        assert!(
            codec::decode_all(&after).skipped.is_empty(),
            "cut at {cut}: garbage carried forward"
        );
        let again = Client::new(config(Storage::Directory(dir.clone()))).unwrap();
        assert_eq!(
            again.pending_ops(),
            intact_ops,
            "cut at {cut}: the new call survived the restart"
        );
        assert_eq!(again.recovery().skipped_bytes, 0);
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Flipping bytes costs exactly the records whose frames they hit: every op
    /// whose frame is untouched is restored, nothing else, and the client reports
    /// skipped bytes.
    #[test]
    fn random_byte_flips_cost_only_the_records_they_hit(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
    ) {
        let _serial = serial();
        let tmp = tempfile::tempdir().unwrap();
        let starts = write_journal(tmp.path(), 8);
        let path = tmp.path().join("journal.log");
        let mut bytes = std::fs::read(&path).unwrap();
        let len = bytes.len();
        let all_ops = op_seqs(&bytes);
        for (idx, mask) in &flips {
            bytes[idx.index(len)] ^= mask;
        }
        let original = std::fs::read(&path).unwrap();
        // Two flips of one byte can cancel out: only bytes that differ now hit a frame.
        prop_assume!(bytes != original);
        let mut hit_frames = BTreeSet::new();
        for at in (0..len).filter(|&at| bytes[at] != original[at]) {
            // Before the first record is the header frame: it carries no op.
            if let Some(frame) = starts.iter().rposition(|s| *s <= at) {
                hit_frames.insert(frame);
            }
        }
        // The op seqs carried by frames nobody touched.
        let mut expected = BTreeSet::new();
        for (i, s) in starts.iter().enumerate() {
            let end = starts.get(i + 1).copied().unwrap_or(len);
            if !hit_frames.contains(&i) {
                expected.extend(op_seqs(&original[*s..end]));
            }
        }
        std::fs::write(&path, &bytes).unwrap();

        let client = Client::new(config(Storage::Directory(tmp.path().to_path_buf()))).unwrap();
        let rec = client.recovery();
        prop_assert!(rec.skipped_bytes > 0);
        prop_assert_eq!(rec.restored_ops, expected.len());
        prop_assert_eq!(client.pending_ops(), expected.len());
        client.shutdown(Duration::ZERO);
        let kept = op_seqs(&std::fs::read(&path).unwrap());
        prop_assert_eq!(&kept, &expected);
        prop_assert!(kept.is_subset(&all_ops));
    }
}

/// Mounts something for one test and always unmounts it.
struct Mount(PathBuf);

impl Mount {
    fn run(args: &[&str]) -> Result<(), String> {
        let out = Command::new("mount")
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    fn tmpfs(at: &Path, size: &str) -> Result<Mount, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        Mount::run(&[
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            &at.display().to_string(),
        ])?;
        Ok(Mount(at.to_path_buf()))
    }

    /// Binds `at` onto itself, so it can later be remounted read-only.
    fn bind(at: &Path) -> Result<Mount, String> {
        let p = at.display().to_string();
        Mount::run(&["--bind", &p, &p])?;
        Ok(Mount(at.to_path_buf()))
    }

    fn read_only(&self, ro: bool) -> Result<(), String> {
        let opts = if ro {
            "remount,ro,bind"
        } else {
            "remount,rw,bind"
        };
        Mount::run(&["-o", opts, &self.0.display().to_string()])
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn an_unusable_directory_is_a_typed_open_error() {
    let _serial = serial();
    // Root ignores permission bits, so use paths no one can create: under a regular file, and under /proc.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    for dir in [
        file.join("state"),
        PathBuf::from("/proc/repro-line-storage-faults"),
    ] {
        match Client::new(config(Storage::Directory(dir.clone()))) {
            Err(Error::Storage(StorageError::Open { path, .. })) => {
                assert_eq!(path, dir.display().to_string())
            }
            other => panic!(
                "{}: expected a StorageError::Open, got {other:?}",
                dir.display()
            ),
        }
    }
}

#[test]
fn a_read_only_directory_is_a_typed_open_error_and_loses_nothing() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ro");
    std::fs::create_dir_all(&dir).unwrap();
    let mount = match Mount::bind(&dir) {
        Ok(m) => m,
        Err(e) => {
            println!("SKIPPED read-only bind mount (needs CAP_SYS_ADMIN): {e}");
            return;
        }
    };
    // Read-only before the first start: the store cannot be created.
    mount.read_only(true).unwrap();
    match Client::new(config(Storage::Directory(dir.clone()))) {
        Err(Error::Storage(StorageError::Open { .. })) => {}
        other => panic!("expected StorageError::Open on a read-only mount, got {other:?}"),
    }
    // Writable start with two calls; then the filesystem turns read-only between runs.
    // (Remounting read-only under a running client fails with EBUSY, because the
    // journal is open for writing; write failures of a running client are covered
    // by the full-filesystem test.)
    mount.read_only(false).unwrap();
    let client = Client::new(config(Storage::Directory(dir.clone()))).unwrap();
    client.set_user_id("member-1").unwrap();
    client.set_line_user_id(&line(1), None).unwrap();
    client.shutdown(Duration::ZERO);
    drop(client);
    let before = std::fs::read(dir.join("journal.log")).unwrap();
    mount.read_only(true).unwrap();
    match Client::new(config(Storage::Directory(dir.clone()))) {
        Err(Error::Storage(StorageError::Open { message, .. })) => {
            assert!(message.contains("Read-only"), "{message}")
        }
        other => panic!("expected StorageError::Open on a read-only mount, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(dir.join("journal.log")).unwrap(),
        before,
        "the journal is untouched"
    );
    mount.read_only(false).unwrap();
    let again = Client::new(config(Storage::Directory(dir.clone()))).unwrap();
    assert_eq!(
        again.pending_ops(),
        2,
        "both calls are still queued once the mount is writable"
    );
    assert_eq!(again.recovery().skipped_bytes, 0);
    assert_eq!(again.user_id().as_deref(), Some("member-1"));
    drop(again);
    drop(mount);
}

#[test]
fn a_full_filesystem_fails_calls_with_full_and_keeps_every_accepted_op() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    let mount = match Mount::tmpfs(&dir, "64k") {
        Ok(m) => m,
        Err(e) => {
            println!("SKIPPED 64 KiB tmpfs (needs CAP_SYS_ADMIN): {e}");
            return;
        }
    };
    // 16 KiB of the 64 are taken by another file, freed later to show the client recovers.
    std::fs::write(dir.join("other-app-data"), vec![7u8; 16 * 1024]).unwrap();
    let client = Client::new(config(Storage::Directory(dir.clone()))).unwrap();
    client.set_user_id("member-1").unwrap();
    let mut accepted = 1;
    let mut first_full = None;
    for i in 0..2_000u64 {
        match client.set_line_user_id(&line(i), None) {
            Ok(()) => accepted += 1,
            Err(Error::Storage(StorageError::Full(msg))) => {
                first_full.get_or_insert((i, msg));
            }
            Err(e) => panic!("call {i}: expected StorageError::Full, got {e:?}"),
        }
    }
    let (at, msg) = first_full.expect("a 64 KiB filesystem fills up");
    println!("64 KiB tmpfs: {accepted} calls accepted, first Full at call {at}: {msg}");
    assert!(accepted > 50, "only {accepted} calls fit");
    assert_eq!(client.pending_ops(), accepted);
    // Space comes back: the same running client accepts calls again.
    std::fs::remove_file(dir.join("other-app-data")).unwrap();
    client.set_line_user_id(&line(5_000), None).unwrap();
    accepted += 1;
    client.shutdown(Duration::ZERO);

    let again = Client::new(config(Storage::Directory(dir.clone()))).unwrap();
    assert_eq!(
        again.pending_ops(),
        accepted,
        "every accepted call survived, no refused call appeared"
    );
    assert_eq!(
        again.recovery().skipped_bytes,
        0,
        "short writes were cut, no torn frame left"
    );
    drop(again);
    drop(mount);
}

#[test]
fn a_full_filesystem_at_start_is_a_typed_error_not_a_panic() {
    let _serial = serial();
    // A torn tail makes start-up rewrite the journal (compaction); with no room left that must fail cleanly.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    let mount = match Mount::tmpfs(&dir, "64k") {
        Ok(m) => m,
        Err(e) => {
            println!("SKIPPED 64 KiB tmpfs (needs CAP_SYS_ADMIN): {e}");
            return;
        }
    };
    let starts = write_journal(&dir, 20);
    let path = dir.join("journal.log");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    // Fill the rest of the filesystem.
    let mut filler = std::fs::File::create(dir.join("filler")).unwrap();
    let block = vec![0u8; 4096];
    while std::io::Write::write_all(&mut filler, &block).is_ok() {}
    drop(filler);
    match Client::new(config(Storage::Directory(dir.clone()))) {
        Ok(c) => {
            // Acceptable too: it kept going without the rewrite.
            assert_eq!(c.pending_ops(), starts.len() - 3);
        }
        Err(Error::Storage(e)) => println!("full disk at start: typed error {e:?}"),
        Err(e) => panic!("expected a storage error, got {e:?}"),
    }
    // The journal was not damaged by the failed rewrite: after freeing space every intact op is back.
    std::fs::remove_file(dir.join("filler")).unwrap();
    let c = Client::new(config(Storage::Directory(dir.clone()))).unwrap();
    // Frames: two meta records, 21 ops; the torn last op is lost.
    assert_eq!(c.pending_ops(), starts.len() - 3);
    drop(c);
    drop(mount);
}

#[test]
fn a_capacity_limited_memory_store_refuses_with_full_and_keeps_accepted_ops() {
    let _serial = serial();
    let store = MemoryStore::with_capacity_limit(8 * 1024);
    let client = Client::new(config(Storage::Memory(store.clone()))).unwrap();
    client.set_user_id("member-1").unwrap();
    let mut accepted = 1;
    let mut refused = 0;
    for i in 0..500u64 {
        match client.set_line_user_id(&line(i), None) {
            Ok(()) => accepted += 1,
            Err(Error::Storage(StorageError::Full(_))) => refused += 1,
            Err(e) => panic!("expected StorageError::Full, got {e:?}"),
        }
    }
    assert!(
        refused > 0 && accepted > 10,
        "accepted {accepted}, refused {refused}"
    );
    assert_eq!(client.pending_ops(), accepted);
    client.shutdown(Duration::ZERO);
    let again = Client::new(config(Storage::Memory(store.clone()))).unwrap();
    assert_eq!(
        again.pending_ops(),
        accepted,
        "a restart restores exactly the accepted calls"
    );
    assert_eq!(again.recovery().skipped_bytes, 0);
    assert!(store.snapshot().len() <= 8 * 1024);
}

/// On a 64 KiB tmpfs every later run failed at enqueue and sent nothing, and a drained
/// journal was never compacted (issue 11, item 7). Now what is queued is delivered while
/// new calls are refused, and the drained journal shrinks so calls are accepted again.
#[test]
fn a_full_filesystem_still_delivers_and_a_drained_journal_gives_space_back() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tiny");
    let mount = match Mount::tmpfs(&dir, "64k") {
        Ok(m) => m,
        Err(e) => {
            println!("SKIPPED 64 KiB tmpfs (needs CAP_SYS_ADMIN): {e}");
            return;
        }
    };
    let emu = repro_line_emulator::Emulator::start(repro_line_emulator::EmulatorConfig {
        port: 0,
        token: TOKEN.into(),
        faults: "503=1.0,retry_after=1".parse().unwrap(),
        ..Default::default()
    })
    .unwrap();
    let mut cfg = config(Storage::Directory(dir.clone()));
    cfg.endpoint = emu.url();
    cfg.debounce = Duration::from_millis(10);
    let client = Client::new(cfg).unwrap();
    client.set_user_id("member-1").unwrap();
    let mut accepted = 1;
    let mut i = 0;
    loop {
        match client.set_line_user_id(&line(i), None) {
            Ok(()) => accepted += 1,
            Err(Error::Storage(StorageError::Full(_))) => break,
            Err(e) => panic!("call {i}: {e:?}"),
        }
        i += 1;
        assert!(i < 5_000, "the disk never filled");
    }
    // The disk stays full; delivery of what was accepted goes on.
    emu.set_faults(Default::default());
    assert_eq!(client.flush(Duration::from_secs(30)), FlushOutcome::Drained);
    assert_eq!(emu.stats().ops_applied, accepted as u64);
    let journal = std::fs::metadata(dir.join("journal.log")).unwrap().len();
    println!("full disk: {accepted} calls delivered; drained journal is {journal} bytes");
    assert!(
        journal < 4096,
        "the drained journal was compacted ({journal} bytes)"
    );
    for j in 0..20 {
        client
            .set_line_user_id(&line(10_000 + j), None)
            .expect("space came back");
    }
    assert_eq!(client.flush(Duration::from_secs(30)), FlushOutcome::Drained);
    drop(client);
    drop(emu);
    drop(mount);
}
