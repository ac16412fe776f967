//! Calls from a browser (the public `/call` page, WHIP-style signalling,
//! docs/adr/0010): the offer is answered at once (ICE-lite, DTLS, the
//! gateway's certificate), and the call happens when the browser's path is
//! keyed within `[webrtc] connect_seconds`; from then on it is a call like
//! any other (`run_answered`: a ticket, the recording, the intake), its
//! source recorded as `web` and the browser's address sealed like a
//! number. A browser that never completes ICE and DTLS leaves no ticket and
//! holds no port. Offers and calls per source are limited as on the SIP
//! side.

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
use crate::sip::admission::source_of;
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
    calls: Mutex<HashMap<String, Entry>>,
    sources: Mutex<HashMap<IpAddr, Source>>,
}

/// Sources remembered before those with nothing recent are forgotten.
const SOURCES_KEPT: usize = 4096;

/// How long an ended call's state stays readable.
const KEEP_ENDED: Duration = Duration::from_secs(600);
/// Browser calls are numbered from here (never a SIP core's call).
const FIRST_WEB_CALL: u64 = 1 << 62;

impl WebCalls {
    pub fn new(
        ctx: &Arc<CallContext>,
        settings: WebRtcSettings,
        load: Arc<crate::load::Load>,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<Arc<WebCalls>, String> {
        let ports = match (settings.port_min, settings.port_max) {
            (Some(min), Some(max)) => Arc::new(PortPool::new(settings.bind_ip, min, max, load)),
            _ => ctx.ports.clone(),
        };
        Ok(Arc::new(WebCalls {
            ctx: Arc::downgrade(ctx),
            metrics: ctx.metrics.clone(),
            stop,
            ports,
            cert: Certificate::generate()?,
            settings,
            calls: Mutex::default(),
            sources: Mutex::default(),
        }))
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sources(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Source>> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
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
        let now = Instant::now();
        self.admit(client.ip(), now)?;
        let refused = |r: Refusal| {
            self.release(client.ip());
            Err(r)
        };
        let offer = match webrtc::negotiate(sdp) {
            Ok(o) => o,
            Err(SdpError::NoCommonCodec) => return refused(Refusal::NoCodec),
            Err(e) => return refused(Refusal::BadOffer(e.to_string())),
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

    /// Counts an offer and a call from `ip` (its source: the IPv4 address
    /// or the IPv6 /64, as on the SIP side), or refuses it.
    fn admit(&self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        let active = self.calls().values().filter(|e| e.ended.is_none()).count();
        if active >= self.settings.max_calls {
            return Err(Refusal::Busy);
        }
        let minute = Duration::from_secs(60);
        let mut sources = self.sources();
        if sources.len() > SOURCES_KEPT {
            // Many addresses: forget those with no call and no recent offer.
            sources.retain(|_, s| {
                s.calls > 0
                    || s.offers
                        .back()
                        .is_some_and(|t| now.duration_since(*t) < minute)
            });
        }
        let s = sources.entry(source_of(ip)).or_default();
        while s
            .offers
            .front()
            .is_some_and(|t| now.duration_since(*t) >= minute)
        {
            s.offers.pop_front();
        }
        if s.offers.len() >= self.settings.offers_per_minute
            || s.calls >= self.settings.calls_per_source
        {
            tracing::warn!(target: "security", source = %ip, "browser call refused: per-source limit");
            crate::metrics::Metrics::inc(&self.metrics.webrtc_refused);
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

    /// The call's state, for the page.
    pub fn state(&self, id: &str) -> Option<WebState> {
        let now = Instant::now();
        let mut calls = self.calls();
        calls.retain(|_, e| e.ended.is_none_or(|t| now.duration_since(t) < KEEP_ENDED));
        calls.get(id).map(|e| e.state.borrow().clone())
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
                tracing::info!(call_id = %call_id, source = %client, reason = %why, "browser call not connected: no ticket");
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
        self.release(client.ip());
    }
}
