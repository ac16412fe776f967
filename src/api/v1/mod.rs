//! `/api/v1`: officers log in, see the tickets paged to them, their unit or
//! their cases, and move them on (签收, 出警, arrival, closing). One file per
//! resource, each with its routes: `login` (and a page's link),
//! `tickets`, `deadlines` (a
//! consultation's answer, a property lead's mark and check), `recordings`,
//! `events`, `watch`, `swaps` (swaps and overrides of the duty), `calendar`
//! (the duty as iCalendar); what they share: `error` (`{"error": code, "message": text}`)
//! and `extract` (bodies, queries, the logged-in officer). Handlers call the
//! domain's actions (`tickets::actions`) and the store; the state machine
//! and the version checks are the store's.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use jiff::Timestamp;

use crate::privacy::CallerKey;
use crate::tickets::Store;

mod activities;
mod board;
mod calendar;
mod deadlines;
mod error;
mod events;
mod extract;
mod login;
mod recordings;
mod rewards;
mod stats;
mod swaps;
mod tickets;
mod watch;

pub(crate) use calendar::ics as calendar_answer;
pub use error::ApiError;
pub use events::Streams;
pub use extract::{AnySession, Body, Client, Officer, OnTicket, Params};

/// What the API needs.
pub struct V1 {
    pub store: Store,
    /// The roster and calendars in force (a request takes them as they are).
    pub live: Arc<crate::live::Live>,
    pub caller_key: CallerKey,
    /// Roles that may reveal a caller (rule 第二十条(三)).
    pub reveal_roles: Vec<crate::roster::Role>,
    /// Cancelled when the gateway stops: event streams end.
    pub stop: tokio_util::sync::CancellationToken,
    /// Event streams open, per member.
    pub streams: Streams,
    /// `[http] trusted_proxies`: whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<crate::sip::admission::Cidr>,
    /// Officers' callbacks to informants (回拨).
    pub callbacks: Option<Arc<crate::call::callback::Callbacks>>,
    /// How many callbacks a day allows, per ticket and per member.
    pub callback_limits: crate::tickets::actions::CallbackLimits,
    /// `[http] member_failures_per_hour`: a member's failed logins before
    /// they slow down.
    pub member_failures_per_hour: u32,
    /// The members' text channels, for telling a member (and the director)
    /// that their logins are failing.
    pub notices: Option<crate::paging::channels::Channels>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The channel watch: the board's part, on-demand webhook tests.
    pub watch: Option<Arc<crate::watch::Watcher>>,
    /// `[http] page_link_minutes`: how long the session a page's link
    /// opens lasts.
    pub page_link_lifetime: std::time::Duration,
    /// Swaps and overrides of the duty, and the calendar feed's reach.
    pub swaps: Option<Arc<crate::swaps::Swaps>>,
    /// `[transcribe] enabled`: off, a transcript asked for is refused
    /// (nothing would take the job).
    pub transcribe: bool,
}

type Shared = Arc<V1>;

/// Who is on duty now (contacts included; the officers need them).
async fn roster_now(
    State(s): State<Shared>,
    _o: Officer,
) -> Result<Json<crate::roster::OnDuty>, ApiError> {
    let offset = s.store.rotation_offset().await?;
    let cfg = s.live.get();
    Ok(Json(cfg.roster.resolve(
        &cfg.calendar,
        offset,
        Timestamp::now(),
        None,
    )))
}

pub fn router(v1: Shared) -> Router {
    Router::new()
        .merge(login::router())
        .merge(tickets::router())
        .merge(deadlines::router())
        .merge(recordings::router())
        .merge(events::router())
        .merge(stats::router())
        .merge(activities::router())
        .merge(rewards::router())
        .merge(board::router())
        .merge(watch::router())
        .merge(swaps::router())
        .merge(calendar::router())
        .route("/roster/now", get(roster_now))
        .with_state(v1)
}
