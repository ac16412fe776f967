//! The call path's ticket writer: one task that journals each operation
//! (fsynced, in batches) and then applies the journal to Redis in order.
//! While Redis is down or slow, calls go on and operations wait in the
//! journal; when it is back they are replayed in order, each once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::collections::{HashMap, VecDeque};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::journal::{ConnectionStep, IntakeStep, Journal, Op};
use super::model::Change;
use super::model::{Caller, Category, RecordingLink, Register, State};
use super::store::{NewTicket, Store, StoreError};

/// How long to wait before trying Redis again after a failure.
const RETRY: Duration = Duration::from_secs(1);
/// How long a stopping gateway keeps trying to hand the journal to Redis.
const FINAL_DRAIN: Duration = Duration::from_secs(3);

/// What `/healthz` shows about the ticket store.
#[derive(Debug)]
pub struct TicketHealth {
    pub redis_ok: AtomicBool,
    /// The journal takes operations (false: a full or broken disk, and
    /// they wait in memory).
    pub journal_ok: AtomicBool,
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
        let (tickets, writer) = Tickets::start(store, journal);
        (tickets, tokio::spawn(writer))
    }

    /// As [`Tickets::spawn`], the writer left for the caller to run.
    pub fn start(
        store: Store,
        journal: Journal,
    ) -> (
        Tickets,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        Tickets::start_transcribing(store, journal, false)
    }

    /// As [`Tickets::start`]; with `transcribe`, each call's recording,
    /// once on its ticket, is queued for its transcript (`crate::transcribe`).
    pub fn start_transcribing(
        store: Store,
        journal: Journal,
        transcribe: bool,
    ) -> (
        Tickets,
        impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let (tx, rx) = mpsc::channel(8192);
        let health = Arc::new(TicketHealth {
            redis_ok: AtomicBool::new(true),
            journal_ok: AtomicBool::new(true),
            pending: AtomicUsize::new(journal.len()),
        });
        let writer = run(store, journal, rx, health.clone(), transcribe);
        (Tickets { tx, health }, writer)
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

/// Operations held in memory while the journal cannot take them (a full
/// or broken disk), at most; they keep their place behind the journal's.
const HELD_MAX: usize = 100_000;

/// What waits for Redis, in order: the journal's entries, then what the
/// journal could not take.
struct Queue {
    journal: Journal,
    held: VecDeque<Op>,
    /// The journal is past half its bound (warned once per crossing).
    half_full: bool,
}

impl Queue {
    fn len(&self) -> usize {
        self.journal.len() + self.held.len()
    }

    /// Journals `batch` behind what is held (fsync off the runtime's
    /// threads: they run the media clocks); what the journal refuses is
    /// held, in order.
    async fn append(mut self, batch: Vec<Op>, health: &TicketHealth) -> Queue {
        let mut ops: Vec<Op> = self.held.drain(..).collect();
        ops.extend(batch);
        if ops.is_empty() {
            return self;
        }
        let journal = self.journal;
        let (journal, ops, appended) = tokio::task::spawn_blocking(move || {
            let mut journal = journal;
            let r = journal.append(&ops);
            (journal, ops, r)
        })
        .await
        .expect("journal append does not panic");
        self.journal = journal;
        match appended {
            Ok(()) => {
                if !health.journal_ok.swap(true, Ordering::Relaxed) {
                    tracing::info!("the ticket journal takes operations again");
                }
            }
            Err(e) => {
                if health.journal_ok.swap(false, Ordering::Relaxed) {
                    tracing::error!(error = %e, "cannot write the ticket journal: operations wait in memory, in order, and calls go on");
                }
                self.held = ops.into();
                if self.held.len() > HELD_MAX {
                    let lost = self.held.len() - HELD_MAX;
                    self.held.truncate(HELD_MAX);
                    tracing::error!(
                        lost,
                        "ticket operations lost: the journal and the memory bound are full"
                    );
                }
            }
        }
        let half = self.journal.bytes() > self.journal.limit() / 2;
        if half && !self.half_full {
            tracing::warn!(
                bytes = self.journal.bytes(),
                limit = self.journal.limit(),
                "the ticket journal is past half its bound: is Redis reachable?"
            );
        }
        self.half_full = half;
        self
    }
}

async fn run(
    store: Store,
    journal: Journal,
    mut rx: mpsc::Receiver<Msg>,
    health: Arc<TicketHealth>,
    transcribe: bool,
) {
    let mut retry_at: Option<Instant> = None;
    let mut waiters = Waiters::new();
    let mut queue = Queue {
        journal,
        held: VecDeque::new(),
        half_full: false,
    };
    loop {
        if retry_at.is_none_or(|t| Instant::now() >= t) {
            // What is held tries the journal again first.
            queue = queue.append(Vec::new(), &health).await;
            retry_at = drain(&store, &mut queue, &health, &mut waiters, transcribe)
                .await
                .then(|| Instant::now() + RETRY);
        }
        if retry_at.is_none() && !queue.held.is_empty() {
            retry_at = Some(Instant::now() + RETRY);
        }
        health.pending.store(queue.len(), Ordering::Relaxed);
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
                    queue = queue.append(batch, &health).await;
                }
                None => break,
            },
            _ = retry => {}
        }
    }
    // Every handle is gone: one last bounded try.
    let _ = tokio::time::timeout(
        FINAL_DRAIN,
        drain(&store, &mut queue, &health, &mut waiters, transcribe),
    )
    .await;
    if !queue.journal.is_empty() {
        tracing::warn!(
            pending = queue.journal.len(),
            "stopping with ticket operations in the journal; they are applied at the next start"
        );
    }
    if !queue.held.is_empty() {
        tracing::error!(
            lost = queue.held.len(),
            "stopping with ticket operations the journal could not take: they are lost"
        );
    }
}

