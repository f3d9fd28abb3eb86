//! Endpoint URL checks. Hand-written (not the `url` crate) because only the
//! scheme and host matter here and the wasm build should not carry a URL parser.

use std::net::IpAddr;

use crate::protocol::BATCH_PATH;
use crate::Error;

/// Validates `endpoint` and returns the full batch URL.
/// `https` is required unless the host is loopback (`localhost`, 127.0.0.0/8, `::1`).
pub fn batch_url(endpoint: &str) -> Result<String, Error> {
    let endpoint = endpoint.trim();
    let invalid = |why: &str| Error::InvalidConfig(format!("endpoint {endpoint:?} {why}"));
    let (scheme, rest) = endpoint
        .split_once("://")
        .ok_or_else(|| invalid("is not an absolute URL (expected https://host[:port][/path])"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(invalid("has no host, or has credentials in it"));
    }
    let host = host_of(authority);
    if host.is_empty() {
        return Err(invalid("has no host"));
    }
    if let Some(port) = port_of(authority) {
        if !port.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err(invalid("has an invalid port (a port is 1 to 65535)"));
        }
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {}
        "http" if is_loopback(host) => {}
        "http" => return Err(Error::InsecureEndpoint(endpoint.to_owned())),
        _ => return Err(invalid("must use https (or http on loopback)")),
    }
    if rest.contains(['?', '#']) {
        return Err(invalid("must not contain a query or fragment"));
    }
    Ok(format!("{}{}", endpoint.trim_end_matches('/'), BATCH_PATH))
}

fn host_of(authority: &str) -> &str {
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// The text after the host's `:`, if any (`[::1]:80` → `80`, `[::1]` → none).
fn port_of(authority: &str) -> Option<&str> {
    let after_host = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, rest)| rest),
        None => authority,
    };
    after_host.rsplit_once(':').map(|(_, p)| p)
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_on_loopback() {
        assert_eq!(
            batch_url("https://api.example.com").unwrap(),
            "https://api.example.com/v1/identity/batch"
        );
        assert_eq!(
            batch_url("https://api.example.com/base/").unwrap(),
            "https://api.example.com/base/v1/identity/batch"
        );
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9000/",
            "http://127.5.5.5",
        ] {
            assert!(batch_url(ok).is_ok(), "{ok}");
        }
        for insecure in [
            "http://api.example.com",
            "http://10.0.0.1:80",
            "http://localhost.evil.com",
        ] {
            assert!(
                matches!(batch_url(insecure), Err(Error::InsecureEndpoint(_))),
                "{insecure}"
            );
        }
        for bad in [
            "",
            "api.example.com",
            "ftp://x",
            "https://",
            "https://user:pw@host",
            "https://h?x=1",
            "https://127.0.0.1:99999",
            "http://127.0.0.1:0",
            "http://127.0.0.1:",
            "https://host:8o",
            "http://[::1]:70000",
        ] {
            assert!(
                matches!(batch_url(bad), Err(Error::InvalidConfig(_))),
                "{bad}"
            );
        }
    }
}
