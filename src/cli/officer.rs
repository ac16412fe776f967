//! `hotline officer set-pin|set-sip-password|calendar|revoke`: an
//! officer's credentials (read from standard input; only hashes are
//! stored); `calendar` makes their secret calendar subscription URL (a new
//! one ends the old); revoke ends their sessions and calendar subscription
//! and forgets their SIP password and softphones.

use clap::Subcommand;

use super::{load, ConfigArgs};

#[derive(Subcommand)]
pub enum OfficerCommand {
    /// Set a member's PIN (read from standard input, one line).
    SetPin {
        member: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Set a member's SIP password for their softphone (read from standard
    /// input, one line, at least 12 characters); only its HA1 is stored.
    SetSipPassword {
        member: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Make a member's secret calendar subscription (printed once: the
    /// path under the gateway's HTTP address); any earlier one ends.
    Calendar {
        member: String,
        /// Everyone's duty instead of theirs (for the desk, the director,
        /// the deputies and the chief commander).
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// End every session of a member at once, end their calendar
    /// subscription, and forget their SIP password and every softphone
    /// they registered.
    Revoke {
        member: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

pub async fn run(command: OfficerCommand) -> Result<String, String> {
    use hotline::api::auth;
    let (member, config) = match &command {
        OfficerCommand::SetPin { member, config }
        | OfficerCommand::SetSipPassword { member, config }
        | OfficerCommand::Calendar { member, config, .. }
        | OfficerCommand::Revoke { member, config } => (member, config),
    };
    let s = load(config)?;
    let roster = hotline::roster::Roster::load(&s.roster.file).map_err(|e| e.to_string())?;
    if roster.member(member).is_none() {
        return Err(format!(
            "{member:?} is not a member of {}",
            s.roster.file.display()
        ));
    }
    let store = s.redis.store()?;
    match command {
        OfficerCommand::SetPin { .. } => {
            let mut pin = String::new();
            std::io::stdin()
                .read_line(&mut pin)
                .map_err(|e| format!("reading the PIN: {e}"))?;
            let pin = pin.trim();
            if pin.len() < 6 || !pin.bytes().all(|b| b.is_ascii_digit()) {
                return Err("the PIN must be at least 6 digits".into());
            }
            auth::set_pin(&store, member, pin)
                .await
                .map_err(|e| format!("{}: {e}", s.redis.url_redacted()))?;
            Ok(format!("PIN set for {member}"))
        }
        OfficerCommand::SetSipPassword { .. } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .map_err(|e| format!("reading the password: {e}"))?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.chars().count() < 12 {
                return Err("the SIP password must be at least 12 characters".into());
            }
            // The realm the registrar will check it in.
            let realm = s.registrar.clone().unwrap_or_default().realm;
            let ha1 = hotline::sip::digest::ha1(member, &realm, password);
            store
                .set_sip_ha1(member, &ha1)
                .await
                .map_err(|e| format!("{}: {e}", s.redis.url_redacted()))?;
            Ok(format!("SIP password set for {member} (realm {realm})"))
        }
        OfficerCommand::Calendar { all, .. } => {
            let on_board = roster
                .member(member)
                .is_some_and(|m| m.has_any(&hotline::roster::Role::BOARD));
            if all && !on_board {
                return Err(format!(
                    "everyone's duty calendar is for the desk, the director, the deputies and the chief commander: {member} is none of them"
                ));
            }
            let scope = if all { "all" } else { "mine" };
            let token = auth::issue_calendar(&store, member, scope)
                .await
                .map_err(|e| format!("{}: {e}", s.redis.url_redacted()))?;
            Ok(format!(
                "calendar subscription of {member} ({scope}): /calendar/{token}.ics on the gateway's HTTP address (any earlier one ended)"
            ))
        }
        OfficerCommand::Revoke { .. } => {
            let failed =
                |e: hotline::tickets::StoreError| format!("{}: {e}", s.redis.url_redacted());
            let n = auth::revoke(&store, member).await.map_err(failed)?;
            let (password, bindings) = store.forget_softphones(member).await.map_err(failed)?;
            let calendar = match store.revoke_calendar(member).await.map_err(failed)? {
                true => "calendar subscription ended",
                false => "no calendar subscription",
            };
            let password = match password {
                true => "SIP password removed",
                false => "no SIP password",
            };
            Ok(format!(
                "{n} session(s) of {member} ended; {password}; {bindings} softphone binding(s) removed; {calendar}"
            ))
        }
    }
}
