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
mod validate;

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
    pub intake: crate::scripts::intake::IntakeSettings,
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
    /// The police and assisting units whose calls skip the menu.
    #[serde(default)]
    pub partners: crate::partners::PartnerSettings,
    /// The case directory, consultations' deadline, linked reports.
    #[serde(default)]
    pub cases: crate::cases::CaseSettings,
    /// The clocks after 签收 and 出警.
    #[serde(default)]
    pub dispatch: crate::tickets::clocks::DispatchSettings,
    /// The channels watched: the trunk, the webhook receivers, the
    /// softphones of those on duty, the duty itself.
    #[serde(default)]
    pub watch: crate::watch::WatchSettings,
    /// Swaps and overrides of the duty, who approves them, the evening
    /// reminders, the calendar feed's reach.
    #[serde(default)]
    pub swaps: crate::swaps::SwapSettings,
    /// The caller's words as text on the ticket (issue 34).
    #[serde(default)]
    pub transcribe: crate::transcribe::TranscribeSettings,
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
            &mut settings.transcribe.python,
            &mut settings.transcribe.worker,
            &mut settings.transcribe.model_dir,
        ]
        .into_iter()
        .chain(settings.partners.file.as_mut())
        .chain(settings.cases.file.as_mut())
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
