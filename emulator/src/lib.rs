//! repro-line-emulator: a local ingestion endpoint speaking docs/protocol.md
//! over real HTTP, with state in SQLite and fault injection. The SDK's
//! integration tests, `repro-line demo` and `repro-line emulator` all run this
//! same server. Fault spec and admin routes: `emulator/README.md`.

mod faults;
mod http;
mod import;
mod jobs;
mod line;
mod server;
mod shared;
mod state;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::Notify;

pub use faults::{Fault, FaultSpec, FaultSpecError};
pub use state::{Device, EmulatorState, LineUser, Link, LinkStatus, RequestRecord, Stats};

#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// 0 picks a free port.
    pub port: u16,
    /// Default 127.0.0.1. Admin routes answer loopback peers only, whatever this is.
    pub bind: IpAddr,
    /// SQLite file (WAL), kept across restarts; `None` keeps the state in memory.
    pub db: Option<PathBuf>,
    /// The SDK token accepted in `X-Repro-Token`; default `test-token`.
    pub token: String,
    pub faults: FaultSpec,
    /// Origins allowed by CORS (`*` for any); empty sends no CORS headers.
    pub cors_origins: Vec<String>,
    /// Which links are accepted (protocol v1.1); default `Any`, like protocol v1.
    pub identity: Identity,
    /// Repro channel ID → the LINE Login channel IDs whose ID tokens may link to it.
    pub login_channels: HashMap<String, Vec<String>>,
    /// How long after its `exp` a token is still accepted (the SDK may queue a call offline).
    pub id_token_grace_ms: u64,
}

/// Which link ops the endpoint accepts (docs/protocol.md, v1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Identity {
    /// Raw `link_line_id` and verified `link_line_id_token`.
    #[default]
    Any,
    /// Only `link_line_id_token`; a raw link is rejected with 1007.
    IdToken,
}

