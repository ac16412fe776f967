//! Calls: one task per call, the one place that joins a call's parts. The
//! manager takes [`CallEvent`]s from the SIP core, binds an RTP socket,
//! answers, and hands each call its own task; that task plays the greeting,
//! enforces `sip.max_call_seconds`, writes the call's start and end log
//! lines, and tells the ticket writer when the call was answered and how it
//! ended (never waiting on Redis). Recording and intake hang off this task
//! in later issues.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::media::ports::PortPool;
use crate::media::rtp::{MediaCommand, MediaEvent, Session};
use crate::media::Prompt;
use crate::metrics::Metrics;
use crate::sip::core::{CallCommand, CallEvent, CallInfo, CallRef, EndReason};
use crate::sip::sdp::Media;
use crate::tickets::journal::{op_id, Op};
use crate::tickets::model::Caller;
use crate::tickets::Tickets;

/// What every call needs, shared.
pub struct CallContext {
    pub commands: mpsc::Sender<CallCommand>,
    pub ports: PortPool,
    pub advertise_ip: Option<IpAddr>,
    pub greeting: Prompt,
    pub max_call: Duration,
    pub metrics: Arc<Metrics>,
    pub tickets: Tickets,
}

/// Events for one call's task.
type CallTx = mpsc::Sender<CallEvent>;

/// Routes SIP call events to per-call tasks until `shutdown`, then waits
/// for the calls to finish.
pub async fn run(
    ctx: Arc<CallContext>,
    mut events: mpsc::Receiver<CallEvent>,
    shutdown: CancellationToken,
) {
    let mut calls: HashMap<CallRef, CallTx> = HashMap::new();
    let tasks = tokio_util::task::TaskTracker::new();
    while let Some(event) = events.recv().await {
        match event {
            CallEvent::Incoming { call, info, media } => {
                let socket = match ctx.ports.bind() {
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
                tasks.spawn(call_task(
                    ctx.clone(),
                    call,
                    info,
                    media,
                    socket,
                    rx,
                    shutdown.clone(),
                ));
                let _ = ctx.commands.send(CallCommand::Answer { call, rtp }).await;
            }
            CallEvent::Confirmed { call, .. } | CallEvent::Info { call, .. } => {
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

/// The caller as the log shows it: the From URI, or "anonymous".
fn caller(info: &CallInfo) -> String {
    crate::sip::message::angle_uri(&info.from).unwrap_or_else(|| "anonymous".into())
}

async fn call_task(
    ctx: Arc<CallContext>,
    call: CallRef,
    info: Box<CallInfo>,
    offered: Option<Media>,
    socket: tokio::net::UdpSocket,
    mut events: mpsc::Receiver<CallEvent>,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    let caller = caller(&info);
    // Answered (the 200 is on its way): the call has a ticket from now on.
    ctx.tickets
        .submit(Op::Created {
            id: op_id(),
            call_id: info.call_id.clone(),
            at: jiff::Timestamp::now(),
            caller: Caller {
                number: info.caller_number.clone(),
                display_name: info.caller_display.clone(),
                p_asserted_identity: info.p_asserted_identity.clone(),
                privacy: info.privacy,
            },
        })
        .await;
    tracing::info!(
        call_id = %info.call_id,
        caller = %caller,
        source = %info.source,
        transport = info.transport.as_str(),
        "call started"
    );
    // Until the ACK: nothing to do but wait.
    let media = loop {
        match events.recv().await {
            Some(CallEvent::Confirmed { media, .. }) => break Some(media),
            Some(CallEvent::Ended { reason, .. }) => {
                log_end(&info, &caller, started, None, &reason, Default::default());
                ended(&ctx, &info, 0.0, reason.as_str()).await;
                return;
            }
            Some(_) => {}
            None => break None,
        }
    };
    let media = media.or(offered).expect("confirmed calls carry media");
    let answered = Instant::now();
    let stop = shutdown.child_token();
    let (media_tx, media_rx) = mpsc::channel(8);
    let (media_ev_tx, mut media_ev_rx) = mpsc::channel(8);
    let session = Session::new(socket, &media);
    let media_task = tokio::spawn(session.run(media_rx, media_ev_tx, stop.clone()));
    let _ = media_tx
        .send(MediaCommand::Play(ctx.greeting.clone()))
        .await;

    let deadline = answered + ctx.max_call;
    let mut hung_up = false;
    let reason = loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(CallEvent::Ended { reason, .. }) => break reason,
                Some(CallEvent::Info { content_type, .. }) => {
                    tracing::debug!(call_id = %info.call_id, ?content_type, "INFO in call");
                }
                Some(_) => {}
                None => break EndReason::Shutdown,
            },
            Some(ev) = media_ev_rx.recv() => match ev {
                MediaEvent::PlayFinished { frames } => {
                    tracing::debug!(call_id = %info.call_id, frames, "greeting played");
                }
            },
            _ = tokio::time::sleep_until(deadline), if !hung_up => {
                tracing::info!(call_id = %info.call_id, max_call_seconds = ctx.max_call.as_secs(), "call reached its maximum length: hanging up");
                hung_up = true;
                let _ = ctx.commands.send(CallCommand::Hangup { call }).await;
            }
        }
    };
    stop.cancel();
    let stats = media_task.await.unwrap_or_default();
    ctx.metrics
        .rtp_sent
        .fetch_add(stats.sent, std::sync::atomic::Ordering::Relaxed);
    ctx.metrics
        .rtp_received
        .fetch_add(stats.received, std::sync::atomic::Ordering::Relaxed);
    ctx.metrics
        .rtp_dropped
        .fetch_add(stats.dropped, std::sync::atomic::Ordering::Relaxed);
    let how = if hung_up && reason == EndReason::Hangup {
        "max_duration"
    } else {
        reason.as_str()
    };
    log_end_str(&info, &caller, started, Some(answered), how, stats);
    ended(&ctx, &info, answered.elapsed().as_secs_f64(), how).await;
}

async fn ended(ctx: &CallContext, info: &CallInfo, seconds: f64, how: &str) {
    ctx.tickets
        .submit(Op::CallEnded {
            id: op_id(),
            call_id: info.call_id.clone(),
            at: jiff::Timestamp::now(),
            seconds: (seconds * 10.0).round() / 10.0,
            how: how.to_string(),
        })
        .await;
}

fn log_end(
    info: &CallInfo,
    caller: &str,
    started: Instant,
    answered: Option<Instant>,
    reason: &EndReason,
    stats: crate::media::rtp::MediaStats,
) {
    log_end_str(info, caller, started, answered, reason.as_str(), stats)
}

fn log_end_str(
    info: &CallInfo,
    caller: &str,
    started: Instant,
    answered: Option<Instant>,
    how: &str,
    stats: crate::media::rtp::MediaStats,
) {
    let duration = answered.map_or(0.0, |a| a.elapsed().as_secs_f64());
    tracing::info!(
        call_id = %info.call_id,
        caller = %caller,
        duration_s = format!("{duration:.1}"),
        setup_ms = answered.map_or(0, |a| (a - started).as_millis() as u64),
        ended = how,
        rtp_sent = stats.sent,
        rtp_received = stats.received,
        "call ended"
    );
}
