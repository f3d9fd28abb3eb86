//! `repro-line gateway --config FILE`: runs repro-line-gateway until SIGTERM/Ctrl-C.
//! The TOML file holds every setting; these flags (or their env vars) override the
//! top-level ones.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use repro_line_gateway::{Config, Gateway, ShutdownSignal};

#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    /// The TOML configuration (see examples/gateway/local.toml).
    #[arg(long, env = "REPRO_GATEWAY_CONFIG")]
    config: PathBuf,
    /// Address to listen on (`listen`).
    #[arg(long, env = "REPRO_GATEWAY_LISTEN")]
    listen: Option<SocketAddr>,
    /// `sqlite://PATH` (the default, one process) or `postgres://…` (replicas) (`store`).
    #[arg(long, env = "REPRO_GATEWAY_STORE")]
    store: Option<String>,
    /// Names export files `<gateway-id>-<sequence>.csv` (`gateway_id`).
    #[arg(long, env = "REPRO_GATEWAY_ID")]
    gateway_id: Option<String>,
    /// LINE API base URL; the JWKS is `{line_api}/oauth2/v2.1/certs` (`line_api`).
    #[arg(long, env = "REPRO_GATEWAY_LINE_API")]
    line_api: Option<String>,
    /// Seconds between exports (`export_interval_secs`).
    #[arg(long, env = "REPRO_GATEWAY_EXPORT_INTERVAL_SECS")]
    export_interval_secs: Option<f64>,
    /// IANA zone of the S3 date folders (`time_zone`).
    #[arg(long, env = "REPRO_GATEWAY_TIME_ZONE")]
    time_zone: Option<String>,
    /// S3 bucket (`s3.bucket`).
    #[arg(long, env = "REPRO_GATEWAY_S3_BUCKET")]
    s3_bucket: Option<String>,
    /// S3 region (`s3.region`).
    #[arg(long, env = "REPRO_GATEWAY_S3_REGION")]
    s3_region: Option<String>,
    /// S3 endpoint override, e.g. a local moto (`s3.endpoint`).
    #[arg(long, env = "REPRO_GATEWAY_S3_ENDPOINT")]
    s3_endpoint: Option<String>,
    /// Log one JSON object per line (`log_json`).
    #[arg(long, env = "REPRO_GATEWAY_LOG_JSON")]
    log_json: bool,
}

impl GatewayArgs {
    /// `--log-json`, or `log_json = true` in the file (read before logging starts).
    pub fn json_logs(&self) -> bool {
        self.log_json || Config::from_file(&self.config).is_ok_and(|c| c.log_json)
    }
}

fn config(args: GatewayArgs) -> Result<Config, repro_line_gateway::GatewayError> {
    let mut c = Config::from_file(&args.config)?;
    if let Some(v) = args.listen {
        c.listen = v;
    }
    if let Some(v) = args.store {
        c.store = v;
    }
    if let Some(v) = args.gateway_id {
        c.gateway_id = v;
    }
    if let Some(v) = args.line_api {
        c.line_api = v;
    }
    if let Some(v) = args.export_interval_secs {
        c.export_interval_secs = v;
    }
    if let Some(v) = args.time_zone {
        c.time_zone = v;
    }
    if let Some(v) = args.s3_bucket {
        c.s3.bucket = v;
    }
    if let Some(v) = args.s3_region {
        c.s3.region = v;
    }
    if let Some(v) = args.s3_endpoint {
        c.s3.endpoint = Some(v);
    }
    c.check()?;
    Ok(c)
}

/// Exit codes: 0 after a graceful stop (SIGTERM or Ctrl-C), 2 when the gateway cannot start.
pub fn run(args: GatewayArgs) -> i32 {
    let started =
        ShutdownSignal::install().and_then(|signal| Ok((signal, Gateway::start(config(args)?)?)));
    let (signal, gateway) = match started {
        Ok(s) => s,
        Err(e) => {
            eprintln!("repro-line gateway: {e}");
            return 2;
        }
    };
    println!("listening on {}", gateway.url());
    let _ = std::io::stdout().flush();
    signal.wait();
    gateway.shutdown();
    0
}
