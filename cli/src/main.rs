//! `repro-line`: demo, send, register, emulator, gateway, and the bulk tools.
//! Each subcommand only wires arguments to a library: the SDK (`repro-line-core`),
//! the emulator (`repro-line-emulator`) or the bulk tools (`repro-line-bulk`).

mod bulk;
mod gateway;
mod sdk;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "repro-line",
    version,
    about = "Register LINE User IDs with Repro"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start an embedded emulator, register a demo user and LINE ID through the SDK, print the result.
    Demo,
    /// Run the local ingestion emulator (prints `listening on URL`, serves until killed).
    Emulator(sdk::EmulatorArgs),
    /// Send one identity change through the SDK's durable queue.
    Send(sdk::SendArgs),
    /// Register a `line_user_id,user_id` CSV through the SDK's queue; resumable after a kill.
    Register(sdk::RegisterArgs),
    /// Run the gateway: protocol v1 for the SDKs, exported to Repro's S3 auto-import.
    Gateway(gateway::GatewayArgs),
    #[command(flatten)]
    Bulk(bulk::BulkCommand),
}

fn main() {
    use std::io::IsTerminal;
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into a log file or pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REPRO_LINE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        );
    // A server's logs go to a collector: one JSON object per line when asked.
    if matches!(&cli.command, Command::Gateway(args) if args.json_logs()) {
        logs.json().init();
    } else {
        logs.init();
    }
    let code = match cli.command {
        Command::Demo => sdk::demo(),
        Command::Emulator(args) => sdk::emulator(args),
        Command::Send(args) => sdk::send(args),
        Command::Register(args) => sdk::register(args),
        Command::Gateway(args) => gateway::run(args),
        Command::Bulk(cmd) => bulk::run(cmd),
    };
    std::process::exit(code);
}
