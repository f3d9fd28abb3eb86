//! Hand-written JSON readers for the three bodies a client parses: a `200` answer
//! ([`BatchResponse`]), an error answer ([`ErrorBody`]) and an ID token's claims (`sub`).
//!
//! Not serde_json: its parser was ~24 KB of the 80 KB wasm build (issue 15), for
//! two small shapes. Reads RFC 8259 JSON and accepts what serde_json's derived
//! `Deserialize` accepts for these types, except that structs must be objects (not
//! serde's positional-array form): unknown fields are skipped but must be valid
//! JSON; a known field twice, a missing field or a wrong type is an error; `code`
//! is an integer in `u32`; `error: null` is no error. Nesting is limited to 100
//! levels (serde_json: 128), so a hostile body cannot exhaust the stack.
//! Errors are static strings: no formatting code reaches the wasm build.
//!
//! Objects are walked with plain loops (`open`, `key`, `more`), not callbacks: each
//! caller `match`es on the keys, so the wasm build carries no closures or vtable shims.

use crate::protocol::{ApiError, BatchResponse, ErrorBody, OpResult, OpStatus};
use uuid::Uuid;

/// Why a body was not read (a fixed reason; no position, so no formatting).
pub type WireError = &'static str;

const MAX_DEPTH: u32 = 100;

/// Parses a `200` answer: `{"results": [{"op_id", "status", "error"?}, …]}`.
pub fn batch_response(body: &[u8]) -> Result<BatchResponse, WireError> {
    Ok(BatchResponse {
        results: top(body, RESULTS)?.results,
    })
}

/// Parses an error answer: `{"error": {"code", "message"}}`.
pub fn error_body(body: &[u8]) -> Result<ErrorBody, WireError> {
    Ok(ErrorBody {
        // Always set once `top` returns Ok.
        error: top(body, ERROR)?.error.ok_or(MISSING[ERROR])?,
    })
}

/// The string `sub` of a JSON object (an ID token's decoded claims).
pub fn subject(claims: &[u8]) -> Result<String, WireError> {
    Ok(top(claims, SUB)?.text)
}

/// Every field name of the three bodies and their objects, by key index. An object reads the
/// names `lo..hi` ([`object`]); a body, the one field it is read for. `error` twice: an
/// operation's may be `null`, an error body's may not. Then the three `status` values.
const NAMES: [&str; 11] = [
    "results",
    "error",
    "sub",
    "op_id",
    "status",
    "error",
    "code",
    "message",
    "applied",
    "duplicate",
    "rejected",
];
const RESULTS: usize = 0;
const ERROR: usize = 1;
const SUB: usize = 2;
const OP_ID: usize = 3;
const STATUS: usize = 4;
const ERROR_OR_NULL: usize = 5;
const CODE: usize = 6;
const MESSAGE: usize = 7;
/// The key indices whose field is required (a bit each): all but [`ERROR_OR_NULL`].
const REQUIRED: u16 = 0xff & !(1 << ERROR_OR_NULL);
/// Why an object lacks the field of each key index (none for [`ERROR_OR_NULL`]: it is optional).
const MISSING: [WireError; 8] = [
    "missing field results",
    "missing field error",
    "missing field sub",
    "missing field op_id",
    "missing field status",
    "",
    "missing field code",
    "missing field message",
];

/// The fields one object had: each known key sets its slot (`text`: `sub` or `message`).
#[derive(Default)]
struct Found {
    results: Vec<OpResult>,
    error: Option<ApiError>,
    text: String,
    op_id: Uuid,
    status: usize,
    code: u32,
}

/// A body that is one object whose field `NAMES[field]` is read; the others are skipped.
fn top(body: &[u8], field: usize) -> Result<Found, WireError> {
    let mut r = Reader::new(body);
    let mut found = Found::default();
    object(&mut r, field, field + 1, &mut found)?;
    // As serde: a missing field is reported before trailing characters.
    r.end()?;
    Ok(found)
}

