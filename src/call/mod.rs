//! Calls: one task per call, the one place that joins a call's parts. The
//! manager takes [`CallEvent`]s from the SIP core, binds an RTP socket,
//! answers, and hands each call its own task; that task writes the call's
//! start and end log lines, and tells the ticket writer when the call was
//! confirmed (the ACK: a call that never is leaves no ticket) and how it
//! ended (never waiting on Redis). Once confirmed the call runs on a
//! [`leg::Leg`] (media, recording, keys, hold, `sip.max_call_seconds`) with
//! the intake as its script. A call the gateway places ([`outbound`]: a
//! page, a bridge's or a callback's officer, an informant, a follow-up) goes
//! out through [`dial`], then runs on a leg the same way with its script.

pub mod bridge;
pub mod callback;
pub mod dial;
pub mod follow_up;
pub mod leg;
pub mod outbound;
pub mod trunk;
pub mod web;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use leg::{Control, Driven, Leg, LegSetup};

use crate::media::ports::PortPool;
use crate::metrics::Metrics;
use crate::recording::{self, Recorder};
use crate::scripts::intake::{Intake, IntakeSettings, Offers, Update};
use crate::sip::core::{CallCommand, CallEvent, CallInfo, CallRef};
use crate::tickets::journal::{op_id, IntakeStep, Op};
use crate::tickets::model::{Caller, Category, RecordingLink};
use crate::tickets::Tickets;

/// What every call needs, shared.
pub struct CallContext {
    pub commands: mpsc::Sender<CallCommand>,
    pub ports: Arc<PortPool>,
    pub advertise_ip: Option<IpAddr>,
    /// Every prompt the intake may ask for, loaded once.
    /// The prompts in force: a call keeps those it started with.
    pub live: Arc<crate::live::Live>,
    pub intake: IntakeSettings,
    pub max_call: Duration,
    /// No RTP from the caller for this long ends the call.
    pub media_timeout: Duration,
    /// Seals the caller's identity before it leaves this task.
    pub caller_key: crate::privacy::CallerKey,
    pub recordings: std::path::PathBuf,
    pub metrics: Arc<Metrics>,
    pub tickets: Tickets,
    /// With `[bridge] enabled`: key 0 rings a person.
    pub bridging: Option<Arc<bridge::Bridging>>,
    /// With follow-up calls: key 9 at the end declines them.
    pub follow_up: bool,
}

/// Events for one call's task.
type CallTx = mpsc::Sender<CallEvent>;

/// Routes SIP call events to per-call tasks until the SIP core stops
/// (closing `events`), then waits for the calls to finish. It runs on the
/// SIP thread; the call tasks run on `calls_rt` (the main runtime).
pub async fn run(
    ctx: Arc<CallContext>,
    mut events: mpsc::Receiver<CallEvent>,
    calls_rt: tokio::runtime::Handle,
) {
    let mut calls: HashMap<CallRef, CallTx> = HashMap::new();
    let tasks = tokio_util::task::TaskTracker::new();
    while let Some(event) = events.recv().await {
        match event {
            CallEvent::Incoming { call, info, .. } => {
                let socket = match ctx
                    .ports
                    .bind_for(ctx.advertise_ip.unwrap_or(info.local_ip))
                {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(call_id = %info.call_id, error = %e, "refusing call");
                        let _ = ctx
                            .commands
                            .send(CallCommand::Reject {
                                call,
                                status: 503,
                                reason: "No Media Port Available",
                            })
                            .await;
                        continue;
                    }
                };
                let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
                let ip = ctx.advertise_ip.unwrap_or(info.local_ip);
                let rtp = SocketAddr::new(ip, port);
                let (tx, rx) = mpsc::channel(16);
                calls.insert(call, tx);
                tasks.spawn_on(call_task(ctx.clone(), call, info, socket, rx), &calls_rt);
                let _ = ctx.commands.send(CallCommand::Answer { call, rtp }).await;
            }
            CallEvent::Confirmed { call, .. }
            | CallEvent::MediaChanged { call, .. }
            | CallEvent::Info { call, .. } => {
                if let Some(tx) = calls.get(&call) {
                    let _ = tx.send(event).await;
                }
            }
            CallEvent::Ended { call, .. } => {
                if let Some(tx) = calls.remove(&call) {
                    let _ = tx.send(event).await;
                }
            }
        }
    }
    tasks.close();
    tasks.wait().await;
}

/// The caller as the log shows it: the number masked (rule 第二十条(三)).
fn caller(info: &CallInfo) -> String {
    match &info.caller_number {
        _ if info.privacy => "withheld".into(),
        Some(n) => crate::privacy::mask(n),
        None => "anonymous".into(),
    }
}

