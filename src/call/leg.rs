//! One confirmed call, driven by a script: the one loop that joins a
//! call's SIP events (hang-up, re-INVITE and hold, INFO keys), its media
//! session (prompts, RFC 4733 keys, the RTP timeout), its recording and the
//! script's timers. Calls we answer run the intake on it, calls we place
//! (paging) the page script.

use std::net::IpAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::media::dtmf;
use crate::media::ports::RtpSocket;
use crate::media::prompt::FRAME;
use crate::media::rtp::{FrameSink, MediaCommand, MediaEvent, MediaStats, Session};
use crate::recording::{self, Recorder};
use crate::scripts::script::{Action, Input, Script};
use crate::sip::core::{CallCommand, CallEvent, CallRef, EndReason};
use crate::sip::sdp::Media;
use crate::sip::transport::Requester;

/// Who ends the call on our side: the call manager's command channel
/// (calls we answer) or the requester (calls we place).
pub enum Control {
    Answered(mpsc::Sender<CallCommand>),
    Placed(Requester),
    /// A browser's call: the end goes into the call's own events (the
    /// page sees it in the call's state).
    Web(mpsc::Sender<CallEvent>),
}

impl Control {
    async fn hang_up(&self, call: CallRef) {
        match self {
            Control::Answered(commands) => {
                let _ = commands.send(CallCommand::Hangup { call }).await;
            }
            Control::Placed(requester) => requester.hangup(call).await,
            // Into the leg's own channel, which this very task reads: never
            // wait on it (what fills it is other ends, seen first anyway).
            Control::Web(events) => {
                let _ = events.try_send(CallEvent::Ended {
                    call,
                    reason: EndReason::Hangup,
                });
            }
        }
    }
}

/// Where a script's updates go.
pub trait Updates<U>: Send {
    /// `update` learnt `offset_ms` into the call's recording.
    fn update(&mut self, update: U, offset_ms: u64)
        -> impl std::future::Future<Output = ()> + Send;
}

/// The last update is kept (the page script's answer).
impl<U: Send> Updates<U> for Option<U> {
    async fn update(&mut self, update: U, _: u64) {
        *self = Some(update);
    }
}

/// How a drive stopped.
pub enum Driven<T = std::convert::Infallible> {
    /// The call ended.
    Ended(Ended),
    /// The script handed the call back (`Action::Handover`); it goes on.
    HandedOver,
    /// What the drive waited for besides the call happened first.
    Interrupted(T),
}

impl Driven {
    /// How the call ended (a hand-over where none was expected is the
    /// gateway's end of it).
    pub fn ended(self) -> Option<Ended> {
        match self {
            Driven::Ended(e) => Some(e),
            Driven::HandedOver => None,
        }
    }
}

/// How a call came to its end.
pub struct Ended {
    pub reason: EndReason,
    /// What the call's end line and the ticket say: why we hung up (the
    /// script was done, no RTP, the longest call), else how it ended.
    pub how: &'static str,
}

/// What a call needs to start its leg.
pub struct LegSetup {
    pub call: CallRef,
    pub call_id: String,
    pub control: Control,
    pub events: mpsc::Receiver<CallEvent>,
    pub socket: RtpSocket,
    /// The session the call was confirmed with.
    pub media: Media,
    /// The signalling peer's address: RTP from it is accepted too.
    pub peer: IpAddr,
    /// No RTP for this long ends the call.
    pub media_timeout: Duration,
    /// The call is hung up then (its longest length).
    pub hang_up_at: Option<Instant>,
    /// The prompts in force when the call started (a reload mid-call
    /// changes nothing).
    pub live: std::sync::Arc<crate::live::Loaded>,
    pub recorder: Option<Recorder>,
    /// A browser's call: its keyed WebRTC path.
    pub webrtc: Option<crate::media::webrtc::WebRtc>,
}

pub struct Leg {
    call: CallRef,
    call_id: String,
    control: Control,
    events: mpsc::Receiver<CallEvent>,
    media_tx: mpsc::Sender<MediaCommand>,
    media_events: mpsc::Receiver<MediaEvent>,
    media_task: JoinHandle<(MediaStats, RecordingSink)>,
    stop: CancellationToken,
    /// The recording starts with the leg: offsets into it are from here.
    started: Instant,
    deadline: Option<Instant>,
    media_timeout: Duration,
    held: bool,
    hung_up: Option<&'static str>,
    live: std::sync::Arc<crate::live::Loaded>,
}

/// Starts a recording at `path` (file creation and the manifest's fsync
/// off the runtime's threads).
pub async fn record(
    path: std::path::PathBuf,
    call_id: &str,
    ticket: &str,
) -> std::io::Result<Recorder> {
    let (call_id, ticket) = (call_id.to_string(), ticket.to_string());
    tokio::task::spawn_blocking(move || Recorder::create(path, &call_id, &ticket))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
}

