//! Wire types of `docs/protocol.md`, shared by the SDK and the emulator.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const BATCH_PATH: &str = "/v1/identity/batch";
pub const HEADER_TOKEN: &str = "x-repro-token";
pub const HEADER_RETRY_COUNT: &str = "x-retry-count";
/// Most ops one request may carry.
pub const MAX_BATCH_OPS: usize = 100;
/// Largest request body the endpoint accepts; above it answers 413.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Largest response body the client reads into memory.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

pub const CODE_MALFORMED_BATCH: u32 = 1001;
pub const CODE_USER_NOT_REGISTERED: u32 = 1002;
pub const CODE_INVALID_LINE_USER_ID: u32 = 1004;
pub const CODE_INVALID_CHANNEL_ID: u32 = 1005;
pub const CODE_INVALID_USER_ID: u32 = 1006;
/// Protocol v1.1: the endpoint accepts only ID-token links (`identity = "id_token"`).
pub const CODE_RAW_LINE_ID_REFUSED: u32 = 1007;
/// Protocol v1.1: the ID token failed a check; the message names it. Never retried.
pub const CODE_INVALID_ID_TOKEN: u32 = 1008;
/// Protocol v1.1: the endpoint cannot express an unlink (the gateway: Repro's S3 import).
pub const CODE_UNLINK_UNSUPPORTED: u32 = 1009;
/// Message of a 1007 rejection, exactly as documented.
pub const MESSAGE_RAW_LINE_ID_REFUSED: &str =
    "raw LINE user IDs are not accepted; send an ID token";
/// Message of a 1009 rejection, exactly as documented.
pub const MESSAGE_UNLINK_UNSUPPORTED: &str =
    "unlink is not supported by this endpoint: Repro's S3 auto-import cannot express it";

/// What an op does at the endpoint. `user_id` on link/unlink is the user ID set at call time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OpKind {
    SetUserId {
        user_id: String,
    },
    LinkLineId {
        user_id: String,
        line_user_id: String,
        channel_id: String,
    },
    UnlinkLineId {
        user_id: String,
        line_user_id: String,
        channel_id: String,
    },
    /// Protocol v1.1: link the LINE user ID the server finds in the verified token's `sub`.
    /// `id_token` is a secret: never logged.
    LinkLineIdToken {
        user_id: String,
        id_token: IdToken,
        channel_id: String,
    },
}

/// A LINE ID token (compact JWT). A secret: its `Debug` shows only its length, so a
/// token never reaches a log, a panic message or an error through `{:?}`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdToken(String);

impl IdToken {
    pub fn new(token: impl Into<String>) -> IdToken {
        IdToken(token.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The unverified `sub` (see [`id_token_subject`]).
    pub fn subject(&self) -> Option<String> {
        id_token_subject(&self.0)
    }
}

impl std::fmt::Debug for IdToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdToken(<redacted, {} bytes>)", self.0.len())
    }
}

impl std::ops::Deref for IdToken {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for IdToken {
    fn from(s: String) -> IdToken {
        IdToken(s)
    }
}

impl From<&str> for IdToken {
    fn from(s: &str) -> IdToken {
        IdToken(s.to_owned())
    }
}

impl OpKind {
    /// The wire's `type` (docs/protocol.md), also the name reports and logs use.
    pub fn as_str(&self) -> &'static str {
        match self {
            OpKind::SetUserId { .. } => "set_user_id",
            OpKind::LinkLineId { .. } => "link_line_id",
            OpKind::UnlinkLineId { .. } => "unlink_line_id",
            OpKind::LinkLineIdToken { .. } => "link_line_id_token",
        }
    }

    /// The user ID set at call time (the one a link or unlink is for).
    pub fn user_id(&self) -> &str {
        match self {
            OpKind::SetUserId { user_id }
            | OpKind::LinkLineId { user_id, .. }
            | OpKind::UnlinkLineId { user_id, .. }
            | OpKind::LinkLineIdToken { user_id, .. } => user_id,
        }
    }

