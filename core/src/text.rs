//! Hand-written text helpers (decimal digits, `{:?}` quoting, hyphenated UUIDs, unsigned
//! decimal parsing). Messages, wire text and the journal's IDs are built with these
//! instead of `format!`/`str::parse`/uuid's formatter, so the browser build links none of
//! `core::fmt`'s machinery or std's number parsers (issue 15: page-load size). Each one is
//! checked against the std/uuid implementation it replaces by a proptest below.

use uuid::Uuid;

/// Appends `n` in decimal (what `{n}` writes).
pub fn push_u64(out: &mut String, n: u64) {
    push_padded(out, n, 1);
}

/// Appends `n` in decimal, zero-padded to at least `width` digits (what `{n:0width$}` writes).
pub fn push_padded(out: &mut String, n: u64, width: usize) {
    // The top digit's place first (at most 10^19: no overflow), then the digits from the top:
    // no digit buffer on the stack.
    let (mut place, mut digits) = (1u64, 1);
    while n / place >= 10 {
        place *= 10;
        digits += 1;
    }
    for _ in digits..width {
        out.push('0');
    }
    loop {
        out.push(char::from(b'0' + (n / place % 10) as u8));
        if place == 1 {
            break;
        }
        place /= 10;
    }
}

/// Appends `s` quoted and escaped exactly as `{:?}` writes a string.
#[cfg(not(target_arch = "wasm32"))]
pub fn push_debug_str(out: &mut String, s: &str) {
    push_debug_str_exact(out, s);
}

/// The browser's: see [`push_debug_str_small`].
#[cfg(target_arch = "wasm32")]
pub fn push_debug_str(out: &mut String, s: &str) {
    push_debug_str_small(out, s);
}

#[cfg(any(not(target_arch = "wasm32"), test))]
fn push_debug_str_exact(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        // `char::escape_debug` also escapes `'`, which a string's `Debug` leaves alone.
        if c == '\'' {
            out.push(c);
        } else {
            out.extend(c.escape_debug());
        }
    }
    out.push('"');
}

/// The browser's quoting: `{:?}`'s for quotes, backslashes and control characters, but
/// other characters as they are (`{:?}`'s Unicode tables for non-printable and
/// combining characters are ~2.3 KB of the wasm). Before this, the browser build's
/// `{:?}` (`-Zfmt-debug=none`) wrote nothing at all.
#[cfg(any(target_arch = "wasm32", test))]
fn push_debug_str_small(out: &mut String, s: &str) {
    push_quoted(out, s, false);
}

/// A JSON string literal (RFC 8259 escaping; non-ASCII stays UTF-8).
pub fn push_json_str(out: &mut String, s: &str) {
    push_quoted(out, s, true);
}

