//! A person for the caller (rules 第十条, 第二十三条: a duty officer who
//! answers and asks): key 0 in the intake, a violence report, or a
//! partner's call (its whisper names the partner) rings
//! whoever holds the duty now (the paging resolver: the desk by day, the
//! duty unit and the court police at night), all at once or in order,
//! through their SIP URIs, registered softphones or the trunk. Each hears
//! the whisper and takes the call with key 1; the caller hears ringback
//! meanwhile. Taken: the two calls' media are joined in the gateway (a
//! B2BUA relay, [`crate::media::bridge`]), the caller's recording holds
//! both, each side's keys go on the ticket, and either side's hang-up
//! ends the other. Bridges (and officers' callbacks and follow-up calls)
//! hold slots of their own, apart from `max_calls`, so that answering never
//! waits for them; `violence_reserve` of them only a violence report's
//! bridge may take ([`Slots`]), so that callers pressing 0 cannot leave a
//! violence report without its officer.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use serde::Deserialize;
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::dial::Dialer;
use super::leg::{Driven, Ended, Leg, Updates};
use super::{CallContext, Ids};
use crate::media::dtmf::Digit;
use crate::media::rtp::MediaCommand;
use crate::roster::Member;
use crate::scripts::question::QuestionScript;
use crate::scripts::ringback::{Bridged, Ringback};
use crate::scripts::Prompt;
use crate::tickets::journal::{op_id, ConnectionStep, Op};
use crate::tickets::Tickets;

/// `[bridge]`: a person for the caller.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BridgeSettings {
    /// Key 0 (announced after the greeting) rings the officer on duty.
    pub enabled: bool,
    /// The caller waits this long for someone to take the call, then
    /// leaves a message.
    pub ring_seconds: u64,
    /// `all` at once, or `sequential`: one member after the other.
    pub order: RingOrder,
    /// In `sequential` order, how long each member is rung.
    pub member_ring_seconds: u64,
    /// Bridges and callbacks up at once (apart from `[sip] max_calls`).
    pub max_connections: usize,
    /// Of `max_connections`, the slots only a violence report's bridge may
    /// take (other bridges, callbacks and follow-up calls leave them).
    pub violence_reserve: usize,
}

