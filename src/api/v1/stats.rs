//! `GET /api/v1/stats?from=&to=[&format=json|csv|html]`: the leadership's
//! statistics (rule 第六条(七), `tickets::stats`) for the command center's
//! desk, the director, the deputies and the chief commander; anyone else
//! 403. The same figures and pictures as `hotline report`.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, Officer, Params, Shared};
use crate::tickets::stats;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    from: String,
    to: String,
    format: Option<String>,
}

async fn stats(
    State(s): State<Shared>,
    o: Officer,
    Params(q): Params<StatsQuery>,
) -> Result<Response, ApiError> {
    o.require_board("the statistics")?;
    let (from, to, start, end) = stats::days(&q.from, &q.to).map_err(ApiError::bad_request)?;
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv" | "html") {
        return Err(ApiError::bad_request(format!(
            "format {format:?} is not json, csv or html"
        )));
    }
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
    let r = stats::report(from, to, &tickets, unit_of, &basis);
    Ok(match format {
        "csv" => ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], r.csv()).into_response(),
        "html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            r.html(),
        )
            .into_response(),
        _ => Json(r).into_response(),
    })
}

pub(super) fn router() -> Router<Shared> {
    Router::new().route("/stats", get(stats))
}