    /// The channel of a link or unlink; `None` for `set_user_id`.
    pub fn channel_id(&self) -> Option<&str> {
        match self {
            OpKind::SetUserId { .. } => None,
            OpKind::LinkLineId { channel_id, .. }
            | OpKind::UnlinkLineId { channel_id, .. }
            | OpKind::LinkLineIdToken { channel_id, .. } => Some(channel_id),
        }
    }

    /// The LINE user ID this op is about; for a token link, the token's unverified
    /// `sub` (what an app shows; the endpoint links only what it verifies).
    pub fn line_user_id(&self) -> Option<String> {
        match self {
            OpKind::SetUserId { .. } => None,
            OpKind::LinkLineId { line_user_id, .. } | OpKind::UnlinkLineId { line_user_id, .. } => {
                Some(line_user_id.clone())
            }
            OpKind::LinkLineIdToken { id_token, .. } => id_token.subject(),
        }
    }
}

/// One queued call, as persisted and as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub op_id: Uuid,
    pub seq: u64,
    /// Call time, milliseconds since the Unix epoch (UTC).
    pub at_ms: u64,
    pub kind: OpKind,
}

/// An op as it appears on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireOp {
    pub op_id: Uuid,
    pub seq: u64,
    pub at: String,
    #[serde(flatten)]
    pub kind: OpKind,
}

/// Request body of `POST /v1/identity/batch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRequest {
    pub device_id: Uuid,
    pub ops: Vec<WireOp>,
}

/// Serialises a batch without copying the ops. Written by hand (not serde) because it is
/// the only JSON the SDK writes, and serde's serializer costs the wasm build several KB.
pub fn encode_batch<'a>(device_id: &Uuid, ops: impl IntoIterator<Item = &'a Op>) -> Vec<u8> {
    // Pushed by hand, not `write!` (the browser build links no `core::fmt`).
    use crate::text::{push_u64, push_uuid};
    let mut out = String::with_capacity(256);
    out.push_str("{\"device_id\":\"");
    push_uuid(&mut out, device_id);
    out.push_str("\",\"ops\":[");
    for (i, op) in ops.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"op_id\":\"");
        push_uuid(&mut out, &op.op_id);
        out.push_str("\",\"seq\":");
        push_u64(&mut out, op.seq);
        out.push_str(",\"at\":\"");
        push_rfc3339_millis(&mut out, op.at_ms);
        out.push_str("\",\"type\":");
        // A token link carries the token where the others carry the LINE user ID.
        let link = match &op.kind {
            OpKind::SetUserId { .. } => None,
            OpKind::LinkLineId { line_user_id, .. } | OpKind::UnlinkLineId { line_user_id, .. } => {
                Some((",\"line_user_id\":", line_user_id.as_str()))
            }
            OpKind::LinkLineIdToken { id_token, .. } => Some((",\"id_token\":", id_token.as_str())),
        };
        crate::text::push_json_str(&mut out, op.kind.as_str());
        out.push_str(",\"user_id\":");
        crate::text::push_json_str(&mut out, op.kind.user_id());
        if let (Some((field, value)), Some(channel_id)) = (link, op.kind.channel_id()) {
            out.push_str(field);
            crate::text::push_json_str(&mut out, value);
            out.push_str(",\"channel_id\":");
            crate::text::push_json_str(&mut out, channel_id);
        }
        out.push('}');
    }
    out.push_str("]}");
    out.into_bytes()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpStatus {
    Applied,
    Duplicate,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: u32,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpResult {
    pub op_id: Uuid,
    pub status: OpStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

impl OpResult {
    /// The result an endpoint answers for a newly seen op: `applied`, or `rejected` with its error.
    pub fn of_new_op(op_id: Uuid, outcome: Result<(), ApiError>) -> OpResult {
        match outcome {
            Ok(()) => OpResult {
                op_id,
                status: OpStatus::Applied,
                error: None,
            },
            Err(error) => OpResult {
                op_id,
                status: OpStatus::Rejected,
                error: Some(error),
            },
        }
    }
}

/// Body of a `200` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchResponse {
    pub results: Vec<OpResult>,
}

/// Body of an error answer (`400`, `401`, `403`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ApiError,
}

/// Parses a `200` body. Any deviation from the protocol is an `Err` with a reason.
pub fn decode_batch_response(body: &[u8]) -> Result<BatchResponse, String> {
    crate::wire::batch_response(body).map_err(|e| String::from("unreadable batch response: ") + e)
}

