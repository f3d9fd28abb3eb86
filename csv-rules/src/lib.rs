//! repro-line-csv: the rules of Repro's LINE user import CSVs
//! (`line_user_id,user_id` or `line_user_id`), with no network code, so the
//! emulator's import check, the bulk tools and the gateway share them.
//!
//! - [`rules`]: the rules, their findings and the errors CSV;
//! - [`scan`]: the streaming record scanner (BOM, header, quoting, line endings);
//! - [`validate`]: the streaming, multi-core validator, with exact line numbers;
//! - [`outputs`]: outputs that never overwrite inputs, written atomically.

pub mod outputs;
pub mod rules;
pub mod scan;
pub mod validate;

pub use rules::{Column, Finding, Rule, Severity};
pub use scan::{Ending, Format, FormatChoice, IdKey};
pub use validate::{validate_file, validate_reader, Report, ValidateOptions};

use std::path::PathBuf;

/// Everything that can stop a bulk command (this crate's and `repro-line-bulk`'s, one type
/// so the CLI maps them once). Each variant says what broke.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {reason}")]
    Input { path: PathBuf, reason: String },
    #[error("{path} is not valid ({errors} errors); fix it first (`repro-line csv validate {path}` lists them) or pass --force")]
    Invalid { path: PathBuf, errors: u64 },
    #[error("S3 upload failed: {0}")]
    S3(String),
    #[error("LINE API: {0}")]
    Line(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The process exit code: 1 when the input itself is invalid, 2 when a
    /// file or the network could not be used or an argument is wrong.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input { .. } | Error::Invalid { .. } => 1,
            _ => 2,
        }
    }
}
