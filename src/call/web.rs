//! Calls from a browser (the public `/call` page, WHIP-style signalling,
//! docs/adr/0010): the offer is answered at once (ICE-lite, DTLS, the
//! gateway's certificate), and the call happens when the browser's path is
//! keyed within `[webrtc] connect_seconds`; from then on it is a call like
//! any other (`run_answered`: a ticket, the recording, the intake), its
//! source recorded as `web` and the browser's address sealed like a
//! number. A browser that never completes ICE and DTLS leaves no ticket and
//! holds no port. Offers and calls are limited per source (an IPv4
//! address, an IPv6 /56), counted once an offer has parsed; the calls'
//! states are kept a while after they end, forgotten by a timer. The
//! browser's address is in the logs masked ([`mask_ip`]), never in clear.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::leg::Control;
use super::{run_answered, Answered, CallContext, LegParts};
use crate::media::ports::PortPool;
use crate::media::webrtc::{Certificate, IceDtls, WebRtc};
use crate::sip::admission::mask_ip;
use crate::sip::sdp::{webrtc, SdpError};
use crate::tickets::model::Caller;

/// `[webrtc]`: callers from a browser.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebRtcSettings {
    /// Serve the caller page and take its calls.
    pub enabled: bool,
    /// Where browsers' media arrives, with `port_min`/`port_max`.
    pub bind_ip: IpAddr,
    /// The address our candidate names (behind NAT: the public one);
    /// default `[media] advertise_ip`, else our address on the route to
    /// the browser.
    pub advertise_ip: Option<IpAddr>,
    /// UDP ports for browsers' media (one per call); without them,
    /// `[media]`'s range (`bind_ip` then is `[media]`'s too).
    pub port_min: Option<u16>,
    pub port_max: Option<u16>,
    /// A browser that has not completed ICE and DTLS in this long is
    /// dropped (no ticket).
    pub connect_seconds: u64,
    /// Browser calls at once, apart from `sip.max_calls`.
    pub max_calls: usize,
    /// Per source address: calls at once, and offers a minute.
    pub calls_per_source: usize,
    pub offers_per_minute: usize,
}

impl Default for WebRtcSettings {
    fn default() -> Self {
        WebRtcSettings {
            enabled: true,
            bind_ip: IpAddr::from([0, 0, 0, 0]),
            advertise_ip: None,
            port_min: None,
            port_max: None,
            connect_seconds: 10,
            max_calls: 100,
            calls_per_source: 2,
            offers_per_minute: 6,
        }
    }
}

/// What the page reads back about its call.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct WebState {
    /// `connecting`, `connected`, `ended`, `failed`.
    pub state: &'static str,
    /// The ticket's number, once it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why an offer is refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    BadOffer(String),
    #[error("no PCMU or PCMA audio in the offer (G.711 is mandatory in WebRTC)")]
    NoCodec,
    #[error("too many calls or offers from this address: try again in a minute")]
    TooMany,
    #[error("the line is busy: try again shortly")]
    Busy,
}

struct Entry {
    state: watch::Receiver<WebState>,
    events: mpsc::Sender<crate::sip::core::CallEvent>,
    call: crate::sip::core::CallRef,
    /// When it ended (kept a while for the page to read).
    ended: Option<Instant>,
}

/// An answered offer, waiting for the browser's path.
struct Offered {
    id: String,
    call: crate::sip::core::CallRef,
    client: SocketAddr,
    socket: crate::media::ports::RtpSocket,
    path: WebRtc,
    media: crate::sip::sdp::Media,
    /// The call's own events: the page's hang-up, the gateway stopping.
    events_tx: mpsc::Sender<crate::sip::core::CallEvent>,
    events: mpsc::Receiver<crate::sip::core::CallEvent>,
    state: watch::Sender<WebState>,
}

#[derive(Default)]
struct Source {
    calls: usize,
    offers: VecDeque<Instant>,
}

/// The browser calls of this gateway.
pub struct WebCalls {
    /// The call layer's context while it runs (the call manager holds it:
    /// once the gateway stops, offers are refused and the ticket writer is
    /// not kept waiting for the HTTP server).
    ctx: std::sync::Weak<CallContext>,
    /// `[webrtc]`'s own port range, else the calls' pool.
    ports: Arc<PortPool>,
    metrics: Arc<crate::metrics::Metrics>,
    /// The gateway is stopping: calls in progress end.
    stop: tokio_util::sync::CancellationToken,
    settings: WebRtcSettings,
    cert: Certificate,
    book: Arc<Book>,
}

/// Who holds what: the calls (their state for the page, kept a while after
/// they end) and the sources (their calls and recent offers). Pruned by a
/// timer ([`Book::prune_every`]), whether or not anyone polls.
struct Book {
    calls: Mutex<HashMap<String, Entry>>,
    sources: Mutex<HashMap<IpAddr, Source>>,
    max_calls: usize,
    calls_per_source: usize,
    offers_per_minute: usize,
}

