//! Quickstart: the SDK against the embedded emulator.
//! `cargo run -p repro-line-quickstart`

use std::sync::Arc;
use std::time::Duration;

use repro_line_core::{Client, Config, Event, Storage};
use repro_line_emulator::{Emulator, EmulatorConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::start(EmulatorConfig {
        port: 0,
        token: "quickstart".into(),
        ..EmulatorConfig::default()
    })?;
    let dir = std::env::temp_dir().join("repro-line-quickstart");

    let mut config = Config::new("quickstart", emulator.url(), Storage::Directory(dir));
    config.default_channel_id = Some("1234567890".into());
    let client = Client::new(config)?;
    client.set_listener(Arc::new(|e: &Event| println!("{e:?}")));

    client.set_user_id("user123")?;
    client.set_line_user_id("U4af4980629a1b2c3d4e5f60718293a4b", None)?;
    println!("{:?}", client.shutdown(Duration::from_secs(5)));
    println!("{:#?}", emulator.state().links);
    Ok(())
}
