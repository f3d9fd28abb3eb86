//! `register`'s resume is keyed by content, distrusts a damaged journal, and
//! accounts for every call it restored (issue 11, items 2, 3, 4).

mod sdk_common;

use std::io::Write;
use std::process::Stdio;

use sdk_common::*;

/// A daily export at the same path: day 2's new rows were never delivered
/// ("resumed: 2 rows were enqueued by an earlier run"), and an edited row was never re-sent.
#[test]
fn new_content_at_the_same_path_is_delivered() {
    let emu = emulator("");
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("export.csv");
    let state = dir.path().join("state");
    let day1 = write_csv(&csv, 0, 2);
    let out = register(&emu.url(), &state, &csv, "20").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_linked(&emu, &day1);

    let day2 = write_csv(&csv, 0, 4); // day 1's rows plus two new ones
    let out = register(&emu.url(), &state, &csv, "20").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("resumed"), "{}", stderr(&out));
    assert_eq!(
        json(&out)["delivered"].as_u64().unwrap() + json(&out)["duplicate"].as_u64().unwrap(),
        8
    );
    assert_linked(&emu, &day2);

    // An edited row (row 1 moves to another user) is sent again.
    let edited = vec![(line_id(0), "member-edited".to_string())];
    std::fs::write(
        &csv,
        format!("line_user_id,user_id\n{},member-edited\n", line_id(0)),
    )
    .unwrap();
    let out = register(&emu.url(), &state, &csv, "20").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_linked(&emu, &edited);

    // The same content again is a resume: nothing new is enqueued, and it says so.
    let out = register(&emu.url(), &state, &csv, "20").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("resumed: rows 1..1"),
        "{}",
        stderr(&out)
    );
    assert_eq!(json(&out)["resumed_from_row"], 1);
}

/// `--csv <(…)`: every pipe had the same path, so the second one's rows were skipped.
#[test]
fn each_piped_csv_is_delivered() {
    let emu = emulator("");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    for (from, to) in [(0, 3), (10, 13)] {
        let scratch = dir.path().join("rows.csv");
        let rows = write_csv(&scratch, from, to);
        let text = std::fs::read(&scratch).unwrap();
        let mut child = register(&emu.url(), &state, std::path::Path::new("/dev/stdin"), "20")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&text).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_linked(&emu, &rows);
    }
}

/// Rows queued by an earlier run (the endpoint refused everything with 503 then).
fn queue_rows_without_delivering(
    emu: &repro_line_emulator::Emulator,
    rows: usize,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    Vec<(String, String)>,
) {
    emu.set_faults("503=1.0,retry_after=1".parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("members.csv");
    let expected = write_csv(&csv, 0, rows);
    let state = dir.path().join("state");
    let out = register(&emu.url(), &state, &csv, "0").output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    emu.set_faults(Default::default());
    (dir, csv, state, expected)
}

/// 100 random bytes in the middle of the journal: the run exited 0 `drained` and a row
/// never reached the endpoint. Now the damage is reported, the run exits 1, and every
/// row is re-enqueued because the checkpoint is no longer trusted.
/// Overwrites 100 bytes in the middle of the journal with pseudo-random ones.
fn damage_the_middle(state: &std::path::Path) {
    let journal = state.join("journal.log");
    let mut bytes = std::fs::read(&journal).unwrap();
    let middle = bytes.len() / 2;
    let mut x: u32 = 0x9e37_79b9;
    for b in &mut bytes[middle..middle + 100] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    std::fs::write(&journal, &bytes).unwrap();
}

#[test]
fn damage_inside_the_journal_is_reported_and_every_row_is_re_sent() {
    let emu = emulator("");
    let (_dir, csv, state, rows) = queue_rows_without_delivering(&emu, 400);
    damage_the_middle(&state);

    let out = register(&emu.url(), &state, &csv, "30").output().unwrap();
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{message}");
    assert!(message.contains("was damaged"), "{message}");
    assert!(
        !message.contains('\u{1b}'),
        "no colour codes on a pipe: {message:?}"
    );
    let summary = json(&out);
    assert!(summary["lost_records"].as_u64().unwrap() >= 1, "{summary}");
    assert_eq!(
        summary["resumed_from_row"], 0,
        "the checkpoint was distrusted"
    );
    assert_eq!(summary["pending"], 0);
    assert_linked(&emu, &rows);

    // The damage was reported once; the next run is clean.
    let out = register(&emu.url(), &state, &csv, "30").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn send_reports_damage_and_exits_1() {
    let emu = emulator("");
    let (_dir, _csv, state, _) = queue_rows_without_delivering(&emu, 400);
    damage_the_middle(&state);
    let out = send(&emu.url(), &state, "after-damage", "30")
        .output()
        .unwrap();
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{message}");
    assert!(message.contains("was damaged"), "{message}");
    assert!(json(&out)["lost_records"].as_u64().unwrap() >= 1);
    assert!(emu.state().users.contains(&"after-damage".to_string()));
}

/// A resumed run answers for the calls an earlier run queued: restored calls count,
/// and an endpoint answering 413 to everything can never end in exit 0.
#[test]
fn a_resumed_register_accounts_for_every_restored_call() {
    let emu = emulator("");
    let (_dir, csv, state, _) = queue_rows_without_delivering(&emu, 30);
    emu.set_faults("413=1.0".parse().unwrap());
    let out = register(&emu.url(), &state, &csv, "30").output().unwrap();
    let summary = json(&out);
    assert_eq!(out.status.code(), Some(1), "{summary} {}", stderr(&out));
    assert_eq!(summary["restored"], 60, "{summary}");
    assert_eq!(summary["responsible"], 60, "{summary}");
    assert_eq!(summary["dropped"], 60, "{summary}");
    assert_eq!(emu.stats().ops_applied, 0);

    let emu = emulator("");
    let (_dir, csv, state, rows) = queue_rows_without_delivering(&emu, 30);
    let out = register(&emu.url(), &state, &csv, "30").output().unwrap();
    let summary = json(&out);
    assert_eq!(out.status.code(), Some(0), "{summary} {}", stderr(&out));
    assert_eq!(summary["restored"], 60, "{summary}");
    assert_eq!(summary["delivered"], 60, "{summary}");
    assert_linked(&emu, &rows);
}
