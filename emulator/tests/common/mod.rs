//! Shared helpers: a blocking facade over reqwest and op builders.
#![allow(dead_code)]

use std::time::Duration;

use repro_line_core::protocol::{BatchRequest, OpKind, WireOp};
use repro_line_emulator::{Emulator, EmulatorConfig};
use uuid::Uuid;

pub const TOKEN: &str = "test-token";
pub const LINE_A: &str = "U4af4980629a1b2c3d4e5f60718293a4b";
pub const LINE_B: &str = "U00000000000000000000000000000000";
pub const CHANNEL: &str = "1234567890";

pub fn start(faults: &str) -> Emulator {
    Emulator::start(EmulatorConfig {
        faults: faults.parse().unwrap(),
        ..EmulatorConfig::default()
    })
    .unwrap()
}

pub fn op(seq: u64, kind: OpKind) -> WireOp {
    WireOp {
        op_id: Uuid::now_v7(),
        seq,
        at: "2026-11-28T12:00:00.123Z".into(),
        kind,
    }
}

pub fn set(user: &str) -> OpKind {
    OpKind::SetUserId {
        user_id: user.into(),
    }
}

pub fn link(user: &str, line: &str) -> OpKind {
    OpKind::LinkLineId {
        user_id: user.into(),
        line_user_id: line.into(),
        channel_id: CHANNEL.into(),
    }
}

pub fn unlink(user: &str, line: &str) -> OpKind {
    OpKind::UnlinkLineId {
        user_id: user.into(),
        line_user_id: line.into(),
        channel_id: CHANNEL.into(),
    }
}

pub fn batch(device: Uuid, ops: Vec<WireOp>) -> Vec<u8> {
    serde_json::to_vec(&BatchRequest {
        device_id: device,
        ops,
    })
    .unwrap()
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn statuses(&self) -> Vec<String> {
        self.json()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["status"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// reqwest on its own runtime, driven synchronously.
pub struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    pub fn new() -> Http {
        // In a workspace build reqwest carries `rustls-no-provider` (from core), and then needs a
        // process-wide crypto provider even for plain http.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Http {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        }
    }

    pub fn send(&self, req: reqwest::RequestBuilder) -> Result<Reply, reqwest::Error> {
        self.rt.block_on(async {
            let resp = req.send().await?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp.bytes().await?.to_vec();
            Ok(Reply {
                status,
                headers,
                body,
            })
        })
    }

    pub fn post_batch(
        &self,
        emu: &Emulator,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<Reply, reqwest::Error> {
        let mut req = self
            .client
            .post(format!("{}/v1/identity/batch", emu.url()))
            .header("content-type", "application/json")
            .header("x-retry-count", "0")
            .body(body);
        if let Some(t) = token {
            req = req.header("x-repro-token", t);
        }
        self.send(req)
    }

    /// With the right token; panics on a transport error.
    pub fn post(&self, emu: &Emulator, body: Vec<u8>) -> Reply {
        self.post_batch(emu, Some(TOKEN), body).unwrap()
    }

    pub fn request(&self, method: reqwest::Method, url: String) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }
}
