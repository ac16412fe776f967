//! The reward register (rule 第二十条(四)): the director rates a closed lead
//! (有价值 / 一般 / 无效) and may propose a reward; the chief commander or a
//! deputy (not the proposer) approves or refuses it (`tickets::actions`).
//! `GET /rewards?from&to` lists the rated leads of those days for the
//! board's roles; the informant (the caller in clear) only for the reveal
//! roles; every listing goes on each listed ticket's timeline. `format=xlsx`
//! gives the same list as a workbook (Chinese headers, dates as dates,
//! members by the roster's names).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::{ApiError, Body, Officer, Params, Shared};
use crate::tickets::actions;
use crate::tickets::labels;
use crate::tickets::model::LeadValue;
use crate::tickets::{stats, xlsx};

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
    /// `json` (the default) or `xlsx`.
    format: Option<String>,
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
) -> Result<Response, ApiError> {
    o.require_board("the reward register")?;
    let (from, to, start, end) = stats::days(&q.from, &q.to).map_err(ApiError::bad_request)?;
    let xlsx = match q.format.as_deref() {
        None | Some("json") => false,
        Some("xlsx") => true,
        Some(f) => {
            return Err(ApiError::bad_request(format!(
                "format {f:?} is not json or xlsx"
            )))
        }
    };
    let live = s.live.get();
    let name = |m: &str| live.roster.name_of(m).unwrap_or(m).to_string();
    let mut rows = Vec::new();
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
        rows.push(sheet_row(&t, reward, informant.as_deref(), &name));
        out.push(serde_json::json!({
            "ticket": t.number,
            "received_at": t.received_at,
            "category": t.register.intake.category,
            "reward": reward,
            "informant": informant,
        }));
    }
    if !xlsx {
        return Ok(Json(out).into_response());
    }
    let columns = xlsx::columns(&[
        ("工单号", 14.0),
        ("接报时间", 20.0),
        ("类别", 18.0),
        ("线索价值", 10.0),
        ("建议奖励（元）", 14.0),
        ("评价人", 10.0),
        ("评价时间", 20.0),
        ("审批", 8.0),
        ("审批人", 10.0),
        ("审批时间", 20.0),
        ("举报人", 16.0),
    ]);
    let book = xlsx::workbook(&[xlsx::Sheet {
        name: "奖励登记",
        columns,
        rows,
    }])
    .map_err(ApiError::internal)?;
    Ok(super::stats::download(
        super::stats::XLSX,
        format!("rewards-{from}-{to}.xlsx"),
        book,
    ))
}

/// One rated lead as a row of the reward register's sheet.
fn sheet_row(
    t: &crate::tickets::Ticket,
    reward: &crate::tickets::model::Reward,
    informant: Option<&str>,
    name: &dyn Fn(&str) -> String,
) -> Vec<xlsx::Cell> {
    use xlsx::Cell;
    let d = reward.decision.as_ref();
    vec![
        Cell::Text(t.number.clone()),
        Cell::At(t.received_at),
        Cell::Text(
            t.register
                .intake
                .category
                .map_or(labels::NO_CATEGORY, labels::category)
                .into(),
        ),
        Cell::Text(labels::lead_value(reward.value).into()),
        reward
            .amount_yuan
            .map_or(Cell::Empty, |a| Cell::Number(f64::from(a))),
        Cell::Text(name(&reward.rated_by)),
        Cell::At(reward.rated_at),
        d.map_or(Cell::Text("待审批".into()), |d| {
            Cell::Text(if d.approved { "批准" } else { "不批准" }.into())
        }),
        d.map_or(Cell::Empty, |d| Cell::Text(name(&d.by))),
        d.map_or(Cell::Empty, |d| Cell::At(d.at)),
        Cell::text(informant),
    ]
}

pub(super) fn router() -> Router<Shared> {
    Router::new()
        .route("/rewards", get(register))
        .route("/tickets/{number}/reward", post(rate))
        .route("/tickets/{number}/reward/decision", post(decide))
}
