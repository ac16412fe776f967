//! An officer's callback to the informant (回拨) without learning the
//! number (rule 第二十条(三)): the gateway first calls the officer (the
//! whisper: key 1 to go on), then opens the caller's sealed number here and
//! only here, dials it through the court's trunk with the hotline's own
//! number as caller ID, says who calls, and bridges the two. The number is
//! never logged, shown or sent to the officer's side; the callback is
//! recorded (the informant left, what the informant heard right) and goes
//! on the ticket's timeline, as a reveal does. Its slot is one of the
//! bridges' (`[bridge] max_connections`), never one kept for violence
//! reports.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::bridge::{bridged, connection, Bridging, Need, On};
use super::leg::Driven;
use crate::privacy::CallerKey;
use crate::roster::Member;
use crate::scripts::ringback::{Announce, Ringback};
use crate::scripts::Prompt;
use crate::tickets::journal::ConnectionStep;
use crate::tickets::model::{Caller, Provenance};
use crate::tickets::Tickets;

/// What callbacks need, one for the gateway.
pub struct Callbacks {
    pub bridging: Arc<Bridging>,
    pub tickets: Tickets,
    pub caller_key: CallerKey,
}

/// Why a callback cannot be placed at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The caller withheld the number (Privacy: id), or there is none (a
    /// browser's call).
    Withheld,
    /// The number is only what the caller's INVITE claimed (no trunk or
    /// SBC vouched for it): the court does not dial it.
    Unverified,
    /// No `[trunk]`: no way to dial a phone number.
    NoTrunk,
    /// The officer has no SIP URI or phone the gateway can call.
    Unreachable,
    /// Every bridge and callback slot is taken.
    Busy,
}

impl Refused {
    pub fn message(self) -> &'static str {
        match self {
            Refused::Withheld => {
                "the informant withheld the number (or called without one): no callback is possible"
            }
            Refused::Unverified => {
                "the informant's number was not verified by the court's trunk (it is only what the call claimed): the gateway does not dial it"
            }
            Refused::NoTrunk => {
                "callbacks go out through the court's trunk, and none is configured"
            }
            Refused::Unreachable => {
                "the gateway has no SIP address or phone of yours to call first"
            }
            Refused::Busy => "every line for bridges and callbacks is in use; try again shortly",
        }
    }
}

/// The words of a callback that did not connect: never the number.
const UNDIALABLE: &str = "the trunk cannot dial the informant's number";

/// A callback that can be placed, its slot held.
pub struct Prepared {
    sealed: String,
    officer: Member,
    slot: tokio::sync::OwnedSemaphorePermit,
}

impl Callbacks {
    /// A callback of the informant `caller` for `officer`, or why it
    /// cannot be.
    pub fn prepare(&self, caller: &Caller, officer: &Member) -> Result<Prepared, Refused> {
        let sealed = match (&caller.number, caller.provenance()) {
            (Some(n), Provenance::Asserted) => n.clone(),
            (_, Provenance::Claimed) => return Err(Refused::Unverified),
            _ => return Err(Refused::Withheld),
        };
        if self.bridging.dial.trunk.is_none() {
            return Err(Refused::NoTrunk);
        }
        if officer.sip.is_none() && officer.phone.is_none() {
            return Err(Refused::Unreachable);
        }
        let slot = self.bridging.slot(Need::Other).ok_or(Refused::Busy)?;
        Ok(Prepared {
            sealed,
            officer: officer.clone(),
            slot,
        })
    }

    /// Places the callback for ticket `number`; its steps go on the ticket.
    pub fn start(self: &Arc<Self>, number: &str, p: Prepared) {
        let (me, number) = (self.clone(), number.to_string());
        tokio::spawn(async move {
            me.run(&number, p.officer, &p.sealed).await;
            drop(p.slot);
        });
    }

