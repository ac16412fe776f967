//! `GET /calendar/<token>.ics`: a member's calendar subscription, for a
//! phone's calendar that cannot send a bearer token. The token (made by
//! `POST /api/v1/calendar/subscription`, kept only as its SHA-256) is the
//! credential: an unknown, replaced or revoked one, or one whose member
//! left the roster (or, for everyone's duty, left the board's roles), is
//! 404, the same answer as for a malformed one.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::v1::V1;
use crate::roster::Role;

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such calendar\n").into_response()
}

async fn subscribed(State(s): State<Arc<V1>>, Path(file): Path<String>) -> Response {
    let Some(token) = file
        .strip_suffix(".ics")
        .filter(|t| !t.is_empty() && t.len() <= 64)
    else {
        return not_found();
    };
    let Some(swaps) = s.swaps.as_deref() else {
        return not_found();
    };
    let sub = match crate::api::auth::calendar_of(&s.store, token).await {
        Ok(Some(sub)) => sub,
        Ok(None) => return not_found(),
        Err(e) => return crate::api::v1::ApiError::from(e).into_response(),
    };
    let Some(member) = s.live.get().roster.member(&sub.member).cloned() else {
        return not_found();
    };
    let all = sub.scope == "all";
    if all && !member.has_any(&Role::BOARD) {
        return not_found();
    }
    match swaps.feed(&member, all).await {
        Ok(body) => super::v1::calendar_answer(body),
        Err(e) => crate::api::v1::ApiError::from(e).into_response(),
    }
}

/// The route, on the officers' API's state.
pub(crate) fn router(v1: Arc<V1>) -> Router {
    Router::new()
        .route("/calendar/{file}", get(subscribed))
        .with_state(v1)
}
