//! `hotline roster who|plan|check|advance`: who is on duty, the plan,
//! the reach proof, moving the rotation on.

use clap::Subcommand;

use super::{load, ConfigArgs};

#[derive(Subcommand)]
pub enum RosterCommand {
    /// Who is on duty now, or at a given time (Asia/Shanghai, e.g. "2026-02-15 21:00").
    Who {
        #[arg(long)]
        at: Option<String>,
        /// The case number, to name its case handler.
        #[arg(long)]
        case: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// The duty plan for a range of days (YYYY-MM-DD), printable.
    Plan {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Coverage gaps, unreachable members, uneven load over the next 8 weeks.
    Check {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Move the rotation on by one duty period, for every gateway.
    Advance {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// Runs a roster command: (text, whether all is well).
pub async fn run(command: RosterCommand) -> Result<(String, bool), String> {
    use hotline::roster::{report, Calendar, Roster};
    let args = match &command {
        RosterCommand::Who { config, .. }
        | RosterCommand::Plan { config, .. }
        | RosterCommand::Check { config }
        | RosterCommand::Advance { config } => config,
    };
    let s = load(args)?;
    let roster = Roster::load(&s.roster.file).map_err(|e| e.to_string())?;
    let cal = Calendar::load(&s.roster.holidays).map_err(|e| e.to_string())?;
    let tz = hotline::court_time::court_tz();
    let store = s.redis.store()?;
    let url = s.redis.url_redacted();
    let offset = || async {
        store
            .rotation_offset()
            .await
            .map_err(|e| format!("{url}: rotation state: {e}"))
    };
    let date = |v: &str, flag: &str| {
        v.parse::<jiff::civil::Date>()
            .map_err(|e| format!("{flag} {v:?}: not a date YYYY-MM-DD ({e})"))
    };
    match command {
        RosterCommand::Who { at, case, .. } => {
            let at = match at {
                None => jiff::Timestamp::now(),
                Some(t) => t
                    .parse::<jiff::civil::DateTime>()
                    .map_err(|e| format!("--at {t:?}: not a time like \"2026-02-15 21:00\" ({e})"))?
                    .to_zoned_datetime(tz)
                    .map_err(|e| format!("--at {t:?}: {e}"))?
                    .timestamp(),
            };
            let off = offset().await?;
            Ok((
                report::who(&roster.resolve(&cal, off, at, case.as_deref())),
                true,
            ))
        }
        RosterCommand::Plan { from, to, .. } => {
            let (from, to) = (date(&from, "--from")?, date(&to, "--to")?);
            if to < from || (to - from).get_days() > 400 {
                return Err("--from must be before --to, at most 400 days apart".into());
            }
            let off = offset().await?;
            Ok((report::plan(&roster.plan(&cal, off, from, to)), true))
        }
        RosterCommand::Check { .. } => {
            let off = offset().await?;
            let today = jiff::Timestamp::now().to_zoned_datetime(tz).date();
            let plan = s.trunk.as_ref().and_then(|t| t.plan().ok());
            let check = hotline::watch::duty::DutyCheck {
                roster: &roster,
                calendar: &cal,
                policies: &s.paging.policies,
                plan: plan.as_ref(),
                reach: s.reach(),
            };
            let (issues, warnings) = check.findings(off, today, 56);
            let mut text: String = issues.iter().map(|i| format!("{i}\n")).collect();
            text.extend(warnings.iter().map(|w| format!("warning: {w}\n")));
            if issues.is_empty() {
                text.push_str("ok\n");
            }
            Ok((text, issues.is_empty()))
        }
        RosterCommand::Advance { .. } => {
            let n = store
                .advance_rotation()
                .await
                .map_err(|e| format!("{}: {e}", s.redis.url_redacted()))?;
            let now = jiff::Timestamp::now();
            Ok((
                format!(
                    "rotation advanced (offset {n})\n{}",
                    report::who(&roster.resolve(&cal, n, now, None))
                ),
                true,
            ))
        }
    }
}
