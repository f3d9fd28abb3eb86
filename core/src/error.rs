use crate::validate::{IdTokenProblem, UserIdProblem};

/// Every failure the public API can return. Messages state the rule that was broken.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid LINE user ID {value}: a LINE user ID is U followed by 32 ASCII letters or digits (33 characters)")]
    InvalidLineUserId { value: String },
    #[error("invalid user ID: {reason}; a user ID is 1 to 191 characters (Unicode scalar values) with no control characters")]
    InvalidUserId { reason: UserIdProblem },
    #[error("invalid channel ID {value:?}: a channel ID is 1 to 64 ASCII letters or digits")]
    InvalidChannelId { value: String },
    /// Never carries the token: it is a secret.
    #[error("invalid ID token: {reason}; an ID token is a compact JWT (three non-empty base64url parts separated by dots, at most 8 KiB) whose sub is a LINE user ID")]
    InvalidIdToken { reason: IdTokenProblem },
    #[error("no channel ID: pass one or set Config.default_channel_id")]
    MissingChannelId,
    #[error("user ID not set: call set_user_id before linking or unlinking a LINE user ID")]
    UserIdNotSet,
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("insecure endpoint {0}: the endpoint must use https unless its host is loopback (127.0.0.0/8, ::1, localhost)")]
    InsecureEndpoint(String),
    #[error("storage error: {0}")]
    Storage(#[from] StorageError),
    /// Another client (this process or another) holds the state directory's lock.
    /// Native only (the web build keeps these messages out of its size budget).
    #[cfg(feature = "driver")]
    #[error("state dir {dir} is in use by another repro-line client{}; one client per state dir: stop it or use another directory", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    StateDirInUse { dir: String, pid: Option<u32> },
    /// The state directory holds undelivered calls for another endpoint; they are never sent elsewhere.
    #[cfg(feature = "driver")]
    #[error("state dir {dir} holds {pending} undelivered calls for endpoint {bound}; they are never sent to {requested}: deliver them with the endpoint they were made for, or use another state dir")]
    StateDirBoundToEndpoint {
        dir: String,
        bound: String,
        requested: String,
        pending: usize,
    },
    /// The journal was written by a newer repro-line (a newer format, or a record type this
    /// version does not know). It is left untouched, so nothing in it is lost.
    /// The web build's message is short (its size budget); the fields say the same.
    #[cfg_attr(feature = "driver", error("the journal was written by a newer repro-line (format {format}{}; this version reads format {}); it was left untouched: upgrade repro-line or use another state dir", record_tag.map(|t| format!(", record type {t}")).unwrap_or_default(), crate::store::codec::FORMAT))]
    #[cfg_attr(not(feature = "driver"), error("journal from a newer repro-line"))]
    JournalTooNew { format: u8, record_tag: Option<u8> },
    #[error("the client has been shut down")]
    ShutDown,
    #[error("internal error: {0}")]
    Internal(String),
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
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageError {
    #[error("cannot open store at {path}: {message}")]
    Open { path: String, message: String },
    #[error("cannot write to the store: {0}")]
    Write(String),
    #[error("cannot read the store: {0}")]
    Read(String),
    #[error("store is full: {0}")]
    Full(String),
}

impl StorageError {
    #[cfg(feature = "driver")]
    pub(crate) fn write(e: impl std::fmt::Display) -> Self {
        StorageError::Write(e.to_string())
    }
}
