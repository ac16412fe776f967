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

mod sections;

pub use sections::*;

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
    pub trunk: Option<crate::call::trunk::TrunkSettings>,
    /// The gateway is the registrar of the officers' softphones.
    #[serde(default)]
    pub registrar: Option<crate::registrar::RegistrarSettings>,
    /// Callers from a browser (the `/call` page).
    #[serde(default)]
    pub webrtc: crate::call::web::WebRtcSettings,
    /// A person for the caller: key 0, the live bridge.
    #[serde(default)]
    pub bridge: crate::call::bridge::BridgeSettings,
    /// Follow-up calls (回访) after a ticket is closed.
    #[serde(default)]
    pub follow_up: crate::call::follow_up::FollowUpSettings,
    /// The file these settings were read from (for messages, and to read
    /// again on a reload), and the environment's and flags' overrides.
    #[serde(skip)]
    pub source: Option<PathBuf>,
    #[serde(skip)]
    pub overrides: Overrides,
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
    /// Several problems, one a line.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Many(Vec<ConfigError>),
}

impl Settings {
    /// The ways to page that these settings open besides SIP URIs,
    /// MESSAGE and webhooks (a `[trunk]`, a `[registrar]`).
    pub fn reach(&self) -> crate::roster::Reach {
        crate::roster::Reach {
            trunk: self.trunk.is_some(),
            registrar: self.registrar.is_some(),
        }
    }

