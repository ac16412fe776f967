//! The member dialler: every way the gateway calls someone — a member's
//! SIP URI (over TLS for `sips:`), their registered softphones (over the
//! flow each registered on), their phone through the court's trunk (the
//! dial plan decides), an informant's number for a callback or follow-up —
//! and a call down one of those ways with a script (`call_along`). Used by
//! paging, the bridge, callbacks and follow-ups alike.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use super::outbound::OutboundCall;
use crate::media::ports::PortPool;
use crate::roster::{Member, REGISTERED};
use crate::sip::core::Dial;
use crate::sip::transport::{Egress, Requester};

/// What calling someone needs, one for the gateway.
#[derive(Clone)]
pub struct Dialer {
    pub sip: Requester,
    pub from_uri: String,
    /// Send SIP pages here instead of to the URI's host.
    pub outbound_proxy: Option<SocketAddr>,
    /// The prompts in force (taken at each call).
    pub live: Arc<crate::live::Live>,
    /// For paging calls: RTP ports, our address in SDP, the prompts.
    pub ports: Arc<PortPool>,
    pub advertise_ip: Option<IpAddr>,
    /// Ringing longer is cancelled; after the question, this long for a key.
    pub ring_timeout: Duration,
    pub key_timeout: Duration,
    /// Times the announcement is played when no key comes.
    pub plays: u32,
    /// No RTP from the officer's phone for this long ends the call.
    pub media_timeout: Duration,
    /// `(user, password)` when the PBX or trunk challenges our calls.
    pub credentials: Option<(String, String)>,
    /// How `sips:` members' certificates are checked (`[paging] tls_ca`,
    /// else the webpki roots), loaded once.
    pub sips: Arc<rustls::ClientConfig>,
    /// The court's trunk and its address: members' phones are paged
    /// through it; without one a phone number is no channel.
    pub trunk: Option<(super::trunk::TrunkSettings, SocketAddr)>,
    /// Where paging calls are recorded (none: not recorded, e.g. a test
    /// page).
    pub recordings: Option<std::path::PathBuf>,
    /// The registrar's bindings of
    /// softphones (`sip = "registered"`), and this gateway's name in them:
    /// a flow it holds is called back on.
    pub store: crate::tickets::Store,
    pub gateway: String,
}

/// Softphones of one member called at once, at most.
const SOFTPHONES: usize = 3;

/// One way to call a member: the channel's name, the Request-URI, how the
/// call leaves (or why it cannot).
pub struct Route {
    pub channel: &'static str,
    pub uri: String,
    via: Result<Via, String>,
}

/// How a paging call leaves: where to, as whom, through which proxy.
struct Via {
    dest: SocketAddr,
    from_uri: String,
    credentials: Option<(String, String)>,
    route: Vec<String>,
    /// How it leaves: a UDP socket, a softphone's flow, the trunk's TCP
    /// connection.
    egress: Egress,
}

/// Where a SIP URI's requests go: an IP literal host, else DNS.
async fn sip_destination(uri: &str) -> Option<SocketAddr> {
    let (rest, port) = match uri.strip_prefix("sips:") {
        Some(rest) => (rest, 5061),
        None => (uri.strip_prefix("sip:")?, 5060),
    };
    let hostport = rest.rsplit('@').next()?.split(';').next()?;
    if let Ok(a) = hostport.parse::<SocketAddr>() {
        return Some(a);
    }
    let with_port = if hostport.starts_with('[') || !hostport.contains(':') {
        if hostport.ends_with(']') || !hostport.contains(':') {
            format!("{hostport}:{port}")
        } else {
            hostport.to_string()
        }
    } else {
        hostport.to_string()
    };
    tokio::net::lookup_host(with_port).await.ok()?.next()
}

impl Dialer {
    /// Every way a call reaches `m`: their SIP URI (or their registered
    /// softphones), their phone through the trunk. A way that cannot be
    /// taken says why.
    pub async fn routes(&self, m: &Member) -> Vec<Route> {
        let mut out = match m.sip.as_deref() {
            Some(REGISTERED) => self.registered(m).await,
            Some(uri) => vec![self.sip_route(uri).await],
            None => Vec::new(),
        };
        if let Some(phone) = &m.phone {
            out.extend(self.phone_route(phone));
        }
        out
    }

