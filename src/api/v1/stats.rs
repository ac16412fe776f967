//! `GET /api/v1/stats?from=&to=[&format=json|csv|html|xlsx]`: the
//! leadership's statistics (rule 第六条(七), `tickets::stats`) for the
//! command center's desk, the director, the deputies and the chief
//! commander; anyone else 403. `GET /api/v1/stats/monthly?month=YYYY-MM`:
//! the printable monthly report (`tickets::monthly`) against the month
//! before. The same figures, names and charts as `hotline report`.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, Officer, Params, Shared};
use crate::tickets::{monthly, stats, xlsx};

/// The `.xlsx` media type.
pub(super) const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    from: String,
    to: String,
    format: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MonthQuery {
    month: String,
}

/// The statistics of `from..=to` (checked), named by the roster in force.
async fn figures(s: &Shared, from: &str, to: &str) -> Result<stats::Report, ApiError> {
    let (from, to, start, end) = stats::days(from, to).map_err(ApiError::bad_request)?;
    let tickets = s
        .store
        .received_between(start, end, stats::MAX_TICKETS)
        .await?;
    let tickets = s.store.with_timelines(tickets).await?;
    let live = s.live.get();
    let unit_of = |m: &str| live.roster.units_of(m).first().map(|u| u.to_string());
    let basis = stats::Basis {
        now: jiff::Timestamp::now(),
        calendar: &live.calendar,
        dispatch: &live.dispatch,
    };
    Ok(stats::report(from, to, &tickets, unit_of, &basis)
        .named(|id| live.roster.name_of(id).map(str::to_string)))
}

/// An export as a download named `name`.
pub(super) fn download(kind: &'static str, name: String, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

async fn stats(
    State(s): State<Shared>,
    o: Officer,
    Params(q): Params<StatsQuery>,
) -> Result<Response, ApiError> {
    o.require_board("the statistics")?;
    stats::days(&q.from, &q.to).map_err(ApiError::bad_request)?;
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv" | "html" | "xlsx") {
        return Err(ApiError::bad_request(format!(
            "format {format:?} is not json, csv, html or xlsx"
        )));
    }
    let r = figures(&s, &q.from, &q.to).await?;
    let name = format!("hotline-stats-{}-{}", r.from, r.to);
    Ok(match format {
        "csv" => download(
            "text/csv; charset=utf-8",
            format!("{name}.csv"),
            r.csv().into_bytes(),
        ),
        "xlsx" => download(
            XLSX,
            format!("{name}.xlsx"),
            xlsx::stats(&r).map_err(ApiError::internal)?,
        ),
        "html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            r.html(),
        )
            .into_response(),
        _ => Json(r).into_response(),
    })
}

async fn month(
    State(s): State<Shared>,
    o: Officer,
    Params(q): Params<MonthQuery>,
) -> Result<Response, ApiError> {
    o.require_board("the monthly report")?;
    let (first, last) = monthly::month(&q.month).map_err(ApiError::bad_request)?;
    let (p_first, p_last) = monthly::previous(first).map_err(ApiError::bad_request)?;
    let cur = figures(&s, &first.to_string(), &last.to_string()).await?;
    let prev = figures(&s, &p_first.to_string(), &p_last.to_string()).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        monthly::html(&cur, &prev),
    )
        .into_response())
}

pub(super) fn router() -> Router<Shared> {
    Router::new()
        .route("/stats", get(stats))
        .route("/stats/monthly", get(month))
}
