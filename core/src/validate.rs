//! Input rules, checked on the caller's thread before anything is enqueued.
//! The same functions back the emulator and the bulk CSV validator, so every
//! surface enforces one definition of each rule.

use crate::Error;

/// Length of a LINE User ID: `U` + 32 ASCII letters or digits.
pub const LINE_USER_ID_LEN: usize = 33;
/// Repro's documented maximum for `setUserID`, in Unicode scalar values.
pub const MAX_USER_ID_CHARS: usize = 191;
/// Longest accepted LINE channel ID.
pub const MAX_CHANNEL_ID_LEN: usize = 64;

/// `U` followed by 32 ASCII letters or digits.
pub fn line_user_id(value: &str) -> Result<(), Error> {
    if is_line_user_id(value) {
        Ok(())
    } else {
        Err(Error::InvalidLineUserId {
            value: crate::redact::line_user_id(value),
        })
    }
}

fn is_line_user_id(value: &str) -> bool {
    let bytes = value.as_bytes();
    bytes.len() == LINE_USER_ID_LEN && bytes[0] == b'U' && all_alphanumeric(&bytes[1..])
}

/// Every byte an ASCII letter or digit (a loop: `Iter::all` was a call in the wasm build).
fn all_alphanumeric(bytes: &[u8]) -> bool {
    for b in bytes {
        if !b.is_ascii_alphanumeric() {
            return false;
        }
    }
    true
}

/// 1..=191 Unicode scalar values, none of them a control character.
pub fn user_id(value: &str) -> Result<(), Error> {
    let mut chars = 0usize;
    for c in value.chars() {
        if c.is_control() {
            return Err(Error::InvalidUserId {
                reason: UserIdProblem::ControlCharacter,
            });
        }
        chars += 1;
    }
    match chars {
        0 => Err(Error::InvalidUserId {
            reason: UserIdProblem::Empty,
        }),
        n if n > MAX_USER_ID_CHARS => Err(Error::InvalidUserId {
            reason: UserIdProblem::TooLong { chars: n },
        }),
        _ => Ok(()),
    }
}

/// 1..=64 ASCII letters or digits.
pub fn channel_id(value: &str) -> Result<(), Error> {
    let ok = !value.is_empty()
        && value.len() <= MAX_CHANNEL_ID_LEN
        && all_alphanumeric(value.as_bytes());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidChannelId {
            value: crate::text::prefix_chars(value, 80).to_owned(),
        })
    }
}

/// Longest accepted ID token, in bytes.
pub const MAX_ID_TOKEN_BYTES: usize = 8 * 1024;

/// The client's checks of an ID token: shape and a readable `sub` that is a LINE
/// user ID. Nothing else is trusted here; the endpoint verifies the signature and claims.
/// Returns the `sub`.
pub fn id_token(value: &str) -> Result<String, Error> {
    let problem = |reason| Err(Error::InvalidIdToken { reason });
    if value.len() > MAX_ID_TOKEN_BYTES {
        return problem(IdTokenProblem::TooLong { bytes: value.len() });
    }
    // One byte loop, not `split('.')` (std's searcher in the wasm): two dots, and every part
    // non-empty base64url (no dot first, last or next to another).
    let (mut dots, mut prev, mut bad) = (0, b'.', false);
    for &b in value.as_bytes() {
        if b == b'.' {
            dots += 1;
            bad |= prev == b'.';
        } else {
            bad |= !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        }
        prev = b;
    }
    if dots != 2 {
        return problem(IdTokenProblem::NotThreeParts);
    }
    if bad || prev == b'.' {
        return problem(IdTokenProblem::NotBase64Url);
    }
    // The rule only, not `line_user_id`: its error (a redacted copy) would be built to be dropped.
    match crate::protocol::id_token_subject(value) {
        None => problem(IdTokenProblem::NoSubject),
        Some(sub) if is_line_user_id(&sub) => Ok(sub),
        Some(_) => problem(IdTokenProblem::SubjectNotLineUserId),
    }
}

/// Which part of the ID token rule was broken (never the token itself: it is a secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdTokenProblem {
    TooLong { bytes: usize },
    NotThreeParts,
    NotBase64Url,
    NoSubject,
    SubjectNotLineUserId,
}

impl IdTokenProblem {
    /// The broken rule, as the error message says it.
    pub fn as_str(&self) -> &'static str {
        match self {
            IdTokenProblem::TooLong { .. } => "it is longer than 8 KiB",
            IdTokenProblem::NotThreeParts => "it does not have three parts",
            IdTokenProblem::NotBase64Url => "a part is empty or not base64url",
            IdTokenProblem::NoSubject => "its payload has no readable sub claim",
            IdTokenProblem::SubjectNotLineUserId => "its sub is not a LINE user ID",
        }
    }
}

impl std::fmt::Display for IdTokenProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which part of the user ID rule was broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserIdProblem {
    Empty,
    TooLong { chars: usize },
    ControlCharacter,
}

impl UserIdProblem {
    /// Appends the broken rule, as the error message says it (no `fmt`: see `Error::message`).
    pub(crate) fn push_to(&self, out: &mut String) {
        match self {
            UserIdProblem::Empty => out.push_str("it is empty"),
            UserIdProblem::TooLong { chars } => {
                out.push_str("it has ");
                crate::text::push_u64(out, *chars as u64);
                out.push_str(" characters");
            }
            UserIdProblem::ControlCharacter => out.push_str("it contains a control character"),
        }
    }
}

