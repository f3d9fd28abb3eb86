use crate::text;
use crate::validate::{IdTokenProblem, UserIdProblem};

/// Every failure the public API can return. Messages state the rule that was broken.
///
/// Not `thiserror`: the text is built by one writer, [`Error::message`] (`push_str` and
/// hand-written digits), which `Display` delegates to. The browser build calls it directly
/// and so links none of `core::fmt` (issue 15: page-load size); native text is unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    InvalidLineUserId {
        value: String,
    },
    InvalidUserId {
        reason: UserIdProblem,
    },
    InvalidChannelId {
        value: String,
    },
    /// Never carries the token: it is a secret.
    InvalidIdToken {
        reason: IdTokenProblem,
    },
    MissingChannelId,
    UserIdNotSet,
    InvalidConfig(String),
    InsecureEndpoint(String),
    Storage(StorageError),
    /// Another client (this process or another) holds the state directory's lock.
    /// Native only (the web build keeps these messages out of its size budget).
    #[cfg(feature = "driver")]
    StateDirInUse {
        dir: String,
        pid: Option<u32>,
    },
    /// The state directory holds undelivered calls for another endpoint; they are never sent elsewhere.
    #[cfg(feature = "driver")]
    StateDirBoundToEndpoint {
        dir: String,
        bound: String,
        requested: String,
        pending: usize,
    },
    /// The journal was written by a newer repro-line (a newer format, or a record type this
    /// version does not know). It is left untouched, so nothing in it is lost.
    /// The web build's message is short (its size budget); the fields say the same.
    JournalTooNew {
        format: u8,
        record_tag: Option<u8>,
    },
    ShutDown,
    Internal(String),
}

impl Error {
    /// The message (what `Display` shows): the rule that was broken.
    pub fn message(&self) -> String {
        let mut m = String::new();
        let mut s = |part: &str| m.push_str(part);
        match self {
            Error::InvalidLineUserId { value } => {
                s("invalid LINE user ID ");
                s(value);
                s(": a LINE user ID is U followed by 32 ASCII letters or digits (33 characters)");
            }
            Error::InvalidUserId { reason } => {
                s("invalid user ID: ");
                reason.push_to(&mut m);
                m.push_str("; a user ID is 1 to 191 characters (Unicode scalar values) with no control characters");
            }
            Error::InvalidChannelId { value } => {
                s("invalid channel ID ");
                text::push_debug_str(&mut m, value);
                m.push_str(": a channel ID is 1 to 64 ASCII letters or digits");
            }
            Error::InvalidIdToken { reason } => {
                s("invalid ID token: ");
                s(reason.as_str());
                s("; an ID token is a compact JWT (three non-empty base64url parts separated by dots, at most 8 KiB) whose sub is a LINE user ID");
            }
            Error::MissingChannelId => {
                s("no channel ID: pass one or set Config.default_channel_id")
            }
            Error::UserIdNotSet => {
                s("user ID not set: call set_user_id before linking or unlinking a LINE user ID")
            }
            Error::InvalidConfig(why) => {
                s("invalid configuration: ");
                s(why);
            }
            Error::InsecureEndpoint(endpoint) => {
                s("insecure endpoint ");
                s(endpoint);
                s(": the endpoint must use https unless its host is loopback (127.0.0.0/8, ::1, localhost)");
            }
            Error::Storage(e) => {
                s("storage error: ");
                e.push_to(&mut m);
            }
            #[cfg(feature = "driver")]
            Error::StateDirInUse { dir, pid } => {
                s("state dir ");
                s(dir);
                s(" is in use by another repro-line client");
                if let Some(pid) = pid {
                    m.push_str(" (pid ");
                    text::push_u64(&mut m, u64::from(*pid));
                    m.push(')');
                }
                m.push_str("; one client per state dir: stop it or use another directory");
            }
            #[cfg(feature = "driver")]
            Error::StateDirBoundToEndpoint {
                dir,
                bound,
                requested,
                pending,
            } => {
                s("state dir ");
                s(dir);
                s(" holds ");
                text::push_u64(&mut m, *pending as u64);
                m.push_str(" undelivered calls for endpoint ");
                m.push_str(bound);
                m.push_str("; they are never sent to ");
                m.push_str(requested);
                m.push_str(
                    ": deliver them with the endpoint they were made for, or use another state dir",
                );
            }
            #[cfg(feature = "driver")]
            Error::JournalTooNew { format, record_tag } => {
                s("the journal was written by a newer repro-line (format ");
                text::push_u64(&mut m, u64::from(*format));
                if let Some(tag) = record_tag {
                    m.push_str(", record type ");
                    text::push_u64(&mut m, u64::from(*tag));
                }
                m.push_str("; this version reads format ");
                text::push_u64(&mut m, u64::from(crate::store::codec::FORMAT));
                m.push_str("); it was left untouched: upgrade repro-line or use another state dir");
            }
            #[cfg(not(feature = "driver"))]
            Error::JournalTooNew { .. } => s("journal from a newer repro-line"),
            Error::ShutDown => s("the client has been shut down"),
            Error::Internal(why) => {
                s("internal error: ");
                s(why);
            }
        }
        m
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {
    /// As `thiserror`'s `#[from]` did: a storage error is the source of its wrapper.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Storage(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Error {
        Error::Storage(e)
    }
}

/// The stable kind of an [`Error`], the one table the bindings map errors through.
/// Its variant names (also its `Debug`) are the FFI's error variants and the conformance
/// scenarios' `error_kinds`; [`ErrorKind::as_str`] is the web's `code`. Both are interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidLineUserId,
    InvalidUserId,
    InvalidChannelId,
    InvalidIdToken,
    MissingChannelId,
    UserIdNotSet,
    InvalidConfig,
    InsecureEndpoint,
    Storage,
    StateDirInUse,
    StateDirBoundToEndpoint,
    ShutDown,
    Internal,
}

