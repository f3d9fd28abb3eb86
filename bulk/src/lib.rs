//! repro-line-bulk: the bulk paths into Repro's LINE user import.
//!
//! - [`validate`]: a streaming, multi-core validator for the import CSVs
//!   (`line_user_id,user_id` or `line_user_id`), with exact line numbers;
//! - [`fix`]: strips the BOM, normalises line endings, drops exact duplicates,
//!   rejects bad rows to a side file, splits under the 500 MB limit;
//! - [`s3`]: the auto-import object key and the upload;
//! - [`followers`]: pages through the LINE follower IDs;
//! - [`reconcile`]: users × followers → deliverable / blocked lists.

pub mod convert;
pub mod fix;
pub mod followers;
pub mod outputs;
pub mod reconcile;
pub mod rules;
pub mod s3;
pub mod scan;
pub mod validate;

use std::path::PathBuf;

pub use rules::{Column, Finding, Rule, Severity};
pub use scan::{Ending, Format, FormatChoice, IdKey};
pub use validate::{validate_file, validate_reader, Report, ValidateOptions};

/// Everything that can stop a bulk command. Each variant says what broke.
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
