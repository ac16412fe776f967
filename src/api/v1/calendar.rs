//! The duty as a calendar (iCalendar, RFC 5545; `crate::roster::ics`):
//! `GET /calendar.ics` the officer's own duty blocks (`scope=all`: every
//! block, for the board's roles), from the block in progress for `[swaps]
//! calendar_days`, swaps included; `POST /calendar/subscription` makes a
//! secret URL a phone's calendar can subscribe to (`/calendar/<token>.ics`,
//! served by `crate::api::calendar`; the token is kept hashed, a new one
//! replaces the old), `DELETE` ends it, as `hotline officer revoke` does.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, Body, Officer, Params, Shared};
use crate::api::auth;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Scope {
    /// `mine` (the default) or `all`.
    scope: Option<String>,
}

/// Whether `scope` asks for everyone's duty (403 unless a board role).
fn everyone(o: &Officer, scope: Option<&str>) -> Result<bool, ApiError> {
    match scope {
        None | Some("mine") => Ok(false),
        Some("all") => o.require_board("everyone's duty calendar").map(|()| true),
        Some(other) => Err(ApiError::bad_request(format!(
            "scope {other:?}: say mine or all"
        ))),
    }
}

/// An iCalendar answer.
pub(crate) fn ics(body: String) -> Response {
    (
        [(header::CONTENT_TYPE, "text/calendar; charset=utf-8")],
        body,
    )
        .into_response()
}

fn swaps(s: &Shared) -> Result<&crate::swaps::Swaps, ApiError> {
    s.swaps.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the duty calendar is not served here",
        )
    })
}

async fn feed(
    State(s): State<Shared>,
    o: Officer,
    Params(q): Params<Scope>,
) -> Result<Response, ApiError> {
    let all = everyone(&o, q.scope.as_deref())?;
    Ok(ics(swaps(&s)?.feed(&o.member, all).await?))
}

async fn subscribe(
    State(s): State<Shared>,
    o: Officer,
    Body(b): Body<Scope>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let all = everyone(&o, b.scope.as_deref())?;
    swaps(&s)?;
    let scope = if all { "all" } else { "mine" };
    let token = auth::issue_calendar(&s.store, &o.member.id, scope).await?;
    tracing::info!(member = %o.member.id, scope, "calendar subscription made (the one before, if any, ended)");
    Ok((
        StatusCode::CREATED,
        Json(json!({"path": format!("/calendar/{token}.ics"), "scope": scope})),
    ))
}

async fn unsubscribe(State(s): State<Shared>, o: Officer) -> Result<Json<Value>, ApiError> {
    let ended = s.store.revoke_calendar(&o.member.id).await?;
    Ok(Json(json!({"ended": ended})))
}

pub(super) fn router() -> Router<Shared> {
    Router::new().route("/calendar.ics", get(feed)).route(
        "/calendar/subscription",
        post(subscribe).delete(unsubscribe),
    )
}
