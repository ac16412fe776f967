//! The daily activity register (第四十四条(四)) on the API: `POST
//! /activities` records one of the officer's own activities (a correction
//! names the entry it corrects: one of the same officer and day); `GET
//! /activities?day=` reads a day's register: an officer their own entries,
//! the board's roles (desk, director, deputies, chief commander) everyone's,
//! or one officer's with `member=`; `format=csv` (with a BOM) or `xlsx`
//! exports it, Chinese headers, members by the roster's names.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, Body, Officer, Params, Shared};
use crate::tickets::activities::{self, NewActivity};
use crate::tickets::model::Measure;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivityBody {
    /// Default: today (Asia/Shanghai).
    day: Option<String>,
    /// `HH:MM`.
    time: String,
    case_number: Option<String>,
    measure: Measure,
    result: String,
    ticket: Option<String>,
    corrects: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterQuery {
    day: String,
    member: Option<String>,
    format: Option<String>,
}

fn today() -> jiff::civil::Date {
    crate::court_time::court_day(jiff::Timestamp::now())
}

fn day(v: &str) -> Result<jiff::civil::Date, ApiError> {
    v.parse()
        .map_err(|_| ApiError::bad_request(format!("day {v:?}: not a date (YYYY-MM-DD)")))
}

async fn record(
    State(s): State<Shared>,
    o: Officer,
    Body(b): Body<ActivityBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let on = match b.day.as_deref() {
        Some(d) => day(d)?,
        None => today(),
    };
    let time: jiff::civil::Time = b
        .time
        .parse()
        .map_err(|_| ApiError::bad_request(format!("time {:?}: not HH:MM", b.time)))?;
    // A ticket named must be one the officer may see.
    if let Some(n) = &b.ticket {
        super::tickets::visible(&s, &o, n).await?;
    }
    let entry = NewActivity::parse(
        &o.member.id,
        today(),
        on,
        time,
        b.case_number.as_deref(),
        b.measure,
        &b.result,
        b.ticket.as_deref(),
        b.corrects.as_deref(),
        jiff::Timestamp::now(),
    )
    .map_err(ApiError::bad_request)?;
    if let Some(id) = entry.corrects() {
        let register = s.store.activities(entry.day()).await?;
        if !register
            .iter()
            .any(|a| a.id == id && a.member == o.member.id)
        {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no entry {id} of yours on {}", entry.day()),
            ));
        }
    }
    let id = s.store.add_activity(&entry).await?;
    tracing::info!(member = %o.member.id, day = %entry.day(), id = %id, "activity recorded");
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"id": id, "day": entry.day()})),
    ))
}

async fn register(
    State(s): State<Shared>,
    o: Officer,
    Params(q): Params<RegisterQuery>,
) -> Result<Response, ApiError> {
    let on = day(&q.day)?;
    let whose = match (q.member, o.on_the_board()) {
        (Some(m), true) => Some(m),
        (None, true) => None,
        (Some(m), false) if m != o.member.id => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "an officer reads their own register; the bureau reads everyone's",
            ))
        }
        (_, false) => Some(o.member.id.clone()),
    };
    let mut entries = s.store.activities(on).await?;
    if let Some(m) = &whose {
        entries.retain(|a| &a.member == m);
    }
    let live = s.live.get();
    let name_of = |m: &str| live.roster.name_of(m).map(str::to_string);
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(entries).into_response()),
        Some("csv") => Ok(super::stats::download(
            "text/csv; charset=utf-8",
            format!("activities-{on}.csv"),
            activities::csv(&entries, name_of).into_bytes(),
        )),
        Some("xlsx") => Ok(super::stats::download(
            super::stats::XLSX,
            format!("activities-{on}.xlsx"),
            activities::xlsx(&entries, name_of).map_err(ApiError::internal)?,
        )),
        Some(f) => Err(ApiError::bad_request(format!(
            "format {f:?} is not json, csv or xlsx"
        ))),
    }
}

pub(super) fn router() -> Router<Shared> {
    Router::new().route("/activities", get(register).post(record))
}
