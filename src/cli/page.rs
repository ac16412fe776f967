//! `hotline page test MEMBER`: one test page through each of a member's
//! contact methods, each outcome printed.

use std::process::ExitCode;

use clap::Subcommand;

use super::{load, ConfigArgs};

#[derive(Subcommand)]
pub enum PageCommand {
    /// Send a test page through each of a member's contact methods.
    Test {
        member: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

pub fn run(command: PageCommand) -> ExitCode {
    let PageCommand::Test { member, config } = command;
    let settings = match load(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    match rt.block_on(hotline::app::test_page(&settings, &member)) {
        Ok(attempts) => {
            for a in &attempts {
                println!(
                    "{:<12} {:<4} {} ({} ms)",
                    a.channel,
                    if a.ok { "ok" } else { "FAIL" },
                    a.outcome,
                    a.latency_ms
                );
            }
            if attempts.iter().all(|a| a.ok) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(2)
        }
    }
}