impl Leg {
    /// Starts the call's media session, recording into `recorder`.
    pub fn start(setup: LegSetup) -> Leg {
        let stop = CancellationToken::new();
        let (media_tx, media_rx) = mpsc::channel(8);
        let (media_ev_tx, media_events) = mpsc::channel(64);
        let mut session = Session::new(setup.socket, &setup.media, setup.peer, setup.media_timeout);
        if let Some(path) = setup.webrtc {
            session = session.webrtc(path);
        }
        let session_stop = stop.clone();
        let mut sink = RecordingSink(setup.recorder.map(Box::new));
        let media_task = tokio::spawn(async move {
            let stats = session
                .run(media_rx, media_ev_tx, session_stop, &mut sink)
                .await;
            (stats, sink)
        });
        let started = Instant::now();
        Leg {
            call: setup.call,
            call_id: setup.call_id,
            control: setup.control,
            events: setup.events,
            media_tx,
            media_events,
            media_task,
            stop,
            started,
            deadline: setup.hang_up_at,
            media_timeout: setup.media_timeout,
            held: setup.media.direction.is_hold(),
            hung_up: None,
            live: setup.live,
        }
    }

    /// Milliseconds into the call's recording.
    fn offset_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    async fn hang_up(&mut self, why: &'static str) {
        if self.hung_up.is_none() {
            self.hung_up = Some(why);
            self.control.hang_up(self.call).await;
        }
    }

    /// The media session's commands (another leg's bridge joins it).
    pub fn media(&self) -> mpsc::Sender<MediaCommand> {
        self.media_tx.clone()
    }

    /// When the leg (and its recording) started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The call's id in the log.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Hangs up (`why` is what the end says) and waits for the end.
    pub async fn end(&mut self, why: &'static str) -> Ended {
        self.hang_up(why).await;
        loop {
            if let Driven::Ended(e) = self.drive(&mut Silent, &mut ()).await {
                return e;
            }
        }
    }

    /// Runs `script` on the call until the call ends (either side hanging
    /// up, or the gateway stopping) or the script hands it back; what the
    /// script learns goes to `updates` with its offset into the recording.
    pub async fn drive<S: Script>(
        &mut self,
        script: &mut S,
        updates: &mut impl Updates<S::Update>,
    ) -> Driven {
        match self
            .drive_until(
                script,
                updates,
                std::future::pending::<std::convert::Infallible>(),
            )
            .await
        {
            Driven::Ended(e) => Driven::Ended(e),
            Driven::HandedOver => Driven::HandedOver,
            Driven::Interrupted(never) => match never {},
        }
    }