async fn call_task(
    ctx: Arc<CallContext>,
    call: CallRef,
    info: Box<CallInfo>,
    socket: crate::media::ports::RtpSocket,
    mut events: mpsc::Receiver<CallEvent>,
) {
    let started = Instant::now();
    let caller = caller(&info);
    // Until the ACK: nothing to do but wait. A call that is never confirmed
    // (no ACK, cancelled, a flood) leaves a log line and a counter, no
    // ticket: a ticket is for a call that happened.
    let media = loop {
        match events.recv().await {
            Some(CallEvent::Confirmed { media, .. }) => break media,
            Some(CallEvent::Ended { reason, .. }) => {
                tracing::info!(
                    call_id = %info.call_id,
                    caller = %caller,
                    source = %info.source,
                    ended = reason.as_str(),
                    "call not confirmed: no ticket"
                );
                return;
            }
            Some(_) => {}
            None => return,
        }
    };
    // Compared in clear before it is sealed: the partner's name goes on
    // the ticket, its number is sealed as anyone's.
    let partner = partner_of(&ctx.live.get(), &info);
    let seal = |v: &Option<String>| v.as_deref().map(|v| ctx.caller_key.seal(v));
    let answered = Answered {
        call,
        call_id: info.call_id.clone(),
        shown: caller,
        partner,
        caller: Caller {
            number: seal(&info.caller_number),
            asserted: info.number_asserted,
            display_name: seal(&info.caller_display),
            p_asserted_identity: seal(&info.p_asserted_identity),
            privacy: info.privacy,
            ..Default::default()
        },
        source: info.source,
        transport: info.transport.as_str(),
        started,
    };
    let leg = LegParts {
        control: Control::Answered(ctx.commands.clone()),
        events,
        socket,
        media,
        webrtc: None,
    };
    run_answered(&ctx, answered, leg, |_| {}).await;
}

/// The partner (`[partners]`) a call is from, by name: only when the
/// court's trunk asserted the number (`[sip] trusted`, docs/security.md);
/// a number the caller only claims is a public caller's, whoever it names.
fn partner_of(live: &crate::live::Loaded, info: &CallInfo) -> Option<String> {
    if !info.number_asserted {
        return None;
    }
    let (_, partner) = live.partners.find(info.caller_number.as_deref()?)?;
    Some(partner.name.clone())
}

/// A call that happened (confirmed: the ACK came, or a browser's path is
/// keyed): who it is from, as the log and the ticket take it.
pub(crate) struct Answered {
    call: CallRef,
    call_id: String,
    /// The caller as the log shows it (masked).
    shown: String,
    /// A partner's call (its name): no menu, the duty rung at once (never
    /// a browser's call: it has no asserted number).
    partner: Option<String>,
    /// As the ticket keeps it: sealed.
    caller: Caller,
    source: SocketAddr,
    /// `UDP`, `TCP`, `TLS`, `web`.
    transport: &'static str,
    /// When it was offered.
    started: Instant,
}

/// What its leg is made of.
pub(crate) struct LegParts {
    control: Control,
    events: mpsc::Receiver<CallEvent>,
    socket: crate::media::ports::RtpSocket,
    media: crate::sip::sdp::Media,
    webrtc: Option<crate::media::webrtc::WebRtc>,
}

