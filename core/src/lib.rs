//! repro-line-core: registers LINE User IDs with Repro — validation, a durable
//! queue, a sans-IO delivery engine, the retry policy and the wire protocol.
//! The native driver (feature `native`) runs the engine on one background thread.

pub mod error;
pub mod protocol;
pub mod redact;
pub mod validate;

pub use error::{Error, StorageError};
