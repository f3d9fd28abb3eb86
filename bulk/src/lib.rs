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
pub mod reconcile;
pub mod s3;

// The CSV rules live in `repro-line-csv` (no network stack); re-exported so every path stays.
pub use repro_line_csv::{outputs, rules, scan, validate, Error};
pub use repro_line_csv::{validate_file, validate_reader, Report, ValidateOptions};
pub use repro_line_csv::{Column, Ending, Finding, Format, FormatChoice, IdKey, Rule, Severity};
