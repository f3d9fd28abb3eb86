//! Property test: the fast, block-parallel validator reports exactly what a
//! simple whole-file reference implementation (RFC 4180 parse, then the rules
//! via `repro_line_core::validate`) reports, on random files full of edge cases,
//! for random block sizes and thread counts.

use std::collections::HashMap;

use proptest::prelude::*;
use repro_line_bulk::{validate_file, ValidateOptions};
use repro_line_core::validate::{line_user_id, MAX_USER_ID_CHARS};

#[derive(Debug, Clone)]
struct Field {
    value: Vec<u8>,
    quoted: bool,
    problem: bool,
}

#[derive(Debug)]
struct Rec {
    line: u64,
    fields: Vec<Field>,
    crlf: Option<bool>,
}

/// The plainest RFC 4180 reader: whole input, byte by byte.
fn parse(data: &[u8], first_line: u64) -> Vec<Rec> {
    let mut recs = Vec::new();
    let mut line = first_line;
    let mut i = 0;
    while i < data.len() {
        let start = line;
        let mut fields = Vec::new();
        let crlf;
        loop {
            let mut f = Field {
                value: Vec::new(),
                quoted: false,
                problem: false,
            };
            let mut end_of_record = None; // Some(crlf?) or None at EOF
            if data.get(i) == Some(&b'"') {
                f.quoted = true;
                i += 1;
                let mut closed = false;
                while i < data.len() {
                    if data[i] == b'"' {
                        if data.get(i + 1) == Some(&b'"') {
                            f.value.push(b'"');
                            i += 2;
                            continue;
                        }
                        i += 1;
                        closed = true;
                        break;
                    }
                    if data[i] == b'\n' {
                        line += 1;
                    }
                    f.value.push(data[i]);
                    i += 1;
                }
                if !closed {
                    f.problem = true;
                }
            }
            // Unquoted text, or text after the closing quote.
            let after_quote = f.quoted;
            let mut sep = false;
            while i < data.len() {
                let b = data[i];
                if b == b',' {
                    i += 1;
                    sep = true;
                    break;
                }
                if b == b'\n' {
                    i += 1;
                    end_of_record = Some(false);
                    break;
                }
                if b == b'\r' && data.get(i + 1) == Some(&b'\n') {
                    i += 2;
                    end_of_record = Some(true);
                    break;
                }
                if after_quote || b == b'"' {
                    f.problem = true;
                }
                f.value.push(b);
                i += 1;
            }
            fields.push(f);
            if sep {
                continue;
            }
            crlf = end_of_record;
            if end_of_record.is_some() {
                line += 1;
            }
            break;
        }
        recs.push(Rec {
            line: start,
            fields,
            crlf,
        });
    }
    recs
}

fn reference(data: &[u8]) -> Vec<(u64, String)> {
    let mut out: Vec<(u64, String)> = Vec::new();
    if data.is_empty() {
        return vec![(0, "file.empty".into())];
    }
    let mut data = data;
    if data.starts_with(&[0xEF, 0xBB, 0xBF]) {
        out.push((1, "encoding.bom".into()));
        data = &data[3..];
    } else if data.starts_with(&[0xFF, 0xFE]) || data.starts_with(&[0xFE, 0xFF]) {
        out.push((1, "encoding.bom".into()));
        data = &data[2..];
    }
    let (header, rest, had_newline) = match data.iter().position(|&b| b == b'\n') {
        Some(k) => (&data[..k], &data[k + 1..], true),
        None => (data, &data[data.len()..], false),
    };
    let (header, header_crlf) = match header.strip_suffix(b"\r") {
        Some(h) => (h, true),
        None => (header, false),
    };
    let (valid_header, two) = match header {
        b"line_user_id,user_id" => (true, false),
        b"line_user_id" => (true, true),
        h => {
            out.push((1, "header.invalid".into()));
            (false, !h.contains(&b','))
        }
    };
    let _ = had_newline;
    let mut seen: HashMap<Vec<u8>, (Vec<u8>, u64)> = HashMap::new();
    let mut rows = 0;
    let mut errors = out.iter().filter(|(_, r)| r != "file.no_rows").count();
    for rec in parse(rest, 2) {
        let line = rec.line;
        let push = |rule: &str, out: &mut Vec<(u64, String)>| out.push((line, rule.into()));
        if rec.fields.len() == 1 && rec.fields[0].value.is_empty() && !rec.fields[0].quoted {
            push("row.blank", &mut out);
            errors += 1;
            continue;
        }
        rows += 1;
        let mut bad = false;
        let want = if two { 1 } else { 2 };
        if rec.fields.len() != want {
            push("row.columns", &mut out);
            bad = true;
        }
        for f in &rec.fields {
            if f.problem {
                push("csv.quote", &mut out);
                bad = true;
            }
        }
        let f0 = &rec.fields[0];
        let mut key = None;
        if !f0.problem {
            match std::str::from_utf8(&f0.value) {
                Err(_) => {
                    push("encoding.utf8", &mut out);
                    bad = true;
                }
                Ok("") => {
                    push("line_user_id.empty", &mut out);
                    bad = true;
                }
                Ok(s) if line_user_id(s).is_err() => {
                    push("line_user_id.invalid", &mut out);
                    bad = true;
                }
                Ok(s) => {
                    if !s[1..]
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                    {
                        push("line_user_id.not_lower_hex", &mut out);
                    }
                    key = Some(s.as_bytes().to_vec());
                }
            }
        } else {
            bad = true;
        }
        let mut uid = Vec::new();
        if !two && rec.fields.len() >= 2 {
            let f1 = &rec.fields[1];
            if f1.problem {
                bad = true;
            } else {
                match std::str::from_utf8(&f1.value) {
                    Err(_) => {
                        push("encoding.utf8", &mut out);
                        bad = true;
                    }
                    Ok("") => push("user_id.empty", &mut out),
                    Ok(s) => {
                        if s.chars().count() > MAX_USER_ID_CHARS {
                            push("user_id.too_long", &mut out);
                            bad = true;
                        }
                        if s.chars().any(|c| c.is_control()) {
                            push("user_id.control", &mut out);
                            bad = true;
                        }
                        let space = |c: char| c.is_whitespace() && !c.is_control();
                        if s.chars().next().is_some_and(space)
                            || s.chars().next_back().is_some_and(space)
                        {
                            push("user_id.whitespace", &mut out);
                        }
                    }
                }
                uid = f1.value.clone();
            }
        }
        if let Some(crlf) = rec.crlf {
            if crlf != header_crlf {
                push("line_ending.inconsistent", &mut out);
                errors += 1;
            }
        }
        if bad {
            errors += 1;
        }
        if let (false, Some(k)) = (bad, key) {
            match seen.get(&k) {
                None => {
                    seen.insert(k, (uid, line));
                }
                Some((u, _)) if *u == uid => out.push((line, "line_user_id.duplicate".into())),
                Some(_) => {
                    out.push((line, "line_user_id.conflict".into()));
                    errors += 1;
                }
            }
        }
    }
    if valid_header && rows == 0 && errors == 0 {
        out.push((0, "file.no_rows".into()));
    }
    // Same order as the validator: by line, and within a line in check order.
    out.sort_by_key(|(l, _)| *l);
    out
}

