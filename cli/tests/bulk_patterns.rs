//! The three import patterns end to end: the real `repro-line` binary
//! (`line followers`, `csv validate`/`fix`, `reconcile`) against an in-process
//! emulator, then the files it produced through the emulator's dashboard-style
//! import endpoint. Each test checks the final `line_users` table is what the
//! pattern promises.

mod bulk_common;
use bulk_common::*;

use std::path::Path;
use std::process::Output;

use repro_line_emulator::{Emulator, LineUser, LinkStatus};

const CHANNEL: &str = "1234567890";
const LINE_TOKEN: &str = "pattern-channel-token-0123456789";
/// Users `0..USERS`, as in `format1(USERS)`: `line_id(i),user-i`.
const USERS: u64 = 40;

/// The channel's followers: every third ID of 0..3003, i.e. 1001 IDs (two pages),
/// 14 of them users and the rest people the app does not know.
fn is_follower(i: u64) -> bool {
    i.is_multiple_of(3)
}

fn follower_ids() -> Vec<String> {
    (0..3003).filter(|&i| is_follower(i)).map(line_id).collect()
}

fn fetch_followers(emu: &Emulator, out: &Path) -> Output {
    run_env(
        &[
            "line",
            "followers",
            "--channel-token-env",
            "PATTERN_LINE_TOKEN",
            "--api-base",
            &emu.url(),
            "-o",
            s(out),
        ],
        &[("PATTERN_LINE_TOKEN", LINE_TOKEN)],
    )
}

fn assert_valid(file: &Path) {
    assert_code(&run(&["csv", "validate", s(file)]), 0);
}

fn assert_completed(job: &serde_json::Value) {
    assert_eq!(job["status"], "Import Completed", "{job}");
}

fn linked(i: u64, status: LinkStatus) -> LineUser {
    LineUser {
        channel_id: CHANNEL.into(),
        line_user_id: line_id(i),
        user_id: Some(format!("user-{i}")),
        status,
    }
}

/// In the emulator's order.
fn sorted(mut v: Vec<LineUser>) -> Vec<LineUser> {
    v.sort_by(|a, b| a.line_user_id.cmp(&b.line_user_id));
    v
}

#[test]
fn pattern_1_all_users_deliverable_then_non_followers_blocked() {
    let emu = emulator();
    emu.set_line_followers(LINE_TOKEN, follower_ids(), 0);
    let dir = tempfile::tempdir().unwrap();
    let users = write(dir.path(), "all-users.csv", format1(USERS));
    let followers = dir.path().join("followers.csv");
    assert_code(&fetch_followers(&emu, &followers), 0);
    assert_valid(&users);
    let deliverable = dir.path().join("deliverable.csv");
    let blocked = dir.path().join("blocked.csv");
    let o = reconcile(&users, &followers, "1", &deliverable, Some(&blocked));
    assert_code(&o, 0);
    assert_valid(&deliverable);
    assert_valid(&blocked);

    // Everyone (Format 1) as deliverable first …
    let job = import_file(&emu, CHANNEL, "deliverable", &deliverable);
    assert_completed(&job);
    assert_eq!(
        (job["format"].as_u64(), job["imported"].as_u64()),
        (Some(1), Some(USERS))
    );
    let all = sorted(
        (0..USERS)
            .map(|i| linked(i, LinkStatus::Deliverable))
            .collect(),
    );
    assert_eq!(emu.state().line_users, all);

    // … then the blocked list (Format 2) as blocked: it only updates entries already there.
    let job = import_file(&emu, CHANNEL, "blocked", &blocked);
    assert_completed(&job);
    let non_followers = (0..USERS).filter(|&i| !is_follower(i)).count() as u64;
    assert_eq!(
        (
            job["format"].as_u64(),
            job["imported"].as_u64(),
            job["created"].as_u64()
        ),
        (Some(2), Some(non_followers), Some(0)),
        "{job}"
    );
    let want = sorted(
        (0..USERS)
            .map(|i| {
                let status = if is_follower(i) {
                    LinkStatus::Deliverable
                } else {
                    LinkStatus::Blocked
                };
                linked(i, status)
            })
            .collect(),
    );
    assert_eq!(emu.state().line_users, want);
}

#[test]
fn pattern_2_only_the_known_friends_as_deliverable() {
    let emu = emulator();
    let dir = tempfile::tempdir().unwrap();
    // The friends the app knows of (from its own follow/unfollow log), exported with a
    // BOM and one row twice: `csv validate` rejects that file.
    let friends: Vec<u64> = (0..USERS).filter(|i| i % 4 != 1).collect();
    let mut raw = String::from("\u{feff}line_user_id,user_id\n");
    for &i in &friends {
        raw.push_str(&format!("{},user-{i}\n", line_id(i)));
    }
    raw.push_str(&format!("{},user-0\n", line_id(0)));
    let raw = write(dir.path(), "friends.csv", raw);
    let errors_out = dir.path().join("errors.csv");
    assert_code(
        &run(&["csv", "validate", s(&raw), "--errors-out", s(&errors_out)]),
        1,
    );

    // The import endpoint applies the same rules: the whole file is refused, with the same errors.csv.
    let job = import_file(&emu, CHANNEL, "deliverable", &raw);
    assert_eq!(job["status"], "Error", "{job}");
    assert_eq!(
        import_errors_csv(&emu, &job),
        std::fs::read_to_string(&errors_out).unwrap()
    );
    assert!(emu.state().line_users.is_empty(), "nothing applied");

    let fixed = dir.path().join("friends.fixed.csv");
    assert_code(&run(&["csv", "fix", s(&raw), "-o", s(&fixed)]), 0);
    assert_valid(&fixed);
    let job = import_file(&emu, CHANNEL, "deliverable", &fixed);
    assert_completed(&job);
    assert_eq!(job["warnings"], 0, "{job}");
    let want = sorted(
        friends
            .iter()
            .map(|&i| linked(i, LinkStatus::Deliverable))
            .collect(),
    );
    assert_eq!(emu.state().line_users, want);
}

#[test]
fn pattern_3_users_who_follow_as_deliverable() {
    let emu = emulator();
    // Every 2nd follower request is answered 429 (without Retry-After, as LINE does).
    emu.set_line_followers(LINE_TOKEN, follower_ids(), 2);
    let dir = tempfile::tempdir().unwrap();
    let users = write(dir.path(), "all-users.csv", format1(USERS));
    let followers = dir.path().join("followers.csv");
    let o = fetch_followers(&emu, &followers);
    assert_code(&o, 0);
    assert!(
        stderr(&o).contains("1001 followers in 2 pages (1 retries)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(&followers).unwrap(),
        format2(follower_ids())
    );
    assert_valid(&users);
    let deliverable = dir.path().join("deliverable.csv");
    assert_code(&reconcile(&users, &followers, "3", &deliverable, None), 0);
    assert_valid(&deliverable);

    let job = import_file(&emu, CHANNEL, "deliverable", &deliverable);
    assert_completed(&job);
    assert_eq!(job["format"], 1);
    // Exactly the followers among the users, linked; no follower the app does not know.
    let want = sorted(
        (0..USERS)
            .filter(|&i| is_follower(i))
            .map(|i| linked(i, LinkStatus::Deliverable))
            .collect(),
    );
    assert_eq!(emu.state().line_users, want);
}
