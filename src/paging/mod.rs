//! Paging (rules 第二十三条, 第二十五条): when a ticket becomes `open`, the
//! people on duty are paged through every contact method they have, and the
//! escalation climbs until someone goes. `policy` is the sans-IO engine.
//! Never answers calls and never edits tickets except through the store.

pub mod channels;
pub mod policy;
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
    pub webhooks: HashMap<String, channels::WebhookTarget>,
    /// Escalation per category; categories not given keep the defaults.
    pub policies: policy::Policies,
}

impl Default for PagingSettings {
    fn default() -> Self {
        PagingSettings {
            from_uri: "sip:hotline@localhost".into(),
            outbound_proxy: None,
            lease_seconds: 30,
            webhooks: HashMap::new(),
            policies: policy::Policies::default(),
        }
    }
}