/// What came back for a request, as the driver's transport saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An HTTP response. `body` is at most [`MAX_RESPONSE_BYTES`]; longer bodies are cut.
    Response {
        status: u16,
        retry_after: Option<String>,
        body: Vec<u8>,
    },
    /// No response: DNS, connect, reset, TLS, or the request timeout.
    Network { timeout: bool, message: String },
}

/// An [`Outcome`] read against the protocol: what the retry table decides on. No bytes left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `200` with one result per sent op, in order.
    Results(BatchResponse),
    /// `200` whose body is not one result per sent op, in order: a server fault.
    UnmatchedResults,
    /// Any other status, with the `Retry-After` wait (ms from now) and the error body's
    /// message, where the response had them.
    Status {
        status: u16,
        retry_after_ms: Option<u64>,
        message: Option<String>,
    },
    /// No response at all.
    Network,
}

/// Reads `outcome` for the batch whose op ids are `op_ids`, at `now_ms` (for a dated `Retry-After`).
pub fn classify(outcome: &Outcome, now_ms: u64, op_ids: &[Uuid]) -> Answer {
    classify_with(outcome, now_ms, op_ids.len(), |i| op_ids[i])
}

/// [`classify`] for a batch of `n` ops whose `i`-th op id is `op_id(i)` (the engine reads them
/// from its queue: no list of ids is built).
pub(crate) fn classify_with(
    outcome: &Outcome,
    now_ms: u64,
    n: usize,
    op_id: impl Fn(usize) -> Uuid,
) -> Answer {
    let (status, retry_after, body) = match outcome {
        Outcome::Network { .. } => return Answer::Network,
        Outcome::Response {
            status,
            retry_after,
            body,
        } => (*status, retry_after, body),
    };
    if status == 200 {
        // The reader itself: a reason for an unreadable body would be built only to be dropped.
        return match crate::wire::batch_response(body) {
            Ok(resp)
                if resp.results.len() == n
                    && resp
                        .results
                        .iter()
                        .enumerate()
                        .all(|(i, r)| r.op_id == op_id(i)) =>
            {
                Answer::Results(resp)
            }
            _ => Answer::UnmatchedResults,
        };
    }
    // Only client errors carry an error body worth reading (their message is reported).
    let message = (400..500)
        .contains(&status)
        .then(|| error_message(body))
        .flatten();
    Answer::Status {
        status,
        retry_after_ms: retry_after
            .as_deref()
            .and_then(|v| parse_retry_after(v, now_ms)),
        message,
    }
}

fn error_message(body: &[u8]) -> Option<String> {
    crate::wire::error_body(body).ok().map(|b| b.error.message)
}

/// Why a batch request cannot be decoded: the server answers `status()` with `api_error()`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchDecodeError {
    #[error("body of {bytes} bytes is above the {MAX_BODY_BYTES}-byte limit")]
    TooLarge { bytes: usize },
    #[error("malformed batch: {reason}")]
    Malformed {
        reason: String,
        /// The batch's `device_id` when that much was readable (for per-device accounting).
        device_id: Option<Uuid>,
    },
}

impl BatchDecodeError {
    /// `413` for a too-large body, else `400`.
    pub fn status(&self) -> u16 {
        match self {
            BatchDecodeError::TooLarge { .. } => 413,
            BatchDecodeError::Malformed { .. } => 400,
        }
    }

    /// The `error` object of the answer (`1001` for a malformed batch).
    pub fn api_error(&self) -> ApiError {
        ApiError {
            code: CODE_MALFORMED_BATCH,
            message: self.to_string(),
        }
    }

    pub fn device_id(&self) -> Option<Uuid> {
        match self {
            BatchDecodeError::Malformed { device_id, .. } => *device_id,
            BatchDecodeError::TooLarge { .. } => None,
        }
    }
}

