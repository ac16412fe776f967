//! The triage at a ticket's opening, run by the paging worker at its first
//! look, before the escalation policy: the domain decides
//! (`tickets::triage`: handler, linked reports, a joined dispatch, the
//! deadlines that start at receipt, a consultation's lists); this finds the
//! earlier reports on the case through the store and writes the outcome as
//! one change (`triaged`), replayed at most once (its op id).

use jiff::{SignedDuration, Timestamp};

use crate::live::Loaded;
use crate::tickets::model::{Change, Index};
use crate::tickets::triage::{triage, Context, Route};
use crate::tickets::{Store, StoreError, Ticket};

/// How many earlier reports on one case the triage reads at most (the
/// newest).
const MAX_EARLIER: usize = 200;

/// Triages `t` at `now`: the ticket as it is afterwards.
pub async fn run(
    store: &Store,
    cfg: &Loaded,
    t: &Ticket,
    now: Timestamp,
) -> Result<Ticket, StoreError> {
    let earlier = match t.register.intake.case_number.as_deref() {
        Some(case) => {
            let days = i64::from(cfg.case_settings.link_days);
            let from = t
                .received_at
                .saturating_sub(SignedDuration::from_hours(24 * days))
                .unwrap_or(t.received_at);
            store
                .case_tickets(
                    case,
                    from.as_second(),
                    t.received_at.as_second(),
                    MAX_EARLIER,
                )
                .await?
        }
        None => Vec::new(),
    };
    let cx = Context {
        roster: &cfg.roster,
        calendar: &cfg.calendar,
        cases: &cfg.case_settings,
        partners: &cfg.partner_settings,
    };
    let d = triage(t, &earlier, &cx, now);
    let lists: Vec<String> = match &d.route {
        Route::Lists(lists) => lists.iter().map(Index::name).collect(),
        Route::Policy | Route::Joined => Vec::new(),
    };
    let tr = &d.triage;
    let mut c = Change::new("gateway", "triaged");
    c.op_id = Some(format!("triage:{}", t.number));
    c.details = serde_json::json!({
        "handler": tr.handler, "case_known": tr.case_known,
        "linked": tr.linked, "link_days": tr.link_days,
        "repeat_report": tr.repeat_report(),
        "joined": tr.joined, "joined_officers": tr.joined_officers,
        "pickup_by": d.pickup_by, "answer_by": d.answer_by, "lists": lists,
    });
    c.index = lists;
    tracing::info!(ticket = %t.number, handler = ?tr.handler, linked = tr.linked.len(), joined = ?tr.joined, "triaged");
    let (pickup, answer) = (d.pickup_by, d.answer_by);
    store
        .change(&t.number, &c, |r| {
            r.triage = d.triage.clone();
            if pickup.is_some() {
                r.deadlines.pickup_by = pickup;
            }
            if answer.is_some() {
                r.deadlines.answer_by = answer;
            }
        })
        .await?;
    store.get(&t.number).await
}
