//! The SDK facade's state, once for Kotlin and Swift: calls made before `setup` are
//! validated at once, kept in call order (up to [`MAX_BUFFERED_CALLS`]) and replayed by
//! `setup`; afterwards every call goes straight to the client. The wrappers keep only
//! naming and platform glue (storage dir, transport, threads).

use std::sync::{Arc, Mutex, RwLock};

use repro_line_core as rl;

use crate::ReproLineError;
use crate::{guarded, DeliveryListener, FlushOutcome, HttpTransport, ReproLine, ReproLineConfig};

/// Calls kept before `setup`. (To follow `core::policy::Policy` once it has the value.)
pub const MAX_BUFFERED_CALLS: usize = 1_000;

/// A call made before setup, validated, waiting for a client.
enum Buffered {
    SetUserId(String),
    Link(String, Option<String>),
    Unlink(String, Option<String>),
    LinkIdToken(String, Option<String>),
    OptIn(bool),
}

impl Buffered {
    /// The checks the client would make now (the user-ID-set check waits for the replay).
    fn validate(&self) -> Result<(), rl::Error> {
        let channel = |c: &Option<String>| c.as_deref().map_or(Ok(()), rl::validate::channel_id);
        match self {
            Buffered::SetUserId(u) => rl::validate::user_id(u),
            Buffered::Link(l, c) | Buffered::Unlink(l, c) => {
                rl::validate::line_user_id(l).and_then(|()| channel(c))
            }
            Buffered::LinkIdToken(t, c) => rl::validate::id_token(t).and_then(|_| channel(c)),
            Buffered::OptIn(_) => Ok(()),
        }
    }

    fn apply(self, c: &ReproLine) -> Result<(), ReproLineError> {
        match self {
            Buffered::SetUserId(u) => c.set_user_id(u),
            Buffered::Link(l, ch) => c.set_line_user_id(l, ch),
            Buffered::Unlink(l, ch) => c.unlink_line_user_id(l, ch),
            Buffered::LinkIdToken(t, ch) => c.link_line_id_token(t, ch),
            Buffered::OptIn(v) => c.set_opted_in(v),
        }
    }
}

/// A buffered call the client refused at replay: `kind` is the `ReproLineError` variant name
/// (e.g. `UserIdNotSet` for a link made before any user ID was set), `message` its rule.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ReplayFailure {
    pub kind: String,
    pub message: String,
}

impl From<ReproLineError> for ReplayFailure {
    fn from(e: ReproLineError) -> Self {
        let kind = match &e {
            ReproLineError::InvalidLineUserId(_) => "InvalidLineUserId",
            ReproLineError::InvalidUserId(_) => "InvalidUserId",
            ReproLineError::InvalidChannelId(_) => "InvalidChannelId",
            ReproLineError::MissingChannelId(_) => "MissingChannelId",
            ReproLineError::UserIdNotSet(_) => "UserIdNotSet",
            ReproLineError::InvalidIdToken(_) => "InvalidIdToken",
            ReproLineError::InvalidConfig(_) => "InvalidConfig",
            ReproLineError::InsecureEndpoint(_) => "InsecureEndpoint",
            ReproLineError::Storage(_) => "Storage",
            ReproLineError::ShutDown(_) => "ShutDown",
            ReproLineError::Internal(_) => "Internal",
            ReproLineError::StateDirInUse(_) => "StateDirInUse",
            ReproLineError::StateDirBoundToEndpoint(_) => "StateDirBoundToEndpoint",
        };
        ReplayFailure {
            kind: kind.to_owned(),
            message: e.to_string(),
        }
    }
}

/// The facade's state: a client once set up, the pre-setup buffer before.
#[derive(uniffi::Object, Default)]
pub struct ReproLineSdk {
    /// Read on every call (uncontended); written by `setup` and `close` only.
    client: RwLock<Option<Arc<ReproLine>>>,
    /// Taken by a call only while no client is set, and by `setup` for the whole replay,
    /// so a call racing `setup` is either replayed in order or sent after the replay.
    buffered: Mutex<Vec<Buffered>>,
}