impl std::fmt::Display for UserIdProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        self.push_to(&mut out);
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "U4af4980629a1b2c3d4e5f60718293a4b";

    #[test]
    fn line_user_id_rule() {
        assert_eq!(GOOD.len(), 33);
        assert!(line_user_id(GOOD).is_ok());
        assert!(
            line_user_id(&GOOD.to_uppercase()).is_ok(),
            "letters of either case are alphanumeric"
        );
        for bad in [
            "",
            "U",
            &GOOD[..32],
            &format!("{GOOD}0"),
            &GOOD.replacen('U', "u", 1),
            &GOOD.replace('4', "-"),
            "Uあいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみ",
        ] {
            let err = line_user_id(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidLineUserId { .. }), "{bad:?}");
            assert!(
                err.to_string()
                    .contains("U followed by 32 ASCII letters or digits"),
                "{err}"
            );
        }
    }

    #[test]
    fn user_id_counts_characters_not_bytes() {
        assert!(user_id(&"あ".repeat(191)).is_ok()); // 573 bytes, 191 characters
        let err = user_id(&"あ".repeat(192)).unwrap_err();
        assert!(err.to_string().contains("192 characters"), "{err}");
        assert!(err.to_string().contains("1 to 191"), "{err}");
        assert!(matches!(
            user_id(""),
            Err(Error::InvalidUserId {
                reason: UserIdProblem::Empty
            })
        ));
        assert!(matches!(
            user_id("a\nb"),
            Err(Error::InvalidUserId {
                reason: UserIdProblem::ControlCharacter
            })
        ));
        assert!(user_id("user 123 ✓").is_ok());
    }

    #[test]
    fn channel_id_rule() {
        assert!(channel_id("1234567890").is_ok());
        assert!(channel_id(&"a".repeat(64)).is_ok());
        for bad in ["", "12 34", "１２３", &"a".repeat(65), "12-34"] {
            let err = channel_id(bad).unwrap_err();
            assert!(
                err.to_string().contains("1 to 64 ASCII letters or digits"),
                "{err}"
            );
        }
    }

    #[test]
    fn id_token_rule() {
        const H: &str = "eyJhbGciOiJFUzI1NiJ9"; // {"alg":"ES256"}
        const P: &str = "eyJzdWIiOiJVNGFmNDk4MDYyOWExYjJjM2Q0ZTVmNjA3MTgyOTNhNGIifQ"; // sub GOOD
        let ok = format!("{H}.{P}.c2ln");
        assert_eq!(id_token(&ok).as_deref(), Ok(GOOD));
        let long = format!("{H}.{P}.{}", "a".repeat(MAX_ID_TOKEN_BYTES));
        let no_sub = format!("{H}.eyJhdWQiOiIxIn0.c2ln"); // {"aud":"1"}
        let bad_sub = format!("{H}.eyJzdWIiOiJub2JvZHkifQ.c2ln"); // {"sub":"nobody"}
        for (bad, rule) in [
            (long.as_str(), IdTokenProblem::TooLong { bytes: long.len() }),
            ("", IdTokenProblem::NotThreeParts),
            (&format!("{H}.{P}"), IdTokenProblem::NotThreeParts),
            (&format!("{H}.{P}.c2ln.x"), IdTokenProblem::NotThreeParts),
            (&format!("{H}.{P}."), IdTokenProblem::NotBase64Url),
            (&format!("{H}.{P}.c2l+"), IdTokenProblem::NotBase64Url),
            (&format!("{H}.{P}.c2ln="), IdTokenProblem::NotBase64Url),
            (&no_sub, IdTokenProblem::NoSubject),
            (&bad_sub, IdTokenProblem::SubjectNotLineUserId),
        ] {
            let err = id_token(bad).unwrap_err();
            assert_eq!(err, Error::InvalidIdToken { reason: rule }, "{bad:?}");
            let shown = err.to_string();
            assert!(shown.contains("compact JWT"), "{shown}");
            if !bad.is_empty() {
                assert!(!shown.contains(bad), "token in {shown}");
            }
        }
    }

    /// The `split('.')` shape check the byte loop replaced (the reference).
    fn shape_with_split(value: &str) -> Option<IdTokenProblem> {
        if value.split('.').count() != 3 {
            return Some(IdTokenProblem::NotThreeParts);
        }
        let bad = value.split('.').any(|part| {
            part.is_empty()
                || !part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        bad.then_some(IdTokenProblem::NotBase64Url)
    }

    proptest::proptest! {
        #[test]
        fn id_token_shape_judged_as_with_split(s in "[a.+_-]{0,8}|.{0,6}") {
            let got = match id_token(&s) {
                Err(Error::InvalidIdToken { reason: r @ (IdTokenProblem::NotThreeParts | IdTokenProblem::NotBase64Url) }) => Some(r),
                _ => None,
            };
            proptest::prop_assert_eq!(got, shape_with_split(&s));
        }

        #[test]
        fn channel_id_error_keeps_80_chars(s in ".{0,90}") {
            if let Err(Error::InvalidChannelId { value }) = channel_id(&s) {
                proptest::prop_assert_eq!(value, s.chars().take(80).collect::<String>());
            }
        }
    }
}
