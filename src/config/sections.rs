//! The sections of the main file, each with its defaults: `[api]`,
//! `[privacy]`, `[roster]`, `[sip]`, `[media]`, `[http]`, `[redis]`,
//! `[recording]`, `[prompts]` (the other sections' types live with what
//! they configure: intake, paging, trunk, registrar).

use super::*;

/// `[api]`: the officers' API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// Roster roles entitled to reveal a caller (rule 第二十条(三)), and so
    /// to have the informant called back (回拨).
    pub reveal_roles: Vec<crate::roster::Role>,
    /// Callbacks asked for one ticket in a court day (Asia/Shanghai), by
    /// anyone; more get 429.
    pub callbacks_per_ticket_per_day: u32,
    /// Callbacks one member asks for in a court day, on any ticket.
    pub callbacks_per_member_per_day: u32,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            reveal_roles: vec![
                crate::roster::Role::Director,
                crate::roster::Role::ChiefCommander,
            ],
            callbacks_per_ticket_per_day: 3,
            callbacks_per_member_per_day: 10,
        }
    }
}

/// `[privacy]`: the key that seals callers' numbers and names at rest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacySettings {
    /// Base64 of 32 bytes; created with a random key when missing. Every
    /// gateway sharing a Redis needs the same key (or HOTLINE_CALLER_KEY).
    pub key_file: PathBuf,
    /// From HOTLINE_CALLER_KEY only (never from the file, never printed).
    #[serde(skip)]
    pub key: Option<Secret>,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        PrivacySettings {
            key_file: PathBuf::from("data/caller.key"),
            key: None,
        }
    }
}

/// A value that never shows in debug output.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// `[roster]`: who is on duty (paths relative to the config file's directory).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RosterSettings {
    /// Units, members, rotation, working hours, overrides.
    pub file: PathBuf,
    /// One `<year>.toml` per year of the State Council's holiday notice.
    pub holidays: PathBuf,
}

impl Default for RosterSettings {
    fn default() -> Self {
        RosterSettings {
            file: PathBuf::from("roster.toml"),
            holidays: PathBuf::from("holidays"),
        }
    }
}

/// `[sip]`: signalling listeners, timers and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipSettings {
    /// Addresses to listen on; each one gets a UDP socket and a TCP listener on
    /// the same port. Port 0 picks a free port (the first address's port is then
    /// reused for the others).
    pub listen: Vec<SocketAddr>,
    /// Concurrent calls accepted; a new INVITE beyond it gets 503 + Retry-After.
    pub max_calls: usize,
    /// Concurrent calls the gateway places (paging), counted apart from
    /// `max_calls`: one more is not placed (its attempt says so).
    pub max_placed_calls: usize,
    /// SRTP keyed by SDES (RFC 4568): `off`, `optional` (when offered) or
    /// `required` (an offer without a usable key gets 488).
    pub srtp: crate::sip::sdp::SrtpPolicy,
    /// Seconds suggested to callers refused for overload (`Retry-After`).
    pub retry_after_seconds: u32,
    /// Longest call; the gateway hangs up with BYE when it is reached.
    /// On SIGTERM or `hotline drain`: new calls get 503 (OPTIONS too, so
    /// a proxy routes elsewhere) and calls in progress get this long to
    /// finish before they are ended; 0 stops at once.
    pub drain_seconds: u64,
    pub max_call_seconds: u64,
    /// RFC 3261 T1 (round-trip estimate), milliseconds.
    pub t1_ms: u64,
    /// RFC 3261 T2 (retransmit cap for non-INVITE and 2xx), milliseconds.
    pub t2_ms: u64,
    /// RFC 3261 T4 (maximum time a message stays in the network), milliseconds.
    pub t4_ms: u64,
    /// How long 180 Ringing is shown before answering, milliseconds (0: at once).
    pub ring_ms: u64,
    /// A TCP connection that carries no message and no call for this long is closed.
    pub tcp_idle_seconds: u64,
    /// Concurrent TCP connections accepted per listener.
    pub tcp_max_connections: usize,
    /// SIP over TLS (RFC 3261 §26.3.1, `sips:`/`transport=tls`): a PEM
    /// certificate chain and its key, as for HTTPS; with them the gateway
    /// listens on `tls_listen` too.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Where SIP over TLS listens (5061 on every address by default).
    pub tls_listen: Vec<SocketAddr>,
    /// Largest header section accepted (bytes); beyond it: 400 and close.
    pub max_header_bytes: usize,
    /// Largest body accepted (bytes).
    pub max_body_bytes: usize,
    /// `Server` / `User-Agent` header value.
    pub user_agent: String,
    /// The court's PBX and the carrier's SBC (addresses or blocks,
    /// `"10.1.2.0/24"`): never rate-limited, and their P-Asserted-Identity
    /// (or From) is the caller's number. Never a proxy that relays the
    /// public's calls: that goes in `proxies`.
    pub trusted: Vec<Cidr>,
    /// Proxies in front (Kamailio, `deploy/kamailio/kamailio.cfg`): trusted
    /// for routing only. What they relay is limited, banned and logged by
    /// the source they name in `X-Hotline-Source`; they are never banned.
    pub proxies: Vec<Cidr>,
    /// Per untrusted source (an IPv4 address or an IPv6 /64): new requests
    /// a second (bursts of twice as many pass); beyond it a stateless 503.
    pub requests_per_second: u32,
    /// Per untrusted source: new INVITEs a second (bursts of twice as many).
    pub invites_per_second: u32,
    /// Per untrusted source: calls up at once.
    pub calls_per_source: usize,
    /// This many limit hits (or malformed messages) within 10 s ban the
    /// source: dropped unanswered for `ban_seconds`. 0: never ban.
    pub ban_after: u32,
    pub ban_seconds: u64,
    /// Percent of `max_calls` that untrusted sources which already have a
    /// call up cannot take: kept for trusted sources and new callers.
    pub reserve_percent: u32,
    /// Requests whose User-Agent contains one of these (any case) are
    /// dropped unanswered.
    pub scanner_user_agents: Vec<String>,
    /// Server transactions kept at once, in all and per untrusted source;
    /// beyond them requests are answered without keeping state.
    pub max_transactions: usize,
    pub transactions_per_source: usize,
    /// Debug builds only, from `HOTLINE_FAULT_INJECTION=1`: a datagram
    /// `HOTLINE-FAULT-INJECTION` ends the SIP thread, and the admin
    /// socket's `fault NAME` makes the named task panic (the supervision
    /// tests).
    #[serde(skip)]
    pub fault_injection: bool,
}

