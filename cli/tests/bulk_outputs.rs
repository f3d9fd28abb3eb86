//! Issue 11 items 12, 13, 14 (reconcile) and 15 (csv validate), and issue 17
//! item 3: outputs never overwrite inputs, read-once inputs, sizes and
//! endless inputs, exit codes a script notices.

mod bulk_common;
use bulk_common::*;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn assert_refused(o: &std::process::Output, what: &str) {
    assert_code(o, 2);
    let err = stderr(o);
    assert!(err.contains(what), "{err}");
}

#[test]
fn outputs_that_are_inputs_or_each_other_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let users = write(dir.path(), "users.csv", format1(5));
    let followers = write(dir.path(), "followers.csv", format2((0..3).map(line_id)));
    let before = std::fs::read(&users).unwrap();

    // reconcile -o users.csv (an input), and -o X --blocked-out X.
    let o = reconcile(&users, &followers, "3", &users, None);
    assert_refused(&o, "is the same file as the input --users");
    let x = dir.path().join("x.csv");
    let o = reconcile(&users, &followers, "1", &x, Some(&x));
    assert_refused(&o, "are the same file");
    assert!(!x.exists());

    // Through a symlink and a hard link too.
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(&followers, &link).unwrap();
    let o = reconcile(&users, &followers, "3", &link, None);
    assert_refused(&o, "--followers");
    let hard = dir.path().join("hard.csv");
    std::fs::hard_link(&users, &hard).unwrap();
    let o = run(&["csv", "validate", s(&users), "--errors-out", s(&hard)]);
    assert_refused(&o, "--errors-out");

    // csv validate X --errors-out X.
    let o = run(&["csv", "validate", s(&users), "--errors-out", s(&users)]);
    assert_refused(&o, "--errors-out");

    // csv fix --rejects equal to -o: the rejected row would be gone.
    let bad = write(dir.path(), "bad.csv", format!("{}U123,x\n", format1(2)));
    let out = dir.path().join("o.csv");
    let o = run(&["csv", "fix", s(&bad), "-o", s(&out), "--rejects", s(&out)]);
    assert_refused(&o, "are the same file");
    assert!(!out.exists());

    // csv fix o.part-001.csv -o o.csv --split-mb 1: part 1 would overwrite the input.
    let part = write(dir.path(), "o.part-001.csv", format1(5));
    let part_before = std::fs::read(&part).unwrap();
    let o = run(&["csv", "fix", s(&part), "-o", s(&out), "--split-mb", "1"]);
    assert_refused(&o, "puts a part");
    assert_eq!(std::fs::read(&part).unwrap(), part_before);

    assert_eq!(std::fs::read(&users).unwrap(), before, "an input changed");
}

#[test]
fn a_failed_fix_leaves_no_half_written_output() {
    let dir = tempfile::tempdir().unwrap();
    // Invalid CP932 on line 3: the run stops there, and -o is not created.
    let f = write(
        dir.path(),
        "in.csv",
        [
            b"line_user_id\n".as_slice(),
            line_id(1).as_bytes(),
            b"\n\x81\x20\n",
        ]
        .concat(),
    );
    let out = dir.path().join("o.csv");
    let o = run(&[
        "csv",
        "fix",
        s(&f),
        "-o",
        s(&out),
        "--from-encoding",
        "cp932",
    ]);
    assert_code(&o, 1);
    assert!(stderr(&o).contains("line 3"), "{}", stderr(&o));
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec!["in.csv".to_string()], "{left:?}");
}

/// Runs `repro-line ARGS` with `data` on stdin; returns its output.
fn run_stdin(args: &[&str], data: &[u8]) -> std::process::Output {
    let mut c = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&data);
    });
    let o = c.wait_with_output().unwrap();
    writer.join().unwrap();
    o
}

