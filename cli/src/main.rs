//! `repro-line`: demo, send, register, emulator, and the bulk tools.
//! Each subcommand only wires arguments to a library: the SDK (`repro-line-core`),
//! the emulator (`repro-line-emulator`) or the bulk tools (`repro-line-bulk`).

mod bulk;
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
    #[command(flatten)]
    Bulk(bulk::BulkCommand),
}

fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REPRO_LINE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Demo => sdk::demo(),
        Command::Emulator(args) => sdk::emulator(args),
        Command::Send(args) => sdk::send(args),
        Command::Register(args) => sdk::register(args),
        Command::Bulk(cmd) => bulk::run(cmd),
    };
    std::process::exit(code);
}
