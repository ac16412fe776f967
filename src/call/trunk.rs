//! The court's SIP trunk (`[trunk]`): the PBX or the carrier's SBC that
//! dials phone numbers. A member's `phone` is paged through it exactly like
//! a `sip` URI (the announcement, key 1 = 签收, key 2 = pass on), with the
//! number turned into what the trunk dials, the hotline's own number as
//! caller ID and the trunk's digest credentials. Optionally the gateway
//! registers with it (REGISTER, refreshed by the SIP core). The channel
//! watch (`crate::watch`) asks it [`TrunkSettings::options`] on a schedule.

use std::net::SocketAddr;

use serde::Deserialize;

use crate::dial_plan::{self, DialPlan};
use crate::sip::message::Transport;
use crate::sip::transport::{Egress, TRUNK_CONN};

/// `[trunk]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkSettings {
    /// `host:port` of the PBX or SBC (a name is resolved at start).
    pub proxy: String,
    /// `udp`, `tcp` or `tls` (one connection, opened when needed and again
    /// after it closed).
    #[serde(default = "udp")]
    pub transport: String,
    /// Over TLS: the PEM certificates the trunk's must chain to (default:
    /// the webpki roots), and the name it must carry (default: the proxy's
    /// host).
    #[serde(default)]
    pub tls_ca: Option<std::path::PathBuf>,
    #[serde(default)]
    pub tls_name: Option<String>,
    /// The domain in the Request-URI, From and To (default: the proxy's host).
    #[serde(default)]
    pub domain: Option<String>,
    /// Digest credentials for the trunk's 401/407.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// REGISTER with the trunk (refreshed), when the carrier needs it.
    #[serde(default)]
    pub register: bool,
    /// Seconds asked for in REGISTER's Expires.
    #[serde(default = "hour")]
    pub register_expires: u32,
    /// The hotline's own number, the caller ID of its calls.
    pub from_user: String,
    /// Dialled before every number (an outside line, e.g. "9").
    #[serde(default)]
    pub dial_prefix: String,
    /// The dial plan of every call through the trunk (`crate::dial_plan`):
    /// numbers (their national form) the court dials, and those it never
    /// does even when allowed. Defaults: mainland mobiles and landlines;
    /// no emergency, service, premium-rate or international numbers.
    #[serde(default = "default_allow")]
    pub allow: Vec<String>,
    #[serde(default = "default_deny")]
    pub deny: Vec<String>,
}