    /// A call to any phone number through the trunk (none without one).
    pub fn phone_route(&self, phone: &str) -> Option<Route> {
        let (trunk, dest) = self.trunk.as_ref()?;
        let via = trunk.uri(phone).map_err(|e| format!("failed: {e}"));
        Some(Route {
            channel: "phone",
            uri: via
                .as_ref()
                .map_or_else(|_| phone.to_string(), Clone::clone),
            via: via.map(|_| Via {
                dest: *dest,
                from_uri: trunk.from_uri(),
                credentials: trunk.credentials(),
                route: vec![trunk.route(*dest)],
                egress: trunk.egress(),
            }),
        })
    }

    /// A call to an informant's number through the trunk, or why the court
    /// does not dial it (no trunk, or the dial plan): in words that never
    /// name the number (rule 第二十条(三)).
    pub fn informant_route(&self, number: &str) -> Result<Route, String> {
        let route = self
            .phone_route(number)
            .ok_or_else(|| "no [trunk] to dial the informant through".to_string())?;
        match &route.via {
            Ok(_) => Ok(route),
            Err(e) => Err(format!(
                "the informant's number: {}",
                e.trim_start_matches("failed: ")
            )),
        }
    }

    /// Where a page to `uri` goes: the outbound proxy when one is set.
    pub(crate) async fn destination(&self, uri: &str) -> Option<SocketAddr> {
        match self.outbound_proxy {
            Some(p) => Some(p),
            None => sip_destination(uri).await,
        }
    }

    /// The outbound proxy as a pre-loaded route (RFC 3261 §8.1.2): the
    /// Request-URI stays the member's, the proxy is named in Route.
    pub(crate) fn preloaded_route(&self) -> Vec<String> {
        self.outbound_proxy
            .map(|p| crate::sip::dialog::loose_route(p, crate::sip::message::Transport::Udp))
            .into_iter()
            .collect()
    }