impl ErrorKind {
    /// The snake_case code, e.g. `invalid_line_user_id`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidLineUserId => "invalid_line_user_id",
            ErrorKind::InvalidUserId => "invalid_user_id",
            ErrorKind::InvalidChannelId => "invalid_channel_id",
            ErrorKind::InvalidIdToken => "invalid_id_token",
            ErrorKind::MissingChannelId => "missing_channel_id",
            ErrorKind::UserIdNotSet => "user_id_not_set",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::InsecureEndpoint => "insecure_endpoint",
            ErrorKind::Storage => "storage",
            ErrorKind::StateDirInUse => "state_dir_in_use",
            ErrorKind::StateDirBoundToEndpoint => "state_dir_bound_to_endpoint",
            ErrorKind::ShutDown => "shut_down",
            ErrorKind::Internal => "internal",
        }
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidLineUserId { .. } => ErrorKind::InvalidLineUserId,
            Error::InvalidUserId { .. } => ErrorKind::InvalidUserId,
            Error::InvalidChannelId { .. } => ErrorKind::InvalidChannelId,
            Error::InvalidIdToken { .. } => ErrorKind::InvalidIdToken,
            Error::MissingChannelId => ErrorKind::MissingChannelId,
            Error::UserIdNotSet => ErrorKind::UserIdNotSet,
            Error::InvalidConfig(_) => ErrorKind::InvalidConfig,
            Error::InsecureEndpoint(_) => ErrorKind::InsecureEndpoint,
            // The bindings report it as a storage error; its message says what to do.
            Error::Storage(_) | Error::JournalTooNew { .. } => ErrorKind::Storage,
            #[cfg(feature = "driver")]
            Error::StateDirInUse { .. } => ErrorKind::StateDirInUse,
            #[cfg(feature = "driver")]
            Error::StateDirBoundToEndpoint { .. } => ErrorKind::StateDirBoundToEndpoint,
            Error::ShutDown => ErrorKind::ShutDown,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// Store failures. The op that triggered one was not accepted; nothing accepted before is lost.
/// Its text has one writer, as [`Error`]'s (see there why not `thiserror`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageError {
    Open { path: String, message: String },
    Write(String),
    Read(String),
    Full(String),
}

impl StorageError {
    #[cfg(feature = "driver")]
    pub(crate) fn write(e: impl std::fmt::Display) -> Self {
        StorageError::Write(e.to_string())
    }

    /// The message (what `Display` shows).
    pub fn message(&self) -> String {
        let mut m = String::new();
        self.push_to(&mut m);
        m
    }

    fn push_to(&self, m: &mut String) {
        let (what, detail) = match self {
            StorageError::Open { path, message } => {
                m.push_str("cannot open store at ");
                m.push_str(path);
                (": ", message)
            }
            StorageError::Write(why) => ("cannot write to the store: ", why),
            StorageError::Read(why) => ("cannot read the store: ", why),
            StorageError::Full(why) => ("store is full: ", why),
        };
        m.push_str(what);
        m.push_str(detail);
    }
}