impl Default for BridgeSettings {
    fn default() -> Self {
        BridgeSettings {
            enabled: false,
            ring_seconds: 30,
            order: RingOrder::All,
            member_ring_seconds: 15,
            max_connections: 10,
            violence_reserve: 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RingOrder {
    All,
    Sequential,
}

/// What a slot is for: a violence report's bridge may take the reserved
/// slots, anything else (another bridge, a callback, a follow-up call) not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Violence,
    Other,
}

/// The slots of `[bridge] max_connections`, `violence_reserve` of them
/// kept for violence reports: two pools, so that no check-then-take race
/// lets another bridge into the reserve.
pub struct Slots {
    open: Arc<Semaphore>,
    reserved: Arc<Semaphore>,
}

impl Slots {
    /// `max` slots in all, `reserve` of them (at most `max`) for violence.
    pub fn new(max: usize, reserve: usize) -> Slots {
        let reserve = reserve.min(max);
        Slots {
            open: Arc::new(Semaphore::new(max - reserve)),
            reserved: Arc::new(Semaphore::new(reserve)),
        }
    }

    /// A slot, if one is free for `need`: violence takes an open slot
    /// first and the reserve only when none is left.
    pub fn take(&self, need: Need) -> Option<OwnedSemaphorePermit> {
        let open = self.open.clone().try_acquire_owned().ok();
        match need {
            Need::Other => open,
            Need::Violence => open.or_else(|| self.reserved.clone().try_acquire_owned().ok()),
        }
    }
}

/// What bridges need, one for the gateway.
pub struct Bridging {
    pub settings: BridgeSettings,
    pub dial: Dialer,
    slots: Slots,
}

/// An officer who took the call (key 1 on the whisper), live.
pub struct Taken {
    pub member: String,
    pub channel: &'static str,
    pub leg: Leg,
}

/// Officers being rung; dropped, every call still ringing or whispering
/// is ended.
pub struct Ringing {
    taken: oneshot::Receiver<Option<Taken>>,
    _stop: tokio_util::sync::DropGuard,
}

impl Ringing {
    /// The first who took it; `None` when every call ended without.
    pub async fn taken(&mut self) -> Option<Taken> {
        (&mut self.taken).await.ok().flatten()
    }
}

impl Bridging {
    pub fn new(settings: BridgeSettings, dial: Dialer) -> Bridging {
        let slots = Slots::new(settings.max_connections, settings.violence_reserve);
        Bridging {
            settings,
            dial,
            slots,
        }
    }

    /// A slot for one bridge, callback or follow-up call, if one is free
    /// for `need`.
    pub fn slot(&self, need: Need) -> Option<OwnedSemaphorePermit> {
        self.slots.take(need)
    }

    /// Whoever holds the duty now and can be called.
    pub async fn on_duty(&self) -> Vec<Member> {
        let live = self.dial.live.get();
        let offset = self.dial.store.rotation_offset().await.unwrap_or(0);
        let duty = live
            .roster
            .resolve(&live.calendar, offset, jiff::Timestamp::now(), None);
        let targets = [crate::escalation::Target::OnDuty];
        let mut members = crate::escalation::members_for(&duty, &targets, &live.roster);
        members.retain(|m| m.sip.is_some() || (m.phone.is_some() && self.dial.trunk.is_some()));
        members
    }

    /// What the officer hears before taking a caller: the bridge's
    /// whisper, or a partner's, its name spoken after it when `[partners]`
    /// gives one.
    pub fn whisper(&self, partner: Option<&str>) -> Vec<Prompt> {
        match partner {
            None => vec![Prompt::Whisper],
            Some(name) => std::iter::once(Prompt::PartnerWhisper)
                .chain(self.dial.live.get().partner_name_prompt(name))
                .collect(),
        }
    }

    /// Rings `members` with the whisper `prompts`, as `[bridge] order`
    /// says, until one takes it.
    pub fn ring(&self, members: Vec<Member>, prompts: Vec<Prompt>) -> Ringing {
        let stop = CancellationToken::new();
        let (tx, taken) = oneshot::channel();
        let channels = self.dial.clone();
        let s = self.settings.clone();
        let task_stop = stop.clone();
        tokio::spawn(async move {
            let groups: Vec<Vec<Member>> = match s.order {
                RingOrder::All => vec![members],
                RingOrder::Sequential => members.into_iter().map(|m| vec![m]).collect(),
            };
            let ring = Duration::from_secs(match s.order {
                RingOrder::All => s.ring_seconds,
                RingOrder::Sequential => s.member_ring_seconds,
            });
            for group in groups {
                if task_stop.is_cancelled() {
                    break;
                }
                if let Some(t) = ring_group(&channels, group, &prompts, ring, &task_stop).await {
                    if let Err(Some(mut t)) = tx.send(Some(t)) {
                        // Taken as the caller hung up: nobody to join.
                        t.leg.end("caller_gone").await;
                        t.leg.finish().await;
                    }
                    return;
                }
            }
            let _ = tx.send(None);
        });
        Ringing {
            taken,
            _stop: stop.drop_guard(),
        }
    }
}

/// Rings every way to every member of `group` at once; the first who takes
/// it (the others then end), or `None`.
async fn ring_group(
    dial: &Dialer,
    group: Vec<Member>,
    prompts: &[Prompt],
    ring: Duration,
    stop: &CancellationToken,
) -> Option<Taken> {
    let mine = stop.child_token();
    let mut calls = FuturesUnordered::new();
    for m in &group {
        for route in dial.routes(m).await {
            let channel = route.channel;
            let script = QuestionScript::whisper(prompts.to_vec(), dial.plays, dial.key_timeout);
            match dial.call_along(&m.id, route, script, ring, None) {
                Ok(call) => {
                    let (member, cancel) = (m.id.clone(), mine.clone());
                    calls.push(async move {
                        let r = super::outbound::ring(call, cancel).await;
                        (member, channel, r)
                    });
                }
                Err(e) => {
                    tracing::info!(member = %m.id, channel, outcome = %e, "bridge: cannot ring")
                }
            }
        }
    }
    while let Some((member, channel, r)) = calls.next().await {
        match r {
            Ok(leg) => {
                tracing::info!(member = %member, channel, "bridge: taken");
                mine.cancel();
                // The others end on their own (a CANCEL may wait for a
                // provisional answer): not in the caller's way.
                tokio::spawn(async move {
                    while let Some((member, channel, r)) = calls.next().await {
                        if let Ok(mut leg) = r {
                            // Taken at the same moment: told by the hang-up.
                            tracing::info!(member = %member, channel, "bridge: taken by another first");
                            leg.end("taken_by_another").await;
                            leg.finish().await;
                        }
                    }
                });
                return Some(Taken {
                    member,
                    channel,
                    leg,
                });
            }
            Err(o) => tracing::info!(member = %member, channel, outcome = %o, "bridge: not taken"),
        }
    }
    None
}

/// The ticket a bridge's or callback's steps go on: a call's (by its
/// ids), or a ticket's by number.
pub(crate) struct On {
    pub call_id: String,
    pub call: String,
    pub ticket: String,
}

impl From<&Ids> for On {
    fn from(ids: &Ids) -> On {
        On {
            call_id: ids.call_id.clone(),
            call: ids.call.clone(),
            ticket: String::new(),
        }
    }
}

/// How the caller's request for a person went.
pub(crate) enum Person {
    /// The call ended (bridged, or the caller hung up while it rang).
    Ended(Ended),
    /// Nobody took it: back to the intake.
    NotReached,
}

/// Rings a person for the caller on `leg` and, once one takes it, bridges
/// them until either hangs up; a violence report (`need`) may take the
/// reserved slots; a partner's call is named in the whisper.
pub(crate) async fn person(
    ctx: &CallContext,
    b: &Bridging,
    leg: &mut Leg,
    ids: &Ids,
    need: Need,
    partner: Option<&str>,
) -> Person {
    let (tickets, on) = (&ctx.tickets, &On::from(ids));
    let started = leg.started();
    let offset = || started.elapsed().as_millis() as u64;
    let not_connected = |why: String| ConnectionStep::NotConnected {
        kind: "bridge".into(),
        why,
    };
    let Some(_slot) = b.slot(need) else {
        tracing::warn!(call_id = %ids.call_id, "bridge: every slot is taken");
        connection(tickets, on, not_connected("every bridge is in use".into())).await;
        return Person::NotReached;
    };
    let members = b.on_duty().await;
    if members.is_empty() {
        connection(
            tickets,
            on,
            not_connected("nobody on duty can be called".into()),
        )
        .await;
        return Person::NotReached;
    }
    connection(
        tickets,
        on,
        ConnectionStep::Ringing {
            kind: "bridge".into(),
            members: members.iter().map(|m| m.id.clone()).collect(),
            offset_ms: offset(),
        },
    )
    .await;
    let mut ringing = b.ring(members, b.whisper(partner));
    let mut ringback = Ringback::new(
        Some(Prompt::Connecting),
        Duration::from_secs(b.settings.ring_seconds),
    );
    let taken = match leg
        .drive_until(&mut ringback, &mut (), ringing.taken())
        .await
    {
        Driven::Interrupted(Some(t)) => t,
        Driven::Interrupted(None) => {
            connection(tickets, on, not_connected("nobody took the call".into())).await;
            return Person::NotReached;
        }
        Driven::HandedOver => {
            let why = format!("nobody took the call within {} s", b.settings.ring_seconds);
            connection(tickets, on, not_connected(why)).await;
            return Person::NotReached;
        }
        Driven::Ended(e) => {
            connection(tickets, on, not_connected("the caller hung up".into())).await;
            return Person::Ended(e);
        }
    };
    drop(ringing);
    connection(
        tickets,
        on,
        ConnectionStep::Connected {
            kind: "bridge".into(),
            member: taken.member.clone(),
            channel: taken.channel.into(),
            offset_ms: offset(),
        },
    )
    .await;
    let (ended, how, seconds) = bridged(tickets, on, leg, taken.leg, started).await;
    connection(
        tickets,
        on,
        ConnectionStep::Ended {
            member: taken.member,
            seconds,
            how,
            recording: None,
        },
    )
    .await;
    Person::Ended(ended)
}

/// Joins the caller's `leg` and the officer's until either ends (then the
/// other is hung up); the caller's end, how the bridge ended and how long
/// it lasted.
pub(crate) async fn bridged(
    tickets: &Tickets,
    on: &On,
    leg: &mut Leg,
    mut officer: Leg,
    recording_start: Instant,
) -> (Ended, String, f64) {
    let since = Instant::now();
    let (a, b) = crate::media::relay::bridge();
    let _ = leg.media().send(MediaCommand::Bridge(a)).await;
    let _ = officer.media().send(MediaCommand::Bridge(b)).await;
    tracing::info!(call_id = %on.call_id, officer = %officer.call_id(), "bridged");
    let (caller_done, officer_done) = (CancellationToken::new(), CancellationToken::new());
    let side = |name: &'static str| Keys {
        tickets,
        on,
        side: name,
        start: recording_start,
    };
    let ((caller_end, caller_first), (officer_end, _)) = tokio::join!(
        one_side(
            leg,
            side("caller"),
            &officer_done,
            &caller_done,
            "officer_hung_up"
        ),
        one_side(
            &mut officer,
            side("officer"),
            &caller_done,
            &officer_done,
            "caller_hung_up"
        ),
    );
    let how = match caller_first {
        true => side_end("caller", caller_end.how),
        false => side_end("officer", officer_end.how),
    };
    officer.finish().await;
    let seconds = (since.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    tracing::info!(call_id = %on.call_id, how = %how, seconds, "bridge ended");
    (caller_end, how, seconds)
}

/// One side of a bridge, driven until it ends (`done` then tells the other)
/// or the other side has (then it is hung up, `why`); its end, and whether
/// it ended first.
async fn one_side(
    leg: &mut Leg,
    mut keys: Keys<'_>,
    other: &CancellationToken,
    done: &CancellationToken,
    why: &'static str,
) -> (Ended, bool) {
    let r = leg
        .drive_until(&mut Bridged, &mut keys, other.cancelled())
        .await;
    done.cancel();
    match r {
        Driven::Ended(e) => (e, true),
        _ => (leg.end(why).await, false),
    }
}

/// How a bridge ended, by the side that ended it.
fn side_end(side: &str, how: &str) -> String {
    match how {
        "caller_bye" => format!("{side}_hung_up"),
        other => format!("{side}: {other}"),
    }
}

/// A bridged side's keys, on the ticket's timeline.
struct Keys<'a> {
    tickets: &'a Tickets,
    on: &'a On,
    side: &'static str,
    start: Instant,
}

impl Updates<Digit> for Keys<'_> {
    async fn update(&mut self, key: Digit, _: u64) {
        let step = ConnectionStep::Key {
            side: self.side.into(),
            key,
            offset_ms: self.start.elapsed().as_millis() as u64,
        };
        connection(self.tickets, self.on, step).await;
    }
}