impl Default for SipSettings {
    fn default() -> Self {
        let limits = AdmissionConfig::default();
        SipSettings {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 5060))],
            max_calls: 1000,
            max_placed_calls: 100,
            srtp: Default::default(),
            tls_cert: None,
            tls_key: None,
            tls_listen: vec![SocketAddr::from(([0, 0, 0, 0], 5061))],
            retry_after_seconds: 30,
            max_call_seconds: 1800,
            drain_seconds: 120,
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
            ring_ms: 0,
            tcp_idle_seconds: 120,
            tcp_max_connections: 1024,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 16 * 1024,
            user_agent: concat!("hotline/", env!("CARGO_PKG_VERSION")).to_string(),
            trusted: Vec::new(),
            proxies: Vec::new(),
            requests_per_second: limits.requests_per_second,
            invites_per_second: limits.invites_per_second,
            calls_per_source: limits.calls_per_source,
            ban_after: limits.ban_after,
            ban_seconds: limits.ban.as_secs(),
            reserve_percent: limits.reserve_percent,
            scanner_user_agents: limits.scanners,
            max_transactions: limits.max_transactions,
            transactions_per_source: limits.transactions_per_source,
            fault_injection: false,
        }
    }
}

impl SipSettings {
    /// The admission limits, as the SIP core takes them.
    pub fn admission(&self) -> AdmissionConfig {
        AdmissionConfig {
            trusted: self.trusted.clone(),
            proxies: self.proxies.clone(),
            requests_per_second: self.requests_per_second,
            invites_per_second: self.invites_per_second,
            calls_per_source: self.calls_per_source,
            ban_after: self.ban_after,
            ban: Duration::from_secs(self.ban_seconds),
            reserve_percent: self.reserve_percent,
            scanners: self
                .scanner_user_agents
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
            max_transactions: self.max_transactions,
            transactions_per_source: self.transactions_per_source,
            ..AdmissionConfig::default()
        }
    }

    pub fn t1(&self) -> Duration {
        Duration::from_millis(self.t1_ms)
    }
    pub fn t2(&self) -> Duration {
        Duration::from_millis(self.t2_ms)
    }
    pub fn t4(&self) -> Duration {
        Duration::from_millis(self.t4_ms)
    }
}

