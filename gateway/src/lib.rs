//! repro-line-gateway: the production endpoint of docs/protocol.md. It takes the SDKs'
//! batches, verifies LINE ID tokens, commits links to its store (SQLite in WAL, or
//! PostgreSQL shared by replicas) and exports them as Format 1 files to Repro's S3
//! auto-import. Started by `repro-line gateway --config FILE`; see README "Deploy the gateway".

mod backend;
pub mod config;
pub mod export;
mod limits;
mod metrics;
mod ops;
pub mod pg;
mod s3;
mod server;
pub mod stopwatch;
pub mod store;
mod writer;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Notify;
use uuid::Uuid;

pub use config::{AppConfig, ChannelConfig, Config, Identity, S3Config};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot open the store: {0}")]
    Store(#[from] backend::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the server runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot wait for a shutdown signal: {0}")]
    Signal(std::io::Error),
}

/// Everything the connection tasks and the exporter share.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) time_zone: jiff::tz::TimeZone,
    pub(crate) store: backend::Backend,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) keys: ops::LineKeys,
    pub(crate) client: reqwest::Client,
    pub(crate) device_limits: Mutex<limits::RateLimiter<(usize, Uuid)>>,
    pub(crate) ip_limits: Mutex<limits::RateLimiter<IpAddr>>,
    /// Every app's allowed origins (a preflight carries no token).
    pub(crate) cors_origins: Vec<String>,
    /// Why the last export pass failed; `None` once one succeeds.
    pub(crate) export_error: Mutex<Option<String>>,
    pub(crate) in_flight: AtomicUsize,
    pub(crate) idle: Notify,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Background threads (export passes, WAL checkpoints) run at this nice value: on a busy
/// machine they yield the CPU to the request path (tokio workers, the SQLite writer).
const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread's CPU priority (Linux: nice applies per thread). Best effort.
pub(crate) fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on the calling thread's own id; no memory is shared.
        let rc = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, BACKGROUND_NICE)
        };
        if rc != 0 {
            tracing::debug!("cannot lower a background thread's priority");
        }
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A running gateway: a tokio runtime on its own thread. `shutdown` is graceful.
pub struct Gateway {
    addr: SocketAddr,
    stop: Arc<Notify>,
    thread: Option<JoinHandle<()>>,
}