/// The life of a call from the moment it happened: its ticket (keyed by
/// an id of its own: a Call-ID used again, by mistake or on purpose, is
/// another call with another ticket), the recording, the intake on its
/// leg, its end on the ticket. `numbered` hears the ticket's number (or
/// `unnumbered`) before the intake starts.
pub(crate) async fn run_answered(
    ctx: &CallContext,
    a: Answered,
    leg: LegParts,
    numbered: impl FnOnce(&str),
) {
    let answered = Instant::now();
    let ids = Ids {
        call_id: a.call_id.clone(),
        call: op_id(),
    };
    let number = ctx
        .tickets
        .submit_for_number(Op::Created {
            id: op_id(),
            call_id: ids.call_id.clone(),
            call: ids.call.clone(),
            at: jiff::Timestamp::now(),
            caller: a.caller.clone(),
        })
        .await;
    log_start(ctx, &a, &leg);

    // The recording's name carries the ticket number when Redis gave one
    // in time; the manifest and the ticket link carry the Call-ID anyway.
    let number = tokio::time::timeout(NUMBER_WAIT, number)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_else(|| "unnumbered".to_string());
    numbered(&number);
    let recorder = start_recording(ctx, &ids, &number).await;
    let known = (number != "unnumbered").then(|| number.clone());
    let mut leg = Leg::start(LegSetup {
        call: a.call,
        call_id: a.call_id.clone(),
        control: leg.control,
        events: leg.events,
        socket: leg.socket,
        media: leg.media,
        peer: a.source.ip(),
        media_timeout: ctx.media_timeout,
        hang_up_at: Some(answered + ctx.max_call),
        // The prompts this call plays to its end, whatever a reload brings.
        live: ctx.live.get(),
        recorder,
        webrtc: leg.webrtc,
    });
    let offers = Offers {
        person: ctx.bridging.is_some(),
        follow_up_opt_out: ctx.follow_up,
        partner: a.partner.is_some(),
    };
    let mut intake = Intake::new(ctx.intake.clone(), known, offers);
    let partner = a.partner.as_deref();
    let ended = take_call(ctx, &mut leg, &mut intake, &ids, partner).await;
    let (stats, recording) = leg.finish().await;
    count_media(&ctx.metrics, &stats);
    log_end(&a, answered, ended.how, stats);
    self::ended(ctx, &ids, answered.elapsed().as_secs_f64(), ended.how).await;
    if let Some(done) = recording {
        recorded(ctx, &ids, done).await;
    }
}

/// The call's start line, and the count of calls over SRTP.
fn log_start(ctx: &CallContext, a: &Answered, leg: &LegParts) {
    let srtp = leg.media.srtp.is_some() || leg.webrtc.is_some();
    // A browser's address is the caller's own: masked, as a number is.
    let source = match a.transport {
        "web" => crate::sip::admission::mask_ip(a.source.ip()),
        _ => a.source.to_string(),
    };
    tracing::info!(
        call_id = %a.call_id,
        caller = %a.shown,
        partner = a.partner.as_deref(),
        source = %source,
        transport = a.transport,
        srtp,
        "call started"
    );
    if srtp {
        crate::metrics::Metrics::inc(&ctx.metrics.srtp_calls);
    }
}

/// The call's recorder; without one (the disk refused) the call goes on
/// and its ticket says the recording failed.
async fn start_recording(ctx: &CallContext, ids: &Ids, number: &str) -> Option<Recorder> {
    let path = recording::path_for(
        &ctx.recordings,
        jiff::Timestamp::now(),
        number,
        &ids.call_id,
    );
    match leg::record(path.clone(), &ids.call_id, number).await {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!(call_id = %ids.call_id, path = %path.display(), error = %e, "cannot start the recording; the call goes on");
            recording_failed(ctx, ids, &path, &e.to_string()).await;
            None
        }
    }
}

/// The intake on the leg to the call's end; when the caller wants a
/// person (a partner: at once), the bridge rings one, and the intake takes
/// the call back when nobody is reached.
async fn take_call(
    ctx: &CallContext,
    leg: &mut Leg,
    intake: &mut Intake,
    ids: &Ids,
    partner: Option<&str>,
) -> leg::Ended {
    loop {
        let mut steps = IntakeSteps { ctx, ids, partner };
        match leg.drive(intake, &mut steps).await {
            Driven::Ended(e) => return e,
            Driven::HandedOver => {
                let person = match ctx.bridging.as_deref() {
                    Some(b) => {
                        let need = match intake.violence() {
                            true => bridge::Need::Violence,
                            false => bridge::Need::Other,
                        };
                        bridge::person(ctx, b, leg, ids, need, partner).await
                    }
                    None => bridge::Person::NotReached,
                };
                match person {
                    bridge::Person::Ended(e) => return e,
                    bridge::Person::NotReached => intake.no_person(),
                }
            }
        }
    }
}

