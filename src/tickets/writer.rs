//! The call path's ticket writer: one task that journals each operation
//! (fsynced, in batches) and then applies the journal to Redis in order.
//! While Redis is down or slow, calls go on and operations wait in the
//! journal; when it is back they are replayed in order, each once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::journal::{IntakeStep, Journal, Op};
use super::model::{Register, State};
use super::store::{Change, NewTicket, Store, StoreError};

/// How long to wait before trying Redis again after a failure.
const RETRY: Duration = Duration::from_secs(1);
/// How long a stopping gateway keeps trying to hand the journal to Redis.
const FINAL_DRAIN: Duration = Duration::from_secs(3);

/// What `/healthz` shows about the ticket store.
#[derive(Debug)]
pub struct TicketHealth {
    pub redis_ok: AtomicBool,
    /// Operations waiting in the journal.
    pub pending: AtomicUsize,
}

/// An operation, and who waits to learn the ticket number it concerns.
struct Msg {
    op: Op,
    reply: Option<oneshot::Sender<String>>,
}

/// The handle call tasks use; cheap to clone.
#[derive(Clone)]
pub struct Tickets {
    tx: mpsc::Sender<Msg>,
    pub health: Arc<TicketHealth>,
}

impl Tickets {
    /// Starts the writer. It stops when every handle is dropped, after a
    /// last bounded attempt to empty the journal.
    pub fn spawn(store: Store, journal: Journal) -> (Tickets, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(8192);
        let health = Arc::new(TicketHealth {
            redis_ok: AtomicBool::new(true),
            pending: AtomicUsize::new(journal.len()),
        });
        let task = tokio::spawn(run(store, journal, rx, health.clone()));
        (Tickets { tx, health }, task)
    }

    /// Queues an operation; never waits on Redis.
    pub async fn submit(&self, op: Op) {
        if self.tx.send(Msg { op, reply: None }).await.is_err() {
            tracing::error!("ticket writer is gone; operation lost");
        }
    }

    /// Queues an operation; the receiver gets the ticket number once it has
    /// reached Redis (it is dropped if that does not happen).
    pub async fn submit_for_number(&self, op: Op) -> oneshot::Receiver<String> {
        let (tx, rx) = oneshot::channel();
        if self
            .tx
            .send(Msg {
                op,
                reply: Some(tx),
            })
            .await
            .is_err()
        {
            tracing::error!("ticket writer is gone; operation lost");
        }
        rx
    }
}

/// Who waits for which operation's ticket number, by op id.
type Waiters = HashMap<String, oneshot::Sender<String>>;

async fn run(
    store: Store,
    mut journal: Journal,
    mut rx: mpsc::Receiver<Msg>,
    health: Arc<TicketHealth>,
) {
    let mut retry_at: Option<Instant> = None;
    let mut waiters = Waiters::new();
    loop {
        if retry_at.is_none_or(|t| Instant::now() >= t) {
            retry_at = drain(&store, &mut journal, &health, &mut waiters)
                .await
                .then(|| Instant::now() + RETRY);
        }
        health.pending.store(journal.len(), Ordering::Relaxed);
        let retry = async {
            match retry_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(msg) => {
                    let mut batch = Vec::new();
                    let mut next = Some(msg);
                    while let Some(Msg { op, reply }) = next.take() {
                        if let Some(r) = reply {
                            waiters.retain(|_, w| !w.is_closed());
                            waiters.insert(op.id().to_string(), r);
                        }
                        batch.push(op);
                        if batch.len() < 512 {
                            next = rx.try_recv().ok();
                        }
                    }
                    // fsync off the runtime's threads (they run the media clocks).
                    let (j, batch, appended) = tokio::task::spawn_blocking(move || {
                        let r = journal.append(&batch);
                        (journal, batch, r)
                    })
                    .await
                    .expect("journal append does not panic");
                    journal = j;
                    if let Err(e) = appended {
                        // A full or broken disk: Redis is the only copy now.
                        tracing::error!(error = %e, ops = batch.len(), "cannot write the ticket journal");
                        for op in &batch {
                            if let Err(e) = apply(&store, op).await.map(|n| answer(&mut waiters, op, n)) {
                                tracing::error!(error = %e, call_id = op.call_id(), "ticket operation lost");
                            }
                        }
                    }
                }
                None => break,
            },
            _ = retry => {}
        }
    }
    // Every handle is gone: one last bounded try.
    let _ = tokio::time::timeout(
        FINAL_DRAIN,
        drain(&store, &mut journal, &health, &mut waiters),
    )
    .await;
    if !journal.is_empty() {
        tracing::warn!(
            pending = journal.len(),
            "stopping with ticket operations in the journal; they are applied at the next start"
        );
    }
}

