//! repro-line-core: registers LINE User IDs with Repro — validation, a durable
//! queue, a sans-IO delivery engine, the retry policy and the wire protocol.
//! The native driver (feature `native`) runs the engine on one background thread.

pub mod endpoint;
pub mod engine;
pub mod error;
pub mod model;
pub mod net;
pub mod policy;
pub mod protocol;
pub mod redact;
pub mod retry;
pub mod session;
pub mod store;
pub mod text;
pub mod validate;
pub mod wire;

pub use engine::{DeliveryReport, DeliveryState, DeliveryStatus, DropReason, EngineConfig, Event};
pub use error::{Error, ErrorKind, StorageError};
pub use policy::Policy;
pub use retry::PauseReason;
pub use session::{Call, RecoveryReport, Session};
pub use store::{MemoryStore, Store};

#[cfg(feature = "driver")]
pub mod native;
#[cfg(feature = "driver")]
pub use native::{
    Client, Config, DeliveryListener, FlushOutcome, HttpRequest, HttpTransport, Storage,
};
