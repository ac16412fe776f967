//! The reward register (rule 第二十条(四)): the director rates a closed lead
//! (有价值 / 一般 / 无效) and may propose a reward; the chief commander or a
//! deputy (not the proposer) approves or refuses it (`tickets::actions`).
//! `GET /rewards?from&to` lists the rated leads of those days for the
//! board's roles; the informant (the caller in clear) only for the reveal
//! roles; every listing goes on each listed ticket's timeline.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, Body, Officer, Params, Shared};
use crate::tickets::actions;
use crate::tickets::model::LeadValue;
use crate::tickets::stats;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateBody {
    value: LeadValue,
    amount_yuan: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    approved: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeQuery {
    from: String,
    to: String,
}

async fn rate(
    State(s): State<Shared>,
    o: Officer,
    Path(n): Path<String>,
    Body(b): Body<RateBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let t = super::tickets::visible(&s, &o, &n).await?;
    let a = actions::rate(
        &o.member,
        &t,
        b.value,
        b.amount_yuan,
        jiff::Timestamp::now(),
    )
    .map_err(ApiError::refused)?;
    s.store.act(&n, &a).await?;
    let t = s.store.get(&n).await?;
    Ok(Json(
        serde_json::json!({"ticket": n, "reward": t.register.reward}),
    ))
}

async fn decide(
    State(s): State<Shared>,
    o: Officer,
    Path(n): Path<String>,
    Body(b): Body<DecisionBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let t = super::tickets::visible(&s, &o, &n).await?;
    // The leaders' roles are the roster's ([leaders]): on the member.
    let now = jiff::Timestamp::now();
    let a = actions::decide_reward(&o.member, &t, b.approved, now).map_err(ApiError::refused)?;
    s.store.act(&n, &a).await?;
    let t = s.store.get(&n).await?;
    Ok(Json(
        serde_json::json!({"ticket": n, "reward": t.register.reward}),
    ))
}

async fn register(
    State(s): State<Shared>,
    o: Officer,
    Params(q): Params<RangeQuery>,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    o.require_board("the reward register")?;
    let (_, _, start, end) = stats::days(&q.from, &q.to).map_err(ApiError::bad_request)?;
    let reveal = actions::may_reveal(&o.member, &s.reveal_roles);
    let tickets = s
        .store
        .received_between(start, end, stats::MAX_TICKETS)
        .await?;
    let mut out = Vec::new();
    for t in tickets {
        let Some(reward) = &t.register.reward else {
            continue;
        };
        let c = &t.register.caller;
        let informant = match reveal && !c.privacy {
            true => c.number.as_deref().and_then(|v| s.caller_key.open(v)),
            false => None,
        };
        s.store
            .act(&t.number, &actions::reward_viewed(&o.member.id, reveal))
            .await?;
        out.push(serde_json::json!({
            "ticket": t.number,
            "received_at": t.received_at,
            "category": t.register.intake.category,
            "reward": reward,
            "informant": informant,
        }));
    }
    Ok(Json(out))
}

pub(super) fn router() -> Router<Shared> {
    Router::new()
        .route("/rewards", get(register))
        .route("/tickets/{number}/reward", post(rate))
        .route("/tickets/{number}/reward/decision", post(decide))
}
