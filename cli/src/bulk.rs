//! Bulk tools (CSV import validation, S3 auto-import, LINE followers, reconcile).
//! Only wiring lives here; the logic is in `repro-line-bulk`.

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BulkCommand {}

pub fn run(cmd: BulkCommand) -> i32 {
    match cmd {}
}
