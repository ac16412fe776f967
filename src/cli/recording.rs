//! `hotline recording verify FILE|--all`: recordings against their
//! manifests.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::{load, ConfigArgs};

#[derive(Subcommand)]
pub enum RecordingCommand {
    /// Check a recording against its manifest: prints `ok`, or the first
    /// chunk that does not match (exit status 1). `--all`: every recording
    /// under the configured directory, each failure named.
    Verify {
        file: Option<PathBuf>,
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

pub fn run(command: RecordingCommand) -> ExitCode {
    let RecordingCommand::Verify { file, all, config } = command;
    let file = match (file, all) {
        (Some(f), false) => f,
        (None, true) => return verify_all(&config),
        _ => {
            eprintln!("verify: give a FILE or --all");
            return ExitCode::from(2);
        }
    };
    match hotline::recording::verify::verify(&file) {
        Ok(()) => {
            println!("ok");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{}: {e}", file.display());
            ExitCode::FAILURE
        }
    }
}

/// Every WAV with a manifest under `[recording] dir`: the failures, then
/// how many were checked.
fn verify_all(config: &ConfigArgs) -> ExitCode {
    let s = match load(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let (mut checked, mut failed) = (0usize, 0usize);
    for p in hotline::recording::files_under(&s.recording.dir, "wav") {
        if hotline::recording::manifest_path(&p).is_file() {
            checked += 1;
            if let Err(e) = hotline::recording::verify::verify(&p) {
                failed += 1;
                println!("{}: {e}", p.display());
            }
        }
    }
    println!("{checked} recordings checked, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