    /// Reads, applies overrides and validates.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Settings, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            file: file.clone(),
            error,
        })?;
        let mut settings = Settings::from_toml(&text, &file)?;
        settings.source = Some(path.to_path_buf());
        // Every path is relative to the config file, so the gateway started
        // from another directory finds the same prompts and roster, and
        // writes to the same journal, recordings and caller key (a key
        // created elsewhere could not open the numbers sealed before).
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut settings.prompts.dir,
            &mut settings.roster.file,
            &mut settings.roster.holidays,
            &mut settings.redis.journal_dir,
            &mut settings.recording.dir,
            &mut settings.privacy.key_file,
        ]
        .into_iter()
        .chain(settings.redis.tls_ca.as_mut())
        .chain(settings.http.tls_cert.as_mut())
        .chain(settings.http.tls_key.as_mut())
        .chain(settings.sip.tls_cert.as_mut())
        .chain(settings.sip.tls_key.as_mut())
        .chain(settings.trunk.as_mut().and_then(|t| t.tls_ca.as_mut()))
        .chain(settings.paging.tls_ca.as_mut())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        settings.apply(overrides);
        settings.overrides = overrides.clone();
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

    /// Checks values the types cannot express: every problem, each naming
    /// the file and the key.
    pub fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let bad = |key: &'static str, problem: String| ConfigError::Invalid {
            file: file.to_string(),
            key,
            problem,
        };
        let mut out = Vec::new();
        let sip = &self.sip;
        if sip.listen.is_empty() {
            out.push(bad("sip.listen", "at least one address is needed".into()));
        }
        if sip.max_calls == 0 {
            out.push(bad("sip.max_calls", "must be at least 1".into()));
        }
        if sip.max_placed_calls == 0 {
            out.push(bad("sip.max_placed_calls", "must be at least 1".into()));
        }
        if sip.t1_ms == 0 || sip.t2_ms < sip.t1_ms {
            out.push(bad(
                "sip.t2_ms",
                format!(
                    "T1 ({}) must be > 0 and T2 ({}) >= T1",
                    sip.t1_ms, sip.t2_ms
                ),
            ));
        }
        if sip.max_call_seconds == 0 {
            out.push(bad("sip.max_call_seconds", "must be at least 1".into()));
        }
        if let Some(t) = &self.trunk {
            if let Err((key, problem)) = t.check() {
                out.push(bad(key, problem));
            }
        }
        if let Some(r) = &self.registrar {
            if let Err((key, problem)) = r.check() {
                out.push(bad(key, problem));
            }
        }
        if sip.max_header_bytes < 1024 {
            out.push(bad("sip.max_header_bytes", "must be at least 1024".into()));
        }
        for (key, value) in [
            ("sip.requests_per_second", sip.requests_per_second as usize),
            ("sip.invites_per_second", sip.invites_per_second as usize),
            ("sip.calls_per_source", sip.calls_per_source),
            ("sip.transactions_per_source", sip.transactions_per_source),
        ] {
            if value == 0 {
                out.push(bad(key, "must be at least 1".into()));
            }
        }
        if sip.max_transactions < 100 {
            out.push(bad("sip.max_transactions", "must be at least 100".into()));
        }
        if sip.reserve_percent > 90 {
            out.push(bad(
                "sip.reserve_percent",
                format!(
                    "{} is more than 90 (percent of max_calls)",
                    sip.reserve_percent
                ),
            ));
        }
        if sip.ban_after > 0 && sip.ban_seconds == 0 {
            out.push(bad(
                "sip.ban_seconds",
                "must be at least 1 while ban_after is set".into(),
            ));
        }
        if sip.scanner_user_agents.iter().any(|s| s.trim().is_empty()) {
            out.push(bad(
                "sip.scanner_user_agents",
                "an empty entry would match every request".into(),
            ));
        }
        let m = &self.media;
        if m.rtp_port_min == 0 || m.rtp_port_min > m.rtp_port_max {
            out.push(bad(
                "media.rtp_port_min",
                format!(
                    "range {}-{} is empty or starts at 0",
                    m.rtp_port_min, m.rtp_port_max
                ),
            ));
        }
        if m.timeout_seconds == 0 {
            out.push(bad("media.timeout_seconds", "must be at least 1".into()));
        }
        if let Some(ca) = &self.paging.tls_ca {
            if let Err(e) = crate::tls::client_config(Some(ca)) {
                out.push(bad("paging.tls_ca", e));
            }
        }
        let w = &self.webrtc;
        match (w.port_min, w.port_max) {
            (None, None) => {}
            (Some(_), None) => {
                out.push(bad("webrtc.port_max", "needed with webrtc.port_min".into()))
            }
            (None, Some(_)) => {
                out.push(bad("webrtc.port_min", "needed with webrtc.port_max".into()))
            }
            (Some(min), Some(max)) if min == 0 || min > max => out.push(bad(
                "webrtc.port_min",
                format!("range {min}-{max} is empty or starts at 0"),
            )),
            (Some(min), Some(max)) if min <= m.rtp_port_max && m.rtp_port_min <= max => {
                out.push(bad(
                    "webrtc.port_min",
                    format!(
                        "range {min}-{max} overlaps media.rtp_port_min-rtp_port_max {}-{}",
                        m.rtp_port_min, m.rtp_port_max
                    ),
                ))
            }
            _ => {}
        }
        for (key, v) in [
            (
                "http.member_failures_per_hour",
                self.http.member_failures_per_hour as usize,
            ),
            ("webrtc.connect_seconds", w.connect_seconds as usize),
            ("webrtc.max_calls", w.max_calls),
            ("webrtc.calls_per_source", w.calls_per_source),
            ("webrtc.offers_per_minute", w.offers_per_minute),
            ("bridge.ring_seconds", self.bridge.ring_seconds as usize),
            (
                "bridge.member_ring_seconds",
                self.bridge.member_ring_seconds as usize,
            ),
            ("bridge.max_connections", self.bridge.max_connections),
            (
                "api.callbacks_per_ticket_per_day",
                self.api.callbacks_per_ticket_per_day as usize,
            ),
            (
                "api.callbacks_per_member_per_day",
                self.api.callbacks_per_member_per_day as usize,
            ),
            (
                "follow_up.ring_seconds",
                self.follow_up.ring_seconds as usize,
            ),
            ("follow_up.key_seconds", self.follow_up.key_seconds as usize),
        ] {
            if v == 0 {
                out.push(bad(key, "must be at least 1".into()));
            }
        }
        let b = &self.bridge;
        if b.max_connections > 0 && b.violence_reserve >= b.max_connections {
            out.push(bad(
                "bridge.violence_reserve",
                format!(
                    "{} leaves none of bridge.max_connections ({}) to other bridges, callbacks and follow-up calls: it must be less",
                    b.violence_reserve, b.max_connections
                ),
            ));
        }
        if self.follow_up.enabled && self.trunk.is_none() {
            out.push(bad(
                "follow_up.enabled",
                "follow-up calls go out through the court's trunk: configure [trunk]".into(),
            ));
        }
        for sentinel in &self.redis.sentinels {
            let hostport = sentinel.rsplit('@').next().unwrap_or(sentinel);
            let hostport = hostport
                .trim_start_matches("redis://")
                .trim_end_matches('/');
            if !hostport
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
            {
                out.push(bad(
                    "redis.sentinels",
                    format!("{:?} is not host:port", redact_url(sentinel)),
                ));
            }
        }
        if !self.redis.sentinels.is_empty() && self.redis.master_name.trim().is_empty() {
            out.push(bad(
                "redis.master_name",
                "needed with redis.sentinels".into(),
            ));
        }
        let schemes = ["redis://", "rediss://", "unix://"];
        if !schemes.iter().any(|s| self.redis.url.starts_with(s)) {
            out.push(bad(
                "redis.url",
                format!(
                    "{:?} is not a redis://, rediss:// or unix:// URL",
                    self.redis.url_redacted()
                ),
            ));
        }
        if let Some(ca) = &self.redis.tls_ca {
            if !self.redis.url.starts_with("rediss://") {
                out.push(bad("redis.tls_ca", "only for a rediss:// URL".into()));
            } else if !ca.is_file() {
                out.push(bad(
                    "redis.tls_ca",
                    format!("{} does not exist", ca.display()),
                ));
            }
        }
        if self.redis.key_prefix.is_empty() || self.redis.key_prefix.contains(char::is_whitespace) {
            out.push(bad(
                "redis.key_prefix",
                format!(
                    "{:?} must be non-empty without spaces",
                    self.redis.key_prefix
                ),
            ));
        }
        for (_, key, path) in self.prompts.files() {
            if !path.is_file() {
                out.push(bad(key, format!("{} does not exist", path.display())));
            }
        }
        for (cert_key, key_key, cert, key) in [
            (
                "http.tls_cert",
                "http.tls_key",
                &self.http.tls_cert,
                &self.http.tls_key,
            ),
            (
                "sip.tls_cert",
                "sip.tls_key",
                &self.sip.tls_cert,
                &self.sip.tls_key,
            ),
        ] {
            match (cert, key) {
                (None, None) => {}
                (Some(_), None) => out.push(bad(key_key, format!("needed with {cert_key}"))),
                (None, Some(_)) => out.push(bad(cert_key, format!("needed with {key_key}"))),
                (Some(cert), Some(key)) => {
                    use crate::tls::{server_config, TlsFileError};
                    match server_config(cert, key, &[]) {
                        Ok(_) => {}
                        Err(e @ TlsFileError::Cert { .. }) => {
                            out.push(bad(cert_key, e.to_string()))
                        }
                        Err(e @ TlsFileError::Key { .. }) => out.push(bad(key_key, e.to_string())),
                    }
                }
            }
        }
        let i = &self.intake;
        if i.max_message_seconds == 0 || i.key_timeout_seconds == 0 || i.digit_timeout_seconds == 0
        {
            out.push(bad(
                "intake.max_message_seconds",
                "intake timeouts must be at least 1 second".into(),
            ));
        }
        match out.len() {
            0 => Ok(()),
            1 => Err(out.remove(0)),
            _ => Err(ConfigError::Many(out)),
        }
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
mod tests;