/// `[media]`: RTP ports and addresses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaSettings {
    /// Address RTP sockets bind to.
    pub bind_ip: IpAddr,
    /// Address written into SDP (`c=`). When absent, the address the caller's
    /// packets reach us on is used.
    pub advertise_ip: Option<IpAddr>,
    /// First port of the RTP range (even).
    pub rtp_port_min: u16,
    /// Last port of the RTP range.
    pub rtp_port_max: u16,
    /// Seconds without RTP from the caller after which the gateway hangs up.
    pub timeout_seconds: u64,
}

impl Default for MediaSettings {
    fn default() -> Self {
        MediaSettings {
            bind_ip: IpAddr::from([0, 0, 0, 0]),
            advertise_ip: None,
            rtp_port_min: 20000,
            rtp_port_max: 29999,
            timeout_seconds: 30,
        }
    }
}

/// `[http]`: the API and health endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    /// HTTPS served directly: a PEM certificate chain and its private key
    /// (both or neither; relative to the config file). Without them, plain
    /// HTTP, for a reverse proxy on the same host to terminate TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Connections served at once; the next wait in the listen backlog.
    pub max_connections: usize,
    /// Reverse proxies in front (CIDRs): from them, the client is the
    /// nearest address in `X-Forwarded-For` that is not one of them; from
    /// anyone else the header is ignored (it is the client's to forge).
    pub trusted_proxies: Vec<Cidr>,
    /// Failed logins of one member in an hour, from all sources together,
    /// before each further attempt waits 1, 2, 4 … minutes (at most an
    /// hour) and the member and the director are told.
    pub member_failures_per_hour: u32,
    /// Where the officers open the mobile page from outside, as the links
    /// in text pages name it (`https://hotline.court.example`, the
    /// origin nginx serves; a path after it if the page is under one).
    /// Without it text pages carry no link and say nothing of one.
    pub public_url: Option<String>,
    /// How long a page's link opens its ticket (once), and how long the
    /// session it opens lasts, in minutes.
    pub page_link_minutes: u32,
}

impl HttpSettings {
    /// How long a page's link, and the session it opens, last.
    pub fn page_link_lifetime(&self) -> Duration {
        Duration::from_secs(u64::from(self.page_link_minutes) * 60)
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_cert: None,
            tls_key: None,
            max_connections: 512,
            trusted_proxies: Vec::new(),
            member_failures_per_hour: 10,
            public_url: None,
            page_link_minutes: 30,
        }
    }
}

/// `[redis]`: the ticket store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    pub url: String,
    /// Every key starts with this, so the gateway can share a Redis.
    pub key_prefix: String,
    /// Where ticket operations wait (fsynced) while Redis is unreachable.
    pub journal_dir: PathBuf,
    /// The journal's bound; past half of it the log warns, at it operations
    /// wait in memory (in order, bounded) and `/healthz` says `journal: full`.
    pub journal_max_mb: u64,
    /// For `rediss://`: the PEM CA the server's certificate is checked
    /// against (default: the system's roots).
    pub tls_ca: Option<PathBuf>,
    /// Redis Sentinel: these sentinels (`host:port`, or `redis://:password@
    /// host:port` when they need a password) name the master, and the
    /// store follows it across a failover; `url` then gives only the
    /// master's password, database and TLS (`rediss://`).
    pub sentinels: Vec<String>,
    /// The name the sentinels monitor the master by.
    pub master_name: String,
}

impl RedisSettings {
    /// The ticket store these settings name (lazily connected).
    pub fn store(&self) -> Result<crate::tickets::Store, String> {
        let ca = match &self.tls_ca {
            Some(p) => {
                Some(std::fs::read(p).map_err(|e| format!("redis.tls_ca {}: {e}", p.display()))?)
            }
            None => None,
        };
        if self.sentinels.is_empty() {
            return crate::tickets::Store::connect_tls(&self.url, &self.key_prefix, ca)
                .map_err(|e| format!("redis.url {:?}: {e}", self.url_redacted()));
        }
        if ca.is_some() {
            return Err("redis.tls_ca: not with redis.sentinels (the master's certificate is checked against the system's roots)".into());
        }
        // The URL gives the master's password, database and TLS.
        crate::tickets::Store::connect_sentinel(
            &self.sentinels,
            &self.master_name,
            &self.url,
            &self.key_prefix,
        )
        .map_err(|e| format!("redis.sentinels, redis.url {:?}: {e}", self.url_redacted()))
    }

