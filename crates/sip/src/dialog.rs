//! Routing inside a dialog (RFC 3261 §12): the route set a dialog keeps, and
//! where a request we send in it goes — its Request-URI, its Route headers
//! and the next hop — by loose (`lr`) or strict routing. Pure functions.
//!
//! - As UAS the route set is the request's Record-Route in order (§12.1.1);
//!   as UAC, the 2xx's Record-Route in reverse (§12.1.2). A configured
//!   outbound proxy is a pre-loaded route (§8.1.2) until the 2xx replaces it.
//! - Loose routing (§12.2.1.1): the Request-URI is the remote target, the
//!   route set goes in Route, the first route is the next hop.
//! - Strict routing (a first route without `lr`): the first route becomes the
//!   Request-URI, the rest and then the remote target go in Route, and the
//!   Request-URI is the next hop.

use std::net::{IpAddr, SocketAddr};

use super::message::angle_uri;

/// Where one request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    pub request_uri: String,
    /// Route header values, in order.
    pub route: Vec<String>,
    /// The URI whose host is the next hop.
    pub next_hop: String,
}

/// The route set of a dialog we answered: the Record-Route values in order.
pub fn uas_route_set(record_route: Vec<String>) -> Vec<String> {
    record_route
}

/// The route set of a dialog we placed: the 2xx's Record-Route in reverse.
pub fn uac_route_set(record_route: Vec<String>) -> Vec<String> {
    record_route.into_iter().rev().collect()
}

/// A route entry (a name-addr, `<sip:…;lr>`), or a bare URI with its
/// parameters, as its URI.
fn uri_of(route: &str) -> String {
    if route.contains('<') {
        angle_uri(route).unwrap_or_default()
    } else {
        route.trim().to_string()
    }
}

/// The parameters of a SIP URI (after the host, before any `?headers`).
fn params(uri: &str) -> impl Iterator<Item = (String, Option<String>)> + '_ {
    let rest = uri.split('?').next().unwrap_or("");
    let after_host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    after_host
        .split(';')
        .skip(1)
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim().to_string())),
            None => (p.trim().to_ascii_lowercase(), None),
        })
}

/// True when a route URI asks for loose routing (`;lr`).
pub fn is_loose(route: &str) -> bool {
    params(&uri_of(route)).any(|(k, _)| k == "lr")
}

/// The URI's `transport` parameter, lower case.
pub fn transport_of(uri: &str) -> Option<String> {
    params(&uri_of(uri))
        .find(|(k, _)| k == "transport")
        .and_then(|(_, v)| v.map(|v| v.to_ascii_lowercase()))
}

/// Request-URI, Route and next hop for a request in a dialog with
/// `route_set` to `remote_target`.
pub fn route(route_set: &[String], remote_target: &str) -> Routed {
    match route_set.split_first() {
        None => Routed {
            request_uri: remote_target.to_string(),
            route: Vec::new(),
            next_hop: remote_target.to_string(),
        },
        Some((first, _)) if is_loose(first) => Routed {
            request_uri: remote_target.to_string(),
            route: route_set.to_vec(),
            next_hop: uri_of(first),
        },
        Some((first, rest)) => {
            // Strict: the first route is the Request-URI (parameters not
            // allowed there, i.e. none of a route's headers, stripped).
            let uri = uri_of(first);
            let uri = uri.split('?').next().unwrap_or("").to_string();
            let mut route: Vec<String> = rest.to_vec();
            route.push(format!("<{remote_target}>"));
            Routed {
                request_uri: uri.clone(),
                route,
                next_hop: uri,
            }
        }
    }
}

/// A route entry naming a loose router at `addr` (an outbound proxy, a
/// trunk), reached over TCP when `tcp`.
pub fn loose_route(addr: SocketAddr, transport: super::message::Transport) -> String {
    use super::message::Transport;
    let host = match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    };
    let transport = match transport {
        Transport::Udp => "",
        Transport::Tcp => ";transport=tcp",
        Transport::Tls => ";transport=tls",
    };
    format!("<sip:{host}{transport};lr>")
}

