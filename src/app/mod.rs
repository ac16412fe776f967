//! Wiring: [`App::build`] loads what the gateway needs and binds every
//! socket (so tests use port 0 and read the addresses back);
//! [`App::run_until_stopped`] starts the long-lived tasks, each by name into
//! one [`Supervisor`], which watches them until the shutdown token fires;
//! then the calls end cleanly. A task that dies before fails the gateway.

pub mod supervisor;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::api::{self, ApiState, Health};
use crate::call::{self, CallContext};
use crate::config::Settings;
use crate::media::ports::PortPool;
use crate::metrics::Metrics;
use crate::paging::channels::Channels;
use crate::sip::core::{Core, CoreConfig};
use crate::sip::message::Limits;
use crate::sip::transaction::TimerConfig;
use crate::sip::transport::{self, Bound, CallChannels};
use crate::tickets::journal::Journal;
use crate::tickets::{Store, Tickets};
use crate::watch::Watcher;
use supervisor::{Faults, Supervisor, Task};

/// A built gateway, sockets bound, not yet running.
pub struct App {
    settings: Settings,
    sip: Bound,
    http: TcpListener,
    store: Store,
    journal: Journal,
    /// The roster, calendars, prompts, policies and webhooks in force.
    pub live: Arc<crate::live::Live>,
    caller_key: crate::privacy::CallerKey,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

impl App {
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        let loaded = crate::reload::load_files(&settings)
            .map_err(|problems| anyhow::anyhow!(problems.join("\n")))?
            .into_loaded(&settings);
        let fingerprint = loaded.fingerprint.clone();
        tracing::info!(fingerprint = %fingerprint, "configuration loaded");
        let health = Arc::new(Health::default());
        health.loaded(&fingerprint, jiff::Timestamp::now());
        let caller_key = crate::privacy::CallerKey::load(
            settings.privacy.key.as_ref().map(|k| k.0.as_str()),
            &settings.privacy.key_file,
        )?;
        let today = crate::court_time::court_day(jiff::Timestamp::now());
        if let Some(w) = loaded.calendar.warning(today) {
            tracing::warn!("{w}");
        }
        let store = settings.redis.store().map_err(anyhow::Error::msg)?;
        // The key the tickets in this Redis were sealed with: another one
        // (another working directory, a lost file, a second gateway with its
        // own) is refused now if Redis answers, else as soon as it does.
        if let Ok(r) = tokio::time::timeout(
            KEY_CHECK_WAIT,
            store.check_caller_key(caller_key.fingerprint()),
        )
        .await
        {
            match r {
                Ok(None) => {}
                Ok(Some(on_record)) => anyhow::bail!(key_mismatch(
                    &settings,
                    caller_key.fingerprint(),
                    &on_record
                )),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot check the caller key against Redis yet: checked when it answers")
                }
            }
        }
        let mut journal = Journal::open(&settings.redis.journal_dir).with_context(|| {
            format!(
                "opening the ticket journal in {}",
                settings.redis.journal_dir.display()
            )
        })?;
        journal.set_limit(settings.redis.journal_max_mb.saturating_mul(1 << 20));
        if !journal.is_empty() {
            tracing::info!(
                pending = journal.len(),
                "ticket operations from the last run wait in the journal"
            );
        }
        let mut sip = transport::bind(&settings.sip.listen)
            .with_context(|| format!("binding SIP on {:?}", settings.sip.listen))?;
        if let (Some(cert), Some(key)) = (&settings.sip.tls_cert, &settings.sip.tls_key) {
            let config = crate::tls::server_config(cert, key, &[])?;
            sip.listen_tls(&settings.sip.tls_listen, config)
                .with_context(|| {
                    format!("binding SIP over TLS on {:?}", settings.sip.tls_listen)
                })?;
        }
        let http = TcpListener::bind(settings.http.listen)
            .await
            .with_context(|| format!("binding HTTP on {}", settings.http.listen))?;
        if let Some(t) = settings.trunk.as_ref().filter(|t| t.transport == "tls") {
            let tls = t.tls().map_err(|(key, e)| anyhow::anyhow!("{key}: {e}"))?;
            sip.connect_tls(transport::TRUNK_CONN, tls);
        }
        for (udp, tcp) in sip.addrs() {
            tracing::info!("sip listening udp={udp} tcp={tcp}");
        }
        for tls in sip.tls_addrs() {
            tracing::info!("sip listening tls={tls}");
        }
        let scheme = if settings.http.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        tracing::info!("{scheme} listening {}", http.local_addr()?);
        Ok(App {
            settings,
            sip,
            http,
            store,
            journal,
            live: Arc::new(crate::live::Live::new(loaded)),
            caller_key,
            metrics: Arc::new(Metrics::default()),
            health,
        })
    }

    /// `(udp, tcp)` SIP addresses, one pair per listen address.
    pub fn sip_addrs(&self) -> Vec<(SocketAddr, SocketAddr)> {
        self.sip.addrs()
    }

    /// The SIP over TLS addresses (none without `[sip] tls_cert`).
    pub fn sip_tls_addrs(&self) -> Vec<SocketAddr> {
        self.sip.tls_addrs()
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http.local_addr().expect("bound")
    }

    /// Starts every long-lived task, each under its name, then supervises
    /// them until `shutdown`: one that ends before it has died (a panic, a
    /// lost socket), health says so at once and the gateway stops with an
    /// error, so that systemd starts it again (the journal keeps every
    /// ticket operation). Otherwise the gateway drains, then ends its calls.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let App {
            settings,
            sip,
            http,
            store,
            journal,
            live,
            caller_key,
            metrics,
            health,
        } = self;
        // The swaps in force before anything resolves the duty (Redis down:
        // the swaps' sync puts them in force as soon as it answers).
        match tokio::time::timeout(KEY_CHECK_WAIT, crate::swaps::put_in_force(&store, &live)).await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the swaps in force are read when Redis answers")
            }
            Err(_) => tracing::warn!("the swaps in force are read when Redis answers"),
        }
        let faults = Faults::new(settings.sip.fault_injection);
        let mut tasks = Supervisor::new(faults.clone());
        let stops = Stops {
            shutdown,
            paging: CancellationToken::new(),
            sip: CancellationToken::new(),
            http: CancellationToken::new(),
        };
        let load = Arc::new(crate::shedding::Load::default());
        let (req_tx, req_rx) = mpsc::channel(1024);
        let w = Wiring {
            requester: crate::sip::transport::Requester::new(req_tx),
            ports: Arc::new(PortPool::new(
                settings.media.bind_ip,
                settings.media.rtp_port_min,
                settings.media.rtp_port_max,
                load.clone(),
            )),
            load,
            gateway: format!("{:016x}", rand::random::<u64>()),
            s: settings,
            store,
            live,
            caller_key,
            metrics,
            health,
        };
        let workers = w.start_workers(&mut tasks, &stops, faults)?;
        let side = w
            .start_calls(&mut tasks, &stops, sip, journal, req_rx, &workers)
            .await?;
        if let Some(r) = side.registration.clone() {
            let _ = workers.watcher.registration.set(r);
        }
        w.start_http(&mut tasks, &stops, http, side, workers)?;

        let died = tasks.watch(&stops.shutdown).await;
        // The maintenance tasks have nothing to finish.
        for t in [
            Task::KeyCheck,
            Task::Retention,
            Task::Handover,
            Task::Digest,
            Task::Reloads,
            Task::Watch,
            Task::Swaps,
            Task::Reminders,
            Task::Allocator,
        ] {
            tasks.abort(t);
        }
        match died {
            Some(task) => w.fail(task, &stops).await,
            None => w.stop(tasks, &stops).await,
        }
    }
}

