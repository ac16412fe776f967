//! The command line, one file per subcommand: `serve` (and
//! `check-config`), `tickets`, `recording`, `officer`, `page`, `roster`,
//! `watch`.
//! What they share: the config arguments and loading the settings.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use hotline::config::{Overrides, Settings};

pub mod officer;
pub mod page;
pub mod recording;
pub mod report;
pub mod roster;
pub mod serve;
pub mod tickets;
pub mod watch;

#[derive(clap::Args)]
pub struct ConfigArgs {
    /// The TOML configuration file.
    #[arg(long, default_value = "config/hotline.toml")]
    pub config: PathBuf,
    /// SIP address (UDP and TCP), overrides sip.listen.
    #[arg(long)]
    pub sip_listen: Option<std::net::SocketAddr>,
    /// HTTP address, overrides http.listen.
    #[arg(long)]
    pub http_listen: Option<std::net::SocketAddr>,
    /// Redis URL, overrides redis.url.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Recordings directory, overrides recording.dir.
    #[arg(long)]
    pub recordings: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(ConfigArgs),
    /// Validate a configuration file and exit.
    CheckConfig(ConfigArgs),
    /// Make the running gateway read its configuration again (roster,
    /// calendars, prompts, paging policies, webhooks); prints what it did,
    /// or every problem (then nothing changed).
    Reload(ConfigArgs),
    /// Drain the running gateway for an upgrade: new calls (and a proxy's
    /// OPTIONS) get 503, calls in progress finish (`[sip] drain_seconds` at
    /// most), then it stops; as SIGTERM does.
    Drain(ConfigArgs),
    /// Read the duty logbook.
    Tickets {
        #[command(subcommand)]
        command: tickets::TicketsCommand,
    },
    /// Call recordings.
    Recording {
        #[command(subcommand)]
        command: recording::RecordingCommand,
    },
    /// Officers' credentials: API PINs, softphone SIP passwords.
    Officer {
        #[command(subcommand)]
        command: officer::OfficerCommand,
    },
    /// Paging.
    Page {
        #[command(subcommand)]
        command: page::PageCommand,
    },
    /// Who is on duty.
    Roster {
        #[command(subcommand)]
        command: roster::RosterCommand,
    },
    /// The channel watch of the running gateway (the trunk, webhook
    /// receivers, softphones, the duty).
    Watch {
        #[command(subcommand)]
        command: watch::WatchCommand,
    },
    /// Statistics for the leadership (第六条(七)) over a range of days
    /// (Asia/Shanghai): tickets by category, outcome, unit and week, times
    /// to 签收 and 出警 (median, 90th percentile), the five-minute breach
    /// rate, pages by channel; CSV, or HTML with its plots as SVG.
    Report(report::ReportArgs),
}

pub fn load(args: &ConfigArgs) -> Result<Settings, String> {
    let env = Overrides::from_env(|k| std::env::var(k).ok())?;
    let flags = Overrides {
        sip_listen: args.sip_listen,
        http_listen: args.http_listen,
        redis_url: args.redis_url.clone(),
        recordings: args.recordings.clone(),
        caller_key: None,
        fault_injection: false,
    };
    Settings::load(&args.config, &env.or(flags)).map_err(|e| e.to_string())
}

/// A subcommand that reads or writes the store: its text on success (and
/// whether all is well), its error on standard error with `code`.
fn finish(r: Result<(String, bool), String>, code: u8) -> ExitCode {
    match r {
        Ok((text, ok)) => {
            print!("{text}");
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(code)
        }
    }
}

/// A small runtime for a subcommand's store work.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(f)
}

/// Runs one subcommand.
pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Serve(args) => serve::run(&args),
        Command::CheckConfig(args) => serve::check_config(&args),
        Command::Reload(args) => serve::reload(&args),
        Command::Drain(args) => serve::drain(&args),
        Command::Recording { command } => recording::run(command),
        Command::Page { command } => page::run(command),
        Command::Officer { command } => {
            finish(block_on(officer::run(command)).map(|t| (t + "\n", true)), 2)
        }
        Command::Roster { command } => match command.remind() {
            Some((config, request)) => serve::admin(config, &request),
            None => finish(block_on(roster::run(command)), 2),
        },
        Command::Watch { command } => watch::run(command),
        Command::Tickets { command } => {
            finish(block_on(tickets::run(command)).map(|t| (t, true)), 1)
        }
        Command::Report(args) => finish(block_on(report::run(args)).map(|t| (t, true)), 2),
    }
}
