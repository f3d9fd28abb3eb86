//! The gateway's TOML configuration (`repro-line gateway --config FILE`); the CLI
//! overlays flags and environment variables on the top-level keys.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

use crate::GatewayError;

/// Which link ops an app accepts (docs/protocol.md v1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    /// Only `link_line_id_token`; a raw `link_line_id` is rejected with 1007.
    #[default]
    IdToken,
    /// Raw links too (for trusted server-side senders only).
    Any,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Names exported files `<gateway_id>-<sequence>.csv`; unique per gateway store.
    #[serde(default = "default_gateway_id")]
    pub gateway_id: String,
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// `sqlite://PATH` (one process) or `postgres://USER@HOST:PORT/DB` (replicas).
    #[serde(default = "default_store")]
    pub store: String,
    /// LINE API base; the JWKS is `{line_api}/oauth2/v2.1/certs`.
    #[serde(default = "default_line_api")]
    pub line_api: String,
    #[serde(default = "default_export_interval")]
    pub export_interval_secs: f64,
    #[serde(default = "default_max_rows")]
    pub max_file_rows: u64,
    #[serde(default = "default_max_bytes")]
    pub max_file_bytes: u64,
    /// IANA zone of the `<yyyy>/<mm>/<dd>` folders.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    #[serde(default = "default_grace")]
    pub id_token_grace_secs: u64,
    #[serde(default)]
    pub log_json: bool,
    /// Slowloris guards: time to send the request head, then the body.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: f64,
    #[serde(default = "default_body_timeout")]
    pub body_timeout_secs: f64,
    /// Batch requests per second per device (burst: twice that).
    #[serde(default = "default_device_rate")]
    pub device_rate: f64,
    /// Requests per second per client IP (burst: twice that).
    #[serde(default = "default_ip_rate")]
    pub ip_rate: f64,
    #[serde(default)]
    pub s3: S3Config,
    pub apps: Vec<AppConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    #[serde(default = "default_bucket")]
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Endpoint override (tests: moto on 127.0.0.1).
    #[serde(default)]
    pub endpoint: Option<String>,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            bucket: default_bucket(),
            region: default_region(),
            endpoint: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// A name for logs and metrics.
    pub name: String,
    /// SDK tokens accepted in `X-Repro-Token` (never logged). An entry `env:NAME` is read
    /// from the environment variable NAME at start, so secrets need not sit in the file.
    pub tokens: Vec<String>,
    /// The Repro app ID: the first folder of the S3 key.
    pub repro_app_id: String,
    #[serde(default)]
    pub identity: Identity,
    /// Browser origins allowed by CORS; none by default.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    pub channels: Vec<ChannelConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// Repro's LINE channel ID (Settings > LINE Settings > LINE Channel Settings).
    pub id: String,
    /// LINE Login channel IDs (the token's `aud`) allowed to link to it.
    #[serde(default)]
    pub login_channels: Vec<String>,
    /// LINE Login channel ID → channel secret, only to accept HS256 tokens.
    #[serde(default)]
    pub login_channel_secrets: HashMap<String, String>,
}

