//! `hotline`: parse the command line and run the subcommand (`cli`).

use std::process::ExitCode;

use clap::Parser;

mod cli;

#[derive(Parser)]
#[command(name = "hotline", version, about = "Duty-line telephony gateway")]
struct Cli {
    #[command(subcommand)]
    command: cli::Command,
}

/// jemalloc, with its background threads returning freed pages to the
/// system: after a wave of calls the gateway's resident memory falls back.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOTLINE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        // Colours only on a terminal: journald and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    cli::run(cli.command)
}