/// Sources remembered before those with nothing recent are forgotten.
const SOURCES_KEPT: usize = 4096;

/// How long an ended call's state stays readable.
const KEEP_ENDED: Duration = Duration::from_secs(600);
/// How often ended calls and idle sources are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// An IPv6 source is its /56 (a home or office line is given a /56 or a
/// /48: its /64s are one caller's).
const V6_SOURCE_PREFIX: u32 = 56;
/// Browser calls are numbered from here (never a SIP core's call).
const FIRST_WEB_CALL: u64 = 1 << 62;

impl WebCalls {
    pub fn new(
        ctx: &Arc<CallContext>,
        settings: WebRtcSettings,
        load: Arc<crate::shedding::Load>,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<Arc<WebCalls>, String> {
        let ports = match (settings.port_min, settings.port_max) {
            (Some(min), Some(max)) => Arc::new(PortPool::new(settings.bind_ip, min, max, load)),
            _ => ctx.ports.clone(),
        };
        let book = Arc::new(Book {
            calls: Mutex::default(),
            sources: Mutex::default(),
            max_calls: settings.max_calls,
            calls_per_source: settings.calls_per_source,
            offers_per_minute: settings.offers_per_minute,
        });
        Ok(Arc::new(WebCalls {
            ctx: Arc::downgrade(ctx),
            metrics: ctx.metrics.clone(),
            stop,
            ports,
            cert: Certificate::generate()?,
            settings,
            book,
        }))
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.book.calls()
    }

    /// The book's pruning timer, for the gateway to run (supervised): it
    /// ends once these calls are gone.
    pub fn pruning(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        Book::prune_every(Arc::downgrade(&self.book), PRUNE_EVERY)
    }

    /// Takes a browser's offer from `client`: the call's id and our answer.
    pub fn offer(
        self: &Arc<Self>,
        sdp: &[u8],
        client: SocketAddr,
    ) -> Result<(String, String), Refusal> {
        let Some(ctx) = self.ctx.upgrade().filter(|_| !self.stop.is_cancelled()) else {
            return Err(Refusal::Busy);
        };
        // An offer that does not parse costs its sender a 400, not a slot:
        // only a parsed offer counts against its source.
        let offer = match webrtc::negotiate(sdp) {
            Ok(o) => o,
            Err(SdpError::NoCommonCodec) => return Err(Refusal::NoCodec),
            Err(e) => return Err(Refusal::BadOffer(e.to_string())),
        };
        if let Err(r) = self.book.admit(client.ip(), Instant::now()) {
            if matches!(r, Refusal::TooMany) {
                tracing::warn!(target: "security", source = %mask_ip(client.ip()), "browser call refused: per-source limit");
                crate::metrics::Metrics::inc(&self.metrics.webrtc_refused);
            }
            return Err(r);
        }
        let refused = |r: Refusal| {
            self.book.release(client.ip());
            Err(r)
        };
        // Our address as the browser reaches it: as configured (ours, else
        // `[media]`'s), else the kernel's route to it.
        let ip = self
            .settings
            .advertise_ip
            .or(ctx.advertise_ip)
            .unwrap_or_else(|| {
                let bound = SocketAddr::new(self.settings.bind_ip, 0);
                crate::sip::transport::local_for(bound, client.ip()).ip()
            });
        let socket = match self.ports.bind_for(ip) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "browser call refused");
                return refused(Refusal::Busy);
            }
        };
        let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        let ice = IceDtls::new(offer.ice_ufrag.clone(), offer.fingerprint.clone());
        let path = match WebRtc::new(&ice, &self.cert, SocketAddr::new(ip, port)) {
            Ok(p) => p,
            Err(e) => return refused(Refusal::BadOffer(format!("DTLS: {e}"))),
        };
        let answer = offer.answer(
            SocketAddr::new(ip, port),
            (&ice.local_ufrag, &ice.local_pwd),
            &self.cert.fingerprint,
            rand::random::<u32>().into(),
        );
        let id = format!("{:032x}", rand::random::<u128>());
        let (state_tx, state_rx) = watch::channel(WebState {
            state: "connecting",
            ticket: None,
            reason: None,
        });
        let (events_tx, events_rx) = mpsc::channel(16);
        let call = FIRST_WEB_CALL + rand::random::<u32>() as u64;
        self.calls().insert(
            id.clone(),
            Entry {
                state: state_rx,
                events: events_tx.clone(),
                call,
                ended: None,
            },
        );
        let me = self.clone();
        let media = offer.media;
        let key = id.clone();
        tokio::spawn(async move {
            let offered = Offered {
                id: key,
                call,
                client,
                socket,
                path,
                media,
                events_tx,
                events: events_rx,
                state: state_tx,
            };
            me.run(ctx, offered).await
        });
        Ok((id, answer))
    }

    /// The call's state, for the page.
    pub fn state(&self, id: &str) -> Option<WebState> {
        self.book.state(id, Instant::now())
    }

    /// The page hung up.
    pub async fn hang_up(&self, id: &str) -> bool {
        let found = self.calls().get(id).map(|e| (e.events.clone(), e.call));
        match found {
            Some((events, call)) => {
                let _ = events
                    .send(crate::sip::core::CallEvent::Ended {
                        call,
                        reason: crate::sip::core::EndReason::CallerBye,
                    })
                    .await;
                true
            }
            None => false,
        }
    }

    /// The call from its offer to its end: connected within
    /// `connect_seconds`, then a call like any other.
    async fn run(self: Arc<Self>, ctx: Arc<CallContext>, o: Offered) {
        let Offered {
            id,
            call,
            client,
            socket,
            mut path,
            media,
            events_tx,
            mut events,
            state,
        } = o;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(self.settings.connect_seconds);
        let connected = tokio::select! {
            r = crate::media::webrtc::connect(&socket, &mut path, deadline) => r,
            // The page gave up first.
            _ = events.recv() => Err("hung up before the media was connected".into()),
            _ = self.stop.cancelled() => Err("the gateway is stopping".into()),
        };
        let call_id = format!("web-{id}@hotline");
        match connected {
            Err(why) => {
                tracing::info!(call_id = %call_id, source = %mask_ip(client.ip()), reason = %why, "browser call not connected: no ticket");
                crate::metrics::Metrics::inc(&self.metrics.webrtc_failed);
                state.send_replace(WebState {
                    state: "failed",
                    ticket: None,
                    reason: Some(why),
                });
            }
            Ok(()) => {
                state.send_modify(|s| s.state = "connected");
                let answered = Answered {
                    call,
                    call_id: call_id.clone(),
                    shown: "web".into(),
                    partner: None,
                    caller: Caller {
                        channel: Some("web".into()),
                        client_ip: Some(ctx.caller_key.seal(&client.ip().to_string())),
                        ..Default::default()
                    },
                    source: client,
                    transport: "web",
                    started,
                };
                // The gateway stopping ends the call as the SIP core ends
                // its calls.
                let stopping = tokio::spawn({
                    let (stop, events) = (self.stop.clone(), events_tx.clone());
                    async move {
                        stop.cancelled().await;
                        let reason = crate::sip::core::EndReason::Shutdown;
                        let _ = events
                            .send(crate::sip::core::CallEvent::Ended { call, reason })
                            .await;
                    }
                });
                let leg = LegParts {
                    control: Control::Web(events_tx),
                    events,
                    socket,
                    media,
                    webrtc: Some(path),
                };
                run_answered(&ctx, answered, leg, |number| {
                    if number != "unnumbered" {
                        state.send_modify(|s| s.ticket = Some(number.to_string()));
                    }
                })
                .await;
                stopping.abort();
                state.send_modify(|s| s.state = "ended");
            }
        }
        if let Some(e) = self.calls().get_mut(&id) {
            e.ended = Some(Instant::now());
        }
        self.book.release(client.ip());
    }
}