fn default_gateway_id() -> String {
    "gw1".into()
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_store() -> String {
    "sqlite://repro-line-gateway.db".into()
}
fn default_line_api() -> String {
    "https://api.line.me".into()
}
fn default_export_interval() -> f64 {
    60.0
}
fn default_max_rows() -> u64 {
    100_000
}
fn default_max_bytes() -> u64 {
    100_000_000
}
fn default_time_zone() -> String {
    "Asia/Tokyo".into()
}
fn default_grace() -> u64 {
    repro_line_idtoken::DEFAULT_GRACE_MS / 1000
}
fn default_header_timeout() -> f64 {
    10.0
}
fn default_body_timeout() -> f64 {
    30.0
}
fn default_device_rate() -> f64 {
    10.0
}
fn default_ip_rate() -> f64 {
    1000.0
}
fn default_bucket() -> String {
    repro_line_bulk::s3::DEFAULT_BUCKET.into()
}
fn default_region() -> String {
    repro_line_bulk::s3::DEFAULT_REGION.into()
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Config, GatewayError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| GatewayError::Config(format!("cannot read {}: {e}", path.display())))?;
        Config::from_toml(&text)
    }

    pub fn from_toml(text: &str) -> Result<Config, GatewayError> {
        let mut cfg: Config =
            toml::from_str(text).map_err(|e| GatewayError::Config(e.to_string()))?;
        for app in &mut cfg.apps {
            for token in &mut app.tokens {
                if let Some(var) = token.strip_prefix("env:") {
                    *token = std::env::var(var).map_err(|_| {
                        GatewayError::Config(format!(
                            "apps.{}.tokens: environment variable {var} is not set",
                            app.name
                        ))
                    })?;
                }
            }
        }
        cfg.check()?;
        Ok(cfg)
    }

    /// Every rule a setting must follow, each failure naming the key.
    pub fn check(&self) -> Result<(), GatewayError> {
        let bad = |m: String| Err(GatewayError::Config(m));
        if self.gateway_id.is_empty()
            || !self
                .gateway_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return bad("gateway_id: 1 or more ASCII letters, digits, - or _".into());
        }
        if self.store_path().is_none() {
            match self.postgres_url() {
                // Never echo a postgres URL: it may carry a password.
                Some(url) => {
                    if let Err(e) = url.parse::<postgres::Config>() {
                        return bad(format!("store: invalid postgres URL: {e}"));
                    }
                }
                None => {
                    let scheme = self.store.split("://").next().unwrap_or_default();
                    return bad(format!(
                        "store: expected sqlite://PATH or postgres://..., got scheme {scheme:?}"
                    ));
                }
            }
        }
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.export_interval_secs) {
            return bad("export_interval_secs: must be above 0".into());
        }
        if self.max_file_rows == 0 || self.max_file_bytes < 1024 {
            return bad("max_file_rows must be ≥ 1 and max_file_bytes ≥ 1024".into());
        }
        if self.max_file_bytes > repro_line_bulk::rules::MAX_FILE_BYTES {
            return bad("max_file_bytes: Repro accepts at most 500,000,000 bytes per file".into());
        }
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            return bad(format!("time_zone: unknown IANA zone {:?}", self.time_zone));
        }
        if !(positive(self.device_rate) && positive(self.ip_rate)) {
            return bad("device_rate and ip_rate: must be above 0".into());
        }
        if !(positive(self.header_timeout_secs) && positive(self.body_timeout_secs)) {
            return bad("header_timeout_secs and body_timeout_secs: must be above 0".into());
        }
        if self.apps.is_empty() {
            return bad("apps: configure at least one [[apps]]".into());
        }
        let mut seen_tokens = std::collections::HashSet::new();
        for app in &self.apps {
            let name = &app.name;
            if app.tokens.is_empty() || app.tokens.iter().any(|t| t.trim().is_empty()) {
                return bad(format!("apps.{name}.tokens: at least one non-empty token"));
            }
            if app.tokens.iter().any(|t| !seen_tokens.insert(t.clone())) {
                return bad(format!("apps.{name}.tokens: a token is used twice"));
            }
            // The same rule as the S3 key builder (`repro-line s3 key`).
            let probe = repro_line_bulk::s3::KeySpec {
                app_id: &app.repro_app_id,
                channel_id: "1",
                import_type: repro_line_bulk::s3::ImportType::Deliverable,
                date: repro_line_bulk::s3::Date::from_unix(0),
                file_name: "x.csv",
            };
            if let Err(e) = repro_line_bulk::s3::object_key(&probe) {
                return bad(format!("apps.{name}.repro_app_id: {e}"));
            }
            if app.channels.is_empty() {
                return bad(format!(
                    "apps.{name}.channels: at least one Repro LINE channel"
                ));
            }
            for ch in &app.channels {
                if let Err(e) = repro_line_core::validate::channel_id(&ch.id) {
                    return bad(format!("apps.{name}.channels.id: {e}"));
                }
                for login in ch
                    .login_channels
                    .iter()
                    .chain(ch.login_channel_secrets.keys())
                {
                    if let Err(e) = repro_line_core::validate::channel_id(login) {
                        return bad(format!("apps.{name}.channels.login_channels: {e}"));
                    }
                }
                if app.identity == Identity::IdToken && ch.login_channels.is_empty() {
                    return bad(format!(
                        "apps.{name}.channels[{}].login_channels: identity = \"id_token\" needs the LINE Login channel IDs allowed to link to this channel",
                        ch.id
                    ));
                }
            }
        }
        Ok(())
    }

    /// The connection URL of a `postgres://` (or `postgresql://`) store.
    pub fn postgres_url(&self) -> Option<&str> {
        (self.store.starts_with("postgres://") || self.store.starts_with("postgresql://"))
            .then_some(self.store.as_str())
    }

    /// The SQLite file of `sqlite://PATH`.
    pub fn store_path(&self) -> Option<&str> {
        self.store
            .strip_prefix("sqlite://")
            .filter(|p| !p.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[[apps]]
name = "shop"
tokens = ["t1"]
repro_app_id = "shopapp"
[[apps.channels]]
id = "1234567890"
login_channels = ["1650000000"]
"#;

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = Config::from_toml(MIN).unwrap();
        assert_eq!(c.time_zone, "Asia/Tokyo");
        assert_eq!(c.export_interval_secs, 60.0);
        assert_eq!((c.max_file_rows, c.max_file_bytes), (100_000, 100_000_000));
        assert_eq!(c.s3.bucket, "repro-data-store");
        assert_eq!(c.s3.region, "ap-northeast-1");
        assert_eq!(c.apps[0].identity, Identity::IdToken);
        assert!(c.apps[0].cors_origins.is_empty());
        assert_eq!(c.id_token_grace_secs, 86_400);
    }

    #[test]
    fn tokens_can_come_from_the_environment() {
        std::env::set_var("REPRO_GW_TEST_TOKEN_X", "secret-from-env");
        let c = Config::from_toml(&MIN.replace("\"t1\"", "\"env:REPRO_GW_TEST_TOKEN_X\"")).unwrap();
        assert_eq!(c.apps[0].tokens, ["secret-from-env"]);
        let err = Config::from_toml(&MIN.replace("\"t1\"", "\"env:REPRO_GW_TEST_UNSET\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("REPRO_GW_TEST_UNSET is not set"), "{err}");
    }

    #[test]
    fn bad_settings_name_their_key() {
        for (edit, key) in [
            (MIN.replace("tokens = [\"t1\"]", "tokens = []"), "tokens"),
            (
                MIN.replace("login_channels = [\"1650000000\"]", ""),
                "login_channels",
            ),
            (MIN.replace("\"1234567890\"", "\"12-34\""), "channels.id"),
            (format!("time_zone = \"Mars/Base\"\n{MIN}"), "time_zone"),
            (format!("store = \"mysql://x\"\n{MIN}"), "store"),
            (
                format!("store = \"postgres://u@h:notaport/db\"\n{MIN}"),
                "invalid postgres URL",
            ),
            (format!("bogus = 1\n{MIN}"), "bogus"),
            (MIN.replace("shopapp", "a/b"), "repro_app_id"),
        ] {
            let err = Config::from_toml(&edit).unwrap_err().to_string();
            assert!(err.contains(key), "{key}: {err}");
        }
    }
}

#[cfg(test)]
mod example {
    /// The shipped example must stay a valid configuration.
    #[test]
    fn examples_gateway_local_toml_is_valid() {
        let c =
            super::Config::from_toml(include_str!("../../examples/gateway/local.toml")).unwrap();
        assert_eq!(c.apps[0].channels[0].login_channels, ["1650000000"]);
        assert_eq!(c.s3.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
    }
}
