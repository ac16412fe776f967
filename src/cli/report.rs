//! `hotline report --from DATE --to DATE [--format csv|html|xlsx|json]
//! [--output FILE]`: the statistics of the tickets received on those days
//! (Asia/Shanghai), their deadlines judged as of now, the working days by
//! the court's calendars, members and units by the roster's names.
//! `hotline report --month YYYY-MM [--output FILE]`: the printable monthly
//! report (HTML, `tickets::monthly`) against the month before. Without
//! `--output` the text goes to standard output; `xlsx` needs `--output`.

use clap::{Args, ValueEnum};

use super::{load, ConfigArgs};

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum Format {
    Csv,
    Html,
    Xlsx,
    Json,
}

#[derive(Args)]
pub struct ReportArgs {
    /// The first day, YYYY-MM-DD.
    #[arg(long, required_unless_present = "month", conflicts_with = "month")]
    from: Option<String>,
    /// The last day, YYYY-MM-DD (included).
    #[arg(long, required_unless_present = "month", conflicts_with = "month")]
    to: Option<String>,
    /// A month, YYYY-MM: the printable monthly report (HTML).
    #[arg(long)]
    month: Option<String>,
    #[arg(long, value_enum, default_value = "csv", conflicts_with = "month")]
    format: Format,
    /// Write to this file instead of standard output (needed for xlsx).
    #[arg(long)]
    output: Option<std::path::PathBuf>,
    #[command(flatten)]
    config: ConfigArgs,
}

/// What to print: nothing when written to `--output` (its path said on
/// standard error).
pub async fn run(a: ReportArgs) -> Result<String, String> {
    use hotline::tickets::{monthly, stats, xlsx};
    if a.format == Format::Xlsx && a.output.is_none() {
        return Err("--format xlsx writes a file: give --output FILE".into());
    }
    let bytes = match &a.month {
        Some(m) => {
            let (first, last) = monthly::month(m).map_err(|e| format!("--{e}"))?;
            let (p_first, p_last) =
                monthly::previous(first).map_err(|e| format!("--month: {e}"))?;
            let s = load(&a.config)?;
            let cur = figures(&s, &first.to_string(), &last.to_string()).await?;
            let prev = figures(&s, &p_first.to_string(), &p_last.to_string()).await?;
            monthly::html(&cur, &prev).into_bytes()
        }
        None => {
            let (from, to) = (
                a.from.as_deref().unwrap_or(""),
                a.to.as_deref().unwrap_or(""),
            );
            stats::days(from, to).map_err(|e| format!("--{e}"))?;
            let s = load(&a.config)?;
            let r = figures(&s, from, to).await?;
            match a.format {
                Format::Csv => r.csv().into_bytes(),
                Format::Html => r.html().into_bytes(),
                Format::Json => serde_json::to_vec_pretty(&r).map_err(|e| e.to_string())?,
                Format::Xlsx => xlsx::stats(&r)?,
            }
        }
    };
    match &a.output {
        Some(path) => {
            std::fs::write(path, &bytes)
                .map_err(|e| format!("--output {}: {e}", path.display()))?;
            eprintln!("written: {}", path.display());
            Ok(String::new())
        }
        None => String::from_utf8(bytes).map_err(|e| e.to_string()),
    }
}

/// The statistics of `from..=to` from the store, named by the roster.
async fn figures(
    s: &hotline::config::Settings,
    from: &str,
    to: &str,
) -> Result<hotline::tickets::stats::Report, String> {
    use hotline::tickets::stats;
    let (from, to, start, end) = stats::days(from, to).map_err(|e| format!("--{e}"))?;
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
    Ok(stats::report(from, to, &tickets, unit_of, &basis)
        .named(|id| roster.name_of(id).map(str::to_string)))
}