    async fn run(&self, number: &str, officer: Member, sealed: &str) {
        let b = &self.bridging;
        let on = On {
            call_id: format!("callback:{:016x}", rand::random::<u64>()),
            call: String::new(),
            ticket: number.to_string(),
        };
        let tickets = &self.tickets;
        let not_connected = |why: &str| ConnectionStep::NotConnected {
            kind: "callback".into(),
            why: why.to_string(),
        };
        // The number, opened here and nowhere else, goes only into the
        // trunk call's Request-URI; one the dial plan refuses rings nobody.
        let route = self
            .caller_key
            .open(sealed)
            .ok_or_else(|| UNDIALABLE.to_string())
            .and_then(|n| b.dial.informant_route(&n));
        let route = match route {
            Ok(r) => r,
            Err(why) => {
                connection(tickets, &on, not_connected(&why)).await;
                return;
            }
        };
        let ringing_step = ConnectionStep::Ringing {
            kind: "callback".into(),
            members: vec![officer.id.clone()],
            offset_ms: 0,
        };
        connection(tickets, &on, ringing_step).await;
        // The officer first: key 1 to go on.
        let mut ringing = b.ring(vec![officer.clone()], vec![Prompt::CallbackWhisper]);
        let Some(taken) = ringing.taken().await else {
            connection(
                tickets,
                &on,
                not_connected("the officer did not take the call"),
            )
            .await;
            return;
        };
        drop(ringing);
        let mut officer_leg = taken.leg;
        let ring = Duration::from_secs(b.settings.ring_seconds);
        let script = Announce::new(Prompt::CallbackIntro);
        let call = b
            .dial
            .call_along("informant", route, script, ring, Some(number))
            .map_err(|_| UNDIALABLE.to_string());
        let call = match call {
            Ok(c) => c,
            Err(why) => {
                officer_leg.end("informant_not_reached").await;
                officer_leg.finish().await;
                connection(tickets, &on, not_connected(&why)).await;
                return;
            }
        };
        let cancel = CancellationToken::new();
        let mut dial = tokio::spawn(super::outbound::ring(call, cancel.clone()));
        // The officer hears ringback meanwhile (a little longer than the
        // trunk call may ring: its own end comes first).
        let mut ringback = Ringback::new(None, ring + Duration::from_secs(5));
        let driven = officer_leg
            .drive_until(&mut ringback, &mut (), &mut dial)
            .await;
        let mut informant = match driven {
            Driven::Interrupted(Ok(Ok(leg))) => leg,
            Driven::Interrupted(reached) => {
                let why = match reached {
                    Ok(Err(words)) => format!("the informant's line: {words}"),
                    _ => "the call to the informant failed".into(),
                };
                officer_leg.end("informant_not_reached").await;
                officer_leg.finish().await;
                connection(tickets, &on, not_connected(&why)).await;
                return;
            }
            Driven::Ended(_) | Driven::HandedOver => {
                // The officer hung up (or the wait ran out) first: nothing
                // left ringing.
                cancel.cancel();
                if let Ok(Ok(mut leg)) = dial.await {
                    leg.end("officer_gone").await;
                    leg.finish().await;
                }
                officer_leg.end("informant_not_reached").await;
                officer_leg.finish().await;
                let why = "the officer hung up before the informant answered";
                connection(tickets, &on, not_connected(why)).await;
                return;
            }
        };
        let connected = ConnectionStep::Connected {
            kind: "callback".into(),
            member: officer.id.clone(),
            channel: taken.channel.into(),
            offset_ms: 0,
        };
        connection(tickets, &on, connected).await;
        let start = informant.started();
        let (_, how, seconds) = bridged(tickets, &on, &mut informant, officer_leg, start).await;
        let (_, recording) = informant.finish().await;
        let ended = ConnectionStep::Ended {
            member: officer.id,
            seconds,
            how,
            recording: recording.map(super::outbound::link),
        };
        connection(tickets, &on, ended).await;
    }
}
