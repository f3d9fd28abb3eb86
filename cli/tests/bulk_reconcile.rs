//! `repro-line reconcile`: patterns 3 and 1, exit codes 0/1/2.

mod bulk_common;
use bulk_common::*;

use std::path::{Path, PathBuf};

/// 20 users (0..20); followers are every third ID of 0..40 (14, 7 of them users).
fn inputs(dir: &Path) -> (PathBuf, PathBuf) {
    let users = write(dir, "users.csv", format1(20));
    let followers = format2((0..40).filter(|i| i % 3 == 0).map(line_id));
    (users, write(dir, "followers.csv", followers))
}

#[test]
fn pattern_3_writes_the_intersection() {
    let dir = tempfile::tempdir().unwrap();
    let (users, followers) = inputs(dir.path());
    let out = dir.path().join("deliverable.csv");
    let o = reconcile(&users, &followers, "3", &out, None);
    assert_code(&o, 0);
    let mut want = String::from("line_user_id,user_id\n");
    for i in (0..20).filter(|i| i % 3 == 0) {
        want.push_str(&format!("{},user-{i}\n", line_id(i)));
    }
    assert_eq!(std::fs::read_to_string(&out).unwrap(), want);
    assert!(
        stdout(&o).contains("20 users, 14 followers → 7 deliverable"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn pattern_1_writes_all_users_and_the_blocked_list() {
    let dir = tempfile::tempdir().unwrap();
    let (users, followers) = inputs(dir.path());
    let out = dir.path().join("deliverable.csv");
    let blocked = dir.path().join("blocked.csv");
    let o = reconcile(&users, &followers, "1", &out, Some(&blocked));
    assert_code(&o, 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), format1(20));
    let want = format2((0..20).filter(|i| i % 3 != 0).map(line_id));
    assert_eq!(std::fs::read_to_string(&blocked).unwrap(), want);
    assert_code(&run(&["csv", "validate", s(&blocked)]), 0);

    // Pattern 1 needs --blocked-out.
    assert_code(&reconcile(&users, &followers, "1", &out, None), 2);
}

#[test]
fn bad_rows_are_skipped_and_reported_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let (_, followers) = inputs(dir.path());
    let users = write(dir.path(), "u.csv", format!("{}U123,x\n", format1(3)));
    let out = dir.path().join("d.csv");
    let o = reconcile(&users, &followers, "3", &out, None);
    assert_code(&o, 1);
    assert!(
        stdout(&o).contains("line 5: line_user_id.invalid"),
        "{}",
        stdout(&o)
    );
    assert!(out.exists());

    // Users must be Format 1; a missing file is exit 2.
    assert_code(&reconcile(&followers, &followers, "3", &out, None), 1);
    let missing = dir.path().join("none.csv");
    assert_code(&reconcile(&missing, &followers, "3", &out, None), 2);
}
