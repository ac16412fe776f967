//! `hotline recording verify FILE`: a recording against its manifest.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub enum RecordingCommand {
    /// Check a recording against its manifest: prints `ok`, or the first
    /// chunk that does not match (exit status 1).
    Verify { file: PathBuf },
}

pub fn run(command: RecordingCommand) -> ExitCode {
    let RecordingCommand::Verify { file } = command;
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
