//! `register` applies `csv validate`'s rules (issue 11, item 14): it silently took
//! a LINE ID on two user IDs (last wins), extra columns and a repeated header column.

mod sdk_common;

use sdk_common::*;

#[test]
fn register_refuses_what_csv_validate_refuses_and_names_the_rule() {
    let emu = emulator("");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (line_id(1), line_id(2));
    let cases = [
        (
            "conflict",
            format!("line_user_id,user_id\n{a},alice\n{b},bob\n{a},mallory\n"),
            "line_user_id.conflict",
        ),
        (
            "extra column",
            format!("line_user_id,user_id\n{a},alice,extra\n"),
            "row.columns",
        ),
        (
            "repeated header column",
            format!("line_user_id,user_id,user_id\n{a},alice,alice\n"),
            "header.invalid",
        ),
    ];
    for (name, text, rule) in cases {
        let csv = dir.path().join(format!("{}.csv", name.replace(' ', "-")));
        std::fs::write(&csv, text).unwrap();
        let out = register(&emu.url(), &dir.path().join("state"), &csv, "5")
            .output()
            .unwrap();
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {message}");
        assert!(message.contains(rule), "{name}: names {rule}: {message}");
    }
    assert_eq!(emu.stats().requests, 0, "nothing was enqueued");
}
