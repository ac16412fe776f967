//! Typed settings: the TOML file, then `HOTLINE_*` environment variables, then
//! command-line flags, in that order of precedence. This is the only module that
//! reads the environment (through [`Overrides`], so tests pass values directly).
//!
//! Every struct denies unknown keys: a typo in the file is an error naming the
//! key, never a silently ignored setting.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::sip::admission::{AdmissionConfig, Cidr};

/// Everything the gateway needs to start.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub sip: SipSettings,
    #[serde(default)]
    pub media: MediaSettings,
    #[serde(default)]
    pub http: HttpSettings,
    #[serde(default)]
    pub redis: RedisSettings,
    #[serde(default)]
    pub recording: RecordingSettings,
    #[serde(default)]
    pub prompts: PromptSettings,
    #[serde(default)]
    pub intake: crate::intake::IntakeSettings,
    #[serde(default)]
    pub roster: RosterSettings,
    #[serde(default)]
    pub paging: crate::paging::PagingSettings,
    #[serde(default)]
    pub privacy: PrivacySettings,
    #[serde(default)]
    pub api: ApiSettings,
    /// The court's SIP trunk, which dials members' phone numbers.
    #[serde(default)]
    pub trunk: Option<crate::paging::trunk::TrunkSettings>,
    /// The gateway is the registrar of the officers' softphones.
    #[serde(default)]
    pub registrar: Option<crate::registrar::RegistrarSettings>,
}

/// `[api]`: the officers' API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSettings {
    /// Roster roles entitled to reveal a caller (rule 第二十条(三)).
    pub reveal_roles: Vec<String>,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            reveal_roles: vec!["director".into(), "chief_commander".into()],
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
    /// Seconds suggested to callers refused for overload (`Retry-After`).
    pub retry_after_seconds: u32,
    /// Longest call; the gateway hangs up with BYE when it is reached.
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
    /// Largest header section accepted (bytes); beyond it: 400 and close.
    pub max_header_bytes: usize,
    /// Largest body accepted (bytes).
    pub max_body_bytes: usize,
    /// `Server` / `User-Agent` header value.
    pub user_agent: String,
    /// Sources never rate-limited: the court's PBX, the carrier's SBC,
    /// Kamailio in front (addresses or blocks, `"10.1.2.0/24"`).
    pub trusted: Vec<Cidr>,
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
    /// `HOTLINE-FAULT-INJECTION` ends the SIP thread (the supervision test).
    #[serde(skip)]
    pub fault_injection: bool,
}

impl Default for SipSettings {
    fn default() -> Self {
        let limits = AdmissionConfig::default();
        SipSettings {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 5060))],
            max_calls: 1000,
            retry_after_seconds: 30,
            max_call_seconds: 1800,
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
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tls_cert: None,
            tls_key: None,
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
}

impl RedisSettings {
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
        }
    }
}

/// `[recording]`: where call recordings go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingSettings {
    pub dir: PathBuf,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        RecordingSettings {
            dir: PathBuf::from("recordings"),
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
    /// The category menu (1 lead, 2 violence, 3 complaint, 4 preservation, 0 other).
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
    /// The digits for read-backs; `{}` stands for 0-9.
    pub digits: String,
    /// Category names for paging calls; `{}` stands for lead, violence,
    /// complaint, preservation, other.
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
            digits: "digit_{}.wav".into(),
            categories: "category_{}.wav".into(),
        }
    }
}

impl PromptSettings {
    /// Every prompt the intake uses, with its file and config key.
    pub fn files(&self) -> Vec<(crate::intake::Prompt, &'static str, PathBuf)> {
        use crate::intake::Prompt as P;
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

/// Values given on the command line or in the environment; `None` keeps the
/// file's value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub sip_listen: Option<SocketAddr>,
    pub http_listen: Option<SocketAddr>,
    pub redis_url: Option<String>,
    pub recordings: Option<PathBuf>,
    pub caller_key: Option<Secret>,
    /// `HOTLINE_FAULT_INJECTION=1`, honoured by debug builds only.
    pub fault_injection: bool,
}

/// A configuration problem, always naming the file and, where there is one,
/// the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {error}")]
    Read { file: String, error: std::io::Error },
    #[error("{file}: {error}")]
    Syntax { file: String, error: String },
    #[error("{file}: {key}: {problem}")]
    Invalid {
        file: String,
        key: &'static str,
        problem: String,
    },
}