/// The address of a URI's host when it is an IP literal (`sip:h:port`, port
/// 5060 when absent, 5061 for sips). A host name gives `None`: the core does
/// no DNS, and the caller falls back to the address the dialog came from.
pub fn hop_addr(uri: &str) -> Option<SocketAddr> {
    let uri = uri_of(uri);
    let (scheme, rest) = uri.split_once(':')?;
    let default_port = if scheme.eq_ignore_ascii_case("sips") {
        5061
    } else if scheme.eq_ignore_ascii_case("sip") {
        5060
    } else {
        return None;
    };
    let rest = rest.split(['?']).next()?;
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let hostport = hostport.split(';').next()?;
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let (v6, after) = inner.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return None,
        };
        (v6, port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let ip: IpAddr = host.parse().ok()?;
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn uas_keeps_the_order_and_uac_reverses_it() {
        let rr = rr(&["<sip:p1.example;lr>", "<sip:p2.example;lr>"]);
        assert_eq!(uas_route_set(rr.clone()), rr);
        assert_eq!(
            uac_route_set(rr),
            ["<sip:p2.example;lr>", "<sip:p1.example;lr>"]
        );
    }

    #[test]
    fn loose_routing_keeps_the_remote_target() {
        let set = rr(&[
            "<sip:127.0.0.1:5071;lr;ftag=abc>",
            "<sip:10.0.0.1;lr;transport=tcp>",
        ]);
        let r = route(&set, "sip:13800000000@192.0.2.7:5062");
        assert_eq!(r.request_uri, "sip:13800000000@192.0.2.7:5062");
        assert_eq!(r.route, set);
        assert_eq!(r.next_hop, "sip:127.0.0.1:5071;lr;ftag=abc");
        assert_eq!(
            hop_addr(&r.next_hop),
            Some("127.0.0.1:5071".parse().unwrap())
        );
        // Kamailio writes `lr=on`.
        assert!(is_loose("<sip:127.0.0.1:5071;lr=on;ftag=x>"));
    }

    #[test]
    fn strict_routing_moves_the_target_to_the_end() {
        // RFC 3261 §12.2.1.1's example.
        let set = rr(&[
            "<sip:proxy1>",
            "<sip:proxy2>",
            "<sip:proxy3;lr>",
            "<sip:proxy4>",
        ]);
        let r = route(&set, "sip:user@remoteua");
        assert_eq!(r.request_uri, "sip:proxy1");
        assert_eq!(
            r.route,
            [
                "<sip:proxy2>",
                "<sip:proxy3;lr>",
                "<sip:proxy4>",
                "<sip:user@remoteua>"
            ]
        );
        assert_eq!(r.next_hop, "sip:proxy1");
        assert_eq!(hop_addr(&r.next_hop), None, "a name: no DNS in the core");
    }

    #[test]
    fn no_route_set_goes_to_the_remote_target() {
        let r = route(&[], "sip:officer@[2001:db8::5]:5070;transport=tcp");
        assert_eq!(
            r.request_uri,
            "sip:officer@[2001:db8::5]:5070;transport=tcp"
        );
        assert!(r.route.is_empty());
        assert_eq!(
            hop_addr(&r.next_hop),
            Some("[2001:db8::5]:5070".parse().unwrap())
        );
        assert_eq!(transport_of(&r.next_hop).as_deref(), Some("tcp"));
    }

    #[test]
    fn an_outbound_proxy_is_a_preloaded_loose_route() {
        let set = vec!["<sip:192.0.2.20:5060;lr>".to_string()];
        let r = route(&set, "sip:officer@pbx.court.example");
        assert_eq!(r.request_uri, "sip:officer@pbx.court.example");
        assert_eq!(r.route, set);
        assert_eq!(
            hop_addr(&r.next_hop),
            Some("192.0.2.20:5060".parse().unwrap())
        );
    }

    #[test]
    fn hop_addresses() {
        for (uri, addr) in [
            ("sip:10.1.2.3", Some("10.1.2.3:5060")),
            ("sips:10.1.2.3", Some("10.1.2.3:5061")),
            ("<sip:u:pw@10.1.2.3:7000;lr>", Some("10.1.2.3:7000")),
            ("sip:[::1]", Some("[::1]:5060")),
            ("sip:[::1]x", None),
            ("sip:10.1.2.3:99999", None),
            ("tel:+8653212368", None),
            ("sip:pbx.court.example;lr", None),
            ("", None),
            ("<>", None),
            ("sip:", None),
        ] {
            assert_eq!(hop_addr(uri), addr.map(|a| a.parse().unwrap()), "{uri}");
        }
    }
}