/// What the tasks are made of (handles, each cheap to clone).
struct Wiring {
    s: Settings,
    store: Store,
    live: Arc<crate::live::Live>,
    caller_key: crate::privacy::CallerKey,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    load: Arc<crate::shedding::Load>,
    /// The RTP ports of calls and paging calls.
    ports: Arc<PortPool>,
    /// Requests (paging calls, REGISTERs, answers) through the SIP core.
    requester: crate::sip::transport::Requester,
    /// This process, as the registrar's bindings name the gateway that
    /// holds a softphone's flow.
    gateway: String,
}

/// The tokens that stop the tasks, in the shutdown's order.
struct Stops {
    /// The gateway's own: a signal, the admin socket's `drain`.
    shutdown: CancellationToken,
    /// The paging worker, handovers and follow-ups: no new step starts.
    paging: CancellationToken,
    /// The SIP core (then the call layer), the registrar, browser calls.
    sip: CancellationToken,
    /// The API serves on while the gateway drains (officers at work,
    /// `/healthz` saying so); it stops with the calls.
    http: CancellationToken,
}

/// What the workers hand the call side and the HTTP side.
struct Workers {
    /// The slots bridges and callbacks share.
    bridging: Arc<call::bridge::Bridging>,
    /// Texts that are no page: handovers, the API's notices.
    notices: Channels,
    watcher: Arc<Watcher>,
    /// Swaps and overrides of the duty.
    swaps: Arc<crate::swaps::Swaps>,
}

