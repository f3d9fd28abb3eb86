//! `repro-line`: demo, send, register, emulator, and the bulk tools.

mod bulk;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "repro-line", version, about = "Register LINE User IDs with Repro")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Bulk(bulk::BulkCommand),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Bulk(cmd) => bulk::run(cmd),
    };
    std::process::exit(code);
}