impl Settings {
    /// Reads, applies overrides and validates.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Settings, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            file: file.clone(),
            error,
        })?;
        let mut settings = Settings::from_toml(&text, &file)?;
        // Prompt paths are relative to the config file, so the gateway can be
        // started from any directory.
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut settings.prompts.dir,
            &mut settings.roster.file,
            &mut settings.roster.holidays,
        ]
        .into_iter()
        .chain(settings.http.tls_cert.as_mut())
        .chain(settings.http.tls_key.as_mut())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        settings.apply(overrides);
        settings.validate(&file)?;
        Ok(settings)
    }

    /// Parses TOML text; `file` names the source in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Settings, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_string(),
            error: describe_toml_error(&e, text),
        })
    }

    pub fn apply(&mut self, o: &Overrides) {
        if let Some(a) = o.sip_listen {
            self.sip.listen = vec![a];
        }
        if let Some(a) = o.http_listen {
            self.http.listen = a;
        }
        if let Some(u) = &o.redis_url {
            self.redis.url = u.clone();
        }
        if let Some(d) = &o.recordings {
            self.recording.dir = d.clone();
        }
        if let Some(k) = &o.caller_key {
            self.privacy.key = Some(k.clone());
        }
        self.sip.fault_injection |= o.fault_injection;
    }

    /// Checks values the types cannot express.
    pub fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |key: &'static str, problem: String| ConfigError::Invalid {
            file: file.to_string(),
            key,
            problem,
        };
        let sip = &self.sip;
        if sip.listen.is_empty() {
            return Err(bad("sip.listen", "at least one address is needed".into()));
        }
        if sip.max_calls == 0 {
            return Err(bad("sip.max_calls", "must be at least 1".into()));
        }
        if sip.t1_ms == 0 || sip.t2_ms < sip.t1_ms {
            return Err(bad(
                "sip.t2_ms",
                format!(
                    "T1 ({}) must be > 0 and T2 ({}) >= T1",
                    sip.t1_ms, sip.t2_ms
                ),
            ));
        }
        if sip.max_call_seconds == 0 {
            return Err(bad("sip.max_call_seconds", "must be at least 1".into()));
        }
        if let Some(t) = &self.trunk {
            t.check().map_err(|(key, problem)| bad(key, problem))?;
        }
        if let Some(r) = &self.registrar {
            r.check().map_err(|(key, problem)| bad(key, problem))?;
        }
        if sip.max_header_bytes < 1024 {
            return Err(bad("sip.max_header_bytes", "must be at least 1024".into()));
        }
        for (key, value) in [
            ("sip.requests_per_second", sip.requests_per_second as usize),
            ("sip.invites_per_second", sip.invites_per_second as usize),
            ("sip.calls_per_source", sip.calls_per_source),
            ("sip.transactions_per_source", sip.transactions_per_source),
        ] {
            if value == 0 {
                return Err(bad(key, "must be at least 1".into()));
            }
        }
        if sip.max_transactions < 100 {
            return Err(bad("sip.max_transactions", "must be at least 100".into()));
        }
        if sip.reserve_percent > 90 {
            return Err(bad(
                "sip.reserve_percent",
                format!(
                    "{} is more than 90 (percent of max_calls)",
                    sip.reserve_percent
                ),
            ));
        }
        if sip.ban_after > 0 && sip.ban_seconds == 0 {
            return Err(bad(
                "sip.ban_seconds",
                "must be at least 1 while ban_after is set".into(),
            ));
        }
        if sip.scanner_user_agents.iter().any(|s| s.trim().is_empty()) {
            return Err(bad(
                "sip.scanner_user_agents",
                "an empty entry would match every request".into(),
            ));
        }
        let m = &self.media;
        if m.rtp_port_min == 0 || m.rtp_port_min > m.rtp_port_max {
            return Err(bad(
                "media.rtp_port_min",
                format!(
                    "range {}-{} is empty or starts at 0",
                    m.rtp_port_min, m.rtp_port_max
                ),
            ));
        }
        if m.timeout_seconds == 0 {
            return Err(bad("media.timeout_seconds", "must be at least 1".into()));
        }
        if !self.redis.url.starts_with("redis://") && !self.redis.url.starts_with("unix://") {
            return Err(bad(
                "redis.url",
                format!("{:?} is not a redis:// or unix:// URL", self.redis.url),
            ));
        }
        if self.redis.key_prefix.is_empty() || self.redis.key_prefix.contains(char::is_whitespace) {
            return Err(bad(
                "redis.key_prefix",
                format!(
                    "{:?} must be non-empty without spaces",
                    self.redis.key_prefix
                ),
            ));
        }
        for (_, key, path) in self.prompts.files() {
            if !path.is_file() {
                return Err(bad(key, format!("{} does not exist", path.display())));
            }
        }
        match (&self.http.tls_cert, &self.http.tls_key) {
            (None, None) => {}
            (Some(_), None) => return Err(bad("http.tls_key", "needed with http.tls_cert".into())),
            (None, Some(_)) => return Err(bad("http.tls_cert", "needed with http.tls_key".into())),
            (Some(cert), Some(key)) => {
                use crate::api::tls::{server_config, TlsFileError};
                match server_config(cert, key) {
                    Ok(_) => {}
                    Err(e @ TlsFileError::Cert { .. }) => {
                        return Err(bad("http.tls_cert", e.to_string()))
                    }
                    Err(e @ TlsFileError::Key { .. }) => {
                        return Err(bad("http.tls_key", e.to_string()))
                    }
                }
            }
        }
        let i = &self.intake;
        if i.max_message_seconds == 0 || i.key_timeout_seconds == 0 || i.digit_timeout_seconds == 0
        {
            return Err(bad(
                "intake.max_message_seconds",
                "intake timeouts must be at least 1 second".into(),
            ));
        }
        Ok(())
    }
}