/// Journal entries applied at once: those of different calls
/// concurrently (the connection pipelines them), each call's in order.
const BATCH: usize = 512;

/// Applies pending operations, each call's in order. Returns true when
/// Redis failed and the rest must wait (the batch stays in the journal:
/// what of it did reach Redis changes nothing the second time, by op id
/// and one ticket a Call-ID).
async fn drain(
    store: &Store,
    journal: &mut Journal,
    health: &TicketHealth,
    waiters: &mut Waiters,
) -> bool {
    let mut applied = 0usize;
    loop {
        let (entries, ops) = journal.front(BATCH);
        if entries == 0 {
            break;
        }
        // One lane per call, in journal order; the lanes run at once.
        let mut lanes: Vec<Vec<&Op>> = Vec::new();
        let mut lane_of: HashMap<&str, usize> = HashMap::new();
        for op in &ops {
            let i = *lane_of.entry(op.call_id()).or_insert_with(|| {
                lanes.push(Vec::new());
                lanes.len() - 1
            });
            lanes[i].push(op);
        }
        let lanes =
            futures::future::join_all(lanes.into_iter().map(|l| apply_lane(store, l))).await;
        let mut failed = None;
        for (done, error) in lanes {
            for (op, number) in done {
                answer(waiters, op, number);
            }
            failed = failed.or(error);
        }
        if let Some(e) = failed {
            if health.redis_ok.swap(false, Ordering::Relaxed) {
                tracing::warn!(error = %e, pending = journal.len(), "redis unavailable: ticket operations wait in the journal");
            }
            return true;
        }
        if let Err(e) = journal.advance_by(entries) {
            tracing::error!(error = %e, "cannot record journal progress");
        }
        applied += entries;
    }
    if !health.redis_ok.swap(true, Ordering::Relaxed) {
        tracing::info!(replayed = applied, "redis back: journal applied");
    }
    false
}

