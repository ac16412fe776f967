//! Swaps and overrides of the duty on the API (`crate::swaps` holds the
//! rules and the records): `GET /swaps` the officer's own (the board's
//! roles every one) with their duties ahead and who might take them;
//! `POST /swaps` asks another member to take one's duty of a day; `GET`
//! and `POST /swaps/{id}` read one and act on it (accept, decline,
//! withdraw, approve, reject, cancel); `POST /overrides` is an approver's
//! override, in force at once. A refusal names why: 400 (no such duty, in
//! the past, the role rule), 403 (not theirs to do), 409 (not in that
//! state), 404 (no such swap, or not theirs to see).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, Body, Officer, Shared};
use crate::roster::swaps::{RefusalKind, Swap, SwapAction};
use crate::swaps::{SwapError, Swaps};

/// The longest note or reason.
const MAX_NOTE: usize = 500;

impl From<SwapError> for ApiError {
    fn from(e: SwapError) -> ApiError {
        match e {
            SwapError::Refused(r) => match r.kind {
                RefusalKind::Invalid => {
                    ApiError::new(StatusCode::BAD_REQUEST, "refused", r.message)
                }
                RefusalKind::Forbidden => {
                    ApiError::new(StatusCode::FORBIDDEN, "forbidden", r.message)
                }
                RefusalKind::Conflict => ApiError::new(StatusCode::CONFLICT, "conflict", r.message),
            },
            SwapError::NotFound(id) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no swap #{id}"))
            }
            e @ SwapError::Changed { .. } => {
                ApiError::new(StatusCode::CONFLICT, "stale", e.to_string())
            }
            SwapError::Store(e) => e.into(),
        }
    }
}

fn swaps(s: &Shared) -> Result<&Swaps, ApiError> {
    s.swaps.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "swaps are not served here",
        )
    })
}

/// A note or reason: at most [`MAX_NOTE`] characters, blank as none.
fn note(field: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
    match v.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()) {
        Some(n) if n.chars().count() > MAX_NOTE => Err(ApiError::bad_request(format!(
            "{field}: at most {MAX_NOTE} characters"
        ))),
        n => Ok(n),
    }
}

fn date(field: &str, v: &str) -> Result<jiff::civil::Date, ApiError> {
    v.parse()
        .map_err(|_| ApiError::bad_request(format!("{field} {v:?}: not a date (YYYY-MM-DD)")))
}

/// A swap as the API shows it: the record, with names.
fn view(s: &Shared, swap: &Swap) -> Value {
    let cfg = s.live.get();
    let name = |id: &str| cfg.roster.name_of(id).map(str::to_string);
    let mut v = serde_json::to_value(swap).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        o.insert("label".into(), json!(swap.label()));
        o.insert("replace_name".into(), json!(name(&swap.replace)));
        o.insert("with_name".into(), json!(name(&swap.with)));
        o.insert("by_name".into(), json!(name(&swap.by)));
    }
    v
}

fn id_of(v: &str) -> Result<u64, ApiError> {
    v.parse()
        .map_err(|_| ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no swap {v:?}")))
}

async fn list(State(s): State<Shared>, o: Officer) -> Result<Json<Value>, ApiError> {
    let sw = swaps(&s)?;
    let list: Vec<Value> = sw
        .visible(&o.member)
        .await?
        .iter()
        .map(|x| view(&s, x))
        .collect();
    let mine = sw.duties_of(&o.member).await?;
    Ok(Json(json!({
        "swaps": list,
        "duties": mine["duties"], "candidates": mine["candidates"],
        "approval": sw.settings.approval,
        "approver": o.member.has_any(&sw.settings.approvers),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskBody {
    /// The day whose duty is handed on (YYYY-MM-DD).
    day: String,
    /// The member asked to take it.
    with: String,
    note: Option<String>,
}

async fn ask(
    State(s): State<Shared>,
    o: Officer,
    Body(b): Body<AskBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let day = date("day", &b.day)?;
    let n = note("note", b.note)?;
    let swap = swaps(&s)?.ask(&o.member.id, &b.with, day, n, "api").await?;
    Ok((StatusCode::CREATED, Json(view(&s, &swap))))
}

async fn one(
    State(s): State<Shared>,
    o: Officer,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = id_of(&id)?;
    let swap = swaps(&s)?
        .one(id, &o.member)
        .await?
        .ok_or(SwapError::NotFound(id))?;
    Ok(Json(view(&s, &swap)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActBody {
    /// accept, decline, withdraw, approve, reject, cancel.
    action: String,
    note: Option<String>,
}

async fn act(
    State(s): State<Shared>,
    o: Officer,
    Path(id): Path<String>,
    Body(b): Body<ActBody>,
) -> Result<Json<Value>, ApiError> {
    let id = id_of(&id)?;
    let action = SwapAction::parse(&b.action).ok_or_else(|| {
        ApiError::bad_request(format!(
            "action {:?}: say accept, decline, withdraw, approve, reject or cancel",
            b.action
        ))
    })?;
    let n = note("note", b.note)?;
    let sw = swaps(&s)?;
    // A swap an officer may not see is not found (the board's roles see
    // every one; its members theirs, and are told why they may not act).
    if sw.one(id, &o.member).await?.is_none() {
        return Err(SwapError::NotFound(id).into());
    }
    let swap = sw.act(id, &o.member.id, action, n, "api").await?;
    Ok(Json(view(&s, &swap)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideBody {
    /// A unit or a member.
    replace: String,
    with: String,
    from: String,
    to: String,
    reason: Option<String>,
}

async fn put_in(
    State(s): State<Shared>,
    o: Officer,
    Body(b): Body<OverrideBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (from, to) = (date("from", &b.from)?, date("to", &b.to)?);
    let reason = note("reason", b.reason)?;
    let swap = swaps(&s)?
        .put_in(&o.member.id, &b.replace, &b.with, from, to, reason, "api")
        .await?;
    Ok((StatusCode::CREATED, Json(view(&s, &swap))))
}

pub(super) fn router() -> Router<Shared> {
    Router::new()
        .route("/swaps", get(list).post(ask))
        .route("/swaps/{id}", get(one).post(act))
        .route("/overrides", post(put_in))
}
