//! `hotline serve` and `hotline check-config`; `reload` and `drain`
//! through the running gateway's admin socket.

use std::process::ExitCode;

use hotline::config::Settings;
use tokio_util::sync::CancellationToken;

use super::{load, ConfigArgs};

/// Validates the configuration through the path `serve` loads it by: the
/// main file, then every file it names and what refers across them. Every
/// problem is printed, each naming its file and key; any problem is a
/// non-zero exit (a configuration that passes here starts).
pub fn check_config(args: &ConfigArgs) -> ExitCode {
    let settings = match load(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match hotline::reload::load_files(&settings) {
        Ok(files) => {
            let today = hotline::court_time::court_day(jiff::Timestamp::now());
            if let Some(w) = files.calendar.warning(today) {
                println!("warning: {w}");
            }
            println!("{}: ok", args.config.display());
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for p in problems {
                eprintln!("{p}");
            }
            ExitCode::from(2)
        }
    }
}

/// Asks the running gateway to reload, through its admin socket.
pub fn reload(args: &ConfigArgs) -> ExitCode {
    admin(args, "reload")
}

/// Asks the running gateway to drain (new calls get 503, it stops once its
/// calls have ended), through its admin socket.
pub fn drain(args: &ConfigArgs) -> ExitCode {
    admin(args, "drain")
}

/// One request to the running gateway's admin socket; its answer printed.
pub(super) fn admin(args: &ConfigArgs, request: &str) -> ExitCode {
    use std::io::{Read, Write};
    let settings = match load(args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let path = hotline::reload::admin_socket(&settings);
    let answer = std::os::unix::net::UnixStream::connect(&path).and_then(|mut c| {
        c.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
        c.write_all(format!("{request}\n").as_bytes())?;
        let mut text = String::new();
        c.read_to_string(&mut text)?;
        Ok(text)
    });
    match answer {
        Ok(text) => match text.split_once('\n') {
            Some(("ok", rest)) => {
                print!("{rest}");
                ExitCode::SUCCESS
            }
            Some((_, rest)) => {
                eprint!("{rest}");
                ExitCode::FAILURE
            }
            None => {
                eprintln!("no answer from the gateway at {}", path.display());
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!(
                "{}: {e} (is the gateway running with this configuration?)",
                path.display()
            );
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
