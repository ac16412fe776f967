//! `hotline roster who|plan|check|advance`: who is on duty, the plan,
//! the reach proof, moving the rotation on; `swap`, `override`, `swaps`:
//! swaps and overrides of the duty, straight on the store (the gateways
//! follow within a second and send the notices they owe); `remind`: a
//! day's duty reminders, through the running gateway. Every view of the
//! duty includes the swaps in force.

use clap::Subcommand;

use super::{load, ConfigArgs};
use hotline::roster::swaps::{Swap, SwapAction};

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
    /// Swaps of duty: a member asks another to take their duty of a day;
    /// the other accepts or declines; an approver ([swaps] approvers)
    /// approves or rejects (with [swaps] approval); the asker withdraws; an
    /// approver cancels. Each acts as the member given by --by.
    Swap {
        #[command(subcommand)]
        command: SwapCommand,
    },
    /// An approver's override, in force at once: a unit or a member
    /// replaced by another for the duty of the days --from..=--to.
    Override {
        /// The unit or member replaced.
        #[arg(long)]
        replace: String,
        /// The unit or member who takes their place.
        #[arg(long)]
        with: String,
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        from: String,
        /// Last day (YYYY-MM-DD).
        #[arg(long)]
        to: String,
        #[arg(long)]
        reason: Option<String>,
        /// The approver putting it in (a member with a [swaps] approvers role).
        #[arg(long)]
        by: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// The swaps and overrides of the last two days and ahead, with who did
    /// what when.
    Swaps {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Send the duty reminders of the blocks that start on a day now,
    /// through the running gateway (once for all gateways: a day already
    /// reminded is said so).
    Remind {
        /// The day (YYYY-MM-DD) whose duty is reminded.
        #[arg(long = "for")]
        day: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

/// A step on a swap: its number, who does it.
#[derive(clap::Args)]
pub struct SwapStepArgs {
    /// The swap's number (`hotline roster swaps`).
    pub id: u64,
    /// Who does it (a member id).
    #[arg(long)]
    pub by: String,
    #[arg(long)]
    pub note: Option<String>,
    #[command(flatten)]
    pub config: ConfigArgs,
}

#[derive(Subcommand)]
pub enum SwapCommand {
    /// --by asks --with to take their duty of --day.
    Ask {
        #[arg(long)]
        by: String,
        #[arg(long)]
        with: String,
        /// The day (YYYY-MM-DD) whose duty is handed on.
        #[arg(long)]
        day: String,
        #[arg(long)]
        note: Option<String>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// The member asked takes it.
    Accept(SwapStepArgs),
    /// The member asked does not.
    Decline(SwapStepArgs),
    /// The asker takes the request back.
    Withdraw(SwapStepArgs),
    /// An approver puts an accepted swap in force.
    Approve(SwapStepArgs),
    /// An approver refuses an accepted swap.
    Reject(SwapStepArgs),
    /// An approver ends a swap or an override.
    Cancel(SwapStepArgs),
}

impl SwapCommand {
    fn config(&self) -> &ConfigArgs {
        match self {
            SwapCommand::Ask { config, .. } => config,
            SwapCommand::Accept(a)
            | SwapCommand::Decline(a)
            | SwapCommand::Withdraw(a)
            | SwapCommand::Approve(a)
            | SwapCommand::Reject(a)
            | SwapCommand::Cancel(a) => &a.config,
        }
    }
}

impl RosterCommand {
    /// `remind`'s request to the admin socket, and its configuration.
    pub fn remind(&self) -> Option<(&ConfigArgs, String)> {
        match self {
            RosterCommand::Remind { day, config } => Some((config, format!("remind {day}"))),
            _ => None,
        }
    }
}

/// A swap in lines: what, its state, then its audit trail.
fn swap_text(s: &Swap, roster: &hotline::roster::Roster) -> String {
    let mut text = format!(
        "#{} {} {}: {}\n",
        s.id,
        s.label(),
        s.state,
        s.describe(roster)
    );
    for st in &s.steps {
        text.push_str(&format!(
            "    {}  {} {} via {}{}\n",
            hotline::court_time::local(st.at),
            st.by,
            st.action.as_str(),
            st.via,
            st.note
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ));
    }
    text
}

/// Runs a swap command, or an override: (text, whether all is well).
async fn swap_command(
    s: &hotline::config::Settings,
    roster: hotline::roster::Roster,
    cal: hotline::roster::Calendar,
    command: RosterCommand,
) -> Result<(String, bool), String> {
    use hotline::swaps::{SwapError, Swaps};
    let store = s.redis.store()?;
    let live = std::sync::Arc::new(hotline::live::Live::new(
        hotline::live::Loaded::roster_only(roster, cal),
    ));
    let swaps = Swaps::new(store, live.clone(), s.swaps.clone(), None);
    let url = s.redis.url_redacted();
    let failed = |e: SwapError| match e {
        SwapError::Store(e) => format!("{url}: {e}"),
        e => format!("refused: {e}"),
    };
    let date = |v: &str, flag: &str| {
        v.parse::<jiff::civil::Date>()
            .map_err(|e| format!("{flag} {v:?}: not a date YYYY-MM-DD ({e})"))
    };
    let swap = match command {
        RosterCommand::Override {
            replace,
            with,
            from,
            to,
            reason,
            by,
            ..
        } => {
            let (from, to) = (date(&from, "--from")?, date(&to, "--to")?);
            swaps
                .put_in(&by, &replace, &with, from, to, reason, "cli")
                .await
                .map_err(failed)?
        }
        RosterCommand::Swap { command } => match command {
            SwapCommand::Ask {
                by,
                with,
                day,
                note,
                ..
            } => {
                let day = date(&day, "--day")?;
                swaps
                    .ask(&by, &with, day, note, "cli")
                    .await
                    .map_err(failed)?
            }
            SwapCommand::Accept(a) => step(&swaps, a, SwapAction::Accept).await.map_err(failed)?,
            SwapCommand::Decline(a) => {
                step(&swaps, a, SwapAction::Decline).await.map_err(failed)?
            }
            SwapCommand::Withdraw(a) => step(&swaps, a, SwapAction::Withdraw)
                .await
                .map_err(failed)?,
            SwapCommand::Approve(a) => {
                step(&swaps, a, SwapAction::Approve).await.map_err(failed)?
            }
            SwapCommand::Reject(a) => step(&swaps, a, SwapAction::Reject).await.map_err(failed)?,
            SwapCommand::Cancel(a) => step(&swaps, a, SwapAction::Cancel).await.map_err(failed)?,
        },
        _ => return Err("not a swap command".into()),
    };
    Ok((swap_text(&swap, &live.get().roster), true))
}

async fn step(
    swaps: &hotline::swaps::Swaps,
    a: SwapStepArgs,
    action: SwapAction,
) -> Result<Swap, hotline::swaps::SwapError> {
    swaps.act(a.id, &a.by, action, a.note, "cli").await
}

/// Runs a roster command: (text, whether all is well).
pub async fn run(command: RosterCommand) -> Result<(String, bool), String> {
    use hotline::roster::{report, Calendar, Roster};
    let args = match &command {
        RosterCommand::Who { config, .. }
        | RosterCommand::Plan { config, .. }
        | RosterCommand::Check { config }
        | RosterCommand::Advance { config }
        | RosterCommand::Override { config, .. }
        | RosterCommand::Swaps { config }
        | RosterCommand::Remind { config, .. } => config,
        RosterCommand::Swap { command } => command.config(),
    };
    let s = load(args)?;
    let files = Roster::load(&s.roster.file).map_err(|e| e.to_string())?;
    let cal = Calendar::load(&s.roster.holidays).map_err(|e| e.to_string())?;
    if matches!(
        command,
        RosterCommand::Swap { .. } | RosterCommand::Override { .. }
    ) {
        return swap_command(&s, files, cal, command).await;
    }
    let tz = hotline::court_time::court_tz();
    let store = s.redis.store()?;
    let url = s.redis.url_redacted();
    // The duty as it is: the file's plan with the swaps in force.
    let roster = hotline::swaps::roster_in_force(&store, files)
        .await
        .map_err(|e| format!("{url}: swaps in force: {e}"))?;
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
        RosterCommand::Swaps { .. } => {
            let since = jiff::Timestamp::now().as_millisecond() - 2 * 86_400_000;
            let list = store
                .swaps_since(since)
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            if list.is_empty() {
                return Ok((
                    "no swaps or overrides in the last two days or ahead\n".into(),
                    true,
                ));
            }
            Ok((list.iter().map(|x| swap_text(x, &roster)).collect(), true))
        }
        RosterCommand::Remind { .. }
        | RosterCommand::Swap { .. }
        | RosterCommand::Override { .. } => Err("answered elsewhere".into()),
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