/// Server side of `POST /v1/identity/batch`: the one decoder the emulator and the gateway
/// share. Enforces docs/protocol.md's request rules: `Content-Type: application/json`,
/// a body of at most 256 KiB, 1..=100 ops, `at` an RFC 3339 UTC millisecond time, `seq`
/// within 1..=2^63-1. Per-op rules (IDs, registration) are the endpoint's, answered per op.
pub fn decode_batch_request(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<BatchRequest, BatchDecodeError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(BatchDecodeError::TooLarge { bytes: body.len() });
    }
    #[derive(Deserialize)]
    struct DeviceOnly {
        device_id: Uuid,
    }
    let device = || {
        serde_json::from_slice::<DeviceOnly>(body)
            .ok()
            .map(|d| d.device_id)
    };
    let malformed =
        |reason: String, device_id: Option<Uuid>| BatchDecodeError::Malformed { reason, device_id };
    let json = content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(malformed(
            format!(
                "Content-Type must be application/json, got {:?}",
                content_type
                    .unwrap_or("nothing")
                    .chars()
                    .take(80)
                    .collect::<String>()
            ),
            device(),
        ));
    }
    let batch: BatchRequest =
        serde_json::from_slice(body).map_err(|e| malformed(e.to_string(), device()))?;
    let device_id = Some(batch.device_id);
    let n = batch.ops.len();
    if !(1..=MAX_BATCH_OPS).contains(&n) {
        return Err(malformed(
            format!("a batch holds 1 to {MAX_BATCH_OPS} ops, got {n}"),
            device_id,
        ));
    }
    for op in &batch.ops {
        if op.seq == 0 || i64::try_from(op.seq).is_err() {
            return Err(malformed(
                format!("seq {} is outside 1..=2^63-1", op.seq),
                device_id,
            ));
        }
        if parse_rfc3339_millis(&op.at).is_none() {
            return Err(malformed(
                format!(
                    "at {:?} is not an RFC 3339 UTC time with milliseconds (like 2026-11-28T12:00:00.123Z)",
                    op.at.chars().take(40).collect::<String>()
                ),
                device_id,
            ));
        }
    }
    Ok(batch)
}

/// `2026-11-28T12:00:00.123Z` → milliseconds since the epoch; exactly the form
/// `format_rfc3339_millis` writes (UTC, `Z`, three fraction digits), else `None`.
pub fn parse_rfc3339_millis(value: &str) -> Option<u64> {
    let b = value.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let digits = value.get(from..to)?;
        crate::text::digits_u64(digits).map(|n| n as i64) // at most 4 digits
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, s, ms) = (num(11, 13)?, num(14, 16)?, num(17, 19)?, num(20, 23)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&d) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s;
    u64::try_from(secs)
        .ok()?
        .checked_mul(1000)?
        .checked_add(ms as u64)
}

/// The `sub` claim of a compact JWT, read WITHOUT verifying anything (for display and
/// the reference model; servers verify with `repro-line-idtoken`). `None` if unreadable.
pub fn id_token_subject(id_token: &str) -> Option<String> {
    // The text between the first and second `.` (byte searches: std's `split` is ~0.5 KB of the wasm).
    let rest = id_token.get(crate::text::find_byte(id_token, b".") + 1..)?;
    let payload = &rest[..crate::text::find_byte(rest, b".")];
    let bytes = base64url_decode(payload)?;
    // Not serde_json: its parser costs the wasm build ~24 KB (see wire.rs).
    crate::wire::subject(&bytes).ok()
}