/// An object whose fields `NAMES[lo..hi]` are read into `f` (each at most once, each
/// [`REQUIRED`] one required) and any others skipped. One walker for every object of the
/// three bodies, and one [`Found`] for a body and the objects in it (each nested object's slots
/// are moved out as soon as it is read): one copy in the wasm build, no `Found` per object to drop.
fn object(r: &mut Reader, lo: usize, hi: usize, f: &mut Found) -> Result<(), WireError> {
    let mut seen = 0;
    let mut more = r.open(b'{')?;
    while more {
        let key = r.key(lo, hi)?;
        match key {
            RESULTS => {
                let mut item = r.open(b'[')?;
                while item {
                    // Its `error` slot is empty: taken by the last operation, or never set.
                    object(r, OP_ID, CODE, f)?;
                    f.results.push(OpResult {
                        op_id: f.op_id,
                        status: match f.status {
                            8 => OpStatus::Applied,
                            9 => OpStatus::Duplicate,
                            _ => OpStatus::Rejected,
                        },
                        error: f.error.take(),
                    });
                    item = r.more(b']')?;
                }
            }
            ERROR | ERROR_OR_NULL => {
                if key == ERROR || !r.literal(b"null") {
                    object(r, CODE, MESSAGE + 1, f)?;
                    f.error = Some(ApiError {
                        code: f.code,
                        message: std::mem::take(&mut f.text),
                    });
                }
            }
            SUB | MESSAGE => f.text = r.string()?,
            // Every form `Uuid::try_parse` (and serde's `Uuid`) reads, without uuid's parser.
            OP_ID => {
                f.op_id = crate::text::parse_uuid(&r.string()?).ok_or("op_id is not a UUID")?
            }
            STATUS => {
                f.status = r.string_in(8, 11)?;
                if f.status == OTHER {
                    return Err("unknown status");
                }
            }
            CODE => f.code = r.u32()?,
            _ => r.skip()?,
        }
        once(&mut seen, key)?;
        more = r.more(b'}')?;
    }
    // The first required name of `lo..hi` not seen (bits, not a loop).
    let missing = REQUIRED & ((1 << hi) - (1 << lo)) & !seen;
    if missing != 0 {
        return Err(MISSING[missing.trailing_zeros() as usize]);
    }
    Ok(())
}

/// The index [`Reader::key`] and [`Reader::string_in`] give a name not in their list.
const OTHER: usize = 15;