fn default_allow() -> Vec<String> {
    dial_plan::DEFAULT_ALLOW
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn default_deny() -> Vec<String> {
    dial_plan::DEFAULT_DENY
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn udp() -> String {
    "udp".into()
}

fn hour() -> u32 {
    3600
}

impl TrunkSettings {
    /// The proxy's address (`Err` names what does not resolve).
    pub fn resolve(&self) -> Result<SocketAddr, String> {
        use std::net::ToSocketAddrs;
        let with_port = if self.proxy.contains(':') && !self.proxy.ends_with(']') {
            self.proxy.clone()
        } else {
            format!("{}:5060", self.proxy)
        };
        with_port
            .to_socket_addrs()
            .map_err(|e| format!("{:?} does not resolve: {e}", self.proxy))?
            .next()
            .ok_or_else(|| format!("{:?} does not resolve", self.proxy))
    }

    /// The settings with the proxy's address, as paging uses them.
    pub fn resolved(&self) -> anyhow::Result<(TrunkSettings, SocketAddr)> {
        let addr = self
            .resolve()
            .map_err(|e| anyhow::anyhow!("trunk.proxy: {e}"))?;
        Ok((self.clone(), addr))
    }

    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !["udp", "tcp", "tls"].contains(&self.transport.as_str()) {
            return Err((
                "trunk.transport",
                format!("{:?}: \"udp\", \"tcp\" or \"tls\"", self.transport),
            ));
        }
        if self.transport == "tls" {
            self.tls()?;
        }
        if self.from_user.is_empty()
            || !self
                .from_user
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'+')
        {
            return Err((
                "trunk.from_user",
                format!("{:?} is not a number", self.from_user),
            ));
        }
        if !self
            .dial_prefix
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#')
        {
            return Err((
                "trunk.dial_prefix",
                format!("{:?} is not digits", self.dial_prefix),
            ));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(("trunk.password", "username and password go together".into()));
        }
        self.plan()?;
        if self.register && self.register_expires < 60 {
            return Err(("trunk.register_expires", "must be at least 60".into()));
        }
        self.resolve().map(drop).map_err(|e| ("trunk.proxy", e))
    }

    /// The trunk's domain: `domain`, else the proxy's host.
    pub fn domain(&self) -> String {
        self.domain.clone().unwrap_or_else(|| {
            let p = self.proxy.as_str();
            match p.rsplit_once(':') {
                Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h.to_string(),
                _ => p.to_string(),
            }
        })
    }

    /// The dial plan of `allow` and `deny` (`Err` names the key).
    pub fn plan(&self) -> Result<DialPlan, (&'static str, String)> {
        DialPlan::new(&self.allow, &self.deny)
    }

    /// The Request-URI that dials `phone`, if the dial plan lets the court
    /// dial it (the one place every call through the trunk is checked).
    pub fn uri(&self, phone: &str) -> Result<String, String> {
        let plan = self.plan().map_err(|(key, e)| format!("{key}: {e}"))?;
        let digits = plan.permit(phone).map_err(|e| e.to_string())?;
        Ok(format!(
            "sip:{}{digits}@{}",
            self.dial_prefix,
            self.domain()
        ))
    }

    /// Our From: the hotline's number at the trunk's domain.
    pub fn from_uri(&self) -> String {
        format!("sip:{}@{}", self.from_user, self.domain())
    }

    fn transport(&self) -> Transport {
        match self.transport.as_str() {
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            _ => Transport::Udp,
        }
    }

    /// How calls and the registration leave for the trunk.
    pub fn egress(&self) -> Egress {
        match self.transport() {
            Transport::Tcp => Egress::Tcp(TRUNK_CONN),
            Transport::Tls => Egress::Tls(TRUNK_CONN),
            Transport::Udp => Egress::Udp,
        }
    }

    /// The trunk as a pre-loaded route (a loose router at `addr`).
    pub fn route(&self, addr: SocketAddr) -> String {
        crate::sip::dialog::loose_route(addr, self.transport())
    }

    /// Over TLS: how the trunk's certificate is checked (the trusted CAs,
    /// the name it must carry).
    pub fn tls(&self) -> Result<crate::sip::transport::ClientTls, (&'static str, String)> {
        let config =
            crate::tls::client_config(self.tls_ca.as_deref()).map_err(|e| ("trunk.tls_ca", e))?;
        let name = self.tls_name.clone().unwrap_or_else(|| {
            self.domain()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string()
        });
        let name = rustls::pki_types::ServerName::try_from(name.clone())
            .map_err(|e| ("trunk.tls_name", format!("{name:?}: {e}")))?;
        Ok(crate::sip::transport::ClientTls { config, name })
    }

    pub fn credentials(&self) -> Option<(String, String)> {
        Some((self.username.clone()?, self.password.clone()?))
    }

    /// An OPTIONS to the trunk (RFC 3261 §11), to see that it answers: to
    /// its domain, from the hotline's number, sent as calls leave for it
    /// ([`TrunkSettings::egress`]).
    pub fn options(&self) -> crate::sip::core::OutRequest {
        crate::sip::core::OutRequest {
            method: "OPTIONS",
            uri: format!("sip:{}", self.domain()),
            from: self.from_uri(),
            content_type: String::new(),
            body: bytes::Bytes::new(),
            route: Vec::new(),
        }
    }

    /// Whether the trunk's answer to [`TrunkSettings::options`] says it
    /// serves: any final answer but a 5xx (501, OPTIONS not implemented,
    /// is still an answer from a working trunk); `None` (no answer) never.
    pub fn answers(status: Option<u16>) -> bool {
        status.is_some_and(|c| !(500..600).contains(&c) || c == 501)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_from_the_settings() {
        let t: TrunkSettings = toml::from_str(
            "proxy = \"127.0.0.1:5070\"\nfrom_user = \"053212368\"\ndial_prefix = \"9\"\nusername = \"hotline\"\npassword = \"pw\"\n",
        )
        .unwrap();
        assert!(t.check().is_ok());
        assert_eq!(
            t.uri("+8613800000020").unwrap(),
            "sip:913800000020@127.0.0.1"
        );
        // The dial plan: an emergency number is never dialled, an
        // international one only once listed.
        assert_eq!(
            t.uri("110").unwrap_err(),
            "the dial plan refuses it ([trunk] deny \"1[0-2].\")"
        );
        assert!(t.uri("+8821234567890").is_err());
        let listed = TrunkSettings {
            allow: vec!["00882.".into()],
            ..t.clone()
        };
        assert_eq!(
            listed.uri("+8821234567890").unwrap(),
            "sip:9008821234567890@127.0.0.1"
        );
        let bad_plan = TrunkSettings {
            deny: vec!["11?".into()],
            ..t.clone()
        };
        assert_eq!(bad_plan.check().unwrap_err().0, "trunk.deny");
        assert_eq!(t.from_uri(), "sip:053212368@127.0.0.1");
        let options = t.options();
        assert_eq!(
            (options.method, options.uri.as_str()),
            ("OPTIONS", "sip:127.0.0.1")
        );
        // Any answer but a 5xx (bar 501) is a working trunk.
        for (status, up) in [
            (Some(200), true),
            (Some(404), true),
            (Some(407), true),
            (Some(501), true),
            (Some(503), false),
            (Some(500), false),
            (None, false),
        ] {
            assert_eq!(TrunkSettings::answers(status), up, "{status:?}");
        }
        assert_eq!(
            t.resolve().unwrap(),
            "127.0.0.1:5070".parse::<std::net::SocketAddr>().unwrap()
        );
        assert_eq!(t.egress(), Egress::Udp);
        let addr = "127.0.0.1:5070".parse().unwrap();
        assert_eq!(t.route(addr), "<sip:127.0.0.1:5070;lr>");
        let tcp = TrunkSettings {
            transport: "tcp".into(),
            ..t.clone()
        };
        assert!(tcp.check().is_ok());
        assert_eq!(tcp.egress(), Egress::Tcp(TRUNK_CONN));
        assert_eq!(tcp.route(addr), "<sip:127.0.0.1:5070;transport=tcp;lr>");
        let tls = TrunkSettings {
            transport: "tls".into(),
            ..t.clone()
        };
        assert!(tls.check().is_ok());
        assert_eq!(tls.route(addr), "<sip:127.0.0.1:5070;transport=tls;lr>");
        let no_ca = TrunkSettings {
            tls_ca: Some("/nonexistent/ca.pem".into()),
            ..tls.clone()
        };
        assert_eq!(no_ca.check().unwrap_err().0, "trunk.tls_ca");
        let sctp = TrunkSettings {
            transport: "sctp".into(),
            ..t.clone()
        };
        assert_eq!(sctp.check().unwrap_err().0, "trunk.transport");
        // (A proxy name that does not resolve is refused too; not tried
        // here: a test asks no DNS server.)
        let half = TrunkSettings {
            password: None,
            ..t
        };
        assert_eq!(half.check().unwrap_err().0, "trunk.password");
    }
}
