//! Issue 17: a data engineer in Japan loading a CDP export. JST date folders,
//! exports as they come (other columns, CP932, UTF-16), warnings where the
//! result would surprise, several files in one upload.

mod bulk_common;
use bulk_common::*;

fn key(extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "s3",
        "key",
        "--app-id",
        "app1",
        "--channel-id",
        "1234567890",
        "--keep-name",
    ];
    args.extend_from_slice(extra);
    args.push("users.csv");
    run(&args)
}

const PREFIX: &str = "s3://repro-data-store/app1/line_user_id/1234567890/";

#[test]
fn date_folders_are_japan_time_by_default() {
    // 01:30 JST on April 30 is still April 29 in UTC.
    let now = ["--now", "2025-04-29T16:30:00Z", "--type", "deliverable"];
    let o = key(&now);
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o).trim(),
        format!("{PREFIX}2025/04/30/followed/users.csv")
    );
    let o = key(&[&now[..], &["--timezone", "UTC"]].concat());
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o).trim(),
        format!("{PREFIX}2025/04/29/followed/users.csv")
    );
    let o = key(&[&now[..], &["--timezone", "Mars/Olympus"]].concat());
    assert_code(&o, 2);
    assert!(stderr(&o).contains("--timezone"), "{}", stderr(&o));

    // The key's own date form, and the folder names as types.
    let o = key(&["--date", "2025/04/30", "--type", "unfollowed"]);
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o).trim(),
        format!("{PREFIX}2025/04/30/unfollowed/users.csv")
    );
    let o = key(&["--date", "2025/04/30", "--type", "followed"]);
    assert_code(&o, 0);
    assert!(stdout(&o).contains("/followed/users.csv"), "{}", stdout(&o));
}

/// `member_id,LINE ID,名前` in CP932, as a Japanese Windows tool writes it.
fn cp932_export() -> Vec<u8> {
    const NAMAE: &[u8] = b"\x96\xbc\x91\x4f"; // 名前
    const YAMADA: &[u8] = b"\x8e\x52\x93\x63"; // 山田
    let mut v = Vec::new();
    v.extend_from_slice(b"member_id,LINE ID,");
    v.extend_from_slice(NAMAE);
    v.extend_from_slice(b"\r\n");
    for i in 0..3u64 {
        v.extend_from_slice(format!("m{i},{},", line_id(i)).as_bytes());
        v.extend_from_slice(YAMADA);
        v.extend_from_slice(b"\r\n");
    }
    // A user ID in Japanese, and one with a trailing space.
    v.extend_from_slice(YAMADA);
    v.extend_from_slice(format!(",{},x\r\n", line_id(3)).as_bytes());
    v.extend_from_slice(format!("m4 ,{},x\r\n", line_id(4)).as_bytes());
    v
}

