//! `hotline serve` and `hotline check-config`.

use std::process::ExitCode;

use hotline::config::Settings;
use tokio_util::sync::CancellationToken;

use super::{load, ConfigArgs};

/// Validates the configuration as `serve` would load it.
pub fn check_config(args: &ConfigArgs) -> ExitCode {
    match load(args) {
        Ok(_) => {
            println!("{}: ok", args.config.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the gateway until SIGINT or SIGTERM.
pub fn run(args: &ConfigArgs) -> ExitCode {
    let settings = match load(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = rt.block_on(serve(settings));
    // Whatever still runs (a stuck blocking task) gets 2 s: a gateway
    // that failed must exit for systemd to start it again.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "gateway failed");
            ExitCode::FAILURE
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
