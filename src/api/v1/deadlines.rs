//! What stops a ticket's clocks after opening, for whoever may see the
//! ticket (its handler, the officers paged, the leaders): a consultation's
//! answer (`POST /tickets/{n}/answer`: recorded, and the ticket closed), a
//! lead marked as a property lead (`POST /tickets/{n}/property`: its
//! verification deadline, seven days or three when urgent) and its check
//! (`POST /tickets/{n}/verified`). The rules are the domain's actions;
//! their refusals are 409 (or 400 for a field), a stale ticket 409 with
//! its state.

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use jiff::Timestamp;
use serde::Deserialize;

use super::tickets::{act, visible};
use super::{ApiError, Body, Officer, Shared};
use crate::tickets::actions;
use crate::tickets::model::AnswerVia;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    /// `callback` (the confidential callback) or `reply`.
    via: AnswerVia,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PropertyBody {
    urgent: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifiedBody {
    result: String,
}

/// A consultation answered: the answer on the register, the ticket closed.
async fn answer(
    State(s): State<Shared>,
    o: Officer,
    Path(n): Path<String>,
    Body(b): Body<AnswerBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let t = visible(&s, &o, &n).await?;
    let text = actions::NoteText::parse(&b.text).map_err(ApiError::bad_request)?;
    let a = actions::answer(&o.member.id, &t, b.via, text, Timestamp::now())
        .map_err(ApiError::refused)?;
    act(&s, &o, &n, a).await
}

/// A lead marked as a property lead (again: its urgency changed).
async fn property(
    State(s): State<Shared>,
    o: Officer,
    Path(n): Path<String>,
    Body(b): Body<PropertyBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let t = visible(&s, &o, &n).await?;
    let cfg = s.live.get();
    let a = actions::mark_property(&o.member.id, &t, b.urgent, Timestamp::now(), &cfg.dispatch)
        .map_err(ApiError::refused)?;
    act(&s, &o, &n, a).await
}

/// A property lead checked, with what was found.
async fn verified(
    State(s): State<Shared>,
    o: Officer,
    Path(n): Path<String>,
    Body(b): Body<VerifiedBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let t = visible(&s, &o, &n).await?;
    let finding = actions::Finding::parse(&b.result).map_err(ApiError::bad_request)?;
    let a = actions::verified(&o.member.id, &t, finding, Timestamp::now())
        .map_err(ApiError::refused)?;
    act(&s, &o, &n, a).await
}

pub(super) fn router() -> Router<Shared> {
    Router::new()
        .route("/tickets/{number}/answer", post(answer))
        .route("/tickets/{number}/property", post(property))
        .route("/tickets/{number}/verified", post(verified))
}
