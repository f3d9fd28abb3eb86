//! A state dir belongs to one client at a time and to one endpoint, and only
//! its owner can read it (issue 11, items 1, 6, 11). Real binaries, real emulator.

mod sdk_common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use sdk_common::*;

/// Two `register` runs on one dir: before the lock both delivered every op (20,000
/// applied for 10,000 rows, with seq regressions). Now the second is refused.
#[test]
fn a_second_register_on_a_busy_state_dir_is_refused_and_nothing_is_doubled() {
    // Slow answers keep the first run holding the dir while the second starts.
    let emu = emulator("latency_ms=300");
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("members.csv");
    let rows = write_csv(&csv, 0, 300);
    let state = dir.path().join("state");
    let first = register(&emu.url(), &state, &csv, "60")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The lock file names its holder once the first run owns the dir.
    let started = Instant::now();
    while std::fs::read_to_string(state.join("lock")).unwrap_or_default() != first.id().to_string()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let second = register(&emu.url(), &state, &csv, "60").output().unwrap();
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    let message = stderr(&second);
    assert!(message.contains("is in use"), "{message}");
    assert!(
        message.contains(&state.display().to_string()),
        "names the dir: {message}"
    );
    assert!(message.contains("pid"), "names the holder: {message}");
    assert_linked(&emu, &rows);
    let stats = emu.stats();
    assert_eq!(stats.ops_applied, 600, "each op applied once");
    assert_eq!(stats.ops_duplicate, 0);
    assert_eq!(stats.seq_regressions, 0);
    assert_eq!(emu.state().devices.len(), 1);
}

/// Ten concurrent `send`s on one fresh dir: before, some failed with "No such file or
/// directory" and the dir ended with two device IDs. Now each one either delivers or is
/// refused with `in use`, and one device ID sent everything delivered.
#[test]
fn ten_concurrent_sends_on_one_dir_deliver_or_are_refused_cleanly() {
    let emu = emulator("");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let children: Vec<_> = (0..10)
        .map(|i| {
            send(&emu.url(), &state, &format!("user-{i}"), "30")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut delivered = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        match out.status.code() {
            Some(0) => delivered.push(format!("user-{i}")),
            Some(2) => assert!(stderr(&out).contains("is in use"), "{}", stderr(&out)),
            other => panic!("send {i} exited {other:?}: {}", stderr(&out)),
        }
    }
    assert!(!delivered.is_empty(), "at least one send owned the dir");
    let state_now = emu.state();
    assert_eq!(state_now.devices.len(), 1, "one device ID per state dir");
    for user in &delivered {
        assert!(
            state_now.users.contains(user),
            "{user} was reported delivered"
        );
    }
    assert_eq!(emu.stats().ops_applied, delivered.len() as u64);
}

/// Ops queued for endpoint A were delivered to endpoint B when the dir was reused.
#[test]
fn queued_ops_are_never_sent_to_another_endpoint() {
    let a = emulator("503=1.0,retry_after=1");
    let b = emulator("");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = send(&a.url(), &state, "alice", "1").output().unwrap();
    assert_eq!(out.status.code(), Some(3), "queued for A: {}", stderr(&out));

    let out = send(&b.url(), &state, "bob", "5").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains(&a.url()) && message.contains(&b.url()),
        "names both endpoints: {message}"
    );
    assert_eq!(b.stats().requests, 0, "B got nothing");
    assert!(b.state().users.is_empty());

    // Delivered to A, the dir may serve B.
    a.set_faults(Default::default());
    let out = send(&a.url(), &state, "alice", "20").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(a.state().users.contains(&"alice".to_string()));
    let out = send(&b.url(), &state, "bob", "10").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(b.state().users, vec!["bob".to_string()]);
    assert!(!b.state().users.contains(&"alice".to_string()));
}

#[cfg(unix)]
#[test]
fn the_state_dir_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let emu = emulator("");
    let dir = tempfile::tempdir().unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let state = dir.path().join("state");
    let out = send(&emu.url(), &state, "carol", "10").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mode(&state), 0o700);
    for f in ["journal.log", "lock", "endpoint"] {
        assert_eq!(mode(&state.join(f)), 0o600, "{f}");
    }
    // A dir an older version left world-readable is tightened on next use.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        state.join("journal.log"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let out = send(&emu.url(), &state, "carol", "10").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join("journal.log")), 0o600);
}

/// "File exists" was all a user saw when --state-dir named a file.
#[test]
fn a_state_dir_that_is_a_file_gets_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = send("http://127.0.0.1:9", &file, "dave", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(message.contains("is not a directory"), "{message}");
    assert!(!message.contains("File exists"), "{message}");
}

/// A journal written by a newer repro-line is refused with exit 2 and left byte for byte
/// as it was: an older binary would otherwise compact away what it cannot read.
#[test]
fn a_journal_from_a_newer_version_is_refused_and_left_untouched() {
    let emu = emulator("503=1.0,retry_after=1");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let out = send(&emu.url(), &state, "alice", "1").output().unwrap();
    assert_eq!(out.status.code(), Some(3), "queued: {}", stderr(&out));

    // Raise the header frame's format (payload: tag 0, format) and fix its checksum.
    let journal = state.join("journal.log");
    let mut bytes = std::fs::read(&journal).unwrap();
    assert_eq!(&bytes[..2], b"RL");
    let len = u32::from_le_bytes(bytes[2..6].try_into().unwrap()) as usize;
    assert_eq!(
        &bytes[10..12],
        &[0, 1],
        "a format-1 header starts the journal"
    );
    bytes[11] = 2;
    let crc = repro_line_core::store::codec::crc32(&bytes[10..10 + len]);
    bytes[6..10].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&journal, &bytes).unwrap();

    let out = send(&emu.url(), &state, "bob", "1").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(message.contains("newer repro-line"), "{message}");
    assert!(message.contains("format 2"), "{message}");
    assert_eq!(std::fs::read(&journal).unwrap(), bytes, "byte for byte");
}