    /// As [`Leg::drive`], until `until` completes first.
    pub async fn drive_until<S: Script, T>(
        &mut self,
        script: &mut S,
        updates: &mut impl Updates<S::Update>,
        until: impl std::future::Future<Output = T>,
    ) -> Driven<T> {
        tokio::pin!(until);
        if self.held {
            script.hold(script_now());
        }
        let mut actions = script.start(script_now());
        let reason = loop {
            let mut handed_over = false;
            for a in std::mem::take(&mut actions) {
                match a {
                    Action::Play { id, prompts } => {
                        let prompts = prompts
                            .iter()
                            .filter_map(|p| self.live.prompts.get(p).cloned())
                            .collect();
                        let _ = self.media_tx.send(MediaCommand::Play { id, prompts }).await;
                    }
                    Action::Stop => {
                        let _ = self.media_tx.send(MediaCommand::Stop).await;
                    }
                    Action::Update(u) => updates.update(u, self.offset_ms()).await,
                    Action::HangUp => self.hang_up(S::COMPLETE).await,
                    Action::Handover => handed_over = true,
                }
            }
            if handed_over && self.hung_up.is_none() {
                return Driven::HandedOver;
            }
            let script_deadline = script.deadline();
            let script_timer = async {
                match script_deadline {
                    Some(d) => tokio::time::sleep_until(Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            };
            let call_deadline = self.deadline.filter(|_| self.hung_up.is_none());
            let call_timer = async {
                match call_deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = self.events.recv() => match ev {
                    Some(CallEvent::Ended { reason, .. }) => {
                        // What the script makes of it (the message ends).
                        for a in script.on(Input::HangUp, script_now()) {
                            if let Action::Update(u) = a {
                                updates.update(u, self.offset_ms()).await;
                            }
                        }
                        break reason;
                    }
                    Some(CallEvent::MediaChanged { media, .. }) => {
                        // Renegotiated: the session follows at once; on hold
                        // the script's timeout stands still.
                        let now = Instant::now();
                        match (self.held, media.direction.is_hold()) {
                            (false, true) => {
                                tracing::info!(call_id = %self.call_id, "call on hold");
                                script.hold(now.into_std());
                            }
                            (true, false) => {
                                tracing::info!(call_id = %self.call_id, "call resumed");
                                script.resume(now.into_std());
                            }
                            _ => {}
                        }
                        self.held = media.direction.is_hold();
                        tracing::info!(call_id = %self.call_id, remote = ?media.remote, codec = media.codec.name(), direction = ?media.direction, "media renegotiated");
                        let _ = self.media_tx.send(MediaCommand::Update(media)).await;
                    }
                    Some(CallEvent::Info { content_type, body, .. }) => {
                        match dtmf::from_info(content_type.as_deref(), &body) {
                            Some(k) => actions = script.on(Input::Key(k), script_now()),
                            None => tracing::debug!(call_id = %self.call_id, ?content_type, "INFO without a key"),
                        }
                    }
                    Some(_) => {}
                    None => break EndReason::Shutdown,
                },
                Some(ev) = self.media_events.recv() => match ev {
                    MediaEvent::PlayFinished { id } => {
                        actions = script.on(Input::PlayDone(id), script_now());
                    }
                    MediaEvent::Digit(k) => {
                        tracing::debug!(call_id = %self.call_id, key = %k, "key");
                        actions = script.on(Input::Key(k), script_now());
                    }
                    MediaEvent::Timeout => {
                        if self.hung_up.is_none() {
                            tracing::info!(call_id = %self.call_id, timeout_s = self.media_timeout.as_secs(), "no RTP: hanging up");
                        }
                        self.hang_up("media_timeout").await;
                    }
                    MediaEvent::Gone => {
                        tracing::info!(call_id = %self.call_id, "the peer closed its media: hanging up");
                        self.hang_up("peer_gone").await;
                    }
                },
                _ = script_timer => {
                    actions = script.on_timeout(script_now());
                }
                _ = call_timer => {
                    tracing::info!(call_id = %self.call_id, "call reached its maximum length: hanging up");
                    self.hang_up("max_duration").await;
                }
                v = &mut until => return Driven::Interrupted(v),
            }
        };
        let how = match (self.hung_up, &reason) {
            (Some(why), EndReason::Hangup) => why,
            _ => reason.as_str(),
        };
        Driven::Ended(Ended { reason, how })
    }

    /// Stops the media and finishes the recording (its hash read back off
    /// the runtime's threads).
    pub async fn finish(self) -> (MediaStats, Option<recording::Finished>) {
        self.stop.cancel();
        let (stats, sink) = match self.media_task.await {
            Ok(x) => x,
            Err(e) => {
                tracing::error!(call_id = %self.call_id, error = %e, "media task failed");
                return (MediaStats::default(), None);
            }
        };
        let Some(recorder) = sink.0 else {
            return (stats, None);
        };
        match tokio::task::spawn_blocking(move || recorder.finish()).await {
            Ok(done) => (stats, Some(done)),
            Err(e) => {
                tracing::error!(call_id = %self.call_id, error = %e, "recording finaliser failed");
                (stats, None)
            }
        }
    }
}

/// A script that says nothing and waits for the end.
struct Silent;

/// Now, as the scripts take it (the domain's `std` instant; under tokio's
/// paused clock, the paused time).
#[allow(clippy::disallowed_types)] // read from tokio's clock: paused time works
fn script_now() -> std::time::Instant {
    Instant::now().into_std()
}

// The scripts' instants are the domain's (`std`), taken from tokio's clock.
#[allow(clippy::disallowed_types)]
impl Script for Silent {
    type Update = ();
    const COMPLETE: &'static str = "hangup";
    fn start(&mut self, _: std::time::Instant) -> Vec<Action<()>> {
        Vec::new()
    }
    fn on(&mut self, _: Input, _: std::time::Instant) -> Vec<Action<()>> {
        Vec::new()
    }
}

/// Updates nobody keeps.
impl Updates<()> for () {
    async fn update(&mut self, _: (), _: u64) {}
}

/// The call's audio goes to its recording, if it has one.
struct RecordingSink(Option<Box<Recorder>>);

impl FrameSink for RecordingSink {
    fn frame(&mut self, left: &[i16; FRAME], right: &[i16; FRAME]) {
        if let Some(r) = self.0.as_mut() {
            r.frame(left, right);
        }
    }

    fn hold(&mut self, held: bool) {
        if let Some(r) = self.0.as_mut() {
            r.hold(held);
        }
    }
}
