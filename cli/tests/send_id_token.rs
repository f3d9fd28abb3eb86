//! `repro-line send --id-token`: a token link through the real binary against the emulator,
//! which verifies the token (minted by the emulator, as LINE would issue it).

mod sdk_common;

use std::collections::HashMap;

use repro_line_emulator::{Emulator, EmulatorConfig, Identity};
use sdk_common::*;

const LOGIN: &str = "1650000000";
const LINE: &str = "U4af4980629a1b2c3d4e5f60718293a4b";

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn send_links_with_an_id_token_and_never_prints_it() {
    let emu = Emulator::start(EmulatorConfig {
        token: TOKEN.into(),
        identity: Identity::IdToken,
        login_channels: HashMap::from([(CHANNEL.to_owned(), vec![LOGIN.to_owned()])]),
        ..EmulatorConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = emu.mint_id_token(LINE, LOGIN, now_s() + 3600);
    let signature = token.rsplit('.').next().unwrap().to_owned();

    let out = send(&emu.url(), dir.path(), "user123", "20")
        .args(["--id-token", &token, "--channel-id", CHANNEL])
        .env("REPRO_LINE_LOG", "trace")
        .output()
        .unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{printed}");
    assert!(
        !printed.contains(&signature),
        "the token was printed: {printed}"
    );
    let links = emu.state().links;
    assert!(
        links
            .iter()
            .any(|l| l.line_user_id == LINE && l.user_id.as_deref() == Some("user123")),
        "{links:?}"
    );

    // A token for another LINE Login channel: verified and refused (1008), exit 1.
    let wrong_aud = emu.mint_id_token(LINE, "1659999999", now_s() + 3600);
    let out = send(&emu.url(), dir.path(), "user456", "20")
        .args(["--id-token", &wrong_aud, "--channel-id", CHANNEL])
        .output()
        .unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{printed}");
    assert!(
        !printed.contains(wrong_aud.rsplit('.').next().unwrap()),
        "{printed}"
    );
    assert!(!emu
        .state()
        .links
        .iter()
        .any(|l| l.user_id.as_deref() == Some("user456")));

    // Not a JWT: refused before anything is queued (exit 2), naming the rule.
    for args in [
        vec!["--id-token", "not-a-token", "--channel-id", CHANNEL],
        vec!["--id-token", &token],
        vec![
            "--id-token",
            &token,
            "--line-user-id",
            LINE,
            "--channel-id",
            CHANNEL,
        ],
    ] {
        let out = send(&emu.url(), dir.path(), "user789", "5")
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).contains(&signature), "{}", stderr(&out));
    }
    let out = send(&emu.url(), dir.path(), "user789", "5")
        .args(["--id-token", "a.b", "--channel-id", CHANNEL])
        .output()
        .unwrap();
    assert!(stderr(&out).contains("compact JWT"), "{}", stderr(&out));
    assert!(!emu.state().users.contains(&"user789".to_string()));
}
