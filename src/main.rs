//! `hotline`: parse the command line, load the config, run until a signal.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hotline::config::{Overrides, Settings};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(name = "hotline", version, about = "Duty-line telephony gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ConfigArgs {
    /// The TOML configuration file.
    #[arg(long, default_value = "config/hotline.toml")]
    config: PathBuf,
    /// SIP address (UDP and TCP), overrides sip.listen.
    #[arg(long)]
    sip_listen: Option<std::net::SocketAddr>,
    /// HTTP address, overrides http.listen.
    #[arg(long)]
    http_listen: Option<std::net::SocketAddr>,
    /// Redis URL, overrides redis.url.
    #[arg(long)]
    redis_url: Option<String>,
    /// Recordings directory, overrides recording.dir.
    #[arg(long)]
    recordings: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(ConfigArgs),
    /// Validate a configuration file and exit.
    CheckConfig(ConfigArgs),
    /// Read the duty logbook.
    Tickets {
        #[command(subcommand)]
        command: TicketsCommand,
    },
    /// Call recordings.
    Recording {
        #[command(subcommand)]
        command: RecordingCommand,
    },
}

#[derive(Subcommand)]
enum RecordingCommand {
    /// Check a recording against its manifest: prints `ok`, or the first
    /// chunk that does not match (exit status 1).
    Verify { file: PathBuf },
}

#[derive(Subcommand)]
enum TicketsCommand {
    /// Newest tickets first.
    List {
        /// Only tickets in this state (intake, open, acknowledged, dispatched,
        /// on_scene, closed, abandoned, cancelled, duplicate).
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// A ticket's register entry and timeline.
    Show {
        number: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

fn load(args: &ConfigArgs) -> Result<Settings, String> {
    let env = Overrides::from_env(|k| std::env::var(k).ok())?;
    let flags = Overrides {
        sip_listen: args.sip_listen,
        http_listen: args.http_listen,
        redis_url: args.redis_url.clone(),
        recordings: args.recordings.clone(),
    };
    Settings::load(&args.config, &env.or(flags)).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOTLINE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    match cli.command {
        Command::CheckConfig(args) => match load(&args) {
            Ok(_) => {
                println!("{}: ok", args.config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Recording {
            command: RecordingCommand::Verify { file },
        } => match hotline::recording::verify::verify(&file) {
            Ok(()) => {
                println!("ok");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("{}: {e}", file.display());
                ExitCode::FAILURE
            }
        },
        Command::Tickets { command } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            match rt.block_on(tickets(command)) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve(args) => {
            let settings = match load(&args) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            match rt.block_on(serve(settings)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "gateway failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn tickets(command: TicketsCommand) -> Result<String, String> {
    use hotline::tickets::{report, State, Store};
    let args = match &command {
        TicketsCommand::List { config, .. } | TicketsCommand::Show { config, .. } => config,
    };
    let s = load(args)?;
    let store = Store::connect(&s.redis.url, &s.redis.key_prefix).map_err(|e| e.to_string())?;
    let fail = |e: hotline::tickets::StoreError| format!("{}: {e}", s.redis.url);
    match command {
        TicketsCommand::List { state, limit, .. } => {
            let index = match state {
                Some(st) => match State::parse(&st) {
                    Some(st) => format!("state:{st}"),
                    None => return Err(format!("--state {st:?}: not a ticket state")),
                },
                None => "all".to_string(),
            };
            let list = store.list(&index, limit).await.map_err(fail)?;
            Ok(list.iter().map(|t| report::line(t) + "\n").collect())
        }
        TicketsCommand::Show { number, .. } => {
            let t = store.get(&number).await.map_err(fail)?;
            let timeline = store.timeline(&number).await.map_err(fail)?;
            Ok(report::full(&t, &timeline))
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = hotline::app::App::build(settings).await?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        stop.cancel();
    });
    app.run_until_stopped(shutdown).await
}