/// Unpadded base64url (RFC 4648 §5); `None` on any other character or a bad length.
fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    };
    if s.len() % 4 == 1 {
        return None;
    }
    // A bit stream: each full byte out as soon as it is in (the last group's spare bits are
    // dropped, as a 2- or 3-character group's are).
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in s.as_bytes() {
        acc = acc << 6 | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// `Retry-After` as delta-seconds or an HTTP-date, converted to a wait in milliseconds.
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let value = crate::text::trim(value);
    // Hand-written digits (not `str::parse`: std's parsers are ~1 KB of the wasm), same acceptance.
    if let Some(secs) = crate::text::parse_u64(value) {
        return Some(secs.saturating_mul(1000));
    }
    Some(parse_imf_fixdate_ms(value)?.saturating_sub(now_ms))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` → milliseconds since the epoch. RFC 9110 requires senders
/// to use this form; the two obsolete forms are not accepted (the backoff applies instead).
/// Hand-written to keep an HTTP-date crate out of the wasm build.
fn parse_imf_fixdate_ms(value: &str) -> Option<u64> {
    // Three bytes a month, one string (a table of 12 `&str` costs more in the wasm).
    const MONTHS: &[u8; 36] = b"JanFebMarAprMayJunJulAugSepOctNovDec";
    // `split_ascii_whitespace` by hand (crate::text): std's is ~0.7 KB of the wasm.
    let mut rest = value;
    let mut word = || crate::text::next_word(&mut rest);
    let (_weekday, day, month, year, time, zone) =
        (word()?, word()?, word()?, word()?, word()?, word()?);
    if zone != "GMT" || word().is_some() || day.len() != 2 || year.len() != 4 || time.len() != 8 {
        return None;
    }
    let month = month.as_bytes();
    let mut mi = 0;
    while month != &MONTHS[mi * 3..mi * 3 + 3] {
        mi += 1;
        if mi == 12 {
            return None;
        }
    }
    let month = mi as i64 + 1;
    let parse = crate::text::parse_i64; // what `str::parse::<i64>` accepts, signs included
    let (day, year) = (parse(day)?, parse(year)?);
    // The text before the first, second and third `:` (the first two must be there): what
    // `split(':')` gave.
    let mut hms = [0; 3];
    let mut t = time;
    for (k, v) in hms.iter_mut().enumerate() {
        let i = crate::text::find_byte(t, b":");
        if k < 2 && i == t.len() {
            return None;
        }
        *v = parse(&t[..i])?;
        t = t.get(i + 1..).unwrap_or("");
    }
    let [h, m, sec] = hms;
    if !matches!(day, 1..=31) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let secs = ((days_from_civil(year, month, day) * 24 + h) * 60 + m) * 60 + sec;
    // At most year 9999's last second: the milliseconds fit, whatever the signs were.
    u64::try_from(secs * 1000).ok()
}

/// (year, month, day) → days since 1970-01-01; Howard Hinnant's algorithm.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-11-28T12:00:00.123Z`. Hand-written (civil-from-days) to keep chrono out of the wasm build.
/// Digits by hand, not `format!` (the browser build links no `core::fmt`).
pub fn format_rfc3339_millis(unix_ms: u64) -> String {
    let mut out = String::with_capacity(24);
    push_rfc3339_millis(&mut out, unix_ms);
    out
}

fn push_rfc3339_millis(out: &mut String, unix_ms: u64) {
    use crate::text::push_padded;
    let secs = unix_ms / 1000;
    // Days from a u64 of milliseconds fit an i64 and are never negative, so the year is positive.
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    push_padded(out, y as u64, 4);
    // The separators in one string, the numbers in one array (no array of pairs to build).
    let n = [
        u64::from(mo),
        u64::from(d),
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60,
    ];
    #[allow(clippy::needless_range_loop)] // one index into both
    for k in 0..5 {
        out.push(char::from(b"--T::"[k]));
        push_padded(out, n[k], 2);
    }
    out.push('.');
    push_padded(out, unix_ms % 1000, 3);
    out.push('Z');
}

/// Days since 1970-01-01 → (year, month, day); Howard Hinnant's algorithm.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_reads_results_statuses_and_network_failures() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let response = |status, retry_after: Option<&str>, body: &str| Outcome::Response {
            status,
            retry_after: retry_after.map(str::to_owned),
            body: body.as_bytes().to_vec(),
        };
        let ok = format!(
            r#"{{"results":[{{"op_id":"{a}","status":"applied"}},{{"op_id":"{b}","status":"duplicate"}}]}}"#
        );
        match classify(&response(200, None, &ok), 0, &[a, b]) {
            Answer::Results(r) => assert_eq!(r.results[1].status, OpStatus::Duplicate),
            other => panic!("{other:?}"),
        }
        for ids in [&[b, a][..], &[a][..]] {
            assert_eq!(
                classify(&response(200, None, &ok), 0, ids),
                Answer::UnmatchedResults
            );
        }
        assert_eq!(
            classify(&response(200, None, "<html>"), 0, &[a]),
            Answer::UnmatchedResults
        );
        assert_eq!(
            classify(&response(429, Some("7"), ""), 0, &[a]),
            Answer::Status {
                status: 429,
                retry_after_ms: Some(7_000),
                message: None
            }
        );
        let body = r#"{"error":{"code":7,"message":"unprocessable"}}"#;
        assert_eq!(
            classify(&response(422, None, body), 0, &[a]),
            Answer::Status {
                status: 422,
                retry_after_ms: None,
                message: Some("unprocessable".into())
            }
        );
        // A server error's body is not read.
        assert_eq!(
            classify(&response(500, None, body), 0, &[a]),
            Answer::Status {
                status: 500,
                retry_after_ms: None,
                message: None
            }
        );
        let network = Outcome::Network {
            timeout: true,
            message: "timeout".into(),
        };
        assert_eq!(classify(&network, 0, &[a]), Answer::Network);
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_millis(1_795_867_200_123),
            "2026-11-28T12:00:00.123Z"
        );
        assert_eq!(
            format_rfc3339_millis(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn batch_encodes_as_documented() {
        let op = Op {
            op_id: Uuid::nil(),
            seq: 2,
            at_ms: 1_795_867_200_123,
            kind: OpKind::LinkLineId {
                user_id: "user123".into(),
                line_user_id: "U4af4980629a1b2c3d4e5f60718293a4b".into(),
                channel_id: "1234567890".into(),
            },
        };
        let body = encode_batch(&Uuid::nil(), [&op]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["ops"][0]["type"], "link_line_id");
        assert_eq!(v["ops"][0]["seq"], 2);
        assert_eq!(v["ops"][0]["at"], "2026-11-28T12:00:00.123Z");
        assert_eq!(v["ops"][0]["channel_id"], "1234567890");
        let back: BatchRequest = serde_json::from_slice(&body).unwrap();
        assert_eq!(back.ops[0].kind, op.kind);
    }

    /// The `format!` implementation the hand-written one replaced (the reference).
    fn format_rfc3339_millis_with_format(unix_ms: u64) -> String {
        let millis = unix_ms % 1000;
        let secs = unix_ms / 1000;
        let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
    }

    /// The `str::parse` implementation the hand-written one replaced (the reference).
    fn parse_retry_after_with_std(value: &str, now_ms: u64) -> Option<u64> {
        let value = value.trim();
        if let Ok(secs) = value.parse::<u64>() {
            return Some(secs.saturating_mul(1000));
        }
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let mut parts = value.split_ascii_whitespace();
        let (_weekday, day, month, year, time, zone) = (
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
            parts.next()?,
        );
        if zone != "GMT"
            || parts.next().is_some()
            || day.len() != 2
            || year.len() != 4
            || time.len() != 8
        {
            return None;
        }
        let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
        let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
        let mut hms = time.split(':').map(|p| p.parse::<i64>().ok());
        let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
        if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
            return None;
        }
        let secs = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec;
        let at_ms = u64::try_from(secs).ok()?.checked_mul(1000)?;
        Some(at_ms.saturating_sub(now_ms))
    }

    #[test]
    fn retry_after_signs_and_odd_times_judged_as_before() {
        for v in [
            "+5",
            "-5",
            "+",
            "",
            " \u{a0}7\u{85} ",
            "18446744073709551615",
            "18446744073709551616",
            "Sat, +8 Nov 2026 12:00:05 GMT",
            "Sat, 28 Nov -994 12:00:05 GMT",
            "Sat, 28 Nov +994 12:00:05 GMT",
            "Sat, 28 Nov 2026 +1:+2:+3 GMT",
            "Sat, 28 Nov 2026 1:2:3:45 GMT",
            "Sat, 28 Nov 2026 1::02:03 GMT",
            "Sat, 28 Nov 2026 -1:02:03 GMT",
        ] {
            assert_eq!(
                parse_retry_after(v, 5),
                parse_retry_after_with_std(v, 5),
                "{v:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn rfc3339_equals_the_format_version(ms in proptest::prelude::any::<u64>(), small in 0u64..253_402_300_799_999) {
            proptest::prop_assert_eq!(format_rfc3339_millis(ms), format_rfc3339_millis_with_format(ms));
            proptest::prop_assert_eq!(format_rfc3339_millis(small), format_rfc3339_millis_with_format(small));
        }

        #[test]
        fn retry_after_equals_the_std_version(
            v in "[ \t]{0,2}[+-]?[0-9]{0,21}[ ]?|[A-Za-z]{3}, [+-0-9]{2} (Jan|Nov|Feb|Dec|Jun|Xyz|jan|Ja) [+-0-9]{4} [+-0-9:]{8} (GMT|UTC)|[ \t\u{a0}\u{3000}]{0,2}Sat,[ \t\x0b]{1,2}28 Nov 2026 1[0-9]:[0-9:+-]{5}[ \n]{1,2}GMT[ \u{85}\u{2009}]{0,2}|.{0,12}",
            now in proptest::prelude::any::<u64>(),
        ) {
            proptest::prop_assert_eq!(parse_retry_after(&v, now), parse_retry_after_with_std(&v, now));
        }

        /// The bit-stream decoder equals the group-of-four one it replaced (the reference).
        #[test]
        fn base64url_decode_equals_the_group_decoder(s in "[A-Za-z0-9_-]{0,13}|[A-Za-z0-9_+/=.-]{0,9}") {
            let groups = || -> Option<Vec<u8>> {
                let value = |c: u8| -> Option<u32> {
                    Some(match c {
                        b'A'..=b'Z' => c - b'A',
                        b'a'..=b'z' => c - b'a' + 26,
                        b'0'..=b'9' => c - b'0' + 52,
                        b'-' => 62,
                        b'_' => 63,
                        _ => return None,
                    } as u32)
                };
                if s.len() % 4 == 1 {
                    return None;
                }
                let mut out = Vec::new();
                for chunk in s.as_bytes().chunks(4) {
                    let mut acc = 0u32;
                    for (i, &c) in chunk.iter().enumerate() {
                        acc |= value(c)? << (18 - 6 * i);
                    }
                    out.extend_from_slice(&acc.to_be_bytes()[1..chunk.len()]);
                }
                Some(out)
            };
            proptest::prop_assert_eq!(base64url_decode(&s), groups());
        }

        /// The hand split of the token's parts equals `split('.')`'s (the reference's).
        #[test]
        fn id_token_subject_reads_the_second_part(parts in proptest::collection::vec("[A-Za-z0-9_-]{0,6}|eyJzdWIiOiJ4In0", 0..4)) {
            let token = parts.join(".");
            let mut split = token.split('.');
            let reference = match (split.next(), split.next()) {
                (Some(_), Some(payload)) => base64url_decode(payload).and_then(|b| crate::wire::subject(&b).ok()),
                _ => None,
            };
            proptest::prop_assert_eq!(id_token_subject(&token), reference);
        }

        #[test]
        fn any_strings_survive_the_hand_written_encoder(user in ".*", line in ".*", channel in "\\PC*", seq in proptest::prelude::any::<u64>(), at_ms in 0u64..253_402_300_799_999) {
            let ops = vec![
                Op { op_id: Uuid::from_u128(1), seq, at_ms, kind: OpKind::SetUserId { user_id: user.clone() } },
                Op { op_id: Uuid::from_u128(2), seq, at_ms, kind: OpKind::UnlinkLineId { user_id: user, line_user_id: line, channel_id: channel } },
            ];
            let body = encode_batch(&Uuid::from_u128(3), &ops);
            let back: BatchRequest = serde_json::from_slice(&body).unwrap();
            proptest::prop_assert_eq!(back.device_id, Uuid::from_u128(3));
            proptest::prop_assert_eq!(back.ops.len(), 2);
            for (w, o) in back.ops.iter().zip(&ops) {
                proptest::prop_assert_eq!(&w.kind, &o.kind);
                proptest::prop_assert_eq!(w.seq, o.seq);
                proptest::prop_assert_eq!(&w.at, &format_rfc3339_millis(o.at_ms));
            }
        }
    }

    #[test]
    fn rfc3339_parse_is_the_inverse_of_format_and_strict() {
        for ms in [0, 1_795_867_200_123, 951_782_400_000, 253_402_300_799_999] {
            assert_eq!(parse_rfc3339_millis(&format_rfc3339_millis(ms)), Some(ms));
        }
        for bad in [
            "yesterday",
            "2026-11-28T12:00:00Z",
            "2026-11-28T12:00:00.123+09:00",
            "2026-02-29T00:00:00.000Z",
            "2026-11-28 12:00:00.123Z",
            "2026-11-28T24:00:00.000Z",
            "2026-13-01T00:00:00.000Z",
            "+026-11-28T12:00:00.123Z",
        ] {
            assert_eq!(parse_rfc3339_millis(bad), None, "{bad}");
        }
    }

    fn one_op_body(at: &str, seq: u64) -> Vec<u8> {
        format!(
            r#"{{"device_id":"{}","ops":[{{"op_id":"{}","seq":{seq},"at":"{at}","type":"set_user_id","user_id":"u"}}]}}"#,
            Uuid::from_u128(7),
            Uuid::from_u128(8)
        )
        .into_bytes()
    }

    #[test]
    fn batch_decoder_enforces_the_documented_rules() {
        let ok = one_op_body("2026-11-28T12:00:00.123Z", 1);
        let json = Some("application/json; charset=utf-8");
        assert_eq!(decode_batch_request(json, &ok).unwrap().ops.len(), 1);
        let err = decode_batch_request(Some("text/plain"), &ok).unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(err.api_error().code, CODE_MALFORMED_BATCH);
        assert!(err.to_string().contains("Content-Type"), "{err}");
        assert_eq!(err.device_id(), Some(Uuid::from_u128(7)));
        assert!(decode_batch_request(None, &ok).is_err());
        let err = decode_batch_request(json, &one_op_body("yesterday", 1)).unwrap_err();
        assert!(err.to_string().contains("RFC 3339"), "{err}");
        let err =
            decode_batch_request(json, &one_op_body("2026-11-28T12:00:00.123Z", 0)).unwrap_err();
        assert!(err.to_string().contains("seq 0"), "{err}");
        let empty = format!(r#"{{"device_id":"{}","ops":[]}}"#, Uuid::nil());
        let err = decode_batch_request(json, empty.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("1 to 100 ops, got 0"), "{err}");
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(decode_batch_request(json, &big).unwrap_err().status(), 413);
    }

    #[test]
    fn token_link_encodes_and_its_subject_reads_back() {
        // header {"alg":"none"}, payload {"sub":"U4af4980629a1b2c3d4e5f60718293a4b"}
        let token =
            "eyJhbGciOiJub25lIn0.eyJzdWIiOiJVNGFmNDk4MDYyOWExYjJjM2Q0ZTVmNjA3MTgyOTNhNGIifQ.";
        assert_eq!(
            id_token_subject(token).as_deref(),
            Some("U4af4980629a1b2c3d4e5f60718293a4b")
        );
        assert_eq!(id_token_subject("not a token"), None);
        let op = Op {
            op_id: Uuid::nil(),
            seq: 3,
            at_ms: 0,
            kind: OpKind::LinkLineIdToken {
                user_id: "u".into(),
                id_token: token.into(),
                channel_id: "1234567890".into(),
            },
        };
        let body = encode_batch(&Uuid::nil(), [&op]);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["ops"][0]["type"], "link_line_id_token");
        assert_eq!(v["ops"][0]["id_token"], token);
        let back = decode_batch_request(Some("application/json"), &body).unwrap();
        assert_eq!(back.ops[0].kind, op.kind);
    }

    #[test]
    fn retry_after_both_forms() {
        assert_eq!(parse_retry_after("1", 0), Some(1000));
        assert_eq!(parse_retry_after(" 120 ", 0), Some(120_000));
        let now = 1_795_867_200_000;
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 12:00:05 GMT", now),
            Some(5000)
        );
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 11:00:00 GMT", now),
            Some(0)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("Sat, 28 Nov 2026 12:00:05 UTC", now),
            None
        );
        assert_eq!(
            parse_imf_fixdate_ms("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777_000)
        );
        assert_eq!(
            parse_imf_fixdate_ms("Thu, 29 Feb 2024 00:00:00 GMT"),
            Some(1_709_164_800_000)
        );
    }
}
