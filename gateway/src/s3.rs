//! The one adapter over repro-line-bulk's S3 code (the code behind `repro-line s3 upload`),
//! so a change of bulk's S3 API touches only this file. Blocking: call from a blocking thread.

use std::path::Path;
use std::time::Duration;

use crate::config::S3Config;

/// Uploads `path` to `key` in the configured bucket; credentials come from the usual
/// AWS environment variables or profile, as for `repro-line s3 upload`.
pub fn upload(path: &Path, key: &str, cfg: &S3Config) -> Result<(), String> {
    let opts = repro_line_bulk::s3::UploadOptions {
        bucket: cfg.bucket.clone(),
        endpoint_url: cfg.endpoint.clone(),
        region: Some(cfg.region.clone()),
        ..repro_line_bulk::s3::UploadOptions::default()
    };
    repro_line_bulk::s3::upload_file(path, key, &opts, &mut |_, _| {})
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The S3 endpoint the gateway talks to.
pub fn endpoint(cfg: &S3Config) -> String {
    cfg.endpoint
        .clone()
        .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", cfg.region))
}

/// Reachability for `/readyz`: any HTTP answer from the endpoint counts.
pub async fn probe(client: &reqwest::Client, cfg: &S3Config) -> Result<(), String> {
    client
        .head(endpoint(cfg))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("S3 endpoint {} unreachable: {e}", endpoint(cfg)))
}