fn ids() -> Vec<String> {
    vec![
        "U4af4980629a1b2c3d4e5f60718293a4b".into(),
        "U0123456789abcdef0123456789abcdef".into(),
        "U0123456789ABCDEF0123456789abcdef".into(),
        "Uzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz".into(),
        "U123".into(),
        "u4af4980629a1b2c3d4e5f60718293a4b".into(),
        String::new(),
    ]
}

fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => "[a-z0-9@._-]{1,12}".prop_map(|s| s.into_bytes()),
        1 => Just(b",".to_vec()),
        1 => Just(b"\"".to_vec()),
        1 => Just(b"\"\"".to_vec()),
        1 => Just(b"\n".to_vec()),
        1 => Just(b"\r".to_vec()),
        1 => Just(b"\t".to_vec()),
        1 => Just("あ".as_bytes().to_vec()),
        1 => Just(vec![0xFF]),
        1 => Just(vec![0xC2, 0x85]),
        1 => Just("x".repeat(190).into_bytes()),
        1 => Just(b" ".to_vec()),
    ]
}

fn row() -> impl Strategy<Value = Vec<u8>> {
    let id = prop_oneof![
        8 => (0..2usize).prop_map(|i| ids()[i].clone().into_bytes()),
        2 => (2..7usize).prop_map(|i| ids()[i].clone().into_bytes()),
        1 => prop::collection::vec(piece(), 0..3).prop_map(|v| v.concat()),
    ];
    let uid = prop_oneof![
        6 => Just(b"alice".to_vec()),
        2 => Just(b"bob".to_vec()),
        4 => prop::collection::vec(piece(), 0..4).prop_map(|v| v.concat()),
    ];
    let quote = |v: Vec<u8>, q: bool| {
        if q {
            let mut o = vec![b'"'];
            for b in v {
                if b == b'"' {
                    o.push(b'"');
                }
                o.push(b);
            }
            o.push(b'"');
            o
        } else {
            v
        }
    };
    let ending =
        prop_oneof![8 => Just(b"\n".to_vec()), 1 => Just(b"\r\n".to_vec()), 1 => Just(Vec::new())];
    (
        id,
        uid,
        any::<bool>(),
        any::<bool>(),
        prop_oneof![6 => Just(2usize), 1 => Just(1), 1 => Just(3)],
        ending,
    )
        .prop_map(move |(id, uid, qa, qb, n, end)| {
            let mut r = quote(id, qa);
            if n >= 2 {
                r.push(b',');
                r.extend(quote(uid, qb));
            }
            if n == 3 {
                r.extend_from_slice(b",x");
            }
            r.extend(end);
            r
        })
}

fn file() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        6 => Just(b"line_user_id,user_id\n".to_vec()),
        2 => Just(b"line_user_id\n".to_vec()),
        1 => Just(b"line_user_id,user_id\r\n".to_vec()),
        1 => Just(b"user_id,line_user_id\n".to_vec()),
        1 => Just(b"\xEF\xBB\xBFline_user_id,user_id\n".to_vec()),
    ];
    (header, prop::collection::vec(row(), 0..40)).prop_map(|(h, rows)| {
        let mut f = h;
        for r in rows {
            f.extend(r);
        }
        f
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn validator_matches_reference(data in file(), block in 40usize..600, threads in 1usize..4) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.csv");
        std::fs::write(&p, &data).unwrap();
        let r = validate_file(&p, &ValidateOptions { block_size: block, threads, sample: 100_000, ..Default::default() }).unwrap();
        let got: Vec<(u64, String)> = r.findings.iter().map(|f| (f.line, f.rule.id().to_string())).collect();
        let want = reference(&data);
        prop_assert_eq!(got, want, "file {:?}", String::from_utf8_lossy(&data));
    }
}
