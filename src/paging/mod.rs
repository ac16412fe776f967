//! Paging (rules 第二十三条, 第二十五条): when a ticket becomes `open`, the
//! people on duty are paged through every contact method they have, and the
//! escalation climbs until someone goes (`crate::escalation`, the sans-IO
//! policy, says what fires when). The same worker triages a ticket at its
//! first look (`triage`) and runs the clocks after it (`tickets::clocks`:
//! pickup, arrival, answer, verification); `digest` tells each handler of
//! their open consultations at the start of each working day.
//! Never answers calls and never edits tickets except through the store.

pub mod channels;
pub mod digest;
pub mod handover;
pub mod replies;
pub mod triage;
pub mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;

use serde::Deserialize;

/// `[paging]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PagingSettings {
    /// The From of our SIP MESSAGE pages.
    pub from_uri: String,
    /// Send SIP pages through this proxy instead of to each URI's host.
    pub outbound_proxy: Option<SocketAddr>,
    /// A claimed step not finished within this is taken over by another
    /// gateway (or this one after a restart).
    pub lease_seconds: u64,
    /// Named webhook receivers members refer to.
    pub webhooks: HashMap<String, crate::webhook::WebhookTarget>,
    /// Escalation per category; categories not given keep the defaults.
    pub policies: crate::escalation::Policies,
    /// A paging call that rings longer is cancelled.
    pub call_ring_seconds: u64,
    /// After the question, how long a paging call waits for a key.
    pub call_key_seconds: u64,
    /// How many times a paging call plays the announcement without a key.
    pub call_plays: u32,
    /// Credentials for a PBX or trunk that challenges our calls (digest).
    pub auth_user: Option<String>,
    pub auth_password: Option<String>,
    /// Paging calls to `sips:` URIs (SIP over TLS): the PEM certificates the
    /// phone's or PBX's certificate must chain to (default: the webpki
    /// roots); its name must be the URI's host.
    pub tls_ca: Option<std::path::PathBuf>,
    /// Take replies to SIP MESSAGE pages (`1 <ticket>` is 签收) from a
    /// `[sip] trusted` element that asserts the member (docs/security.md);
    /// MESSAGE pages then name the reply. Off: MESSAGE gets 405 and the
    /// pages say nothing of a reply.
    pub message_replies: bool,
    /// Replies one member may send a minute (a correct one is not
    /// counted); past it: 403, nothing looked up.
    pub replies_per_minute: u32,
}

impl PagingSettings {
    pub fn credentials(&self) -> Option<(String, String)> {
        Some((self.auth_user.clone()?, self.auth_password.clone()?))
    }
}

impl Default for PagingSettings {
    fn default() -> Self {
        PagingSettings {
            from_uri: "sip:hotline@localhost".into(),
            outbound_proxy: None,
            lease_seconds: 120,
            webhooks: HashMap::new(),
            policies: crate::escalation::Policies::default(),
            call_ring_seconds: 30,
            call_key_seconds: 10,
            call_plays: 2,
            auth_user: None,
            auth_password: None,
            tls_ca: None,
            message_replies: true,
            replies_per_minute: 6,
        }
    }
}