/// After a field's value was read (`key`: its index in [`NAMES`]): a known field twice is an
/// error, as with serde; [`OTHER`] keys may repeat. A bit per name, not an `Option` per field
/// type: one copy in the wasm build.
fn once(seen: &mut u16, key: usize) -> Result<(), WireError> {
    let bit = 1 << key;
    if *seen & bit & !(1 << OTHER) != 0 {
        return Err("duplicate field");
    }
    *seen |= bit;
    Ok(())
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
    depth: u32,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader { b, i: 0, depth: 0 }
    }

    /// After the one value a body holds: nothing but whitespace may follow.
    fn end(&mut self) -> Result<(), WireError> {
        match self.peek() {
            None => Ok(()),
            Some(_) => Err("trailing characters"),
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.i = crate::text::scan(self.b, self.i, b" \t\n\r", false);
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn next_byte(&mut self) -> Result<u8, WireError> {
        let c = *self.b.get(self.i).ok_or("unexpected end")?;
        self.i += 1;
        Ok(c)
    }

    /// Consumes `word` (after whitespace) if it is next.
    fn literal(&mut self, word: &[u8]) -> bool {
        self.peek();
        let hit = self.b[self.i..].starts_with(word);
        if hit {
            self.i += word.len();
        }
        hit
    }

    /// Opens an object (`{`) or an array (`[`): whether an item follows (else it is
    /// already closed). Items are separated by [`Reader::more`].
    fn open(&mut self, open: u8) -> Result<bool, WireError> {
        if !self.eat(open) {
            return Err(if open == b'{' {
                "expected an object"
            } else {
                "expected an array"
            });
        }
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("nested too deeply");
        }
        // `{` + 2 is `}`, `[` + 2 is `]`.
        self.more_after(open + 2, false)
    }

    /// After an item: whether another follows (a comma), or the container closes.
    fn more(&mut self, close: u8) -> Result<bool, WireError> {
        self.more_after(close, true)
    }

    fn more_after(&mut self, close: u8, item: bool) -> Result<bool, WireError> {
        if self.eat(close) {
            self.depth -= 1;
            return Ok(false);
        }
        if item && !self.eat(b',') {
            return Err("expected , or a closing bracket");
        }
        Ok(true)
    }

    /// An object's key and its colon, as its index in [`NAMES`] if it is one of `lo..hi`
    /// ([`OTHER`]: any other key); the reader is then at the value. One place compares keys,
    /// not a `match` on strings per object.
    fn key(&mut self, lo: usize, hi: usize) -> Result<usize, WireError> {
        let i = self.string_in(lo, hi)?;
        if !self.eat(b':') {
            return Err("expected :");
        }
        Ok(i)
    }

    /// A string value as its index in [`NAMES`] if it is one of `lo..hi` ([`OTHER`]: any other string).
    fn string_in(&mut self, lo: usize, hi: usize) -> Result<usize, WireError> {
        let s = self.string()?;
        #[allow(clippy::needless_range_loop)] // the index is the answer
        for i in lo..hi {
            if NAMES[i] == s {
                return Ok(i);
            }
        }
        Ok(OTHER)
    }

    /// Any JSON value, checked and discarded (an unknown field's).
    fn skip(&mut self) -> Result<(), WireError> {
        match self.peek() {
            // An object as any other: its keys are none of the known ones.
            Some(b'{') => object(self, 0, 0, &mut Found::default()),
            Some(b'[') => {
                let mut more = self.open(b'[')?;
                while more {
                    self.skip()?;
                    more = self.more(b']')?;
                }
                Ok(())
            }
            Some(b'"') => self.string().map(drop),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ if self.literal(b"true") || self.literal(b"false") || self.literal(b"null") => Ok(()),
            _ => Err("expected a value"),
        }
    }

    /// Consumes the next byte (no whitespace skipped) if it is one of `set`.
    fn accept(&mut self, set: &[u8]) -> bool {
        // The shared byte scan (not `<[u8]>::contains`: that is `memchr`, ~540 B in the wasm
        // build): a run of `set` bytes starts here if it ends further on.
        let hit = crate::text::scan(self.b, self.i, set, false) > self.i;
        self.i += usize::from(hit);
        hit
    }

    /// Digits; at least one.
    fn digits(&mut self) -> Result<(), WireError> {
        let start = self.i;
        self.i = crate::text::scan(self.b, start, b"0123456789", false);
        if self.i == start {
            return Err("expected a digit");
        }
        Ok(())
    }

    /// A JSON number of any kind (RFC 8259 §6), discarded.
    fn number(&mut self) -> Result<(), WireError> {
        self.peek();
        self.accept(b"-");
        let int = self.i;
        self.digits()?;
        if self.b[int] == b'0' && self.i - int > 1 {
            return Err("leading zero in a number");
        }
        if self.accept(b".") {
            self.digits()?;
        }
        if self.accept(b"eE") {
            self.accept(b"+-");
            self.digits()?;
        }
        Ok(())
    }

    /// A non-negative integer that fits `u32` (a fraction or exponent is a wrong type, as with serde).
    fn u32(&mut self) -> Result<u32, WireError> {
        self.peek();
        let start = self.i;
        self.number()?;
        let text = &self.b[start..self.i];
        if !text.iter().all(u8::is_ascii_digit) {
            return Err("code is not an unsigned integer");
        }
        crate::text::digits_value(text)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or("code is above u32")
    }

    fn hex4(&mut self) -> Result<u32, WireError> {
        let mut v = 0;
        for _ in 0..4 {
            let d = crate::text::digit(self.next_byte()?);
            if d >= 16 {
                return Err("invalid \\u escape");
            }
            v = v * 16 + d;
        }
        Ok(v)
    }

    /// A string value, unescaped; must be UTF-8 with no raw control characters or lone surrogates.
    ///
    /// Each run of raw bytes is checked and copied by `text::push_utf8` (the journal reader's
    /// too; no `String::from_utf8` of the whole). Runs are checked on their own:
    /// an escape stands for whole characters and starts with ASCII `\`, so no UTF-8 sequence
    /// spans one. As before, invalid UTF-8 is reported only once the string is otherwise read.
    fn string(&mut self) -> Result<String, WireError> {
        if !self.eat(b'"') {
            return Err("expected a string");
        }
        let mut out = String::new();
        let mut utf8 = true;
        let mut run = self.i;
        loop {
            let at = self.i;
            let c = self.next_byte()?;
            if c >= 0x20 && c != b'"' && c != b'\\' {
                continue;
            }
            if !crate::text::push_utf8(&mut out, &self.b[run..at]) {
                utf8 = false;
            }
            let c = match c {
                b'"' => break,
                b'\\' => {
                    let e = self.next_byte()?;
                    if e != b'u' {
                        // `\"` `\\` `\/` `\b` `\f` `\n` `\r` `\t`, and the character each stands for.
                        let k = b"\"\\/bfnrt"
                            .iter()
                            .position(|&x| x == e)
                            .ok_or("invalid escape in a string")?;
                        char::from(b"\"\\/\x08\x0c\n\r\t"[k])
                    } else {
                        let mut code = self.hex4()?;
                        if (0xD800..0xDC00).contains(&code) && self.b[self.i..].starts_with(b"\\u")
                        {
                            self.i += 2;
                            let low = self.hex4()?;
                            if !(0xDC00..0xE000).contains(&low) {
                                return Err("lone surrogate in a string");
                            }
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                        }
                        char::from_u32(code).ok_or("lone surrogate in a string")?
                    }
                }
                _ => return Err("control character in a string"),
            };
            out.push(c);
            run = self.i;
        }
        if !utf8 {
            return Err("invalid UTF-8 in a string");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    const ID: &str = "0192f5a4-7b3c-7def-8abc-0123456789ab";

    fn serde_response(body: &[u8]) -> Option<BatchResponse> {
        serde_json::from_slice(body).ok()
    }

    #[test]
    fn reads_the_documented_shapes() {
        let body = format!(
            r#"{{"results":[{{"op_id":"{ID}","status":"applied"}},
                {{"op_id":"{ID}","status":"rejected","error":{{"code":1004,"message":"bad \"id\" \u00e9\ud83d\ude00"}}}},
                {{"op_id":"{ID}","status":"duplicate","error":null}}]}}"#
        );
        let r = batch_response(body.as_bytes()).unwrap();
        assert_eq!(Some(&r), serde_response(body.as_bytes()).as_ref());
        assert_eq!(r.results.len(), 3);
        assert_eq!(
            r.results[1].error.as_ref().unwrap().message,
            "bad \"id\" é😀"
        );
        assert_eq!(r.results[2].status, OpStatus::Duplicate);
        let e = error_body(
            br#" {"error": {"message": "token", "code": 401, "extra": [1, {"a": null}]}} "#,
        )
        .unwrap();
        assert_eq!((e.error.code, e.error.message.as_str()), (401, "token"));
        assert_eq!(
            subject(br#"{"iss":"https://access.line.me","sub":"U1","amr":["pwd"],"exp":1.5e9}"#),
            Ok("U1".into())
        );
    }

    /// A known field twice is refused in every object (as serde refuses it); an unknown one
    /// may repeat, at every level.
    #[test]
    fn only_known_fields_are_refused_twice() {
        let op = |extra: &str| {
            format!(r#"{{"results":[{{"op_id":"{ID}","status":"rejected"{extra}}}]}}"#)
        };
        let err = r#""error":{"code":1,"message":"m"}"#;
        for (body, want) in [
            (
                op(&format!(r#","x":1,"x":2,{err},"y":[],"y":{{}}"#)),
                Ok(()),
            ),
            (op(&format!(r#",{err},{err}"#)), Err("duplicate field")),
            (op(r#","error":null,"error":null"#), Err("duplicate field")),
            (op(r#","status":"applied""#), Err("duplicate field")),
            (op(&format!(r#","op_id":"{ID}""#)), Err("duplicate field")),
            (
                op(r#","error":{"code":1,"message":"m","z":0,"z":0}"#),
                Ok(()),
            ),
            (
                op(r#","error":{"code":1,"code":1,"message":"m"}"#),
                Err("duplicate field"),
            ),
            (
                op(r#","error":{"code":1,"message":"m","message":"m"}"#),
                Err("duplicate field"),
            ),
        ] {
            assert_eq!(batch_response(body.as_bytes()).map(drop), want, "{body}");
            assert_eq!(
                serde_response(body.as_bytes()).is_some(),
                want.is_ok(),
                "serde on {body}"
            );
        }
        assert_eq!(
            error_body(br#"{"a":1,"error":{"code":1,"message":"m","a":1,"a":2},"a":3}"#).map(drop),
            Ok(())
        );
        assert_eq!(subject(br#"{"a":1,"sub":"U","a":2}"#), Ok("U".into()));
        assert_eq!(subject(br#"{"sub":"U","sub":"U"}"#), Err("duplicate field"));
    }

    #[test]
    fn unknown_fields_are_skipped_but_must_be_json() {
        let ok = r#"{"v":-0.5E+3,"results":[],"x":{"y":[true,false,null,"\/"]}}"#;
        assert_eq!(
            batch_response(ok.as_bytes()).map(|r| r.results.len()),
            Ok(0)
        );
        for bad in [
            r#"{"v":01,"results":[]}"#,
            r#"{"v":1.,"results":[]}"#,
            r#"{"v":tru,"results":[]}"#,
            r#"{"v":"\x","results":[]}"#,
            r#"{"v":[1,],"results":[]}"#,
        ] {
            assert!(batch_response(bad.as_bytes()).is_err(), "{bad}");
            assert!(
                serde_response(bad.as_bytes()).is_none(),
                "serde agrees on {bad}"
            );
        }
    }

    #[test]
    fn deviations_are_errors_with_a_reason() {
        let cases: [(&str, &str); 11] = [
            ("", "expected an object"),
            ("{}", "missing field results"),
            (r#"{"results":[],"results":[]}"#, "duplicate field"),
            (r#"{"results":[]} x"#, "trailing characters"),
            (r#"{} x"#, "missing field results"),
            (
                r#"{"results":[{"op_id":"nope","status":"applied"}]}"#,
                "op_id is not a UUID",
            ),
            (
                r#"{"results":[{"op_id":"0192f5a4-7b3c-7def-8abc-0123456789ab","status":"done"}]}"#,
                "unknown status",
            ),
            (
                r#"{"results":[{"op_id":"0192f5a4-7b3c-7def-8abc-0123456789ab"}]}"#,
                "missing field status",
            ),
            (r#"{"results":"x"}"#, "expected an array"),
            (r#"{"results":[],"s":"a"#, "unexpected end"),
            (r#"{"results":[1]}"#, "expected an object"),
        ];
        for (body, why) in cases {
            assert_eq!(batch_response(body.as_bytes()), Err(why), "{body}");
            assert!(
                serde_response(body.as_bytes()).is_none(),
                "serde agrees on {body}"
            );
        }
        for code in ["1.0", "-1", "4294967296", "1e3", "\"1\""] {
            let body = format!(r#"{{"error":{{"code":{code},"message":"m"}}}}"#);
            assert!(error_body(body.as_bytes()).is_err(), "{body}");
            assert!(
                serde_json::from_slice::<ErrorBody>(body.as_bytes()).is_err(),
                "{body}"
            );
        }
        assert_eq!(
            error_body(br#"{"error":{"code":4294967295,"message":""}}"#).map(|e| e.error.code),
            Ok(u32::MAX)
        );
        // A number beyond f64 in a skipped field is still JSON (found by the fuzz target).
        #[derive(serde::Deserialize)]
        struct Claims {
            sub: String,
        }
        let big = br#"{"iss":"x","sub":"U1","exp":17E01615}"#;
        assert_eq!(subject(big).as_deref(), Ok("U1"));
        assert_eq!(
            serde_json::from_slice::<Claims>(big)
                .map(|c| c.sub)
                .ok()
                .as_deref(),
            Some("U1")
        );
        assert_eq!(subject(br#"{"sub":null}"#), Err("expected a string"));
        // In a skipped field too (serde_json lets that one pass: stricter is safe).
        for body in [
            r#"{"sub":"\ud800"}"#,
            r#"{"sub":"\udc00"}"#,
            r#"{"x":"\ud800x","sub":""}"#,
        ] {
            assert_eq!(
                subject(body.as_bytes()),
                Err("lone surrogate in a string"),
                "{body}"
            );
        }
        assert_eq!(
            subject(br#"{"sub":"\ud83d\ude00"}"#).as_deref(),
            Ok("\u{1F600}")
        );
        assert_eq!(
            subject(b"{\"sub\":\"a\x01\"}"),
            Err("control character in a string")
        );
        assert_eq!(
            subject(b"{\"sub\":\"\xff\"}"),
            Err("invalid UTF-8 in a string")
        );
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let deep = "[".repeat(100_000);
        let body = format!(r#"{{"x":{deep}"#);
        assert_eq!(batch_response(body.as_bytes()), Err("nested too deeply"));
    }

    fn arb_string() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[a-z\"\\\\/\\x00-\\x1f\u{e9}\u{1F600}]{0,12}"
        ]
    }

    fn arb_response() -> impl Strategy<Value = BatchResponse> {
        let error =
            (any::<u32>(), arb_string()).prop_map(|(code, message)| ApiError { code, message });
        let result =
            (any::<u128>(), 0..3u8, proptest::option::of(error)).prop_map(|(id, s, error)| {
                OpResult {
                    op_id: Uuid::from_u128(id),
                    status: [OpStatus::Applied, OpStatus::Duplicate, OpStatus::Rejected]
                        [usize::from(s)],
                    error,
                }
            });
        proptest::collection::vec(result, 0..8).prop_map(|results| BatchResponse { results })
    }

    /// The string reader before it copied runs of raw bytes (one `String::from_utf8` of the
    /// whole): the reference `string` must match, value and error alike.
    fn string_reference(b: &[u8]) -> Result<String, WireError> {
        let mut r = Reader::new(b);
        if !r.eat(b'"') {
            return Err("expected a string");
        }
        let mut out = Vec::new();
        loop {
            let c = match r.next_byte()? {
                b'"' => break,
                0..=0x1F => return Err("control character in a string"),
                b'\\' => {
                    let e = r.next_byte()?;
                    if e != b'u' {
                        let k = b"\"\\/bfnrt"
                            .iter()
                            .position(|&x| x == e)
                            .ok_or("invalid escape in a string")?;
                        out.push(b"\"\\/\x08\x0c\n\r\t"[k]);
                        continue;
                    }
                    let mut code = r.hex4()?;
                    if (0xD800..0xDC00).contains(&code) && r.b[r.i..].starts_with(b"\\u") {
                        r.i += 2;
                        let low = r.hex4()?;
                        if !(0xDC00..0xE000).contains(&low) {
                            return Err("lone surrogate in a string");
                        }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                    }
                    char::from_u32(code).ok_or("lone surrogate in a string")?
                }
                c => {
                    out.push(c);
                    continue;
                }
            };
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
        String::from_utf8(out).map_err(|_| "invalid UTF-8 in a string")
    }

    proptest! {
        // Bytes drawn mostly from the ones that matter (quotes, escapes, hex digits, UTF-8
        // lead and continuation bytes, a surrogate's, control characters).
        #[test]
        fn string_equals_the_reference(body in proptest::collection::vec(prop_oneof![
            3 => proptest::sample::select(b"\"\\u0aAdD8Ef/bnt \x01\x1f\x7f\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xed\xa0\xc0\xf5\xff".to_vec()),
            1 => any::<u8>(),
        ], 0..24)) {
            let mut quoted = vec![b'"'];
            quoted.extend_from_slice(&body);
            for b in [&body[..], &quoted[..]] {
                prop_assert_eq!(Reader::new(b).string(), string_reference(b));
            }
        }

        // What serde_json writes (compact or pretty, ASCII-escaped or not), the parser reads back.
        #[test]
        fn reads_what_serde_json_writes(resp in arb_response(), pretty in any::<bool>()) {
            let body = if pretty { serde_json::to_vec_pretty(&resp) } else { serde_json::to_vec(&resp) }.unwrap();
            prop_assert_eq!(batch_response(&body), Ok(resp.clone()));
            let escaped = String::from_utf8(body).unwrap().chars().map(|c| if c.is_ascii() { c.to_string() } else {
                c.encode_utf16(&mut [0; 2]).iter().map(|u| format!("\\u{u:04x}")).collect()
            }).collect::<String>();
            prop_assert_eq!(batch_response(escaped.as_bytes()), Ok(resp));
        }

        // Never panics; whatever it accepts, serde_json accepts as the same value.
        #[test]
        fn agrees_with_serde_json_on_arbitrary_bytes(body in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(r) = batch_response(&body) {
                prop_assert_eq!(Some(r), serde_response(&body));
            }
            if let Ok(e) = error_body(&body) {
                prop_assert_eq!(Some(e), serde_json::from_slice::<ErrorBody>(&body).ok());
            }
        }
    }
}