#[test]
fn fix_maps_columns_and_transcodes_cp932() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "export.csv", cp932_export());
    let out = dir.path().join("users.csv");
    let o = run(&[
        "csv",
        "fix",
        s(&f),
        "-o",
        s(&out),
        "--from-encoding",
        "cp932",
        "--line-user-id-column",
        "LINE ID",
        "--user-id-column",
        "member_id",
    ]);
    assert_code(&o, 0);
    let want = format!(
        "line_user_id,user_id\n{},m0\n{},m1\n{},m2\n{},山田\n{},m4 \n",
        line_id(0),
        line_id(1),
        line_id(2),
        line_id(3),
        line_id(4)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), want);
    let text = stdout(&o);
    assert!(text.contains("from CP932"), "{text}");
    assert!(
        text.contains("line_user_id ← LINE ID, user_id ← member_id"),
        "{text}"
    );
    assert!(
        stderr(&o).contains("1 user ID(s) start or end with a space"),
        "{}",
        stderr(&o)
    );
    // The validator says which line.
    let o = run(&["csv", "validate", s(&out)]);
    assert_code(&o, 0);
    assert!(
        stdout(&o).contains("line 6, user_id: warning [user_id.whitespace]"),
        "{}",
        stdout(&o)
    );

    // Format 2 from the LINE ID column alone; shift_jis is the same encoding.
    let out2 = dir.path().join("blocked.csv");
    let o = run(&[
        "csv",
        "fix",
        s(&f),
        "-o",
        s(&out2),
        "--from-encoding",
        "shift_jis",
        "--line-user-id-column",
        "LINE ID",
    ]);
    assert_code(&o, 0);
    assert_eq!(
        std::fs::read_to_string(&out2).unwrap(),
        format2((0..5).map(line_id))
    );

    // A column that is not there: exit 2, naming the columns that are.
    let o = run(&[
        "csv",
        "fix",
        s(&f),
        "-o",
        s(&out2),
        "--from-encoding",
        "cp932",
        "--line-user-id-column",
        "line_id",
    ]);
    assert_code(&o, 2);
    assert!(
        stderr(&o).contains("it has: member_id, LINE ID, 名前"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn fix_transcodes_utf16() {
    let dir = tempfile::tempdir().unwrap();
    let text = format1(50);
    let mut bytes = vec![0xFF, 0xFE];
    for u in text.replace('\n', "\r\n").encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    let f = write(dir.path(), "u16.csv", bytes);
    let out = dir.path().join("o.csv");
    let o = run(&[
        "csv",
        "fix",
        s(&f),
        "-o",
        s(&out),
        "--from-encoding",
        "utf-16",
    ]);
    assert_code(&o, 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), text);
}

#[test]
fn validator_names_display_names_and_at_ids() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "mixed.csv",
        format!(
            "line_user_id,user_id\n@repro_shop,a\n山田 太郎,b\n {} ,c\n",
            line_id(1)
        ),
    );
    let o = run(&["csv", "validate", s(&f)]);
    assert_code(&o, 1);
    let out = stdout(&o);
    assert!(
        out.contains("line 2, line_user_id: error [line_user_id.invalid]")
            && out.contains("looks like a LINE @-ID"),
        "{out}"
    );
    assert!(out.contains("looks like a display name"), "{out}");
    assert!(out.contains("with spaces around it"), "{out}");
}

#[test]
fn uploads_several_files_with_one_summary_and_warns_on_format_2_deliverable() {
    let moto = Moto::with_bucket();
    let dir = tempfile::tempdir().unwrap();
    // The parts `csv fix --split-mb` writes.
    let src = write(dir.path(), "all.csv", format2((0..3000).map(line_id)));
    let out = dir.path().join("out.csv");
    let o = run(&["csv", "fix", s(&src), "-o", s(&out), "--split-mb", "0.03"]);
    assert_code(&o, 0);
    let mut parts: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".part-"))
        .collect();
    parts.sort();
    assert!(parts.len() >= 3, "{parts:?}");
    let mut args = vec![
        "s3",
        "upload",
        "--app-id",
        S3_APP,
        "--channel-id",
        S3_CHANNEL,
        "--type",
        "deliverable",
        "--endpoint-url",
    ];
    let url = moto.url();
    args.push(&url);
    for p in &parts {
        args.push(s(p));
    }
    // Debug logs on: a non-terminal stderr still gets no ANSI colour.
    let mut env = S3_CREDS.to_vec();
    env.push(("REPRO_LINE_LOG", "debug"));
    let o = run_env(&args, &env);
    assert_code(&o, 0);
    let err = stderr(&o);
    assert!(!o.stderr.contains(&0x1b), "ANSI escape on a non-terminal");
    assert!(
        err.contains(&format!("uploaded {n} of {n} file(s), ", n = parts.len())),
        "{err}"
    );
    assert!(err.contains("broadcast-only"), "{err}");
    let printed = stdout(&o);
    let uris: Vec<&str> = printed.lines().collect();
    assert_eq!(uris.len(), parts.len());
    let mut unique = uris.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), parts.len(), "keys must be unique: {uris:?}");
    // Each key holds its part, byte for byte.
    for (uri, part) in uris.iter().zip(&parts) {
        let key = uri.strip_prefix("s3://repro-data-store/").unwrap();
        let stem = part.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(key.contains(&format!("/followed/{stem}-")), "{key}");
        assert_eq!(moto.get_object(key), std::fs::read(part).unwrap());
    }

    // --keep-name with two files of one name: refused before any upload.
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let again = write(&sub, "out.part-001.csv", format2((0..2).map(line_id)));
    let o = s3_upload(
        &parts[0],
        "blocked",
        &url,
        &["--keep-name", s(&again)],
        &S3_CREDS,
    );
    assert_code(&o, 2);
    assert!(stderr(&o).contains("different names"), "{}", stderr(&o));
}