/// A step of the connection on its ticket.
pub(crate) async fn connection(tickets: &Tickets, on: &On, step: ConnectionStep) {
    tracing::info!(call_id = %on.call_id, ?step, "connection");
    tickets
        .submit(Op::Connection {
            id: op_id(),
            call_id: on.call_id.clone(),
            call: on.call.clone(),
            ticket: on.ticket.clone(),
            at: jiff::Timestamp::now(),
            step,
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_bridges_leave_the_reserved_slots_to_violence() {
        let slots = Slots::new(4, 2);
        // Callers pressing 0, callbacks, follow-ups: two slots, no third.
        let a = slots.take(Need::Other).expect("first open slot");
        let b = slots.take(Need::Other).expect("second open slot");
        assert!(slots.take(Need::Other).is_none(), "the reserve is kept");
        // Violence reports get the two kept back, and no more.
        let v1 = slots.take(Need::Violence).expect("first reserved slot");
        let v2 = slots.take(Need::Violence).expect("second reserved slot");
        assert!(slots.take(Need::Violence).is_none(), "four in all");
        // A reserved slot freed stays reserved.
        drop(v1);
        assert!(slots.take(Need::Other).is_none());
        assert!(slots.take(Need::Violence).is_some());
        // An open slot freed is anyone's; violence takes it before the
        // reserve.
        drop((a, v2));
        let v3 = slots.take(Need::Violence).expect("the open slot");
        assert!(
            slots.take(Need::Other).is_none(),
            "violence took the open one"
        );
        assert!(
            slots.take(Need::Violence).is_some(),
            "the reserve is still there"
        );
        drop((b, v3));
        assert!(slots.take(Need::Other).is_some());
    }

    #[test]
    fn without_a_reserve_every_slot_is_anyones_and_a_reserve_is_at_most_all() {
        let slots = Slots::new(2, 0);
        let _a = slots.take(Need::Other).unwrap();
        let _b = slots.take(Need::Other).unwrap();
        assert!(slots.take(Need::Violence).is_none());
        let all = Slots::new(1, 5);
        assert!(all.take(Need::Other).is_none());
        let _v = all.take(Need::Violence).unwrap();
        assert!(all.take(Need::Violence).is_none());
    }
}