/// What the call side hands the HTTP side.
struct CallSide {
    /// The ticket writer's handle: the router holds the last one once the
    /// call layer is done.
    tickets: Tickets,
    web: Option<Arc<call::web::WebCalls>>,
    /// How our registration with the trunk stands (with `register`).
    registration: Option<tokio::sync::watch::Receiver<crate::sip::core::RegistrationState>>,
}

impl Wiring {
    /// The paging worker, handovers, follow-ups, the channel watch,
    /// reloads, retention and the caller key check; and the slots bridges
    /// and callbacks share.
    fn start_workers(
        &self,
        tasks: &mut Supervisor,
        stops: &Stops,
        faults: Option<Faults>,
    ) -> anyhow::Result<Workers> {
        let s = &self.s;
        let mut channels = paging_channels(
            s,
            self.requester.clone(),
            self.live.clone(),
            self.ports.clone(),
            self.store.clone(),
            &self.gateway,
            Some(s.recording.dir.clone()),
        )?;
        // Text pages carry a one-tap link when the page has a public origin.
        channels.links = s.http.public_url.clone().map(|base| {
            crate::api::auth::page_links(self.store.clone(), base, s.http.page_link_lifetime())
        });
        // Bridges and callbacks: one set of slots for both.
        let bridging = Arc::new(call::bridge::Bridging::new(
            s.bridge.clone(),
            channels.dial.clone(),
        ));
        // Texts that are no page: handovers, the API's notices.
        let notices = channels.clone();
        let paging = Arc::new(crate::paging::worker::Paging {
            metrics: self.metrics.clone(),
            store: self.store.clone(),
            live: self.live.clone(),
            channels,
            lease: Duration::from_secs(s.paging.lease_seconds),
        });
        tasks.spawn(Task::Paging, paging.run(stops.paging.clone()));
        // Shift handovers: a summary at the start of each duty block.
        let handover = Arc::new(crate::paging::handover::Handover {
            store: self.store.clone(),
            live: self.live.clone(),
            channels: notices.clone(),
        });
        tasks.spawn(Task::Handover, handover.run(stops.paging.clone()));
        // The consultations' digest: each handler's open ones, each
        // working morning.
        let digest = Arc::new(crate::paging::digest::Digest {
            store: self.store.clone(),
            live: self.live.clone(),
            channels: notices.clone(),
            metrics: self.metrics.clone(),
        });
        tasks.spawn(Task::Digest, digest.run(stops.paging.clone()));
        // The transcriber: the queue of recordings waiting for their text.
        if s.transcribe.enabled {
            let t = crate::transcribe::Transcriber {
                settings: s.transcribe.clone(),
                store: self.store.clone(),
            };
            tasks.spawn(Task::Transcribe, t.run(stops.paging.clone()));
        }
        // Follow-up calls (回访): a worker on the store's schedule.
        if s.follow_up.enabled {
            let f = Arc::new(call::follow_up::FollowUps {
                settings: s.follow_up.clone(),
                store: self.store.clone(),
                bridging: bridging.clone(),
                caller_key: self.caller_key.clone(),
            });
            tasks.spawn(Task::FollowUps, f.run(stops.paging.clone()));
        }
        // The channel watch: the trunk, webhook receivers, softphones, the
        // duty (on demand too, so made even when its schedule is off).
        let watcher = Arc::new(Watcher {
            settings: s.watch.clone(),
            store: self.store.clone(),
            live: self.live.clone(),
            channels: notices.clone(),
            registration: std::sync::OnceLock::new(),
            reach: s.reach(),
            metrics: self.metrics.clone(),
            watched: self.health.watched.clone(),
        });
        if s.watch.enabled {
            tasks.spawn(Task::Watch, watcher.clone().run(stops.paging.clone()));
        }
        // Swaps and overrides: this gateway's roster follows the store's,
        // the notices they owe go out once; the evening reminders.
        let swaps = Arc::new(crate::swaps::Swaps::new(
            self.store.clone(),
            self.live.clone(),
            s.swaps.clone(),
            Some(notices.clone()),
        ));
        tasks.spawn(Task::Swaps, swaps.clone().run(stops.paging.clone()));
        tasks.spawn(
            Task::Reminders,
            swaps.clone().run_reminders(stops.paging.clone()),
        );
        let tests = watcher.clone();
        let watch_hook: crate::reload::WatchHook = Arc::new(move || {
            let w = tests.clone();
            Box::pin(async move { tested_answer(&w.test_webhooks().await) })
        });
        // Reloads: SIGHUP and the admin socket (end with the gateway).
        let reloads = crate::reload::serve_reloads(
            s.clone(),
            self.live.clone(),
            self.health.clone(),
            stops.shutdown.clone(),
            faults.map(|f| {
                Arc::new(move |name: &str| f.inject(name).map(|t| t.to_string()))
                    as crate::reload::FaultHook
            }),
            watch_hook,
            swaps.clone(),
        );
        tasks.spawn(Task::Reloads, reloads);
        // Retention: a maintenance task (it ends with the gateway).
        let retention = crate::retention::run(
            self.store.clone(),
            s.recording.dir.clone(),
            s.recording.retain_days,
            stops.shutdown.clone(),
        );
        tasks.spawn(Task::Retention, retention);
        // Freed memory back to the system while no call is in progress.
        tasks.spawn(
            Task::Allocator,
            crate::allocator::run(self.load.clone(), stops.shutdown.clone()),
        );
        // Ends only on a mismatch: the gateway then stops.
        let check = check_key_later(
            self.store.clone(),
            self.caller_key.fingerprint().to_string(),
            s.clone(),
        );
        tasks.spawn(Task::KeyCheck, async move {
            // Awaited outside the macro: a disabled event would not.
            let why = check.await;
            tracing::error!("{why}");
        });
        Ok(Workers {
            bridging,
            notices,
            watcher,
            swaps,
        })
    }