/// Journal entries applied at once: those of different calls
/// concurrently (the connection pipelines them), each call's in order.
const BATCH: usize = 512;

/// Applies what waits, in order: the journal's entries, then what is held
/// in memory. Returns true when Redis failed and the rest must wait (a
/// batch that failed stays where it was: what of it did reach Redis
/// changes nothing the second time, by op id and the call's own key).
async fn drain(
    store: &Store,
    queue: &mut Queue,
    health: &TicketHealth,
    waiters: &mut Waiters,
    transcribe: bool,
) -> bool {
    let mut applied = 0usize;
    let failed = loop {
        let (entries, ops) = queue.journal.front(BATCH);
        let held = entries == 0;
        let (entries, ops) = if held {
            let ops: Vec<Op> = queue.held.iter().take(BATCH).cloned().collect();
            (ops.len(), ops)
        } else {
            (entries, ops)
        };
        if entries == 0 {
            break None;
        }
        if let Some(e) = apply_batch(store, &ops, waiters, transcribe).await {
            break Some(e);
        }
        if held {
            queue.held.drain(..entries);
        } else if let Err(e) = queue.journal.advance_by(entries) {
            tracing::error!(error = %e, "cannot record journal progress");
        }
        applied += entries;
    };
    if let Some(e) = failed {
        if health.redis_ok.swap(false, Ordering::Relaxed) {
            tracing::warn!(error = %e, pending = queue.len(), "redis unavailable: ticket operations wait in the journal");
        }
        return true;
    }
    if !health.redis_ok.swap(true, Ordering::Relaxed) {
        tracing::info!(replayed = applied, "redis back: journal applied");
    }
    false
}

/// One batch: a lane per call, in order, the lanes at once; the first
/// Redis failure, if any (the numbers learnt are answered either way).
async fn apply_batch(
    store: &Store,
    ops: &[Op],
    waiters: &mut Waiters,
    transcribe: bool,
) -> Option<StoreError> {
    let mut lanes: Vec<Vec<&Op>> = Vec::new();
    let mut lane_of: HashMap<&str, usize> = HashMap::new();
    for op in ops {
        let i = *lane_of.entry(op.call_id()).or_insert_with(|| {
            lanes.push(Vec::new());
            lanes.len() - 1
        });
        lanes[i].push(op);
    }
    let lanes =
        futures::future::join_all(lanes.into_iter().map(|l| apply_lane(store, l, transcribe)))
            .await;
    let mut failed = None;
    for (done, error) in lanes {
        for (op, number) in done {
            answer(waiters, op, number);
        }
        failed = failed.or(error);
    }
    // Behind Sentinel a batch counts once a replica has it too: a master
    // that dies before passing it on must not take it along (replayed, it
    // changes nothing where it did arrive).
    if failed.is_none() {
        failed = store.replicated().await.err();
    }
    failed
}