impl std::str::FromStr for Identity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "any" => Ok(Identity::Any),
            "id_token" => Ok(Identity::IdToken),
            other => Err(format!(
                "identity must be \"id_token\" or \"any\", got {other:?}"
            )),
        }
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            port: 0,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            db: None,
            token: "test-token".into(),
            faults: FaultSpec::default(),
            cors_origins: Vec::new(),
            identity: Identity::Any,
            login_channels: HashMap::new(),
            id_token_grace_ms: repro_line_idtoken::DEFAULT_GRACE_MS,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the state database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("cannot start the server runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot wait for Ctrl-C: {0}")]
    Signal(std::io::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A running emulator: a tokio runtime on its own OS thread. Stops on `shutdown` or drop.
pub struct Emulator {
    shared: Arc<shared::Shared>,
    addr: SocketAddr,
    stop: Arc<Notify>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Emulator {
    /// Binds and starts serving; returns once the socket is listening
    /// (connections made after this are accepted).
    pub fn start(cfg: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        if cfg.token.trim().is_empty() {
            // An empty token would let any request without X-Repro-Token in.
            return Err(EmulatorError::Config(
                "the SDK token must not be empty".into(),
            ));
        }
        let want = SocketAddr::new(cfg.bind, cfg.port);
        let bind_err = |source| EmulatorError::Bind { addr: want, source };
        let db = state::Db::open(cfg.db.as_deref())?;
        let minter = repro_line_idtoken::mint::Minter::generate("emulator-1")
            .map_err(|e| EmulatorError::Config(e.to_string()))?;
        let listener = std::net::TcpListener::bind(want).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        // Built here, not on the thread, so a failure is returned to the caller.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(EmulatorError::Runtime)?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(bind_err)?
        };
        let shared = Arc::new(shared::Shared {
            inner: Mutex::new(shared::Inner {
                db,
                stats: Stats::default(),
                log: VecDeque::new(),
                injector: faults::Injector::new(cfg.faults),
                token: cfg.token,
                not_before: HashMap::new(),
                line: Default::default(),
                imports: Default::default(),
                identity: shared::IdentitySetup {
                    mode: cfg.identity,
                    login_channels: cfg.login_channels,
                    grace_ms: cfg.id_token_grace_ms,
                    keys: minter.jwks(),
                    minter,
                },
            }),
            cors_origins: cfg.cors_origins,
        });
        let stop = Arc::new(Notify::new());
        let (thread_shared, thread_stop) = (Arc::clone(&shared), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("repro-line-emulator".into())
            .spawn(move || {
                runtime.block_on(server::serve(listener, thread_shared, thread_stop));
                // Dropping the runtime cancels every connection task, in-flight or delayed.
            })
            .map_err(EmulatorError::Runtime)?;
        tracing::info!(%addr, db = ?cfg.db, "emulator listening");
        Ok(Emulator {
            shared,
            addr,
            stop,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Devices, users, links and imported LINE users, sorted. Empty if the database cannot be read (logged).
    pub fn state(&self) -> EmulatorState {
        match self.shared.lock().db.state() {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the emulator state");
                EmulatorState::default()
            }
        }
    }

    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }

    /// Every batch request, oldest first (the oldest are dropped beyond 200 000).
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().log.iter().cloned().collect()
    }

    /// Replaces the fault spec; its script starts from its first entry.
    pub fn set_faults(&self, f: FaultSpec) {
        self.shared.lock().injector = faults::Injector::new(f);
    }

    /// The token accepted from now on (requests with the old one get 401).
    pub fn set_token(&self, t: &str) {
        self.shared.lock().token = t.to_owned();
    }

    /// Which link ops are accepted from now on.
    pub fn set_identity(&self, mode: Identity) {
        self.shared.lock().identity.mode = mode;
    }

    /// Replaces the map Repro channel ID → allowed LINE Login channel IDs.
    pub fn set_login_channels(&self, map: HashMap<String, Vec<String>>) {
        self.shared.lock().identity.login_channels = map;
    }

    /// An ES256 ID token signed with the emulator's key (served at `/oauth2/v2.1/certs`),
    /// as LINE would issue it to `line_user_id` for LINE Login channel `login_channel_id`.
    pub fn mint_id_token(
        &self,
        line_user_id: &str,
        login_channel_id: &str,
        exp_secs: u64,
    ) -> String {
        self.shared
            .lock()
            .identity
            .minter
            .mint(line_user_id, login_channel_id, exp_secs)
    }

    /// Any claims JSON signed ES256 with the emulator's key (tests build tokens that are
    /// validly signed but wrong, e.g. another `iss`).
    pub fn sign_id_token_claims(&self, claims_json: &str) -> String {
        let inner = self.shared.lock();
        let minter = &inner.identity.minter;
        let header = serde_json::json!({"alg": "ES256", "kid": minter.kid(), "typ": "JWT"});
        minter.sign_raw(&header.to_string(), claims_json)
    }

    /// The emulator's JWKS, as `/oauth2/v2.1/certs` serves it.
    pub fn jwks(&self) -> repro_line_idtoken::Jwks {
        self.shared.lock().identity.keys.clone()
    }

    /// Follower IDs that `GET /v2/bot/followers/ids` serves to `Authorization: Bearer <channel_token>`;
    /// `rate_limit_every` > 0 answers 429 to every Nth follower request.
    pub fn set_line_followers(
        &self,
        channel_token: &str,
        user_ids: Vec<String>,
        rate_limit_every: u32,
    ) {
        self.shared.lock().line.set(line::FollowersSetup {
            channel_token: channel_token.to_owned(),
            user_ids,
            rate_limit_every,
            retry_after: None,
        });
    }

    /// `Retry-After` seconds sent with the follower endpoint's 429s (`None`: no header,
    /// as LINE does). `set_line_followers` turns it off again.
    pub fn set_line_retry_after(&self, secs: Option<u32>) {
        self.shared.lock().line.set_retry_after(secs);
    }

    /// Forgets all state (imported LINE users and import jobs too), counters, the
    /// request log and pending Retry-After deadlines; keeps the token, the fault
    /// spec and the LINE followers.
    pub fn reset(&self) {
        if let Err(e) = self.shared.reset() {
            tracing::error!(error = %e, "emulator reset failed");
        }
    }

    /// Stops accepting, drops open connections and waits for the server thread
    /// (and for an import job still running, so that it ends whole).
    pub fn shutdown(self) {
        self.stop_thread();
    }

    fn stop_thread(&self) {
        // notify_one keeps a permit if the accept loop is not waiting right now.
        self.stop.notify_one();
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// For the CLI: serves until Ctrl-C (SIGINT), then shuts down. Prints nothing itself.
pub fn run_blocking(cfg: EmulatorConfig) -> Result<(), EmulatorError> {
    let emulator = Emulator::start(cfg)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(EmulatorError::Runtime)?;
    let waited = runtime.block_on(tokio::signal::ctrl_c());
    emulator.shutdown();
    waited.map_err(EmulatorError::Signal)
}
