//! `repro-line s3 key` and `s3 upload` (against a local moto_server that the
//! test starts on 127.0.0.1).

mod bulk_common;
use bulk_common::*;

#[test]
fn key_prints_the_auto_import_uri() {
    let o = run(&[
        "s3",
        "key",
        "--app-id",
        "myapp",
        "--channel-id",
        "1234567890",
        "--type",
        "deliverable",
        "--date",
        "2025-01-31",
        "--keep-name",
        "users.csv",
    ]);
    assert_code(&o, 0);
    assert_eq!(
        stdout(&o).trim(),
        "s3://repro-data-store/myapp/line_user_id/1234567890/2025/01/31/followed/users.csv"
    );

    let o = run(&[
        "s3",
        "key",
        "--app-id",
        "myapp",
        "--channel-id",
        "1234567890",
        "--type",
        "blocked",
        "dir/blocked.csv",
    ]);
    assert_code(&o, 0);
    let uri = stdout(&o).trim().to_string();
    let prefix = format!(
        "s3://repro-data-store/myapp/line_user_id/1234567890/{}/unfollowed/blocked-",
        today_path()
    );
    assert!(uri.starts_with(&prefix), "{uri} vs {prefix}");
    let suffix = &uri[prefix.len()..];
    // hhmmss-xxxxxx.csv
    assert_eq!(suffix.len(), "hhmmss-abcdef.csv".len(), "{uri}");
    assert!(suffix.ends_with(".csv"));
    assert!(suffix[..6].bytes().all(|b| b.is_ascii_digit()), "{uri}");
    assert!(
        suffix[7..13].bytes().all(|b| b.is_ascii_hexdigit()),
        "{uri}"
    );
}

#[test]
fn key_refuses_bad_names_and_ids() {
    let base = [
        "s3",
        "key",
        "--app-id",
        "a",
        "--channel-id",
        "1234567890",
        "--type",
        "deliverable",
    ];
    for name in ["my users.csv", "users.txt", "users.CSV", ".csv"] {
        let mut args = base.to_vec();
        args.push(name);
        let o = run(&args);
        assert_code(&o, 2);
        assert!(stderr(&o).contains("file name"), "{name}: {}", stderr(&o));
    }
    let o = run(&[
        "s3",
        "key",
        "--app-id",
        "a",
        "--channel-id",
        "12 34",
        "--type",
        "blocked",
        "u.csv",
    ]);
    assert_code(&o, 2);
    let o = run(&[
        "s3",
        "key",
        "--app-id",
        "a",
        "--channel-id",
        "1",
        "--type",
        "blocked",
        "--date",
        "2025-02-30",
        "u.csv",
    ]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("YYYY-MM-DD"));
}

#[test]
fn upload_lands_at_the_key_byte_for_byte() {
    let moto = Moto::with_bucket();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = moto.url();

    // Small file: one PUT, unique name.
    let small = write(dir.path(), "users.csv", format1(500));
    let o = s3_upload(&small, "deliverable", &endpoint, &[], &S3_CREDS);
    assert_code(&o, 0);
    let uri = stdout(&o).trim().to_string();
    let key = uri
        .strip_prefix("s3://repro-data-store/")
        .expect("uri")
        .to_string();
    assert!(
        key.starts_with(&format!(
            "app1/line_user_id/1234567890/{}/followed/users-",
            today_path()
        )),
        "{key}"
    );
    assert_eq!(moto.get_object(&key), std::fs::read(&small).unwrap());

    // Larger than one part: multipart (5 MiB parts), kept name, explicit date, blocked.
    let mut big = String::from("line_user_id\n");
    let mut i = 0;
    while big.len() < 12 << 20 {
        big.push_str(&line_id(i));
        big.push('\n');
        i += 1;
    }
    let big_path = write(dir.path(), "blocked.csv", &big);
    let o = s3_upload(
        &big_path,
        "blocked",
        &endpoint,
        &[
            "--keep-name",
            "--date",
            "2025-03-07",
            "--part-size-mib",
            "5",
        ],
        &S3_CREDS,
    );
    assert_code(&o, 0);
    assert!(stderr(&o).contains("3 part(s)"), "{}", stderr(&o));
    let key = "app1/line_user_id/1234567890/2025/03/07/unfollowed/blocked.csv";
    assert_eq!(stdout(&o).trim(), format!("s3://repro-data-store/{key}"));
    assert!(
        moto.get_object(key) == big.as_bytes(),
        "multipart object differs"
    );
}

#[test]
fn upload_refuses_invalid_files_unless_forced() {
    let moto = Moto::with_bucket();
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.csv", "line_user_id,user_id\nU123,a\n");
    let pinned = ["--keep-name", "--date", "2025-03-07"];
    let o = s3_upload(&bad, "deliverable", &moto.url(), &pinned, &S3_CREDS);
    assert_code(&o, 1);
    assert!(
        stderr(&o).contains("line_user_id.invalid"),
        "{}",
        stderr(&o)
    );
    let key = "app1/line_user_id/1234567890/2025/03/07/followed/bad.csv";
    assert_eq!(moto.object(key).0, 404, "nothing may be uploaded");

    let forced = [&pinned[..], &["--force"]].concat();
    let o = s3_upload(&bad, "deliverable", &moto.url(), &forced, &S3_CREDS);
    assert_code(&o, 0);
    assert_eq!(moto.get_object(key), std::fs::read(&bad).unwrap());

    // Unreadable file, bad name, unreachable endpoint: 2.
    let missing = dir.path().join("missing.csv");
    assert_code(
        &s3_upload(&missing, "blocked", &moto.url(), &[], &S3_CREDS),
        2,
    );
    let spaced = write(dir.path(), "my file.csv", format1(1));
    assert_code(
        &s3_upload(&spaced, "blocked", &moto.url(), &[], &S3_CREDS),
        2,
    );
    let ok = write(dir.path(), "ok.csv", format1(1));
    let closed = format!("http://127.0.0.1:{}", free_port());
    let o = s3_upload(
        &ok,
        "deliverable",
        &closed,
        &[],
        &[
            ("AWS_ACCESS_KEY_ID", "t"),
            ("AWS_SECRET_ACCESS_KEY", "t"),
            ("AWS_REGION", "us-east-1"),
            ("HOME", s(dir.path())),
        ],
    );
    assert_code(&o, 2);
    assert!(stderr(&o).contains("S3 upload failed"), "{}", stderr(&o));
}