#[test]
fn fix_streams_a_pipe_and_a_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!("{}{},user-0\nU123,x\n", format1(1000), line_id(0));
    let out = dir.path().join("o.csv");
    let o = run_stdin(
        &["csv", "fix", "/dev/stdin", "-o", s(&out)],
        data.as_bytes(),
    );
    // One rejected row: exit 1, and every other row written.
    assert_code(&o, 1);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), format1(1000));
    assert!(
        stdout(&o).contains("dropped 1 exact duplicate"),
        "{}",
        stdout(&o)
    );
    let rejects = std::fs::read_to_string(dir.path().join("o.rejects.csv")).unwrap();
    assert_eq!(
        rejects,
        "line,rules,record\n1003,line_user_id.invalid,\"U123,x\"\n"
    );

    // A FIFO: read once, no hang.
    let fifo = dir.path().join("fifo.csv");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let fifo_w = fifo.clone();
    let good = format1(300);
    let writer = std::thread::spawn(move || std::fs::write(&fifo_w, good));
    let out2 = dir.path().join("o2.csv");
    let started = Instant::now();
    let o = run(&["csv", "fix", s(&fifo), "-o", s(&out2)]);
    writer.join().unwrap().unwrap();
    assert_code(&o, 0);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(std::fs::read_to_string(&out2).unwrap(), format1(300));
}

#[test]
fn fix_refuses_an_endless_line_1() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&[
        "csv",
        "fix",
        "/dev/zero",
        "-o",
        s(&dir.path().join("o.csv")),
    ]);
    assert_code(&o, 1);
    assert!(stderr(&o).contains("no line break"), "{}", stderr(&o));
}

#[test]
fn fix_exits_1_when_it_rejected_rows() {
    let dir = tempfile::tempdir().unwrap();
    let clean = write(dir.path(), "clean.csv", format1(3));
    let o = run(&["csv", "fix", s(&clean), "-o", s(&dir.path().join("a.csv"))]);
    assert_code(&o, 0);
    let bad = write(dir.path(), "bad.csv", format!("{}U123,x\n", format1(3)));
    let o = run(&["csv", "fix", s(&bad), "-o", s(&dir.path().join("b.csv"))]);
    assert_code(&o, 1);
    assert!(stdout(&o).contains("REJECTED 1 row(s)"), "{}", stdout(&o));
}

#[test]
fn validate_reports_too_large_from_the_size_without_reading() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.csv");
    // 2 GB, sparse: no disk used. A full scan would take seconds.
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(2_000_000_000).unwrap();
    drop(f);
    let o = run(&["csv", "validate", s(&big), "--json"]);
    assert_code(&o, 1);
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["counts"]["file.too_large"], 1, "{v}");
    assert_eq!(v["bytes"], 2_000_000_000u64);
    assert!(
        v["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("the file was not read"),
        "{v}"
    );
}

#[test]
fn validate_stops_on_an_endless_input() {
    let started = Instant::now();
    let o = run(&["csv", "validate", "/dev/zero"]);
    assert_code(&o, 1);
    let out = stdout(&o);
    assert!(out.contains("file.too_large"), "{out}");
    assert!(out.contains("stopped reading"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn an_unterminated_quote_is_reported_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = format!(
        "line_user_id,user_id\n{},\"alice\n{},bob\n",
        line_id(1),
        line_id(2)
    );
    let f = write(dir.path(), "q.csv", data);
    let o = run(&["csv", "validate", s(&f)]);
    assert_code(&o, 1);
    let out = stdout(&o);
    assert!(out.contains("[csv.quote]"), "{out}");
    assert!(out.contains("never closes"), "{out}");
    assert!(!out.contains("user_id.control"), "{out}");
}

#[test]
fn reconcile_exits_1_when_its_output_would_fail_validate() {
    let dir = tempfile::tempdir().unwrap();
    // LINE ID 1 on two user IDs: the deliverable list would hold a conflict.
    let users = write(
        dir.path(),
        "users.csv",
        format!("{}{},someone-else\n", format1(3), line_id(1)),
    );
    let followers = write(dir.path(), "f.csv", format2((0..3).map(line_id)));
    let out = dir.path().join("d.csv");
    let o = reconcile(&users, &followers, "3", &out, None);
    assert_code(&o, 1);
    let text = stdout(&o);
    assert!(
        text.contains("would fail `repro-line csv validate`")
            && text.contains("line_user_id.conflict"),
        "{text}"
    );
    // What it said is true.
    assert_code(&run(&["csv", "validate", s(&out)]), 1);
}
