//! A paging call: we place it (the SIP core's UAC), and once the officer
//! answers it runs on a [`Leg`] like any call we answer, with the page
//! script ([`crate::scripts::question`]) instead of the intake: the same media
//! session, keys and recorder. The paging channels say whom to call and
//! how; this is the call itself.

use std::net::SocketAddr;
use std::time::Duration;

use crate::media::ports::RtpSocket;
use crate::recording;
use crate::scripts::question::{Answer, QuestionScript};
use crate::scripts::Script;
use crate::sip::core::{CallEvent, Dial, EndReason};
use crate::sip::transport::{Egress, Requester};

use tokio_util::sync::CancellationToken;

use super::leg::{self, Control, Driven, Leg, LegSetup};

/// One call to place: a paging call (with the page script), an officer
/// rung for a bridge (the whisper), an informant called back.
pub struct OutboundCall<S = QuestionScript> {
    /// The member called (named in the log and the recording's manifest).
    pub member: String,
    pub requester: Requester,
    pub dial: Dial,
    pub dest: SocketAddr,
    pub egress: Egress,
    /// The RTP socket `dial.rtp` names.
    pub socket: RtpSocket,
    pub script: S,
    /// No RTP from the officer's phone for this long ends the call.
    pub media_timeout: Duration,
    pub live: std::sync::Arc<crate::live::Loaded>,
    /// Recorded in this directory, on this ticket (a test page is not).
    pub recording: Option<(std::path::PathBuf, String)>,
}

/// How a paging call went.
#[derive(Debug)]
pub enum Outcome {
    /// Never answered: how it ended (rejected, no answer, cancelled).
    NotAnswered(EndReason),
    /// The gateway is stopping, or the call was lost on the way.
    Lost(&'static str),
    Answered {
        answer: Answer,
        recording: Option<recording::Finished>,
    },
}

/// Places the call and, once answered, runs the page script on it.
pub async fn place(c: OutboundCall) -> Outcome {
    let (mut leg, mut script) = match answer(c, &CancellationToken::new()).await {
        Ok(x) => x,
        Err(o) => return o,
    };
    let mut answer = None;
    leg.drive(&mut script, &mut answer).await;
    let (_, recording) = leg.finish().await;
    Outcome::Answered {
        // The script answers before the call ends, whoever ends it; the
        // gateway stopping first leaves it without a key.
        answer: answer.unwrap_or(Answer::HungUp),
        recording,
    }
}

/// Rings someone for a bridge: once answered, the script (the officer's
/// whisper, which hands the call over on key 1; the informant's
/// announcement), then the live leg. Until then `cancel` (another took it,
/// the caller hung up) ends it at any point, ringing or answered. Not
/// taken: how it went, in words.
pub async fn ring<S: Script>(c: OutboundCall<S>, cancel: CancellationToken) -> Result<Leg, String>
where
    S::Update: Send,
{
    let (mut leg, mut script) = match answer(c, &cancel).await {
        Ok(x) => x,
        Err(Outcome::NotAnswered(reason)) => return Err(not_answered(reason)),
        Err(Outcome::Lost(why)) => return Err(format!("failed: {why}")),
        Err(Outcome::Answered { .. }) => return Err("answered".into()),
    };
    let driven = leg
        .drive_until(&mut script, &mut None, cancel.cancelled())
        .await;
    let words = match driven {
        Driven::HandedOver => return Ok(leg),
        Driven::Interrupted(()) => {
            leg.end("not_needed").await;
            "not needed any more"
        }
        Driven::Ended(_) => "answered, not taken",
    };
    leg.finish().await;
    Err(words.into())
}

/// A finished recording as a ticket links it.
pub fn link(done: recording::Finished) -> crate::tickets::model::RecordingLink {
    crate::tickets::model::RecordingLink::new(&done.path, done.duration_ms, done.sha256)
}

/// A call's unanswered end in words.
pub fn not_answered(reason: EndReason) -> String {
    match reason {
        EndReason::Rejected(408) | EndReason::Hangup => "no answer".into(),
        EndReason::Rejected(code) => format!("answered {code}"),
        other => format!("failed: {}", other.as_str()),
    }
}

/// Dials; once answered, the call's leg and its script (recorded when
/// `c.recording` says so). `cancel` before that: the call is cancelled.
async fn answer<S>(c: OutboundCall<S>, cancel: &CancellationToken) -> Result<(Leg, S), Outcome> {
    // The call's name in the log and in its recording's manifest.
    let label = format!("page:{}:{:016x}@hotline", c.member, rand::random::<u64>());
    let Some((call, mut events)) = c.requester.dial(c.dial, c.dest, c.egress).await else {
        return Err(Outcome::Lost("the gateway is stopping"));
    };
    // Until answered.
    let mut cancelled = false;
    let media = loop {
        let ev = tokio::select! {
            ev = events.recv() => ev,
            _ = cancel.cancelled(), if !cancelled => {
                // CANCEL while ringing; what follows is its end (or a 200
                // that crossed it, hung up at once below).
                cancelled = true;
                c.requester.hangup(call).await;
                continue;
            }
        };
        match ev {
            Some(CallEvent::Confirmed { .. }) if cancelled => c.requester.hangup(call).await,
            Some(CallEvent::Confirmed { media, .. }) => break media,
            Some(CallEvent::Ended { reason, .. }) => return Err(Outcome::NotAnswered(reason)),
            Some(_) => {}
            None => return Err(Outcome::Lost("call lost")),
        }
    };
    // Recorded like a caller's call, on the paged ticket (its retention
    // and holds apply): what the officer heard and the key they pressed.
    let recorder = match c.recording {
        Some((dir, ticket)) => {
            let path = recording::path_for(&dir, jiff::Timestamp::now(), &ticket, &label);
            match leg::record(path, &label, &ticket).await {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(ticket = %ticket, error = %e, "cannot record the paging call; it goes on");
                    None
                }
            }
        }
        None => None,
    };
    let leg = Leg::start(LegSetup {
        call,
        call_id: label,
        control: Control::Placed(c.requester),
        events,
        socket: c.socket,
        media,
        peer: c.dest.ip(),
        media_timeout: c.media_timeout,
        hang_up_at: None,
        live: c.live,
        recorder,
        webrtc: None,
    });
    Ok((leg, c.script))
}