/// One call's operations in order: the numbers they gave, and the Redis
/// failure that stopped the lane, if one did.
async fn apply_lane<'a>(
    store: &Store,
    lane: Vec<&'a Op>,
) -> (Vec<(&'a Op, String)>, Option<StoreError>) {
    let mut done = Vec::new();
    for op in lane {
        match apply(store, op).await {
            Ok(number) => done.push((op, number)),
            Err(e) if e.is_unavailable() => return (done, Some(e)),
            // Not Redis being away: this operation can never succeed.
            Err(e) => {
                tracing::error!(error = %e, call_id = op.call_id(), "ticket operation refused; skipped")
            }
        }
    }
    (done, None)
}

fn answer(waiters: &mut Waiters, op: &Op, number: String) {
    if let Some(w) = waiters.remove(op.id()) {
        let _ = w.send(number);
    }
}

/// True when the caller gave something to act on.
fn usable(r: &Register) -> bool {
    let i = &r.intake;
    i.category.is_some()
        || i.case_number.is_some()
        || i.whereabouts.is_some()
        || i.message_start_ms.is_some()
}

/// Applies one operation; returns the ticket's number.
async fn apply(store: &Store, op: &Op) -> Result<String, StoreError> {
    match op {
        Op::Created {
            call_id,
            call,
            at,
            caller,
            ..
        } => {
            let t = NewTicket {
                call_id: call_id.clone(),
                call: call.clone(),
                received_at: *at,
                register: Register {
                    caller: caller.clone(),
                    ..Default::default()
                },
            };
            let (number, created) = store.create(&t, "gateway").await?;
            if created {
                tracing::info!(ticket = %number, call_id = %call_id, "ticket created");
            }
            Ok(number)
        }
        Op::Intake { id, step, .. } => {
            let number = number_for(store, op).await?;
            let (action, details) = match step {
                IntakeStep::Category { category, urgent } => (
                    "intake_category",
                    serde_json::json!({"category": category, "urgent": urgent}),
                ),
                IntakeStep::CaseNumber { number } => (
                    "intake_case_number",
                    serde_json::json!({"case_number": number}),
                ),
                IntakeStep::MessageStarted { offset_ms } => (
                    "intake_message_started",
                    serde_json::json!({"offset_ms": offset_ms}),
                ),
                IntakeStep::MessageEnded { offset_ms } => (
                    "intake_message_ended",
                    serde_json::json!({"offset_ms": offset_ms}),
                ),
            };
            let mut change = Change::new("caller", action);
            change.op_id = Some(id.clone());
            change.details = details;
            // Violence at a scene opens the ticket at once: paging starts
            // before the caller has finished.
            if matches!(step, IntakeStep::Category { urgent: true, .. })
                && store.get(&number).await?.state == State::Intake
            {
                change.to = Some(State::Open);
            }
            let step = step.clone();
            let edit = move |r: &mut Register| {
                let i = &mut r.intake;
                match &step {
                    IntakeStep::Category { category, urgent } => {
                        i.category = Some(*category);
                        i.urgent |= *urgent;
                    }
                    IntakeStep::CaseNumber { number } => i.case_number = Some(number.clone()),
                    IntakeStep::MessageStarted { offset_ms } => {
                        i.message_start_ms = Some(*offset_ms)
                    }
                    IntakeStep::MessageEnded { offset_ms } => i.message_end_ms = Some(*offset_ms),
                }
            };
            change_or_record(store, &number, change, edit).await?;
            Ok(number)
        }
        Op::Recording {
            id,
            link,
            status,
            note,
            ..
        } => {
            let number = number_for(store, op).await?;
            let mut change = Change::new("gateway", "recording");
            change.op_id = Some(id.clone());
            change.details = serde_json::json!({
                "path": link.path, "duration_ms": link.duration_ms,
                "sha256": link.sha256, "status": status, "note": note,
            });
            let link = link.clone();
            store
                .change(&number, &change, move |r| r.recordings.push(link.clone()))
                .await?;
            Ok(number)
        }
        Op::CallEnded {
            id, seconds, how, ..
        } => {
            let number = number_for(store, op).await?;
            let current = store.get(&number).await?;
            let mut change = Change::new("gateway", "call_ended");
            change.op_id = Some(id.clone());
            change.details = serde_json::json!({ "seconds": seconds, "how": how });
            if current.state == State::Intake {
                change.to = Some(if usable(&current.register) {
                    State::Open
                } else {
                    State::Abandoned
                });
            }
            let (seconds, how) = (*seconds, how.clone());
            let edit = move |r: &mut Register| {
                r.intake.call_seconds = Some(seconds);
                r.intake.call_end = Some(how.clone());
            };
            change_or_record(store, &number, change, edit).await?;
            Ok(number)
        }
    }
}

/// Applies `change`; if someone moved the ticket on meanwhile so that its
/// transition is no longer legal, records the same change without one.
async fn change_or_record(
    store: &Store,
    number: &str,
    mut change: Change,
    edit: impl Fn(&mut Register),
) -> Result<(), StoreError> {
    match store.change(number, &change, &edit).await {
        Err(StoreError::Illegal { .. }) => {
            change.to = None;
            store.change(number, &change, &edit).await.map(drop)
        }
        r => r.map(drop),
    }
}

/// The ticket an operation is about: its call's, by the call's own id
/// (by the Call-ID for operations from before it).
async fn number_for(store: &Store, op: &Op) -> Result<String, StoreError> {
    let number = match op.call() {
        "" => store.number_for_call(op.call_id()).await?,
        call => store.number_for_dialog(call).await?,
    };
    number.ok_or_else(|| StoreError::NotFound(format!("for call {}", op.call_id())))
}