/// One line naming the place and the problem, e.g.
/// `line 3, column 1: sip.max_cals: unknown field ...`.
fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            let key = key_at(text, span.start);
            match key {
                Some(k) => format!("line {line}, column {col}: {k}: {msg}"),
                None => format!("line {line}, column {col}: {msg}"),
            }
        }
        None => msg,
    }
}

/// The dotted key (`table.key`) of the line holding byte offset `at`.
fn key_at(text: &str, at: usize) -> Option<String> {
    let mut table = String::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let end = offset + line.len();
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            table = trimmed.trim_matches(|c| c == '[' || c == ']').to_string();
        }
        if at < end {
            if trimmed.starts_with('[') {
                return Some(table);
            }
            let key = trimmed.split('=').next()?.trim();
            if key.is_empty() || key.starts_with('#') {
                return None;
            }
            return Some(if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            });
        }
        offset = end;
    }
    None
}

impl Overrides {
    /// Reads `HOTLINE_*` variables through `get` (the process environment in
    /// `main`, a map in tests). Malformed values are errors naming the variable.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Overrides, String> {
        let addr = |name: &str| -> Result<Option<SocketAddr>, String> {
            get(name)
                .map(|v| {
                    v.parse()
                        .map_err(|e| format!("{name}: {v:?} is not ADDR:PORT ({e})"))
                })
                .transpose()
        };
        Ok(Overrides {
            sip_listen: addr("HOTLINE_SIP_LISTEN")?,
            http_listen: addr("HOTLINE_HTTP_LISTEN")?,
            redis_url: get("HOTLINE_REDIS_URL"),
            recordings: get("HOTLINE_RECORDINGS").map(PathBuf::from),
            caller_key: get("HOTLINE_CALLER_KEY").map(Secret),
            // Never in a release build: the fault is only for the tests.
            fault_injection: cfg!(debug_assertions)
                && get("HOTLINE_FAULT_INJECTION").as_deref() == Some("1"),
        })
    }

    /// `other` wins where it has a value (flags over environment).
    pub fn or(self, other: Overrides) -> Overrides {
        Overrides {
            sip_listen: other.sip_listen.or(self.sip_listen),
            http_listen: other.http_listen.or(self.http_listen),
            redis_url: other.redis_url.or(self.redis_url),
            recordings: other.recordings.or(self.recordings),
            caller_key: other.caller_key.or(self.caller_key),
            fault_injection: other.fault_injection || self.fault_injection,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_passwords_never_reach_a_message() {
        for (url, shown) in [
            ("redis://127.0.0.1:6379/", "redis://127.0.0.1:6379/"),
            (
                "redis://:s3cret@redis.court:6379/0",
                "redis://:***@redis.court:6379/0",
            ),
            (
                "redis://hotline:s3cret@10.0.0.5/",
                "redis://hotline:***@10.0.0.5/",
            ),
            ("rediss://s3cret@10.0.0.5/", "rediss://***@10.0.0.5/"),
            ("redis://u:p@ss@host/", "redis://u:***@host/"),
        ] {
            assert_eq!(redact_url(url), shown);
        }
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let err = Settings::from_toml("[sip]\nmax_cals = 3\n", "x.toml").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("x.toml: line 2"), "{text}");
        assert!(text.contains("sip.max_cals"), "{text}");
        assert!(text.contains("unknown field"), "{text}");
    }

    #[test]
    fn wrong_type_names_key() {
        let err = Settings::from_toml("[sip]\nmax_calls = \"many\"\n", "x.toml").unwrap_err();
        assert!(err.to_string().contains("sip.max_calls"), "{err}");
    }

    #[test]
    fn invalid_value_names_key() {
        let mut s = Settings::from_toml("[sip]\nmax_calls = 0\n", "x.toml").unwrap();
        s.prompts.dir = PathBuf::from("config/prompts");
        let err = s.validate("x.toml").unwrap_err();
        assert_eq!(err.to_string(), "x.toml: sip.max_calls: must be at least 1");
    }

    #[test]
    fn tls_files_are_checked_and_named() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls");
        let check = |cert: Option<&str>, key: Option<&str>| {
            let mut s = Settings::from_toml("", "x.toml").unwrap();
            s.prompts.dir = PathBuf::from("config/prompts");
            s.http.tls_cert = cert.map(|f| fixtures.join(f));
            s.http.tls_key = key.map(|f| fixtures.join(f));
            s.validate("x.toml").map_err(|e| e.to_string())
        };
        assert_eq!(check(Some("cert.pem"), Some("key.pem")), Ok(()));
        let only_cert = check(Some("cert.pem"), None).unwrap_err();
        assert!(
            only_cert.starts_with("x.toml: http.tls_key: "),
            "{only_cert}"
        );
        let only_key = check(None, Some("key.pem")).unwrap_err();
        assert!(
            only_key.starts_with("x.toml: http.tls_cert: "),
            "{only_key}"
        );
        let missing = check(Some("nothing.pem"), Some("key.pem")).unwrap_err();
        assert!(missing.starts_with("x.toml: http.tls_cert: "), "{missing}");
        assert!(missing.contains("nothing.pem"), "{missing}");
        // A certificate where the key should be.
        let no_key = check(Some("cert.pem"), Some("cert.pem")).unwrap_err();
        assert!(no_key.starts_with("x.toml: http.tls_key: "), "{no_key}");
        // A key that is not the certificate's.
        let wrong = check(Some("ca.pem"), Some("key.pem")).unwrap_err();
        assert!(wrong.starts_with("x.toml: http.tls_key: "), "{wrong}");
    }

    #[test]
    fn env_then_flags() {
        let env = Overrides::from_env(|k| match k {
            "HOTLINE_SIP_LISTEN" => Some("127.0.0.1:5080".into()),
            "HOTLINE_REDIS_URL" => Some("redis://127.0.0.1:7000/".into()),
            _ => None,
        })
        .unwrap();
        let flags = Overrides {
            sip_listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        };
        let o = env.or(flags);
        assert_eq!(o.sip_listen, Some("127.0.0.1:0".parse().unwrap()));
        assert_eq!(o.redis_url.as_deref(), Some("redis://127.0.0.1:7000/"));
        let mut s = Settings::from_toml("", "x").unwrap();
        s.apply(&o);
        assert_eq!(s.sip.listen, vec!["127.0.0.1:0".parse().unwrap()]);
    }

    #[test]
    fn bad_env_value_names_variable() {
        let err = Overrides::from_env(|k| (k == "HOTLINE_HTTP_LISTEN").then(|| "nope".into()))
            .unwrap_err();
        assert!(err.starts_with("HOTLINE_HTTP_LISTEN"), "{err}");
    }
}
