//! A paging call: we place it (the SIP core's UAC), and once the officer
//! answers it runs on a [`Leg`] like any call we answer, with the page
//! script ([`crate::intake::page`]) instead of the intake: the same media
//! session, keys and recorder. The paging channels say whom to call and
//! how; this is the call itself.

use std::net::SocketAddr;
use std::time::Duration;

use crate::intake::page::{Answer, PageScript};
use crate::media::ports::RtpSocket;
use crate::recording;
use crate::sip::core::{CallEvent, Dial, EndReason};
use crate::sip::transport::{Egress, Requester};

use super::leg::{self, Control, Leg, LegSetup};

/// One paging call to place.
pub struct PageCall {
    /// The member called (named in the log and the recording's manifest).
    pub member: String,
    pub requester: Requester,
    pub dial: Dial,
    pub dest: SocketAddr,
    pub egress: Egress,
    /// The RTP socket `dial.rtp` names.
    pub socket: RtpSocket,
    pub script: PageScript,
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
pub async fn place(c: PageCall) -> Outcome {
    // The call's name in the log and in its recording's manifest.
    let label = format!("page:{}:{:016x}@hotline", c.member, rand::random::<u64>());
    let Some((call, mut events)) = c.requester.dial(c.dial, c.dest, c.egress).await else {
        return Outcome::Lost("the gateway is stopping");
    };
    // Until answered.
    let media = loop {
        match events.recv().await {
            Some(CallEvent::Confirmed { media, .. }) => break media,
            Some(CallEvent::Ended { reason, .. }) => return Outcome::NotAnswered(reason),
            Some(_) => {}
            None => return Outcome::Lost("call lost"),
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
    let mut leg = Leg::start(LegSetup {
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
    let mut script = c.script;
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
