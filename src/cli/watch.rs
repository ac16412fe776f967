//! `hotline watch test-webhooks`: a test delivery to every webhook receiver
//! now, through the running gateway's admin socket; a line per receiver,
//! and a non-zero exit when one is broken (the desk and the director are
//! told, as by the daily test).

use std::process::ExitCode;

use clap::Subcommand;

use super::ConfigArgs;

#[derive(Subcommand)]
pub enum WatchCommand {
    /// Send a test message to every webhook receiver now (as the daily test
    /// does); a broken one (an HTTP error, a robot's errcode) exits 1.
    TestWebhooks {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

pub fn run(command: WatchCommand) -> ExitCode {
    match command {
        WatchCommand::TestWebhooks { config } => {
            super::serve::admin(&config, "watch test-webhooks")
        }
    }
}