/// The source a browser's calls and offers count against: its IPv4
/// address, or its IPv6 /56.
fn source_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(a) => {
            let keep = u128::MAX << (128 - V6_SOURCE_PREFIX);
            IpAddr::V6((u128::from(a) & keep).into())
        }
        v4 => v4,
    }
}

impl Book {
    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Source>> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts an offer and a call from `ip` (its source: the IPv4 address
    /// or the IPv6 /56), or refuses it.
    fn admit(&self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        let active = self.calls().values().filter(|e| e.ended.is_none()).count();
        if active >= self.max_calls {
            return Err(Refusal::Busy);
        }
        let minute = Duration::from_secs(60);
        let mut sources = self.sources();
        if sources.len() > SOURCES_KEPT {
            // Many addresses between two prunes: forget the idle ones now.
            sources.retain(|_, s| s.busy(now));
        }
        let s = sources.entry(source_of(ip)).or_default();
        while s
            .offers
            .front()
            .is_some_and(|t| now.duration_since(*t) >= minute)
        {
            s.offers.pop_front();
        }
        if s.offers.len() >= self.offers_per_minute || s.calls >= self.calls_per_source {
            return Err(Refusal::TooMany);
        }
        s.offers.push_back(now);
        s.calls += 1;
        Ok(())
    }

    fn release(&self, ip: IpAddr) {
        if let Some(s) = self.sources().get_mut(&source_of(ip)) {
            s.calls = s.calls.saturating_sub(1);
        }
    }

    fn state(&self, id: &str, now: Instant) -> Option<WebState> {
        let mut calls = self.calls();
        calls.retain(|_, e| e.kept(now));
        calls.get(id).map(|e| e.state.borrow().clone())
    }

    /// Forgets the calls that ended more than [`KEEP_ENDED`] ago and the
    /// sources with no call and no offer in the last minute.
    fn prune(&self, now: Instant) {
        self.calls().retain(|_, e| e.kept(now));
        self.sources().retain(|_, s| s.busy(now));
    }

    /// Prunes the book every `every` for as long as it exists.
    async fn prune_every(book: std::sync::Weak<Book>, every: Duration) {
        let mut tick = tokio::time::interval_at(Instant::now() + every, every);
        loop {
            tick.tick().await;
            match book.upgrade() {
                Some(b) => b.prune(Instant::now()),
                None => return,
            }
        }
    }
}

impl Entry {
    /// Still readable by the page: in progress, or ended a short while ago.
    fn kept(&self, now: Instant) -> bool {
        self.ended
            .is_none_or(|t| now.duration_since(t) < KEEP_ENDED)
    }
}

impl Source {
    /// A call up, or an offer in the last minute.
    fn busy(&self, now: Instant) -> bool {
        self.calls > 0
            || self
                .offers
                .back()
                .is_some_and(|t| now.duration_since(*t) < Duration::from_secs(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(calls_per_source: usize) -> Book {
        Book {
            calls: Mutex::default(),
            sources: Mutex::default(),
            max_calls: 100,
            calls_per_source,
            offers_per_minute: 100,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Issue 30: a /56 holds `calls_per_source` calls however many of its
    /// addresses (and /64s) it offers from; the next /56 and other IPv4
    /// addresses are their own sources.
    #[tokio::test(start_paused = true)]
    async fn web_calls_are_limited_per_ipv6_56_and_per_ipv4_address() {
        let b = book(2);
        let now = Instant::now();
        assert!(b.admit(ip("2001:db8:0:100::1"), now).is_ok());
        assert!(b.admit(ip("2001:db8:0:1ff:ffff::2"), now).is_ok());
        for other in [
            "2001:db8:0:1a0::9",
            "2001:db8:0:100::1",
            "2001:db8:0:17f::1",
        ] {
            assert!(
                matches!(b.admit(ip(other), now), Err(Refusal::TooMany)),
                "{other} is in the same /56"
            );
        }
        assert!(b.admit(ip("2001:db8:0:200::1"), now).is_ok(), "another /56");
        assert!(b.admit(ip("198.51.100.1"), now).is_ok());
        assert!(b.admit(ip("198.51.100.1"), now).is_ok());
        assert!(matches!(
            b.admit(ip("198.51.100.1"), now),
            Err(Refusal::TooMany)
        ));
        assert!(b.admit(ip("198.51.100.2"), now).is_ok(), "another address");
        // A call that ends gives its slot back to its /56.
        b.release(ip("2001:db8:0:1ff::3"));
        assert!(b.admit(ip("2001:db8:0:1ee::4"), now).is_ok());
    }

    /// Issue 30: ended calls and idle sources are forgotten by the timer,
    /// with nobody polling any call's state.
    #[tokio::test(start_paused = true)]
    async fn the_timer_prunes_ended_calls_and_idle_sources_unpolled() {
        let b = Arc::new(book(2));
        let (_state_tx, state) = watch::channel(WebState {
            state: "ended",
            ticket: None,
            reason: None,
        });
        let (events, _events_rx) = mpsc::channel(1);
        let now = Instant::now();
        for (id, ended) in [("old", Some(now)), ("live", None)] {
            b.calls().insert(
                id.into(),
                Entry {
                    state: state.clone(),
                    events: events.clone(),
                    call: 0,
                    ended,
                },
            );
        }
        b.admit(ip("198.51.100.7"), now).unwrap();
        b.release(ip("198.51.100.7"));
        let task = tokio::spawn(Book::prune_every(Arc::downgrade(&b), PRUNE_EVERY));
        // A minute on: the source's offer is a minute old, the call's state
        // still readable.
        tokio::time::sleep(PRUNE_EVERY + Duration::from_millis(1)).await;
        tokio::task::yield_now().await;
        assert!(b.sources().is_empty(), "the idle source forgotten");
        assert_eq!(b.calls().len(), 2);
        tokio::time::sleep(KEEP_ENDED).await;
        tokio::task::yield_now().await;
        let left: Vec<String> = b.calls().keys().cloned().collect();
        assert_eq!(
            left,
            ["live"],
            "the ended call forgotten, the live one kept"
        );
        // The timer ends with the book.
        drop(b);
        tokio::time::sleep(PRUNE_EVERY * 2).await;
        assert!(task.is_finished());
    }
}
