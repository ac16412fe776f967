//! The webhook receivers members are paged and told through
//! (`[paging.webhooks.NAME]`: a URL and its format — generic JSON, or the
//! WeCom / DingTalk group robots — with a timeout and retries), and the
//! HTTP client that reaches them. Sending a page is `paging::channels`'s.

use serde::Deserialize;

/// `[paging.webhooks.NAME]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    pub url: String,
    #[serde(default)]
    pub format: WebhookFormat,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Whether a page through this receiver carries the member's one-tap
    /// 签收 link. A group robot shows it to the whole group, where anyone
    /// could use it once as that member: `false` for a receiver several
    /// people read.
    #[serde(default = "default_links")]
    pub links: bool,
}

fn default_links() -> bool {
    true
}

fn default_timeout_ms() -> u64 {
    3000
}

fn default_retries() -> u32 {
    3
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    #[default]
    Generic,
    /// 企业微信群机器人.
    Wecom,
    /// 钉钉群机器人.
    Dingtalk,
}

/// The HTTP client for webhooks: rustls with the ring provider and the
/// webpki roots (no C toolchain beyond jemalloc's, no system OpenSSL).
pub fn client() -> anyhow::Result<reqwest::Client> {
    let tls = crate::tls::client_config(None).map_err(anyhow::Error::msg)?;
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls((*tls).clone())
        .build()?)
}