    /// The URL as errors and logs may show it: a password replaced by `***`
    /// (`redis://user:***@host:6379/`).
    pub fn url_redacted(&self) -> String {
        redact_url(&self.url)
    }
}

/// `scheme://user:password@host...` with the password hidden.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.rfind('@') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => return url.to_string(),
    };
    let user = auth.split(':').next().unwrap_or("");
    if auth.contains(':') {
        format!("{scheme}://{user}:***@{host}")
    } else {
        // `redis://secret@host`: the lone part is the password.
        format!("{scheme}://***@{host}")
    }
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: "redis://127.0.0.1:6379/".into(),
            key_prefix: "hotline:".into(),
            journal_dir: PathBuf::from("data/journal"),
            journal_max_mb: 1024,
            tls_ca: None,
            sentinels: Vec::new(),
            master_name: "hotline".into(),
        }
    }
}

/// `[recording]`: where call recordings go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingSettings {
    pub dir: PathBuf,
    /// Days a recording is kept once its ticket is final (0: for ever);
    /// a ticket on legal hold keeps its recordings until released.
    pub retain_days: u32,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        RecordingSettings {
            dir: PathBuf::from("recordings"),
            retain_days: 0,
        }
    }
}

/// `[prompts]`: the voice prompts, 8 kHz mono 16-bit WAV files. A court can
/// put its own recorded voice in their place.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PromptSettings {
    /// Directory the file names are relative to (relative paths are taken
    /// from the config file's directory).
    pub dir: PathBuf,
    /// 「您好，市北区执行指挥中心举报电话」
    pub greeting: PathBuf,
    /// The category menu (1 lead, 2 violence, 3 complaint, 4 preservation, 5 other).
    pub menu: PathBuf,
    /// "Enter the case number, # to finish, * to skip."
    pub case_number: PathBuf,
    /// "The case number you entered is ..."
    pub case_readback: PathBuf,
    /// "1 to confirm, 2 to enter again."
    pub confirm: PathBuf,
    /// "That key is not valid."
    pub invalid: PathBuf,
    /// "After the tone, say where the person is ..."
    pub message: PathBuf,
    /// The tone before the caller speaks.
    pub beep: PathBuf,
    /// "Your report number is ..."
    pub ticket_readback: PathBuf,
    /// "Thank you, goodbye."
    pub thanks: PathBuf,
    /// A paging call's opening: "an urgent report, number ..."
    pub page_intro: PathBuf,
    /// A paging call's question: "1 to acknowledge, 2 to pass it on".
    pub page_ask: PathBuf,
    /// After the greeting, with `[bridge]`: 「转人工请按0」.
    pub person_hint: PathBuf,
    /// Key 0: "connecting you to the officer on duty, please wait".
    pub connecting: PathBuf,
    /// What the caller hears while a person is rung (played again and again).
    pub ringback: PathBuf,
    /// Nobody took the call: "leave a message after the tone".
    pub no_person: PathBuf,
    /// The officer's whisper: 「举报电话转接，按1接听」.
    pub whisper: PathBuf,
    /// The officer's whisper of a partner's call: 「公安协助来电，按1接听」
    /// (the partner's own name prompt, if `[partners]` gives one, after it).
    pub partner_whisper: PathBuf,
    /// A partner's call nobody took: the duty is told and will come.
    pub partner_promise: PathBuf,
    /// A consultation's closing: the handler answers within working days.
    pub consultation_promise: PathBuf,
    /// The officer's whisper of a callback: 「回拨举报人，按1继续」.
    pub callback_whisper: PathBuf,
    /// What the informant hears on a callback before the officer.
    pub callback_intro: PathBuf,
    /// The follow-up call's question (satisfaction 1-5).
    pub follow_up: PathBuf,
    /// At the end of the intake: "9 if you want no follow-up call".
    pub follow_up_opt_out: PathBuf,
    /// The digits for read-backs; `{}` stands for 0-9.
    pub digits: String,
    /// Category names for paging calls; `{}` stands for each category's
    /// name (lead, violence, partner, consultation, complaint, ...).
    pub categories: String,
}

