//! Compaction runs outside the callers' lock: with the driver held between a
//! compaction's write and its install (a real file store, a real emulator over
//! loopback), calls still return, and what they append meanwhile is in the
//! installed journal.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use repro_line_emulator::{Emulator, EmulatorConfig};

use super::{Client, Config, Storage};
use crate::store::file::FileStore;
use crate::{FlushOutcome, Policy, Session};

const TOKEN: &str = "compaction";
const CHANNEL: &str = "1234567890";

fn line(i: u64) -> String {
    format!("U{i:032x}")
}

#[test]
fn calls_made_while_a_compaction_is_written_return_and_are_kept() {
    let emu = Emulator::start(EmulatorConfig {
        port: 0,
        token: TOKEN.into(),
        ..Default::default()
    })
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = Config::new(TOKEN, emu.url(), Storage::Directory(tmp.path().into()));
    cfg.default_channel_id = Some(CHANNEL.into());
    // The first 61 calls go out as one batch, so the compaction after it finds the queue drained.
    cfg.debounce = Duration::from_millis(500);
    let client = Client::new(cfg).unwrap();

    // The driver stops between writing the first snapshot and installing it until told to go on.
    let (written_tx, written_rx) = mpsc::channel::<()>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let once = Mutex::new(Some((written_tx, go_rx)));
    *client.shared.compaction_hook.lock().unwrap() = Some(Box::new(move || {
        if let Some((written, go)) = once.lock().unwrap().take() {
            let _ = written.send(());
            let _ = go.recv_timeout(Duration::from_secs(20));
        }
    }));

    // Delivered calls grow the journal past the drained-compaction threshold.
    client.set_user_id("member-1").unwrap();
    for i in 0..60 {
        client.set_line_user_id(&line(i), None).unwrap();
    }
    written_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a compaction was written");
    let before = std::fs::metadata(tmp.path().join("journal.log"))
        .unwrap()
        .len();

    // Held mid-compaction: the endpoint now refuses, so these calls stay queued.
    emu.set_faults("503=1.0,retry_after=60".parse().unwrap());
    let client = Arc::new(client);
    let caller = Arc::clone(&client);
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = (|| {
            caller.set_user_id("member-2")?;
            for i in 100..110 {
                caller.set_line_user_id(&line(i), None)?;
            }
            Ok::<(), crate::Error>(())
        })();
        let _ = done_tx.send(result);
    });
    let during = done_rx.recv_timeout(Duration::from_secs(10));
    go_tx.send(()).unwrap();
    during
        .expect("calls returned while the compaction waited to be installed")
        .unwrap();

    assert!(matches!(
        client.flush(Duration::from_millis(300)),
        FlushOutcome::TimedOut { pending: 11 }
    ));
    let Ok(client) = Arc::try_unwrap(client) else {
        panic!("the calling thread still holds the client");
    };
    client.shutdown(Duration::ZERO);
    drop(client);
    let after = std::fs::metadata(tmp.path().join("journal.log"))
        .unwrap()
        .len();
    assert!(after < before, "compacted: {before} -> {after} bytes");

    // The installed journal: the snapshot plus every call made during the rewrite.
    let store = FileStore::open(tmp.path()).unwrap();
    let session = Session::open(Policy::default(), None, Box::new(store)).unwrap();
    assert_eq!(session.user_id(), Some("member-2"));
    assert_eq!(session.pending_ops(), 11);
    assert!(!session.recovery().is_damaged());
    assert_eq!(emu.stats().ops_applied, 61);
}