    /// A call to a SIP URI: through the outbound proxy, if any; a `sips:`
    /// URI (or `;transport=tls`) over TLS to its host, one connection per
    /// destination reused by every call, the certificate checked against
    /// `[paging] tls_ca` and the URI's host.
    async fn sip_route(&self, uri: &str) -> Route {
        let tls = uri
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("sips:"))
            || uri.to_ascii_lowercase().contains(";transport=tls");
        let via = match (self.destination(uri).await, tls) {
            (None, _) => Err(format!("failed: cannot resolve {uri}")),
            (Some(_), true) if self.outbound_proxy.is_some() => Err(format!(
                "failed: {uri} is over TLS, which [paging] outbound_proxy is not"
            )),
            (Some(dest), true) => match self.tls_to(uri) {
                Ok(checked) => {
                    let conn = crate::sip::transport::tls_conn_for(dest);
                    self.sip.connect_tls(conn, checked).await;
                    Ok(Via {
                        dest,
                        from_uri: self.from_uri.clone(),
                        credentials: self.credentials.clone(),
                        route: Vec::new(),
                        egress: Egress::Tls(conn),
                    })
                }
                Err(e) => Err(format!("failed: {e}")),
            },
            (Some(dest), false) => Ok(Via {
                dest,
                from_uri: self.from_uri.clone(),
                credentials: self.credentials.clone(),
                route: self.preloaded_route(),
                egress: Egress::Udp,
            }),
        };
        Route {
            channel: "call",
            uri: uri.to_string(),
            via,
        }
    }

    /// How a TLS connection to `uri`'s host checks it.
    fn tls_to(&self, uri: &str) -> Result<crate::sip::transport::ClientTls, String> {
        let host = uri
            .split_once(':')
            .map(|(_, r)| r)
            .and_then(|r| r.rsplit('@').next())
            .and_then(|h| h.split(';').next())
            .map(|h| match h.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or(v6),
                None => h.rsplit_once(':').map_or(h, |(host, _)| host),
            })
            .ok_or_else(|| format!("{uri}: no host"))?;
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("{uri}: {e}"))?;
        Ok(crate::sip::transport::ClientTls {
            config: self.sips.clone(),
            name,
        })
    }

    /// A member's registered softphones (at most `SOFTPHONES`), each to its
    /// Contact, over the flow its REGISTER came on when this gateway holds
    /// it (the same UDP socket, or the same TCP connection, so the
    /// softphone's NAT lets the INVITE in), else to the address it
    /// registered from.
    async fn registered(&self, m: &Member) -> Vec<Route> {
        let failed = |why: String| Route {
            channel: "registered",
            uri: String::new(),
            via: Err(why),
        };
        let now = jiff::Timestamp::now().as_millisecond();
        let bindings = match self.store.bindings(&m.id, now).await {
            Ok(b) => b,
            Err(e) => return vec![failed(format!("failed: the registrar's bindings: {e}"))],
        };
        if bindings.is_empty() {
            return vec![failed("no softphone registered".into())];
        }
        let route = |b: &crate::tickets::softphones::Binding| {
            let flow = crate::registrar::flow_of(b);
            let via = match flow {
                Some(f) if b.gateway == self.gateway => Ok(Via {
                    dest: b.source,
                    from_uri: self.from_uri.clone(),
                    credentials: None,
                    route: Vec::new(),
                    egress: Egress::Flow(f),
                }),
                Some(f) if f.transport() == crate::sip::message::Transport::Udp => Ok(Via {
                    dest: b.source,
                    from_uri: self.from_uri.clone(),
                    credentials: None,
                    route: Vec::new(),
                    egress: Egress::Udp,
                }),
                _ => Err(format!(
                    "failed: registered over a connection gateway {} holds",
                    b.gateway
                )),
            };
            Route {
                channel: "registered",
                uri: b.contact.clone(),
                via,
            }
        };
        bindings.iter().take(SOFTPHONES).map(route).collect()
    }

    /// A call along `route` running `script` once answered, rung at most
    /// `ring`, recorded on `ticket` (when paging calls are recorded).
    pub fn call_along<S>(
        &self,
        member: &str,
        route: Route,
        script: S,
        ring: Duration,
        ticket: Option<&str>,
    ) -> Result<OutboundCall<S>, String> {
        let via = route.via?;
        let dest = via.dest;
        let ip = self.advertise_ip.unwrap_or_else(|| {
            crate::sip::transport::local_for(
                std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
                dest.ip(),
            )
            .ip()
        });
        let socket = self
            .ports
            .bind_for(ip)
            .map_err(|e| format!("failed: {e}"))?;
        let port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        let dial = Dial {
            uri: route.uri,
            from_uri: via.from_uri,
            rtp: std::net::SocketAddr::new(ip, port),
            ring_timeout: ring,
            credentials: via.credentials,
            route: via.route,
        };
        Ok(OutboundCall {
            member: member.to_string(),
            requester: self.sip.clone(),
            dial,
            dest,
            egress: via.egress,
            socket,
            script,
            media_timeout: self.media_timeout,
            live: self.live.get(),
            recording: ticket.and_then(|t| self.recordings.clone().map(|d| (d, t.to_string()))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sip_destinations() {
        assert_eq!(
            sip_destination("sip:8201@127.0.0.1:5070").await,
            Some("127.0.0.1:5070".parse().unwrap())
        );
        assert_eq!(
            sip_destination("sip:8201@127.0.0.1").await,
            Some("127.0.0.1:5060".parse().unwrap())
        );
        assert_eq!(
            sip_destination("sip:x@[::1]:5080;transport=udp").await,
            Some("[::1]:5080".parse().unwrap())
        );
        assert_eq!(
            sip_destination("sips:8201@127.0.0.1").await,
            Some("127.0.0.1:5061".parse().unwrap()),
            "sips: defaults to 5061"
        );
        assert_eq!(sip_destination("tel:+86123").await, None);
    }
}
