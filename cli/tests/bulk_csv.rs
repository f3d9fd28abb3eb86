//! `repro-line csv validate` and `csv fix`: output and exit codes 0/1/2.

mod bulk_common;
use bulk_common::*;

#[test]
fn validate_valid_file_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "users.csv", format1(100));
    let o = run(&["csv", "validate", s(&f)]);
    assert_code(&o, 0);
    let out = stdout(&o);
    assert!(out.contains("100 rows, 0 errors, 0 warnings"), "{out}");
    assert!(out.contains("MB/s") && out.contains("VALID"), "{out}");
}

#[test]
fn validate_warnings_only_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("{}{},user-0\n", format1(3), line_id(0));
    let f = write(dir.path(), "dup.csv", data);
    let o = run(&["csv", "validate", s(&f)]);
    assert_code(&o, 0);
    assert!(
        stdout(&o)
            .contains("line 5, line_user_id: warning [line_user_id.duplicate] repeats line 2"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn validate_invalid_file_exits_1_with_errors_out_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!(
        "line_user_id,user_id\n{},a\nU123,b\n{},{}\n",
        line_id(1),
        line_id(2),
        "x".repeat(200)
    );
    let f = write(dir.path(), "bad.csv", data);
    let errors = dir.path().join("errors.csv");
    let o = run(&["csv", "validate", s(&f), "--errors-out", s(&errors)]);
    assert_code(&o, 1);
    assert!(stdout(&o).contains("INVALID"));
    let text = std::fs::read_to_string(&errors).unwrap();
    let want = format!(
        "line,column,value,rule,severity\n3,line_user_id,U123,line_user_id.invalid,error\n4,user_id,{}…,user_id.too_long,error\n",
        "x".repeat(40)
    );
    assert_eq!(text, want);

    let o = run(&["csv", "validate", s(&f), "--json"]);
    assert_code(&o, 1);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one JSON object");
    assert_eq!(v["valid"], false);
    assert_eq!(v["rows"], 3);
    assert_eq!(v["errors"], 2);
    assert_eq!(v["format"], "1");
    assert_eq!(v["counts"]["line_user_id.invalid"], 1);
    assert_eq!(v["findings"][0]["line"], 3);
    assert_eq!(v["findings"][0]["rule"], "line_user_id.invalid");
    assert_eq!(v["findings"][0]["severity"], "error");
    assert!(v["mb_per_s"].is_number());
}

#[test]
fn validate_format_flag() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "f2.csv",
        format!("line_user_id\n{}\n", line_id(1)),
    );
    assert_code(&run(&["csv", "validate", s(&f), "--format", "2"]), 0);
    let o = run(&["csv", "validate", s(&f), "--format", "1"]);
    assert_code(&o, 1);
    assert!(stdout(&o).contains("header.invalid"), "{}", stdout(&o));
}

#[test]
fn validate_unreadable_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["csv", "validate", s(&dir.path().join("missing.csv"))]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));
    assert_code(&run(&["csv", "validate", s(dir.path())]), 2);
}

#[test]
fn fix_writes_clean_output_and_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!(
        "\u{feff}line_user_id,user_id\r\n{a},alice\r\n{a},alice\r\n{b},bob\r\nbad,carol\r\n",
        a = line_id(1),
        b = line_id(2)
    );
    let f = write(dir.path(), "in.csv", data);
    let out = dir.path().join("fixed.csv");
    let o = run(&["csv", "fix", s(&f), "-o", s(&out)]);
    // A rejected row: exit 1, so that a script notices.
    assert_code(&o, 1);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!(
            "line_user_id,user_id\n{},alice\n{},bob\n",
            line_id(1),
            line_id(2)
        )
    );
    let rejects = std::fs::read_to_string(dir.path().join("fixed.rejects.csv")).unwrap();
    assert_eq!(
        rejects,
        "line,rules,record\n5,line_user_id.invalid,\"bad,carol\"\n"
    );
    let text = stdout(&o);
    assert!(text.contains("stripped the byte order mark"), "{text}");
    assert!(text.contains("dropped 1 exact duplicate row"), "{text}");
    assert!(text.contains("REJECTED 1 row(s)"), "{text}");
    // The output validates clean.
    assert_code(&run(&["csv", "validate", s(&out)]), 0);
}

#[test]
fn fix_splits_under_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "big.csv", format1(2000));
    let out = dir.path().join("out.csv");
    let o = run(&[
        "csv",
        "fix",
        s(&f),
        "-o",
        s(&out),
        "--split-mb",
        "0.02",
        "--json",
    ]);
    assert_code(&o, 0);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let parts = v["parts"].as_array().unwrap();
    assert!(parts.len() >= 3, "{v}");
    let mut rows = 0;
    for p in parts {
        let path = p["path"].as_str().unwrap();
        let meta = std::fs::metadata(path).unwrap();
        assert!(meta.len() <= 20_000);
        assert!(std::fs::read_to_string(path)
            .unwrap()
            .starts_with("line_user_id,user_id\n"));
        assert_code(&run(&["csv", "validate", path]), 0);
        rows += p["rows"].as_u64().unwrap();
    }
    assert_eq!(rows, 2000);
    assert!(dir.path().join("out.part-001.csv").exists());
}

#[test]
fn fix_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "noheader.csv", format!("{},a\n", line_id(1)));
    let o = run(&["csv", "fix", s(&f), "-o", s(&dir.path().join("o.csv"))]);
    assert_code(&o, 1);
    assert!(stderr(&o).contains("not a valid header"), "{}", stderr(&o));
    let o = run(&[
        "csv",
        "fix",
        s(&dir.path().join("missing.csv")),
        "-o",
        s(&dir.path().join("o.csv")),
    ]);
    assert_code(&o, 2);
    let ok = write(dir.path(), "ok.csv", format1(2));
    assert_code(&run(&["csv", "fix", s(&ok), "-o", s(&ok)]), 2);
    assert_code(
        &run(&[
            "csv",
            "fix",
            s(&ok),
            "-o",
            s(&dir.path().join("x.csv")),
            "--split-mb",
            "600",
        ]),
        2,
    );
}
