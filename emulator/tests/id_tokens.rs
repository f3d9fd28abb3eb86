//! Protocol v1.1 on the emulator: `link_line_id_token` verified with the shared verifier
//! against the emulator's own key, 1007 for raw links when `id_token` only, the minting
//! and JWKS routes over real HTTP.

mod common;

use std::collections::HashMap;

use common::*;
use repro_line_core::protocol::OpKind;
use repro_line_emulator::{Emulator, EmulatorConfig, Identity};
use repro_line_idtoken::mint::{sign_hs256, Minter};
use reqwest::Method;
use uuid::Uuid;

const LOGIN: &str = "1650000000";

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token_link(user: &str, token: &str) -> OpKind {
    OpKind::LinkLineIdToken {
        user_id: user.into(),
        id_token: token.into(),
        channel_id: CHANNEL.into(),
    }
}

fn emulator(identity: Identity) -> Emulator {
    Emulator::start(EmulatorConfig {
        identity,
        login_channels: HashMap::from([(CHANNEL.to_owned(), vec![LOGIN.to_owned()])]),
        ..EmulatorConfig::default()
    })
    .unwrap()
}

/// A fresh op stamped now (the fixed test time would make every token "expired before the call").
fn op_now(seq: u64, kind: OpKind) -> repro_line_core::protocol::WireOp {
    let at = repro_line_core::protocol::format_rfc3339_millis(now_s() * 1000);
    repro_line_core::protocol::WireOp {
        at,
        ..op(seq, kind)
    }
}

#[test]
fn a_minted_token_links_its_sub() {
    let emu = emulator(Identity::IdToken);
    let http = Http::new();
    let minted = http
        .send(
            http.request(Method::POST, format!("{}/admin/line/id-tokens", emu.url()))
                .body(format!(
                    r#"{{"line_user_id":"{LINE_A}","login_channel_id":"{LOGIN}"}}"#
                )),
        )
        .unwrap();
    assert_eq!(minted.status, 200);
    let token = minted.json()["id_token"].as_str().unwrap().to_owned();
    let reply = http.post(
        &emu,
        batch(
            Uuid::new_v4(),
            vec![
                op_now(1, set("alice")),
                op_now(2, token_link("alice", &token)),
            ],
        ),
    );
    assert_eq!(reply.statuses(), ["applied", "applied"]);
    let links = emu.state().links;
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].line_user_id.as_str(), links[0].user_id.as_deref()),
        (LINE_A, Some("alice"))
    );
    // The JWKS route serves the key that signed it.
    let certs = http
        .send(http.request(Method::GET, format!("{}/oauth2/v2.1/certs", emu.url())))
        .unwrap();
    let jwks: repro_line_idtoken::Jwks = serde_json::from_slice(&certs.body).unwrap();
    assert_eq!(jwks, emu.jwks());
    assert!(jwks.contains("emulator-1"));
}

#[test]
fn bad_tokens_are_1008_naming_the_check_and_link_nothing() {
    let emu = emulator(Identity::IdToken);
    let http = Http::new();
    let exp = now_s() + 3600;
    let forger = Minter::generate("emulator-1").unwrap();
    let good = emu.mint_id_token(LINE_A, LOGIN, exp);
    let claims = |iss: &str| {
        serde_json::json!({"iss": iss, "sub": LINE_A, "aud": LOGIN, "exp": exp}).to_string()
    };
    let pubkey = {
        let k = &emu.jwks().keys[0];
        format!("{}{}", k.x.clone().unwrap(), k.y.clone().unwrap())
    };
    let cases = [
        ("forged", forger.mint(LINE_A, LOGIN, exp), "signature"),
        ("wrong aud", emu.mint_id_token(LINE_A, "999", exp), "aud"),
        (
            "expired",
            emu.mint_id_token(LINE_A, LOGIN, now_s() - 600),
            "exp",
        ),
        (
            "alg none",
            {
                let t = forger.sign_raw(r#"{"alg":"none"}"#, &claims("https://access.line.me"));
                format!("{}.", &t[..t.rfind('.').unwrap()])
            },
            "alg",
        ),
        (
            "hs256 with public key",
            sign_hs256(
                pubkey.as_bytes(),
                r#"{"alg":"HS256","kid":"emulator-1"}"#,
                &claims("https://access.line.me"),
            ),
            "alg",
        ),
        ("truncated", good[..good.len() / 2].to_owned(), "format"),
    ];
    let device = Uuid::new_v4();
    let mut seq = 1;
    http.post(&emu, batch(device, vec![op_now(seq, set("alice"))]));
    for (name, token, check) in cases {
        seq += 1;
        let reply = http.post(
            &emu,
            batch(device, vec![op_now(seq, token_link("alice", &token))]),
        );
        let result = &reply.json()["results"][0];
        assert_eq!(result["status"], "rejected", "{name}");
        assert_eq!(result["error"]["code"], 1008, "{name}");
        let message = result["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("invalid ID token: {check}")),
            "{name}: {message}"
        );
        assert!(
            !message.contains(&token),
            "{name}: the token must not be echoed"
        );
    }
    assert!(emu.state().links.is_empty());
}

#[test]
fn raw_links_are_1007_only_when_id_token_is_required() {
    let emu = emulator(Identity::Any);
    let http = Http::new();
    let device = Uuid::new_v4();
    let reply = http.post(
        &emu,
        batch(device, vec![op(1, set("a")), op(2, link("a", LINE_A))]),
    );
    assert_eq!(reply.statuses(), ["applied", "applied"]);
    let switched = http
        .send(
            http.request(Method::PUT, format!("{}/admin/identity", emu.url()))
                .body("id_token"),
        )
        .unwrap();
    assert_eq!(switched.status, 204);
    let reply = http.post(&emu, batch(device, vec![op(3, link("a", LINE_B))]));
    let r = &reply.json()["results"][0];
    assert_eq!(r["error"]["code"], 1007);
    assert_eq!(
        r["error"]["message"],
        "raw LINE user IDs are not accepted; send an ID token"
    );
    assert_eq!(emu.state().links.len(), 1);
}

#[test]
fn a_token_for_an_unconfigured_channel_is_refused() {
    let emu = emulator(Identity::IdToken);
    let http = Http::new();
    let token = emu.mint_id_token(LINE_A, LOGIN, now_s() + 3600);
    let put = http
        .send(
            http.request(
                Method::PUT,
                format!("{}/admin/line/login-channels", emu.url()),
            )
            .body(r#"{"1234567890": ["1650000001"]}"#),
        )
        .unwrap();
    assert_eq!(put.status, 204);
    let reply = http.post(
        &emu,
        batch(
            Uuid::new_v4(),
            vec![op_now(1, set("a")), op_now(2, token_link("a", &token))],
        ),
    );
    assert_eq!(reply.json()["results"][1]["error"]["code"], 1008);
}