    /// The ticket writer (and the recordings a crash left unfinished), the
    /// registrar, browser calls, the SIP thread with the call manager; then
    /// the trunk registered with.
    async fn start_calls(
        &self,
        tasks: &mut Supervisor,
        stops: &Stops,
        sip: Bound,
        journal: Journal,
        req_rx: mpsc::Receiver<crate::sip::transport::PendingRequest>,
        workers: &Workers,
    ) -> anyhow::Result<CallSide> {
        let bridging = &workers.bridging;
        let s = &self.s;
        let (tickets, writer) =
            Tickets::start_transcribing(self.store.clone(), journal, s.transcribe.enabled);
        tasks.spawn(Task::Tickets, writer);
        // Recordings a crash left unfinished: repaired and noted on their tickets.
        let dir = s.recording.dir.clone();
        let recovered = tokio::task::spawn_blocking(move || crate::recording::repair::scan(&dir))
            .await
            .unwrap_or_default();
        for r in recovered {
            crate::call::note_recovered(&tickets, r).await;
        }
        let (event_tx, event_rx) = mpsc::channel(4096);
        let (cmd_tx, cmd_rx) = mpsc::channel(4096);
        let ctx = Arc::new(CallContext {
            commands: cmd_tx,
            ports: self.ports.clone(),
            advertise_ip: s.media.advertise_ip,
            live: self.live.clone(),
            intake: s.intake.clone(),
            max_call: Duration::from_secs(s.sip.max_call_seconds),
            media_timeout: Duration::from_secs(s.media.timeout_seconds),
            caller_key: self.caller_key.clone(),
            recordings: s.recording.dir.clone(),
            metrics: self.metrics.clone(),
            tickets: tickets.clone(),
            bridging: s.bridge.enabled.then(|| bridging.clone()),
            follow_up: s.follow_up.enabled,
        });
        // The SIP core stops after the calls' BYEs are queued; the call layer
        // then sees the channel close and waits for its tasks. The call
        // manager runs on the SIP thread; the calls it starts run here.
        let (register_tx, register_rx) = mpsc::channel(256);
        if let Some(r) = s.registrar.clone() {
            let r = Arc::new(crate::registrar::Registrar::new(
                r,
                self.store.clone(),
                self.gateway.clone(),
            ));
            let run = r.run(register_rx, self.requester.clone(), stops.sip.clone());
            tasks.spawn(Task::Registrar, run);
        }
        // Replies to MESSAGE pages: the core hands them over the same way.
        let (text_tx, text_rx) = mpsc::channel(256);
        if s.paging.message_replies {
            let r = Arc::new(crate::paging::replies::Replies {
                store: self.store.clone(),
                live: self.live.clone(),
                channels: workers.notices.clone(),
                per_minute: s.paging.replies_per_minute,
            });
            let run = r.run(text_rx, self.requester.clone(), stops.sip.clone());
            tasks.spawn(Task::Replies, run);
        }
        // Browser calls: their own ports and certificate, the same calls.
        let web = match s.webrtc.enabled {
            true => Some(
                call::web::WebCalls::new(
                    &ctx,
                    s.webrtc.clone(),
                    self.load.clone(),
                    stops.sip.clone(),
                )
                .map_err(|e| anyhow::anyhow!("webrtc: the DTLS certificate: {e}"))?,
            ),
            false => None,
        };
        if let Some(web) = &web {
            tasks.spawn(Task::WebPruning, web.pruning());
        }
        let calls = call::run(ctx, event_rx, tokio::runtime::Handle::current());
        let core = Core::new(core_config(s, self.load.clone()), self.metrics.sip.clone());
        let sip = transport::spawn(
            sip,
            core,
            CallChannels {
                events: event_tx,
                commands: cmd_rx,
                requests: req_rx,
                registrar: s.registrar.is_some().then_some(register_tx),
                texts: s.paging.message_replies.then_some(text_tx),
            },
            driver_config(s),
            self.metrics.sip.clone(),
            stops.sip.clone(),
            calls,
        )
        .context("starting the SIP thread")?;
        tasks.adopt(Task::Sip, sip);
        self.health.sip_listening.store(true, Ordering::Release);
        // The trunk as resolved at start.
        let mut registration = None;
        if let Some((t, dest)) = bridging.dial.trunk.as_ref().filter(|(t, _)| t.register) {
            let domain = t.domain();
            let state = self
                .requester
                .register(
                    crate::sip::core::Registration {
                        registrar: format!("sip:{domain}"),
                        aor: t.from_uri(),
                        expires: t.register_expires,
                        credentials: t.credentials(),
                    },
                    *dest,
                    t.egress(),
                )
                .await;
            registration = Some(state);
        }
        Ok(CallSide {
            tickets,
            web,
            registration,
        })
    }

