//! A file with one instance of each rule violation yields exactly one finding
//! per violation, on the right line, whatever the block size and thread count.

use std::path::PathBuf;

use repro_line_bulk::{validate_file, FormatChoice, ValidateOptions};

const A: &str = "U4af4980629a1b2c3d4e5f60718293a4b";
const B: &str = "U0123456789abcdef0123456789abcdef";
const C: &str = "Ufedcba9876543210fedcba9876543210";

fn id(n: u8) -> String {
    format!(
        "U{:032x}",
        0x1111_0000_0000_0000_0000_0000_0000_0000u128 + n as u128
    )
}

fn write(dir: &tempfile::TempDir, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn findings(path: &std::path::Path, opts: &ValidateOptions) -> Vec<(u64, String)> {
    let r = validate_file(path, opts).unwrap();
    assert!(!r.findings_truncated);
    r.findings
        .iter()
        .map(|f| (f.line, f.rule.id().to_string()))
        .collect()
}

fn expect(list: &[(u64, &str)]) -> Vec<(u64, String)> {
    list.iter().map(|(l, r)| (*l, r.to_string())).collect()
}

#[test]
fn one_finding_per_violation_with_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let mut data: Vec<u8> = Vec::new();
    let mut line = |s: &[u8]| {
        data.extend_from_slice(s);
        data.push(b'\n');
    };
    line("\u{feff}line_user_id,user_id".as_bytes()); // 1 encoding.bom
    line(format!("{A},alice").as_bytes()); // 2
    line(format!("{B},bob").as_bytes()); // 3
    line(b""); // 4 row.blank
    line(format!("{},x,y", id(1)).as_bytes()); // 5 row.columns
    line(format!("{},a\"b", id(2)).as_bytes()); // 6 csv.quote
    line(format!("{},carol\r", id(3)).as_bytes()); // 7 line_ending.inconsistent
    line(b",nobody"); // 8 line_user_id.empty
    line(b"U123,short"); // 9 line_user_id.invalid
    line(format!("{},dave", C.to_uppercase()).as_bytes()); // 10 line_user_id.not_lower_hex
    line(format!("{A},alice").as_bytes()); // 11 line_user_id.duplicate
    line(format!("{B},robert").as_bytes()); // 12 line_user_id.conflict
    line(format!("{},", id(4)).as_bytes()); // 13 user_id.empty
    line(format!("{},{}", id(5), "x".repeat(192)).as_bytes()); // 14 user_id.too_long
    line(format!("{},\"tab\there\"", id(6)).as_bytes()); // 15 user_id.control
    let mut bad = format!("{},bad", id(7)).into_bytes();
    bad.push(0xFF);
    line(&bad); // 16 encoding.utf8
    line(format!("{},\"multi\nline\"", id(8)).as_bytes()); // 17-18 user_id.control (one record, two lines)
    line(format!("{},\"quoted, \"\"fine\"\"\"", id(9)).as_bytes()); // 19 valid
    line(format!("{},zoe", id(10)).as_bytes()); // 20 valid
    line(format!("{}, spaced", id(11)).as_bytes()); // 21 user_id.whitespace
    let p = write(&dir, "all.csv", &data);
    let want = expect(&[
        (1, "encoding.bom"),
        (4, "row.blank"),
        (5, "row.columns"),
        (6, "csv.quote"),
        (7, "line_ending.inconsistent"),
        (8, "line_user_id.empty"),
        (9, "line_user_id.invalid"),
        (10, "line_user_id.not_lower_hex"),
        (11, "line_user_id.duplicate"),
        (12, "line_user_id.conflict"),
        (13, "user_id.empty"),
        (14, "user_id.too_long"),
        (15, "user_id.control"),
        (16, "encoding.utf8"),
        (17, "user_id.control"),
        (21, "user_id.whitespace"),
    ]);
    for (block_size, threads) in [(8 << 20, 0), (64, 1), (100, 2), (333, 3)] {
        let opts = ValidateOptions {
            block_size,
            threads,
            ..Default::default()
        };
        assert_eq!(
            findings(&p, &opts),
            want,
            "block {block_size}, threads {threads}"
        );
    }
    let r = validate_file(&p, &Default::default()).unwrap();
    assert_eq!(r.rows, 18);
    assert_eq!((r.errors, r.warnings), (12, 4));
}

#[test]
fn file_level_rules_one_each() {
    let dir = tempfile::tempdir().unwrap();
    let d = ValidateOptions::default();
    assert_eq!(
        findings(&write(&dir, "empty.csv", b""), &d),
        expect(&[(0, "file.empty")])
    );
    assert_eq!(
        findings(&write(&dir, "norows.csv", b"line_user_id,user_id\n"), &d),
        expect(&[(0, "file.no_rows")])
    );
    assert_eq!(
        findings(
            &write(
                &dir,
                "header.csv",
                format!("line_user_id, user_id\n{A},a\n").as_bytes()
            ),
            &d
        ),
        expect(&[(1, "header.invalid")])
    );
    let f2 = write(&dir, "f2.csv", format!("line_user_id\n{A}\n").as_bytes());
    assert_eq!(findings(&f2, &d), expect(&[]));
    let want_1 = ValidateOptions {
        format: FormatChoice::One,
        ..Default::default()
    };
    // Forcing Format 1 on a Format 2 file: the header is wrong, and the rows are read as Format 1.
    assert_eq!(
        findings(&f2, &want_1),
        expect(&[(1, "header.invalid"), (2, "row.columns")])
    );
    let small = ValidateOptions {
        max_bytes: 40,
        ..Default::default()
    };
    assert_eq!(
        findings(
            &write(&dir, "big.csv", format!("line_user_id\n{A}\n").as_bytes()),
            &small
        ),
        expect(&[(0, "file.too_large")])
    );
}