impl std::fmt::Display for StorageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for StorageError {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message against the `thiserror` template it had before (`format!` here is the
    /// reference), so the hand-written writer keeps native text byte-identical.
    #[test]
    fn messages_are_the_thiserror_templates() {
        let odd = "a\"b'c\\\n\u{301}\u{7f}あ";
        let cases: Vec<(Error, String)> = vec![
            (
                Error::InvalidLineUserId { value: odd.into() },
                format!("invalid LINE user ID {odd}: a LINE user ID is U followed by 32 ASCII letters or digits (33 characters)"),
            ),
            (
                Error::InvalidUserId { reason: UserIdProblem::TooLong { chars: 192 } },
                "invalid user ID: it has 192 characters; a user ID is 1 to 191 characters (Unicode scalar values) with no control characters".into(),
            ),
            (
                Error::InvalidUserId { reason: UserIdProblem::Empty },
                "invalid user ID: it is empty; a user ID is 1 to 191 characters (Unicode scalar values) with no control characters".into(),
            ),
            (
                Error::InvalidChannelId { value: odd.into() },
                format!("invalid channel ID {odd:?}: a channel ID is 1 to 64 ASCII letters or digits"),
            ),
            (
                Error::InvalidIdToken { reason: IdTokenProblem::NoSubject },
                "invalid ID token: its payload has no readable sub claim; an ID token is a compact JWT (three non-empty base64url parts separated by dots, at most 8 KiB) whose sub is a LINE user ID".into(),
            ),
            (Error::MissingChannelId, "no channel ID: pass one or set Config.default_channel_id".into()),
            (Error::UserIdNotSet, "user ID not set: call set_user_id before linking or unlinking a LINE user ID".into()),
            (Error::InvalidConfig(odd.into()), format!("invalid configuration: {odd}")),
            (
                Error::InsecureEndpoint("http://x".into()),
                "insecure endpoint http://x: the endpoint must use https unless its host is loopback (127.0.0.0/8, ::1, localhost)".into(),
            ),
            (
                Error::Storage(StorageError::Open { path: "/p".into(), message: "m".into() }),
                "storage error: cannot open store at /p: m".into(),
            ),
            (Error::Storage(StorageError::Write("w".into())), "storage error: cannot write to the store: w".into()),
            (Error::Storage(StorageError::Read("r".into())), "storage error: cannot read the store: r".into()),
            (Error::Storage(StorageError::Full("f".into())), "storage error: store is full: f".into()),
            (Error::ShutDown, "the client has been shut down".into()),
            (Error::Internal(odd.into()), format!("internal error: {odd}")),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
            assert_eq!(err.message(), want);
        }
        let storage = Error::from(StorageError::Read("r".into()));
        let source = std::error::Error::source(&storage).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("cannot read the store: r"));
    }

    #[cfg(feature = "driver")]
    #[test]
    fn native_only_messages_are_the_thiserror_templates() {
        let (dir, bound, requested) = ("/s", "https://a", "https://b");
        for (err, want) in [
            (
                Error::StateDirInUse { dir: dir.into(), pid: Some(42) },
                format!("state dir {dir} is in use by another repro-line client (pid 42); one client per state dir: stop it or use another directory"),
            ),
            (
                Error::StateDirInUse { dir: dir.into(), pid: None },
                format!("state dir {dir} is in use by another repro-line client; one client per state dir: stop it or use another directory"),
            ),
            (
                Error::StateDirBoundToEndpoint { dir: dir.into(), bound: bound.into(), requested: requested.into(), pending: 3 },
                format!("state dir {dir} holds 3 undelivered calls for endpoint {bound}; they are never sent to {requested}: deliver them with the endpoint they were made for, or use another state dir"),
            ),
            (
                Error::JournalTooNew { format: 9, record_tag: Some(200) },
                format!("the journal was written by a newer repro-line (format 9, record type 200; this version reads format {}); it was left untouched: upgrade repro-line or use another state dir", crate::store::codec::FORMAT),
            ),
            (
                Error::JournalTooNew { format: 9, record_tag: None },
                format!("the journal was written by a newer repro-line (format 9; this version reads format {}); it was left untouched: upgrade repro-line or use another state dir", crate::store::codec::FORMAT),
            ),
        ] {
            assert_eq!(err.to_string(), want);
        }
    }
}
