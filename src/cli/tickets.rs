//! `hotline tickets list|show|hold|release`: the duty logbook read from
//! Redis, and legal holds (a ticket on hold keeps its recordings past the
//! retention period).

use clap::Subcommand;

use super::{load, ConfigArgs};

#[derive(Subcommand)]
pub enum TicketsCommand {
    /// Newest tickets first.
    List {
        /// Only tickets in this state (intake, open, acknowledged, dispatched,
        /// on_scene, closed, abandoned, cancelled, duplicate).
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// A ticket's register entry and timeline.
    Show {
        number: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Put a ticket on legal hold: its recordings are kept past retention.
    Hold {
        number: String,
        /// Why (on the timeline).
        #[arg(long)]
        reason: String,
        /// Who orders it (on the timeline).
        #[arg(long, default_value = "operator")]
        by: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Release a legal hold.
    Release {
        number: String,
        #[arg(long, default_value = "operator")]
        by: String,
        #[command(flatten)]
        config: ConfigArgs,
    },
}

pub async fn run(command: TicketsCommand) -> Result<String, String> {
    use hotline::tickets::{report, State};
    let args = match &command {
        TicketsCommand::List { config, .. }
        | TicketsCommand::Show { config, .. }
        | TicketsCommand::Hold { config, .. }
        | TicketsCommand::Release { config, .. } => config,
    };
    let s = load(args)?;
    let store = s.redis.store()?;
    let fail = |e: hotline::tickets::StoreError| format!("{}: {e}", s.redis.url_redacted());
    match command {
        TicketsCommand::List { state, limit, .. } => {
            let index = match state {
                Some(st) => match State::parse(&st) {
                    Some(st) => hotline::tickets::model::Index::State(st).name(),
                    None => return Err(format!("--state {st:?}: not a ticket state")),
                },
                None => hotline::tickets::model::Index::All.name(),
            };
            let list = store.list(&index, limit).await.map_err(fail)?;
            Ok(list.iter().map(|t| report::line(t) + "\n").collect())
        }
        TicketsCommand::Show { number, .. } => {
            let t = store.get(&number).await.map_err(fail)?;
            let timeline = store.timeline(&number).await.map_err(fail)?;
            let text = report::full(&t, &timeline);
            // Pending only while queued (the transcriber off, or the
            // recording older than it: none is coming).
            if t.register.transcript.is_none()
                && !store.transcript_queued(&number).await.map_err(fail)?
            {
                return Ok(text.replacen(
                    "\ntranscript pending\n",
                    "\ntranscript none (not queued)\n",
                    1,
                ));
            }
            Ok(text)
        }
        TicketsCommand::Hold {
            number, reason, by, ..
        } => {
            use hotline::tickets::actions;
            let reason = actions::Reason::parse(&reason).map_err(|e| format!("--{e}"))?;
            let now = jiff::Timestamp::now();
            store
                .act(&number, &actions::hold(&by, Some(&reason), now))
                .await
                .map_err(fail)?;
            Ok(format!("{number}: on legal hold\n"))
        }
        TicketsCommand::Release { number, by, .. } => {
            use hotline::tickets::actions;
            let now = jiff::Timestamp::now();
            store
                .act(&number, &actions::hold(&by, None, now))
                .await
                .map_err(fail)?;
            Ok(format!("{number}: legal hold released\n"))
        }
    }
}
