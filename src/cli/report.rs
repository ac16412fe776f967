//! `hotline report --from DATE --to DATE [--format csv|html]`: the
//! statistics of the tickets received on those days (Asia/Shanghai), their
//! deadlines judged as of now, the working days by the court's calendars.

use clap::{Args, ValueEnum};

use super::{load, ConfigArgs};

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Csv,
    Html,
}

#[derive(Args)]
pub struct ReportArgs {
    /// The first day, YYYY-MM-DD.
    #[arg(long)]
    from: String,
    /// The last day, YYYY-MM-DD (included).
    #[arg(long)]
    to: String,
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
    #[command(flatten)]
    config: ConfigArgs,
}

pub async fn run(a: ReportArgs) -> Result<String, String> {
    use hotline::tickets::stats;
    let (from, to, start, end) = stats::days(&a.from, &a.to).map_err(|e| format!("--{e}"))?;
    let s = load(&a.config)?;
    let roster = hotline::roster::Roster::load(&s.roster.file).map_err(|e| e.to_string())?;
    let calendar =
        hotline::roster::Calendar::load(&s.roster.holidays).map_err(|e| e.to_string())?;
    let store = s.redis.store()?;
    let fail = |e: hotline::tickets::StoreError| format!("{}: {e}", s.redis.url_redacted());
    let tickets = store
        .received_between(start, end, stats::MAX_TICKETS)
        .await
        .map_err(fail)?;
    let tickets = store.with_timelines(tickets).await.map_err(fail)?;
    let unit_of = |m: &str| roster.units_of(m).first().map(|u| u.to_string());
    let basis = stats::Basis {
        now: jiff::Timestamp::now(),
        calendar: &calendar,
        dispatch: &s.dispatch,
    };
    let r = stats::report(from, to, &tickets, unit_of, &basis);
    Ok(match a.format {
        Format::Csv => r.csv(),
        Format::Html => r.html(),
    })
}