/// A finished call's media counts into the gateway's totals.
fn count_media(metrics: &Metrics, stats: &crate::media::rtp::MediaStats) {
    for (counter, n) in [
        (&metrics.rtp_sent, stats.sent),
        (&metrics.rtp_received, stats.received),
        (
            &metrics.rtp_dropped,
            stats.dropped + stats.duplicates + stats.late,
        ),
        (&metrics.rtp_panics, stats.panics),
        (&metrics.srtp_auth_failed, stats.srtp_failed),
    ] {
        counter.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Which call an operation is about: its Call-ID, and its own id (the
/// ticket's key).
pub(crate) struct Ids {
    call_id: String,
    call: String,
}

/// The intake's updates go on the call's ticket as they happen; message
/// marks are offsets into the recording; a partner's category names it.
struct IntakeSteps<'a> {
    ctx: &'a CallContext,
    ids: &'a Ids,
    partner: Option<&'a str>,
}

impl leg::Updates<Update> for IntakeSteps<'_> {
    async fn update(&mut self, update: Update, offset_ms: u64) {
        let (ctx, ids) = (self.ctx, self.ids);
        let step = match (update, self.partner) {
            (
                Update::Category {
                    category: Category::Partner,
                    person,
                    ..
                },
                Some(name),
            ) => IntakeStep::Partner {
                name: name.to_string(),
                person,
            },
            (
                Update::Category {
                    category,
                    urgent,
                    person,
                },
                _,
            ) => IntakeStep::Category {
                category,
                urgent,
                person,
            },
            (Update::CaseNumber(number), _) => IntakeStep::CaseNumber { number },
            (Update::MessageStarted, _) => IntakeStep::MessageStarted { offset_ms },
            (Update::MessageEnded, _) => IntakeStep::MessageEnded { offset_ms },
            (Update::NoFollowUp, _) => IntakeStep::NoFollowUp,
        };
        tracing::info!(call_id = %ids.call_id, ?step, "intake");
        ctx.tickets
            .submit(Op::Intake {
                id: op_id(),
                call_id: ids.call_id.clone(),
                call: ids.call.clone(),
                at: jiff::Timestamp::now(),
                step,
            })
            .await;
    }
}

/// How long the call waits for its ticket number before naming the
/// recording without one (Redis slow or down).
const NUMBER_WAIT: Duration = Duration::from_millis(500);

async fn ended(ctx: &CallContext, ids: &Ids, seconds: f64, how: &str) {
    ctx.tickets
        .submit(Op::CallEnded {
            id: op_id(),
            call_id: ids.call_id.clone(),
            call: ids.call.clone(),
            at: jiff::Timestamp::now(),
            seconds: (seconds * 10.0).round() / 10.0,
            how: how.to_string(),
        })
        .await;
}

/// Links a recording on the ticket (its hash goes to the timeline), or
/// notes why there is none.
async fn link_recording(
    tickets: &Tickets,
    ids: &Ids,
    path: &std::path::Path,
    duration_ms: u64,
    sha256: String,
    status: &str,
    note: Option<String>,
) {
    tickets
        .submit(Op::Recording {
            id: op_id(),
            call_id: ids.call_id.clone(),
            call: ids.call.clone(),
            at: jiff::Timestamp::now(),
            link: RecordingLink::new(path, duration_ms, sha256),
            status: status.to_string(),
            note,
        })
        .await;
}

async fn recorded(ctx: &CallContext, ids: &Ids, done: recording::Finished) {
    tracing::info!(call_id = %ids.call_id, path = %done.path.display(), duration_ms = done.duration_ms, sha256 = %done.sha256, "recording finished");
    let status = done.status.as_str();
    link_recording(
        &ctx.tickets,
        ids,
        &done.path,
        done.duration_ms,
        done.sha256,
        status,
        done.problem,
    )
    .await;
}

async fn recording_failed(ctx: &CallContext, ids: &Ids, path: &std::path::Path, error: &str) {
    link_recording(
        &ctx.tickets,
        ids,
        path,
        0,
        String::new(),
        "failed",
        Some(error.to_string()),
    )
    .await;
}

fn log_end(a: &Answered, answered: Instant, how: &str, stats: crate::media::rtp::MediaStats) {
    tracing::info!(
        call_id = %a.call_id,
        caller = %a.shown,
        duration_s = format!("{:.1}", answered.elapsed().as_secs_f64()),
        setup_ms = (answered - a.started).as_millis() as u64,
        ended = how,
        rtp_sent = stats.sent,
        rtp_received = stats.received,
        rtp_dropped = stats.dropped,
        rtp_late = stats.late,
        srtp_failed = stats.srtp_failed,
        "call ended"
    );
}

/// A recording repaired at start-up: linked on its ticket with a note.
pub async fn note_recovered(tickets: &Tickets, r: recording::repair::Recovered) {
    let m = r.manifest;
    if m.call_id.is_empty() {
        // A WAV whose manifest never got written: no call to put it on.
        return;
    }
    let duration_ms = m.samples * 1000 / u64::from(recording::RATE);
    let sha256 = m.sha256.unwrap_or_default();
    // Its call's own id was never written down: the newest ticket of
    // its Call-ID.
    let ids = Ids {
        call_id: m.call_id,
        call: String::new(),
    };
    link_recording(
        tickets,
        &ids,
        &r.wav,
        duration_ms,
        sha256,
        m.status.as_str(),
        m.note,
    )
    .await;
}