impl Default for PromptSettings {
    fn default() -> Self {
        PromptSettings {
            dir: PathBuf::from("prompts"),
            greeting: "greeting.wav".into(),
            menu: "menu.wav".into(),
            case_number: "case_number.wav".into(),
            case_readback: "case_readback.wav".into(),
            confirm: "confirm.wav".into(),
            invalid: "invalid.wav".into(),
            message: "message.wav".into(),
            beep: "beep.wav".into(),
            ticket_readback: "ticket_readback.wav".into(),
            thanks: "thanks.wav".into(),
            page_intro: "page_intro.wav".into(),
            page_ask: "page_ask.wav".into(),
            person_hint: "person_hint.wav".into(),
            connecting: "connecting.wav".into(),
            ringback: "ringback.wav".into(),
            no_person: "no_person.wav".into(),
            whisper: "whisper.wav".into(),
            partner_whisper: "partner_whisper.wav".into(),
            partner_promise: "partner_promise.wav".into(),
            consultation_promise: "consultation_promise.wav".into(),
            callback_whisper: "callback_whisper.wav".into(),
            callback_intro: "callback_intro.wav".into(),
            follow_up: "follow_up.wav".into(),
            follow_up_opt_out: "follow_up_opt_out.wav".into(),
            digits: "digit_{}.wav".into(),
            categories: "category_{}.wav".into(),
        }
    }
}

impl PromptSettings {
    /// Every prompt the intake uses, with its file and config key.
    pub fn files(&self) -> Vec<(crate::scripts::Prompt, &'static str, PathBuf)> {
        use crate::scripts::Prompt as P;
        let mut v = vec![
            (
                P::Greeting,
                "prompts.greeting",
                self.dir.join(&self.greeting),
            ),
            (P::Menu, "prompts.menu", self.dir.join(&self.menu)),
            (
                P::CaseNumber,
                "prompts.case_number",
                self.dir.join(&self.case_number),
            ),
            (
                P::CaseReadback,
                "prompts.case_readback",
                self.dir.join(&self.case_readback),
            ),
            (P::Confirm, "prompts.confirm", self.dir.join(&self.confirm)),
            (P::Invalid, "prompts.invalid", self.dir.join(&self.invalid)),
            (P::Message, "prompts.message", self.dir.join(&self.message)),
            (P::Beep, "prompts.beep", self.dir.join(&self.beep)),
            (
                P::TicketReadback,
                "prompts.ticket_readback",
                self.dir.join(&self.ticket_readback),
            ),
            (P::Thanks, "prompts.thanks", self.dir.join(&self.thanks)),
            (
                P::PageIntro,
                "prompts.page_intro",
                self.dir.join(&self.page_intro),
            ),
            (
                P::PageAsk,
                "prompts.page_ask",
                self.dir.join(&self.page_ask),
            ),
            (
                P::PersonHint,
                "prompts.person_hint",
                self.dir.join(&self.person_hint),
            ),
            (
                P::Connecting,
                "prompts.connecting",
                self.dir.join(&self.connecting),
            ),
            (
                P::Ringback,
                "prompts.ringback",
                self.dir.join(&self.ringback),
            ),
            (
                P::NoPerson,
                "prompts.no_person",
                self.dir.join(&self.no_person),
            ),
            (P::Whisper, "prompts.whisper", self.dir.join(&self.whisper)),
            (
                P::PartnerWhisper,
                "prompts.partner_whisper",
                self.dir.join(&self.partner_whisper),
            ),
            (
                P::PartnerPromise,
                "prompts.partner_promise",
                self.dir.join(&self.partner_promise),
            ),
            (
                P::ConsultationPromise,
                "prompts.consultation_promise",
                self.dir.join(&self.consultation_promise),
            ),
            (
                P::CallbackWhisper,
                "prompts.callback_whisper",
                self.dir.join(&self.callback_whisper),
            ),
            (
                P::CallbackIntro,
                "prompts.callback_intro",
                self.dir.join(&self.callback_intro),
            ),
            (
                P::FollowUp,
                "prompts.follow_up",
                self.dir.join(&self.follow_up),
            ),
            (
                P::FollowUpOptOut,
                "prompts.follow_up_opt_out",
                self.dir.join(&self.follow_up_opt_out),
            ),
        ];
        for c in crate::tickets::model::Category::ALL {
            v.push((
                P::Category(c),
                "prompts.categories",
                self.dir.join(self.categories.replace("{}", c.as_str())),
            ));
        }
        for d in 0..10u8 {
            v.push((
                P::Digit(d),
                "prompts.digits",
                self.dir.join(self.digits.replace("{}", &d.to_string())),
            ));
        }
        v
    }
}
