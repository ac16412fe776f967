//! `hotline report --from DATE --to DATE [--format csv|html]`: the
//! statistics of the tickets received on those days (Asia/Shanghai).

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

/// At most this many tickets go into one report.
const MAX_TICKETS: usize = 200_000;

pub async fn run(a: ReportArgs) -> Result<String, String> {
    let day = |name: &str, v: &str| {
        v.parse::<jiff::civil::Date>()
            .map_err(|_| format!("--{name} {v:?}: not a date (YYYY-MM-DD)"))
    };
    let (from, to) = (day("from", &a.from)?, day("to", &a.to)?);
    if to < from {
        return Err(format!("--to {to} is before --from {from}"));
    }
    let s = load(&a.config)?;
    let roster = hotline::roster::Roster::load(&s.roster.file).map_err(|e| e.to_string())?;
    let store = s.redis.store()?;
    let tz = hotline::tickets::store::court_tz();
    let start = |d: jiff::civil::Date| {
        tz.to_timestamp(d.to_datetime(jiff::civil::Time::midnight()))
            .map(|t| t.as_second())
            .map_err(|e| e.to_string())
    };
    let next = to.tomorrow().map_err(|e| e.to_string())?;
    let tickets = store
        .received_between(start(from)?, start(next)? - 1, MAX_TICKETS)
        .await
        .map_err(|e| format!("{}: {e}", s.redis.url_redacted()))?;
    let unit_of = |m: &str| roster.units_of(m).first().map(|u| u.to_string());
    let r = hotline::tickets::stats::report(from, to, &tickets, unit_of);
    Ok(match a.format {
        Format::Csv => r.csv(),
        Format::Html => r.html(),
    })
}