#[uniffi::export]
impl ReproLineSdk {
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(ReproLineSdk::default())
    }

    /// Opens the client (see [`ReproLine::new`]), registers `listener`, then replays the calls
    /// made before setup; returns those the client refused. Fails with `InvalidConfig` when
    /// already set up. On failure the buffered calls are kept.
    pub fn setup(
        &self,
        config: ReproLineConfig,
        transport: Arc<dyn HttpTransport>,
        listener: Arc<dyn DeliveryListener>,
    ) -> Result<Vec<ReplayFailure>, ReproLineError> {
        guarded(|| {
            let mut buffered = self.buffered.lock().unwrap_or_else(|e| e.into_inner());
            if self.current().is_some() {
                return Err(ReproLineError::InvalidConfig(
                    "invalid configuration: ReproLine.setup was already called".into(),
                ));
            }
            let client = ReproLine::new(config, transport)?;
            client.set_delivery_listener(listener)?;
            let failures = buffered
                .drain(..)
                .filter_map(|call| call.apply(&client).err().map(ReplayFailure::from))
                .collect();
            *self.client.write().unwrap_or_else(|e| e.into_inner()) = Some(client);
            Ok(failures)
        })
    }

    pub fn is_set_up(&self) -> bool {
        self.current().is_some()
    }

    /// The client once set up, for everything but the five calls (flush, token, …).
    pub fn client(&self) -> Option<Arc<ReproLine>> {
        self.current()
    }

    /// Detaches the client and shuts it down (flushing up to `timeout_ms`); `setup` may be
    /// called again. `None` when not set up.
    pub fn close(&self, timeout_ms: u64) -> Option<FlushOutcome> {
        let client = self
            .client
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        client.shutdown(timeout_ms).ok()
    }

    /// `setUserID`.
    pub fn set_user_id(&self, user_id: String) -> Result<(), ReproLineError> {
        self.submit(Buffered::SetUserId(user_id))
    }

    /// `linkLineID`; `channel_id` `None` uses the default channel.
    pub fn link_line_id(
        &self,
        line_user_id: String,
        channel_id: Option<String>,
    ) -> Result<(), ReproLineError> {
        self.submit(Buffered::Link(line_user_id, channel_id))
    }

    /// `linkLineIDToken`.
    pub fn link_line_id_token(
        &self,
        id_token: String,
        channel_id: Option<String>,
    ) -> Result<(), ReproLineError> {
        self.submit(Buffered::LinkIdToken(id_token, channel_id))
    }

    /// `unlinkLineID`.
    pub fn unlink_line_id(
        &self,
        line_user_id: String,
        channel_id: Option<String>,
    ) -> Result<(), ReproLineError> {
        self.submit(Buffered::Unlink(line_user_id, channel_id))
    }

    /// `optIn`.
    pub fn opt_in(&self, opted_in: bool) -> Result<(), ReproLineError> {
        self.submit(Buffered::OptIn(opted_in))
    }

    /// The stored user ID once set up, else the last one set before setup.
    pub fn user_id(&self) -> Result<Option<String>, ReproLineError> {
        if let Some(c) = self.current() {
            return c.user_id();
        }
        Ok(self.with_buffer(|b| {
            b.iter().rev().find_map(|call| match call {
                Buffered::SetUserId(u) => Some(u.clone()),
                _ => None,
            })
        }))
    }

    /// `None` before setup.
    pub fn device_id(&self) -> Result<Option<String>, ReproLineError> {
        self.current().map(|c| c.device_id()).transpose()
    }

    /// Once set up, the client's; before, the last buffered `optIn`, else `true`.
    pub fn opted_in(&self) -> Result<bool, ReproLineError> {
        if let Some(c) = self.current() {
            return c.opted_in();
        }
        Ok(self.with_buffer(|b| {
            b.iter()
                .rev()
                .find_map(|call| match call {
                    Buffered::OptIn(v) => Some(*v),
                    _ => None,
                })
                .unwrap_or(true)
        }))
    }

    /// Calls accepted and not yet reported, including those buffered before setup.
    pub fn pending_ops(&self) -> Result<u64, ReproLineError> {
        match self.current() {
            Some(c) => c.pending_ops(),
            None => Ok(self.with_buffer(|b| b.len() as u64)),
        }
    }
}

impl ReproLineSdk {
    fn current(&self) -> Option<Arc<ReproLine>> {
        self.client
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn with_buffer<T>(&self, f: impl FnOnce(&Vec<Buffered>) -> T) -> T {
        f(&self.buffered.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn submit(&self, call: Buffered) -> Result<(), ReproLineError> {
        guarded(|| {
            {
                // The common path: set up. The read guard is held for the call (no Arc clone).
                let client = self.client.read().unwrap_or_else(|e| e.into_inner());
                if let Some(c) = client.as_ref() {
                    return call.apply(c);
                }
            }
            let mut buffered = self.buffered.lock().unwrap_or_else(|e| e.into_inner());
            // `setup` may have finished while this call waited for the buffer.
            if let Some(c) = self.current() {
                drop(buffered);
                return call.apply(&c);
            }
            call.validate()?;
            if buffered.len() >= MAX_BUFFERED_CALLS {
                return Err(ReproLineError::Storage(format!(
                    "storage error: {MAX_BUFFERED_CALLS} calls are waiting for ReproLine.setup; call setup first"
                )));
            }
            buffered.push(call);
            Ok(())
        })
    }
}

/// [`MAX_BUFFERED_CALLS`], for the wrappers' documentation constants.
#[uniffi::export]
pub fn max_buffered_calls() -> u32 {
    MAX_BUFFERED_CALLS as u32
}