/// One call's operations in order: the numbers they gave, and the Redis
/// failure that stopped the lane, if one did.
async fn apply_lane<'a>(
    store: &Store,
    lane: Vec<&'a Op>,
    transcribe: bool,
) -> (Vec<(&'a Op, String)>, Option<StoreError>) {
    let mut done = Vec::new();
    for op in lane {
        match apply(store, op, transcribe).await {
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
async fn apply(store: &Store, op: &Op, transcribe: bool) -> Result<String, StoreError> {
    match op {
        Op::Created {
            call_id,
            call,
            at,
            caller,
            ..
        } => created(store, call_id, call, *at, caller).await,
        Op::Intake { id, step, .. } => {
            let number = number_for(store, op).await?;
            intake(store, &number, id, step).await?;
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
            recording(store, &number, id, link, status, note.as_deref()).await?;
            // The recording is final: its transcript waits its turn (a
            // replay finds it queued). The call never waits on it.
            if transcribe {
                store.enqueue_transcript(&number, &link.sha256).await?;
            }
            Ok(number)
        }
        Op::Connection { id, at, step, .. } => {
            let number = number_for(store, op).await?;
            connection(store, &number, id, *at, step).await?;
            Ok(number)
        }
        Op::CallEnded {
            id, seconds, how, ..
        } => {
            let number = number_for(store, op).await?;
            call_ended(store, &number, id, *seconds, how).await?;
            Ok(number)
        }
    }
}

/// The call's ticket, created once (a replay finds the one it made).
async fn created(
    store: &Store,
    call_id: &str,
    call: &str,
    at: jiff::Timestamp,
    caller: &Caller,
) -> Result<String, StoreError> {
    let t = NewTicket {
        call_id: call_id.to_string(),
        call: call.to_string(),
        received_at: at,
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

/// One answer of the intake, on the timeline and in the register.
async fn intake(
    store: &Store,
    number: &str,
    id: &str,
    step: &IntakeStep,
) -> Result<(), StoreError> {
    let (action, details) = match step {
        IntakeStep::Category {
            category, urgent, ..
        } => (
            "intake_category",
            serde_json::json!({"category": category, "urgent": urgent}),
        ),
        IntakeStep::Partner { name, .. } => (
            "intake_partner",
            serde_json::json!({"category": Category::Partner, "urgent": true, "partner": name}),
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
        IntakeStep::NoFollowUp => ("intake_no_follow_up", serde_json::json!({})),
    };
    let mut change = Change::new("caller", action);
    change.op_id = Some(id.to_string());
    change.details = details;
    if opens_at_once(step) && store.get(number).await?.state == State::Intake {
        change.to = Some(State::Open);
    }
    let step = step.clone();
    let edit = move |r: &mut Register| {
        let i = &mut r.intake;
        match &step {
            IntakeStep::Category {
                category, urgent, ..
            } => {
                i.category = Some(*category);
                i.urgent |= *urgent;
            }
            IntakeStep::Partner { name, .. } => {
                i.category = Some(Category::Partner);
                i.urgent = true;
                i.partner = Some(name.clone());
            }
            IntakeStep::CaseNumber { number } => i.case_number = Some(number.clone()),
            IntakeStep::MessageStarted { offset_ms } => i.message_start_ms = Some(*offset_ms),
            IntakeStep::MessageEnded { offset_ms } => i.message_end_ms = Some(*offset_ms),
            IntakeStep::NoFollowUp => i.no_follow_up = true,
        }
    };
    change_or_record(store, number, change, edit).await
}

/// Whether an intake step opens the ticket while the caller is still on
/// the line, so that paging starts before the call ends. A ticket in the
/// intake opens:
/// - a violence report at once;
/// - a partner's (its own call, or chosen in the menu) at once when no
///   person is rung for it; else when that bridge ends: connected, it is
///   the member's 签收; not connected, it is paged at top priority while
///   the partner hears the promise (`connection`), never while the duty's
///   phones ring;
/// - anything else at the call's end (`call_ended`).
fn opens_at_once(step: &IntakeStep) -> bool {
    match step {
        IntakeStep::Category {
            category: Category::Violence,
            ..
        } => true,
        IntakeStep::Category {
            category: Category::Partner,
            person,
            ..
        }
        | IntakeStep::Partner { person, .. } => !person,
        _ => false,
    }
}

/// The call's recording, linked from the register.
async fn recording(
    store: &Store,
    number: &str,
    id: &str,
    link: &RecordingLink,
    status: &str,
    note: Option<&str>,
) -> Result<(), StoreError> {
    let mut change = Change::new("gateway", "recording");
    change.op_id = Some(id.to_string());
    change.details = serde_json::json!({
        "path": link.path, "duration_ms": link.duration_ms,
        "sha256": link.sha256, "status": status, "note": note,
    });
    let link = link.clone();
    store
        .change(number, &change, move |r| r.recordings.push(link.clone()))
        .await?;
    Ok(())
}

/// The call's end: its length and how it ended; a ticket still in the
/// intake opens, or is abandoned when the caller gave nothing to act on.
async fn call_ended(
    store: &Store,
    number: &str,
    id: &str,
    seconds: f64,
    how: &str,
) -> Result<(), StoreError> {
    let current = store.get(number).await?;
    let mut change = Change::new("gateway", "call_ended");
    change.op_id = Some(id.to_string());
    change.details = serde_json::json!({ "seconds": seconds, "how": how });
    if current.state == State::Intake {
        change.to = Some(if usable(&current.register) {
            State::Open
        } else {
            State::Abandoned
        });
    }
    let how = how.to_string();
    let edit = move |r: &mut Register| {
        r.intake.call_seconds = Some(seconds);
        r.intake.call_end = Some(how.clone());
    };
    change_or_record(store, number, change, edit).await
}

/// A bridge's or callback's step on the ticket: on its timeline, who was
/// connected and how long in the register; a bridge's connection is the
/// member's 签收 (the ticket opened first if the intake still runs); a
/// partner's bridge that connected nobody opens its ticket
/// ([`opens_at_once`]).
async fn connection(
    store: &Store,
    number: &str,
    id: &str,
    at: jiff::Timestamp,
    step: &ConnectionStep,
) -> Result<(), StoreError> {
    let (actor, action) = match step {
        ConnectionStep::Ringing { kind, .. } => ("gateway", format!("{kind}_ringing")),
        ConnectionStep::Connected { kind, member, .. } => {
            (member.as_str(), format!("{kind}_connected"))
        }
        ConnectionStep::Key { side, .. } => (side.as_str(), "bridge_key".to_string()),
        ConnectionStep::Ended { member, .. } => (member.as_str(), "connection_ended".to_string()),
        ConnectionStep::NotConnected { kind, .. } => ("gateway", format!("{kind}_not_connected")),
    };
    let mut change = Change::new(actor, &action);
    change.op_id = Some(id.to_string());
    change.details = serde_json::to_value(step).unwrap_or_default();
    let bridged = matches!(step, ConnectionStep::Connected { kind, .. } if kind == "bridge");
    let missed = matches!(step, ConnectionStep::NotConnected { kind, .. } if kind == "bridge");
    if bridged || missed {
        let t = store.get(number).await?;
        let partner = t.register.intake.category == Some(Category::Partner);
        if t.state == State::Intake && (bridged || partner) {
            change.to = Some(State::Open);
        }
    }
    // Whoever talked with the caller sees the ticket.
    if let ConnectionStep::Connected { member, .. } = step {
        change.index = vec![crate::tickets::model::Index::Member(member.clone()).name()];
    }
    let step2 = step.clone();
    let edit = move |r: &mut Register| match &step2 {
        ConnectionStep::Connected {
            kind,
            member,
            channel,
            ..
        } => r.connections.push(crate::tickets::model::Connection {
            kind: kind.clone(),
            member: member.clone(),
            channel: channel.clone(),
            connected_at: at,
            seconds: None,
            how: None,
        }),
        ConnectionStep::Ended {
            member,
            seconds,
            how,
            recording,
        } => {
            r.recordings.extend(recording.clone());
            if let Some(c) = r
                .connections
                .iter_mut()
                .rev()
                .find(|c| &c.member == member && c.seconds.is_none())
            {
                c.seconds = Some(*seconds);
                c.how = Some(how.clone());
            }
        }
        _ => {}
    };
    change_or_record(store, number, change, edit).await?;
    if let (true, ConnectionStep::Connected { member, .. }) = (bridged, step) {
        let ack = crate::tickets::actions::acknowledge(
            member,
            None,
            at,
            serde_json::json!({"via": "live bridge"}),
        );
        match store.act(number, &ack).await {
            Ok(_) | Err(StoreError::Illegal { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
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
    if let Op::Connection { ticket, .. } = op {
        if !ticket.is_empty() {
            return Ok(ticket.clone());
        }
    }
    let number = match op.call() {
        "" => store.number_for_call(op.call_id()).await?,
        call => store.number_for_dialog(call).await?,
    };
    number.ok_or_else(|| StoreError::NotFound(format!("for call {}", op.call_id())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violence_opens_at_once_and_a_partner_waits_for_the_bridge_rung_for_it() {
        let opens = |json: &str| opens_at_once(&serde_json::from_str(json).unwrap());
        assert!(opens(
            r#"{"step":"category","category":"violence","urgent":true,"person":true}"#
        ));
        assert!(!opens(
            r#"{"step":"partner","name":"辽宁路派出所","person":true}"#
        ));
        assert!(!opens(
            r#"{"step":"category","category":"partner","urgent":true,"person":true}"#
        ));
        // Nobody rung for it (no [bridge]), or a journal line from before
        // the field: at once.
        assert!(opens(r#"{"step":"partner","name":"辽宁路派出所"}"#));
        assert!(opens(
            r#"{"step":"category","category":"partner","urgent":true}"#
        ));
        assert!(!opens(
            r#"{"step":"category","category":"lead","urgent":false}"#
        ));
        assert!(!opens(
            r#"{"step":"category","category":"consultation","urgent":false}"#
        ));
    }
}