impl Gateway {
    /// Opens the store, binds and starts serving and exporting.
    pub fn start(config: Config) -> Result<Gateway, GatewayError> {
        config.check()?;
        let time_zone = jiff::tz::TimeZone::get(&config.time_zone)
            .map_err(|e| GatewayError::Config(format!("time_zone: {e}")))?;
        let store = match (config.store_path(), config.postgres_url()) {
            (Some(path), _) => backend::Backend::Sqlite(Box::new(writer::SqliteStore::open(
                std::path::Path::new(path),
            )?)),
            (None, Some(url)) => backend::Backend::Postgres(Box::new(
                pg::PgStore::open(url).map_err(backend::StoreError::from)?,
            )),
            (None, None) => {
                return Err(GatewayError::Config(
                    "store: expected sqlite://PATH or postgres://...".into(),
                ))
            }
        };
        let bind_err = |source| GatewayError::Bind {
            addr: config.listen,
            source,
        };
        let listener = std::net::TcpListener::bind(config.listen).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(GatewayError::Runtime)?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(bind_err)?
        };
        // reqwest is built with rustls but no default provider: install ring's.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| GatewayError::Runtime(std::io::Error::other(e.to_string())))?;
        let mut cors_origins: Vec<String> = config
            .apps
            .iter()
            .flat_map(|a| a.cors_origins.iter().cloned())
            .collect();
        cors_origins.sort();
        cors_origins.dedup();
        let shared = Arc::new(Shared {
            keys: ops::LineKeys::new(&config.line_api),
            device_limits: Mutex::new(limits::RateLimiter::new(config.device_rate)),
            ip_limits: Mutex::new(limits::RateLimiter::new(config.ip_rate)),
            config,
            time_zone,
            store,
            metrics: metrics::Metrics::default(),
            client,
            cors_origins,
            export_error: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
        });
        let stop = Arc::new(Notify::new());
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("repro-line-gateway".into())
            .spawn(move || {
                let last = Arc::clone(&shared);
                runtime.block_on(run(listener, shared, thread_stop));
                // The postgres client blocks on its own runtime when dropped: drop the
                // store after this runtime is gone, never inside it.
                drop(runtime);
                drop(last);
            })
            .map_err(GatewayError::Runtime)?;
        tracing::info!(%addr, "gateway listening");
        Ok(Gateway {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://IP:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, finishes in-flight requests, runs a final export, then returns.
    pub fn shutdown(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.stop.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

async fn run(listener: tokio::net::TcpListener, shared: Arc<Shared>, stop: Arc<Notify>) {
    let exporter_stop = Arc::new(Notify::new());
    let exporter = tokio::spawn(export_loop(Arc::clone(&shared), Arc::clone(&exporter_stop)));
    server::serve(listener, Arc::clone(&shared), stop).await;
    // Graceful: wait (bounded) for in-flight requests, then a final export.
    let drained = async {
        while shared.in_flight.load(Ordering::SeqCst) > 0 {
            let idle = shared.idle.notified();
            if shared.in_flight.load(Ordering::SeqCst) == 0 {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(100), idle).await;
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), drained)
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests still running after 30 s; exporting anyway");
    }
    exporter_stop.notify_one();
    let _ = exporter.await;
    tracing::info!("gateway stopped");
}

/// Exports every interval; once more when stopped (the final export).
async fn export_loop(shared: Arc<Shared>, stop: Arc<Notify>) {
    let every = Duration::from_secs_f64(shared.config.export_interval_secs);
    loop {
        let stopping = tokio::select! {
            _ = tokio::time::sleep(every) => false,
            _ = stop.notified() => true,
        };
        let pass = Arc::clone(&shared);
        // Its own thread at a lower priority (a blocking-pool thread would keep the nice
        // value for later, unrelated work): rendering and validating a file is CPU work
        // that must not delay requests.
        let (done, result) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("gateway-export".into())
            .spawn(move || {
                lower_thread_priority();
                let _ = done.send(export::run_once(&pass));
            });
        let outcome = match spawned {
            Ok(_) => result
                .await
                .unwrap_or_else(|_| Err("export thread failed".into())),
            Err(e) => Err(format!("cannot start the export thread: {e}")),
        };
        match &outcome {
            Ok(0) => {}
            Ok(n) => tracing::info!(files = n, "export pass uploaded files"),
            Err(e) => tracing::warn!(error = %e, "export pass failed; rows stay pending"),
        }
        *lock(&shared.export_error) = outcome.err();
        if stopping {
            return;
        }
    }
}

/// SIGTERM / SIGINT, listened for from `install` on: install it before announcing the
/// server, so a signal sent right after the announcement stops it gracefully (not by default action).
pub struct ShutdownSignal {
    runtime: tokio::runtime::Runtime,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    pub fn install() -> Result<ShutdownSignal, GatewayError> {
        use tokio::signal::unix::{signal, SignalKind};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(GatewayError::Runtime)?;
        let (term, int) = {
            let _guard = runtime.enter();
            (
                signal(SignalKind::terminate()).map_err(GatewayError::Signal)?,
                signal(SignalKind::interrupt()).map_err(GatewayError::Signal)?,
            )
        };
        Ok(ShutdownSignal { runtime, term, int })
    }

    /// Blocks until SIGTERM or SIGINT.
    pub fn wait(mut self) {
        let (term, int) = (&mut self.term, &mut self.int);
        self.runtime.block_on(async {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        });
    }
}
