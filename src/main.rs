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