/// `s` quoted, escaped as a JSON string (`json`) or as the browser's `{:?}`: the two share
/// their quotes, backslashes and `\n \r \t`, so one loop writes both (smaller in the wasm).
fn push_quoted(out: &mut String, s: &str, json: bool) {
    out.push('"');
    for c in s.chars() {
        let n = c as usize;
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' if !json => out.push_str("\\0"),
            // JSON escapes U+0000..U+001F as `\u00XX`; `{:?}` every control character (at
            // most U+009F) as `\u{X}`/`\u{XX}`, without leading zeros.
            c if n < 0x20 || (!json && c.is_control()) => {
                if json {
                    out.push_str("\\u00");
                    out.push(HEX[n >> 4] as char);
                } else {
                    out.push_str("\\u{");
                    if n > 0xf {
                        out.push(HEX[n >> 4] as char);
                    }
                }
                out.push(HEX[n & 0xf] as char);
                if !json {
                    out.push('}');
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The value of `s` if it is all ASCII digits (at least one) and fits a `u64`.
pub fn digits_u64(s: &str) -> Option<u64> {
    digits_value(s.as_bytes())
}

/// [`digits_u64`] of bytes (the JSON reader's integers are bytes).
pub(crate) fn digits_value(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// `s.strip_prefix(c)` for an ASCII `c`, without std's `char` pattern code (~140 B of the wasm).
pub fn strip_byte(s: &str, c: u8) -> Option<&str> {
    if s.as_bytes().first() == Some(&c) {
        // `c` is ASCII: one byte, so index 1 is a char boundary.
        Some(&s[1..])
    } else {
        None
    }
}

/// Appends the characters of `bytes` if they are UTF-8 (exactly what `str::from_utf8`
/// accepts: no overlong forms, surrogates, code points above U+10FFFF, stray or missing
/// continuation bytes) and says whether they were; on `false` a prefix may have been
/// appended. By hand: std's validator (~650 B of the wasm) is only needed to borrow a
/// `&str`, and the two readers of untrusted strings (JSON bodies, the journal) copy anyway.
pub fn push_utf8(out: &mut String, bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        // Continuation bytes after the lead, the lead's payload bits, the smallest code point.
        let (more, mut c, min) = match b {
            0..=0x7f => (0, u32::from(b), 0),
            0xc0..=0xdf => (1, u32::from(b & 0x1f), 0x80),
            0xe0..=0xef => (2, u32::from(b & 0x0f), 0x800),
            0xf0..=0xf7 => (3, u32::from(b & 0x07), 0x1_0000),
            _ => return false,
        };
        for _ in 0..more {
            match bytes.get(i) {
                Some(&n) if n & 0xc0 == 0x80 => c = c << 6 | u32::from(n & 0x3f),
                _ => return false,
            }
            i += 1;
        }
        // `from_u32` refuses surrogates and code points above U+10FFFF.
        match char::from_u32(c) {
            Some(ch) if c >= min => out.push(ch),
            _ => return false,
        }
    }
    true
}

/// Exactly what `str::parse::<u64>` accepts: digits with an optional leading `+`.
pub fn parse_u64(s: &str) -> Option<u64> {
    digits_u64(strip_byte(s, b'+').unwrap_or(s))
}

/// Exactly what `str::parse::<i64>` accepts: digits with an optional leading `+` or `-`.
pub fn parse_i64(s: &str) -> Option<i64> {
    match strip_byte(s, b'-') {
        Some(digits) => {
            let n = digits_u64(digits)?;
            if n <= 1 << 63 {
                Some((n as i64).wrapping_neg())
            } else {
                None
            }
        }
        None => i64::try_from(parse_u64(s)?).ok(),
    }
}

/// The index of the first byte of `s` that is one of `any_of`, or `s.len()` if none is
/// (ASCII delimiters, so the index is a char boundary). A byte loop shared by the parsers here
/// instead of `str` patterns and `[u8]::contains` (std's searchers and `memchr` in the wasm); an
/// index, not an `Option`: one value back, not a pair through memory, at each call in the wasm.
pub fn find_byte(s: &str, any_of: &[u8]) -> usize {
    scan(s.as_bytes(), 0, any_of, true)
}

/// From `i`, the index of the first byte of `b` that is (`inside`) or is not one of `set`, or
/// `b.len()`. The one byte loop behind [`find_byte`], [`next_word`] and the JSON reader's
/// whitespace and digits.
pub(crate) fn scan(b: &[u8], mut i: usize, set: &[u8], inside: bool) -> usize {
    // Not `set.contains(&b)`: for bytes that is `memchr`, ~0.5 KB of the wasm.
    #[allow(clippy::manual_contains)]
    while i < b.len() && set.iter().any(|&d| d == b[i]) != inside {
        i += 1;
    }
    i
}

/// Exactly what `str::trim` gives: `s` without leading and trailing Unicode `White_Space`.
/// One forward pass (no `next_back`, no `str` pattern machinery: smaller in the wasm).
pub fn trim(s: &str) -> &str {
    // `chars` with the offset read from what is left, not `char_indices` (one char iterator in
    // the wasm build) nor `len_utf8` (the iterator knows where the next char starts).
    let (mut start, mut end, mut i) = (None, 0, 0);
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        let next = s.len() - chars.as_str().len();
        if !is_whitespace(c) {
            start.get_or_insert(i);
            end = next;
        }
        i = next;
    }
    start.map_or("", |start| &s[start..end])
}

/// `char::is_whitespace` (Unicode `White_Space`), without its lookup table.
fn is_whitespace(c: char) -> bool {
    matches!(
        c as u32,
        9..=13 | 0x20 | 0x85 | 0xa0 | 0x1680 | 0x2000..=0x200a | 0x2028 | 0x2029 | 0x202f | 0x205f | 0x3000
    )
}

/// What `s.split_ascii_whitespace()` yields, one word per call: the next word, `s` moved past it.
pub fn next_word<'a>(s: &mut &'a str) -> Option<&'a str> {
    // What `u8::is_ascii_whitespace` holds for (not `\x0b`).
    const WS: &[u8] = b" \t\n\x0c\r";
    let start = scan(s.as_bytes(), 0, WS, false);
    let end = scan(s.as_bytes(), start, WS, true);
    // ASCII bytes around both ends, so both are char boundaries.
    let word = s.get(start..end).filter(|w| !w.is_empty())?;
    *s = &s[end..];
    Some(word)
}

/// What `s.chars().count()` gives: the bytes that start a char (not UTF-8 continuations).
pub fn char_count(s: &str) -> usize {
    let mut n = 0;
    for &b in s.as_bytes() {
        n += usize::from(b & 0xc0 != 0x80);
    }
    n
}

/// The first `n` chars of `s` (what `s.chars().take(n).collect::<String>()` keeps), borrowed.
pub fn prefix_chars(s: &str, n: usize) -> &str {
    let mut seen = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        // Not a continuation byte: a char starts here.
        if b & 0xc0 != 0x80 {
            if seen == n {
                return &s[..i];
            }
            seen += 1;
        }
    }
    s
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The value of an ASCII digit or letter as `char::to_digit(36)` gives it (`a`/`A` is 10),
/// or 36 for any other byte: a decimal digit is below 10, a hex digit below 16. One digit
/// reader for the UUID, JSON `\u` and IP address parsers (one copy in the wasm build).
pub(crate) fn digit(c: u8) -> u32 {
    match c {
        b'0'..=b'9' => u32::from(c - b'0'),
        b'a'..=b'z' | b'A'..=b'Z' => u32::from((c | 0x20) - b'a') + 10,
        _ => 36,
    }
}

/// `67e55044-10b1-426f-9247-bb680e5fe0c8`: what `Uuid::to_string()` writes.
pub fn uuid_text(id: &Uuid) -> String {
    let mut out = String::with_capacity(36);
    push_uuid(&mut out, id);
    out
}

/// Appends the lowercase hyphenated form of `id`.
pub fn push_uuid(out: &mut String, id: &Uuid) {
    for (i, b) in id.as_bytes().iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
}

/// Exactly the inputs `Uuid::try_parse` accepts: 32 hex digits, the hyphenated form,
/// the hyphenated form in braces, or `urn:uuid:` (any case) + the hyphenated form;
/// hex digits of either case.
pub fn parse_uuid(s: &str) -> Option<Uuid> {
    let b = s.as_bytes();
    let hex = match b.len() {
        32 | 36 => b,
        38 if b[0] == b'{' && b[37] == b'}' => &b[1..37],
        45 if b[..9].eq_ignore_ascii_case(b"urn:uuid:") => &b[9..],
        _ => return None,
    };
    let hyphenated = hex.len() == 36;
    let mut bytes = [0u8; 16];
    let mut n = 0; // hex digits read; exactly 32 by the lengths above
    for (i, &c) in hex.iter().enumerate() {
        if hyphenated && matches!(i, 8 | 13 | 18 | 23) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let v = digit(c);
        if v >= 16 {
            return None;
        }
        bytes[n / 2] |= (v as u8) << (4 * (1 - n % 2));
        n += 1;
    }
    Some(Uuid::from_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every char, alone and between letters: the hand trim's whitespace is `char::is_whitespace`.
    #[test]
    fn trim_equals_std_for_every_char() {
        let mut s = String::new();
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            s.clear();
            s.extend([c, 'x', c]);
            assert_eq!(trim(&s), s.trim(), "{c:?}");
        }
    }

    /// Every control character (all of them are at most U+009F) is quoted as `{:?}` quotes it.
    #[test]
    fn small_quoting_of_every_control_character() {
        for c in (0..=0x10ffff)
            .filter_map(char::from_u32)
            .filter(|c| c.is_control())
        {
            assert!(u32::from(c) <= 0x9f, "{c:?}");
            let mut out = String::new();
            push_debug_str_small(&mut out, &c.to_string());
            assert_eq!(out, format!("{c:?}").replace('\'', "\""), "{c:?}");
        }
    }

    #[test]
    fn decimal_and_padding_match_format() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            12345,
            9_999_999_999_999_999_999,
            10_000_000_000_000_000_000,
            u64::MAX,
        ] {
            let mut s = String::new();
            push_u64(&mut s, n);
            assert_eq!(s, n.to_string());
            for w in 0..5 {
                let mut p = String::new();
                push_padded(&mut p, n, w);
                assert_eq!(p, format!("{n:0w$}"));
            }
        }
    }

    #[test]
    fn debug_quoting_of_the_tested_inputs() {
        for s in [
            "",
            "https://x",
            "a\"b",
            "it's",
            "\u{301}e\u{301}",
            "\n\t\0\u{7f}",
            "あ\u{200b}",
        ] {
            let mut out = String::new();
            push_debug_str(&mut out, s);
            assert_eq!(out, format!("{s:?}"));
        }
    }

    #[test]
    fn uuid_forms_as_uuid_reads_them() {
        let id = Uuid::from_u128(0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8);
        let h = id.to_string();
        for good in [
            h.clone(),
            h.to_uppercase(),
            id.simple().to_string(),
            format!("{{{h}}}"),
            format!("urn:uuid:{h}"),
            format!("URN:UUID:{h}"),
        ] {
            assert_eq!(parse_uuid(&good), Some(id), "{good}");
        }
        for bad in [
            "",
            "{}",
            &h[1..],
            &format!("{h}0"),
            &h.replace('-', "+"),
            &format!("({h})"),
            &format!("urn:uuix:{h}"),
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad}");
            assert!(Uuid::try_parse(bad).is_err(), "{bad}");
        }
        assert_eq!(uuid_text(&id), h);
    }

    /// Strings near the UUID shapes, so the proptest reaches the accepting paths.
    fn uuid_like() -> impl Strategy<Value = String> {
        let hex = "[0-9a-fA-FxX-]{32,36}";
        prop_oneof![
            hex.prop_map(|s| s),
            any::<u128>().prop_map(|v| Uuid::from_u128(v).to_string()),
            any::<u128>().prop_map(|v| Uuid::from_u128(v).simple().to_string().to_uppercase()),
            any::<u128>().prop_map(|v| format!("{{{}}}", Uuid::from_u128(v))),
            (any::<u128>(), "[uU][rR][nN]:[uU][uU][iI][dD][:;]")
                .prop_map(|(v, p)| format!("{p}{}", Uuid::from_u128(v))),
            ".{0,46}",
        ]
    }

    /// Every sequence of one to three bytes, and four-byte ones around each boundary.
    #[test]
    fn push_utf8_equals_from_utf8_on_short_sequences() {
        let check = |b: &[u8]| {
            let mut out = String::new();
            let ok = push_utf8(&mut out, b);
            match std::str::from_utf8(b) {
                Ok(text) => assert!(ok && out == text, "{b:x?}"),
                Err(_) => assert!(!ok, "{b:x?}"),
            }
        };
        for b0 in 0..=255u8 {
            check(&[b0]);
            for b1 in 0..=255u8 {
                check(&[b0, b1]);
                if b0 >= 0xe0 {
                    for b2 in 0..=255u8 {
                        check(&[b0, b1, b2]);
                        if b0 >= 0xf0 {
                            for b3 in [0x41, 0x7f, 0x80, 0x8f, 0x90, 0xbf, 0xc0] {
                                check(&[b0, b1, b2, b3]);
                            }
                        }
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn byte_helpers_equal_std(
            s in "([ \\t\\n\\x0b\\x0c\\r.:/a-c\\u{85}\\u{a0}\\u{1680}\\u{1681}\\u{2000}-\\u{200b}\\u{2028}-\\u{2030}\\u{205f}\\u{2060}\\u{3000}\\u{3001}\\u{180e}\\u{feff}é✓]|.){0,12}",
            n in 0usize..14,
        ) {
            prop_assert_eq!(trim(&s), s.trim());
            let mut rest = s.as_str();
            let words: Vec<&str> = std::iter::from_fn(|| next_word(&mut rest)).collect();
            prop_assert_eq!(words, s.split_ascii_whitespace().collect::<Vec<_>>());
            prop_assert_eq!(prefix_chars(&s, n), s.chars().take(n).collect::<String>());
            prop_assert_eq!(char_count(&s), s.chars().count());
            for sep in [b'.', b':', b'/'] {
                prop_assert_eq!(strip_byte(&s, sep), s.strip_prefix(char::from(sep)));
            }
            prop_assert_eq!(find_byte(&s, b"/:"), s.find(['/', ':']).unwrap_or(s.len()));
        }

        /// Bytes drawn mostly from UTF-8's edges: every lead and continuation boundary,
        /// overlong and surrogate leads, bytes never in UTF-8.
        #[test]
        fn push_utf8_equals_from_utf8(bytes in proptest::collection::vec(prop_oneof![
            3 => proptest::sample::select(vec![
                0x00u8, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
                0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf7, 0xf8, 0xff,
            ]),
            1 => any::<u8>(),
        ], 0..12), s in any::<String>()) {
            for b in [&bytes[..], s.as_bytes()] {
                let mut out = String::from("x");
                let ok = push_utf8(&mut out, b);
                match std::str::from_utf8(b) {
                    Ok(text) => {
                        prop_assert!(ok);
                        prop_assert_eq!(out, format!("x{text}"));
                    }
                    Err(_) => prop_assert!(!ok),
                }
            }
        }

        #[test]
        fn trim_equals_std_on_every_char(c in any::<char>(), d in any::<char>()) {
            let s: String = [c, 'x', d].iter().collect();
            prop_assert_eq!(trim(&s), s.trim());
            let s: String = [c, d].iter().collect();
            prop_assert_eq!(trim(&s), s.trim());
        }

        /// The JSON quoting is the wire's, byte for byte: the escapes it always wrote
        /// (this reference is the writer before it shared its loop) and JSON that reads back as `s`.
        #[test]
        fn json_quoting_is_unchanged_and_reads_back(
            s in "([\\x00-\\x7f]|[\\u{80}-\\u{9f}]|[\"'\\\\]|[a-z\u{e9}\u{2713}\u{3042}])*"
        ) {
            let mut reference = String::from('"');
            for c in s.chars() {
                match c {
                    '"' => reference.push_str("\\\""),
                    '\\' => reference.push_str("\\\\"),
                    '\n' => reference.push_str("\\n"),
                    '\r' => reference.push_str("\\r"),
                    '\t' => reference.push_str("\\t"),
                    c if (c as u32) < 0x20 => reference.push_str(&format!("\\u{:04x}", c as u32)),
                    c => reference.push(c),
                }
            }
            reference.push('"');
            let mut out = String::new();
            push_json_str(&mut out, &s);
            prop_assert_eq!(&out, &reference);
            prop_assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
        }

        #[test]
        fn quoting_equals_debug(s in any::<String>()) {
            let mut out = String::new();
            push_debug_str_exact(&mut out, &s);
            prop_assert_eq!(out, format!("{s:?}"));
        }

        /// The browser's quoting equals `{:?}` for everything but the characters `{:?}`
        /// escapes from its Unicode tables (non-printable or combining, not control).
        #[test]
        fn small_quoting_equals_debug_on_controls_quotes_and_printables(
            s in "([\\x00-\\x7f]|[\\u{80}-\\u{9f}]|[\"'\\\\]|[a-zé✓あ])*"
        ) {
            let mut out = String::new();
            push_debug_str_small(&mut out, &s);
            prop_assert_eq!(out, format!("{s:?}"));
        }

        #[test]
        fn number_parsing_equals_std(
            s in "[+-]{0,2}[0-9]{0,22}|[ +0-9a]{0,6}|.{0,4}|[+-]?9223372036854775[0-9]{3}|[+]?18446744073709551[0-9]{3}",
            n in any::<u64>(),
            i in any::<i64>(),
        ) {
            prop_assert_eq!(parse_u64(&s), s.parse::<u64>().ok());
            prop_assert_eq!(parse_i64(&s), s.parse::<i64>().ok());
            prop_assert_eq!(digits_u64(&s), s.parse::<u64>().ok().filter(|_| !s.starts_with('+')));
            prop_assert_eq!(parse_u64(&n.to_string()), Some(n));
            prop_assert_eq!(parse_i64(&i.to_string()), Some(i));
        }

        #[test]
        fn uuid_text_equals_uuid(v in any::<u128>()) {
            prop_assert_eq!(uuid_text(&Uuid::from_u128(v)), Uuid::from_u128(v).to_string());
        }

        #[test]
        fn parse_uuid_accepts_what_uuid_accepts(s in uuid_like()) {
            prop_assert_eq!(parse_uuid(&s), Uuid::try_parse(&s).ok());
        }
    }
}