    /// The HTTP server (or HTTPS): `/healthz`, `/metrics`, the officers'
    /// API, the browser calls' page.
    fn start_http(
        &self,
        tasks: &mut Supervisor,
        stops: &Stops,
        http: TcpListener,
        side: CallSide,
        workers: Workers,
    ) -> anyhow::Result<()> {
        let Workers {
            bridging,
            notices,
            watcher,
            swaps,
        } = workers;
        let s = &self.s;
        let router = api::router(ApiState {
            health: self.health.clone(),
            metrics: self.metrics.clone(),
            tickets: side.tickets.health.clone(),
            live: self.live.clone(),
            load: self.load.clone(),
            v1: Some(Arc::new(crate::api::v1::V1 {
                store: self.store.clone(),
                live: self.live.clone(),
                caller_key: self.caller_key.clone(),
                reveal_roles: s.api.reveal_roles.clone(),
                stop: stops.http.clone(),
                streams: Default::default(),
                trusted_proxies: s.http.trusted_proxies.clone(),
                member_failures_per_hour: s.http.member_failures_per_hour,
                notices: Some(notices),
                metrics: self.metrics.clone(),
                callbacks: Some(Arc::new(call::callback::Callbacks {
                    bridging,
                    tickets: side.tickets,
                    caller_key: self.caller_key.clone(),
                })),
                callback_limits: crate::tickets::actions::CallbackLimits {
                    per_ticket: s.api.callbacks_per_ticket_per_day,
                    per_member: s.api.callbacks_per_member_per_day,
                },
                watch: Some(watcher),
                page_link_lifetime: s.http.page_link_lifetime(),
                swaps: Some(swaps),
                transcribe: s.transcribe.enabled,
            })),
            call: side.web.map(|web| crate::api::webcall::CallApi {
                web,
                trusted_proxies: s.http.trusted_proxies.clone(),
            }),
        });
        let tls = match (&s.http.tls_cert, &s.http.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key, &[b"http/1.1"])?),
            _ => None,
        };
        let (max_conns, stop) = (s.http.max_connections, stops.http.clone());
        match tls {
            None => tasks.spawn(Task::Http, api::serve::serve(http, router, max_conns, stop)),
            Some(tls) => {
                let (https, accepting) =
                    crate::api::tls::TlsListener::new(http, tls, stops.shutdown.clone())?;
                tasks.spawn(Task::HttpsAccept, accepting);
                tasks.spawn(
                    Task::Http,
                    api::serve::serve(https, router, max_conns, stop),
                );
            }
        }
        Ok(())
    }

    /// `task` died: health answers 503 `failed` for a moment, then the
    /// gateway stops with an error.
    async fn fail(&self, task: Task, stops: &Stops) -> anyhow::Result<()> {
        self.health.fail(task.name());
        stops.sip.cancel();
        stops.paging.cancel();
        // Health answers 503 meanwhile; the ticket writer gets a moment
        // to apply what the journal holds (what it cannot is replayed at
        // the next start).
        tokio::time::sleep(FAILED_GRACE).await;
        stops.shutdown.cancel();
        stops.http.cancel();
        anyhow::bail!("{task} ended unexpectedly");
    }

    /// The shutdown: draining first (with `drain_seconds`), then the calls
    /// end, paging stops, the SIP thread, the ticket writer, the API.
    async fn stop(&self, mut tasks: Supervisor, stops: &Stops) -> anyhow::Result<()> {
        let s = &self.s;
        // Draining (an upgrade, a restart): new calls and the proxy's
        // probes get 503, paging is left to the other gateways, and the
        // calls in progress get `drain_seconds` to finish.
        if s.sip.drain_seconds > 0 {
            self.load.drain();
            stops.paging.cancel();
            let limit = Duration::from_secs(s.sip.drain_seconds);
            tracing::info!(
                calls = self.load.leased(),
                limit_s = limit.as_secs(),
                "draining: no new calls; waiting for those in progress"
            );
            let until = tokio::time::Instant::now() + limit;
            while self.load.leased() > 0 && tokio::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            tracing::info!(left = self.load.leased(), "drained");
        }
        tracing::info!("shutting down: ending calls");
        // Calls end now (BYE; new INVITEs get 503), and so does paging: no
        // new step starts; steps in flight get a bounded time to finish
        // (another gateway, or this one at its next start, takes over what
        // is due, the lease having run out).
        stops.sip.cancel();
        stops.paging.cancel();
        stops.http.cancel();
        if !tasks
            .wait(Task::Paging, Some(Duration::from_secs(10)))
            .await
        {
            tracing::warn!("paging steps still running at shutdown: left to their lease");
        }
        // Its calls end with the SIP core's.
        tasks
            .wait(Task::FollowUps, Some(Duration::from_secs(10)))
            .await;
        // The transcriber hands a job in progress back to the queue (the
        // next start, or another gateway, takes it at once) and stops its
        // worker.
        tasks
            .wait(Task::Transcribe, Some(Duration::from_secs(5)))
            .await;
        // The SIP thread ends once the core and the call manager are done,
        // and the manager once every call task is.
        tasks.wait(Task::Sip, None).await;
        // The call layer held the last ticket handles: the writer now makes
        // its last attempt to empty the journal and stops.
        tasks.wait(Task::Tickets, None).await;
        // Open event streams end with `shutdown`; any other slow client
        // gets 5 s.
        tasks.wait(Task::Http, Some(Duration::from_secs(5))).await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The SIP core's settings.
fn core_config(s: &Settings, load: Arc<crate::shedding::Load>) -> CoreConfig {
    CoreConfig {
        timers: TimerConfig {
            t1: s.sip.t1(),
            t2: s.sip.t2(),
            t4: s.sip.t4(),
        },
        max_calls: s.sip.max_calls,
        max_placed: s.sip.max_placed_calls,
        retry_after: s.sip.retry_after_seconds,
        ring: Duration::from_millis(s.sip.ring_ms),
        tcp_idle: Duration::from_secs(s.sip.tcp_idle_seconds),
        user_agent: s.sip.user_agent.clone(),
        limits: limits(s),
        admission: s.sip.admission(),
        load,
        registrar: s.registrar.is_some(),
        messages: s.paging.message_replies,
        srtp: s.sip.srtp,
    }
}

fn limits(s: &Settings) -> Limits {
    Limits {
        max_header_bytes: s.sip.max_header_bytes,
        max_body_bytes: s.sip.max_body_bytes,
    }
}

/// The SIP thread's settings.
fn driver_config(s: &Settings) -> transport::DriverConfig {
    transport::DriverConfig {
        limits: limits(s),
        max_connections: s.sip.tcp_max_connections,
        fault_injection: s.sip.fault_injection,
    }
}

/// `hotline page test MEMBER`: one test page through each of the member's
/// contact methods, with the outcome of each, so a court can check its
/// roster: the gateway's own core, paging channels and prompts, on a SIP
/// socket of its own (an ephemeral port, beside a running gateway).
pub async fn test_page(
    s: &Settings,
    member_id: &str,
) -> anyhow::Result<Vec<crate::paging::channels::Attempt>> {
    let loaded = crate::reload::load_files(s)
        .map_err(|problems| anyhow::anyhow!(problems.join("\n")))?
        .into_loaded(s);
    let member = loaded
        .roster
        .member(member_id)
        .with_context(|| {
            format!(
                "{member_id:?} is not a member of {}",
                s.roster.file.display()
            )
        })?
        .clone();
    let live = Arc::new(crate::live::Live::new(loaded));
    let bound = transport::bind(&[SocketAddr::from(([0, 0, 0, 0], 0))])
        .context("binding a SIP socket for the test page")?;
    let metrics = Arc::new(Metrics::default());
    let load = Arc::new(crate::shedding::Load::default());
    let core = Core::new(core_config(s, load.clone()), metrics.sip.clone());
    let (events_tx, mut events_rx) = mpsc::channel(16);
    let (_commands_tx, commands_rx) = mpsc::channel(16);
    let (req_tx, req_rx) = mpsc::channel(16);
    let stop = CancellationToken::new();
    // Nobody calls a test page's socket: an offered call is dropped.
    tokio::spawn(async move { while events_rx.recv().await.is_some() {} });
    let sip = transport::spawn(
        bound,
        core,
        CallChannels {
            events: events_tx,
            commands: commands_rx,
            requests: req_rx,
            registrar: None,
            texts: None,
        },
        driver_config(s),
        metrics.sip.clone(),
        stop.clone(),
        std::future::ready(()),
    )
    .context("starting the SIP thread")?;
    let ports = Arc::new(PortPool::new(
        s.media.bind_ip,
        s.media.rtp_port_min,
        s.media.rtp_port_max,
        load,
    ));
    let store = s.redis.store().map_err(anyhow::Error::msg)?;
    let mut channels = paging_channels(
        s,
        crate::sip::transport::Requester::new(req_tx),
        live,
        ports,
        store,
        "page-test",
        None,
    )?;
    // No ticket to reply about or link to.
    channels.replies = false;
    let page = crate::paging::channels::Page {
        ticket: "测试".into(),
        category: "lead".into(),
        urgent: false,
        step: 0,
        repeat: 0,
        note: Some("这是一次测试呼叫，无需处理".into()),
        partner: None,
        repeat_report: None,
        alarm: false,
        transcript: None,
    };
    let attempts = channels.page(&member, &page).await;
    stop.cancel();
    let _ = sip.await;
    Ok(attempts)
}

/// The paging channels as the settings make them: the gateway's, and the
/// test page's (`recordings: None`, `gateway` not this one's: a
/// softphone's flow is not its to call on).
pub fn paging_channels(
    s: &Settings,
    sip: crate::sip::transport::Requester,
    live: Arc<crate::live::Live>,
    ports: Arc<PortPool>,
    store: Store,
    gateway: &str,
    recordings: Option<std::path::PathBuf>,
) -> anyhow::Result<crate::paging::channels::Channels> {
    let dial = crate::call::dial::Dialer {
        sip,
        from_uri: s.paging.from_uri.clone(),
        outbound_proxy: s.paging.outbound_proxy,
        live,
        ports,
        advertise_ip: s.media.advertise_ip,
        ring_timeout: Duration::from_secs(s.paging.call_ring_seconds),
        key_timeout: Duration::from_secs(s.paging.call_key_seconds),
        plays: s.paging.call_plays.max(1),
        media_timeout: Duration::from_secs(s.media.timeout_seconds),
        credentials: s.paging.credentials(),
        sips: crate::tls::client_config(s.paging.tls_ca.as_deref())
            .map_err(|e| anyhow::anyhow!("paging.tls_ca: {e}"))?,
        // The trunk's address, resolved once more (DNS may have moved it).
        trunk: s.trunk.as_ref().map(|t| t.resolved()).transpose()?,
        recordings,
        store,
        gateway: gateway.to_string(),
    };
    Ok(Channels {
        dial,
        http: crate::webhook::client().context("HTTP client for webhooks")?,
        // Set by the gateway with `[http] public_url`; a test page has none.
        links: None,
        replies: s.paging.message_replies,
    })
}

/// The admin socket's answer to `watch test-webhooks`: `ok` when every
/// receiver took its test delivery, `error` otherwise; a line each.
fn tested_answer(tested: &[crate::watch::Tested]) -> String {
    let head = match tested.iter().all(|t| t.ok) {
        true => "ok",
        false => "error",
    };
    let mut text = format!("{head}\n");
    if tested.is_empty() {
        text.push_str("no webhook receivers configured ([paging.webhooks.NAME])\n");
    }
    for t in tested {
        let state = if t.ok { "ok" } else { "BROKEN" };
        text.push_str(&format!("{} {state}: {}\n", t.receiver, t.outcome));
    }
    text
}

/// How long the start waits for Redis to check the caller key.
const KEY_CHECK_WAIT: Duration = Duration::from_secs(3);

/// Why a gateway with another caller key may not run on this Redis.
fn key_mismatch(s: &Settings, ours: &str, on_record: &str) -> String {
    let source = if s.privacy.key.is_some() {
        "HOTLINE_CALLER_KEY".to_string()
    } else {
        format!("privacy.key_file {}", s.privacy.key_file.display())
    };
    format!(
        "{source}: the caller key's fingerprint is {ours}, but the tickets in {} were sealed with the key whose fingerprint is {on_record}: restore that key (a new one cannot open their numbers)",
        s.redis.url_redacted()
    )
}

/// Checks the caller key against Redis until Redis answers; ends only on
/// a mismatch (the gateway then stops, as for a task that died).
async fn check_key_later(store: Store, ours: String, settings: Settings) -> String {
    loop {
        match store.check_caller_key(&ours).await {
            Ok(None) => return std::future::pending().await,
            Ok(Some(on_record)) => return key_mismatch(&settings, &ours, &on_record),
            Err(_) => tokio::time::sleep(Duration::from_secs(5)).await,
        }
    }
}

/// How long a gateway whose task died keeps answering health checks (503)
/// before it exits.
const FAILED_GRACE: Duration = Duration::from_secs(1);
