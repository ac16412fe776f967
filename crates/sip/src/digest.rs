//! HTTP Digest authentication (RFC 3261 §22, RFC 2617 with MD5): the
//! answer to a 401/407 for the requests we send (`qop=auth` when offered),
//! and the registrar's side: the credentials a softphone sends, checked
//! against the HA1 on file, and nonces that need no state (a timestamp and
//! the source (transport, address and port) under an HMAC of the gateway's
//! own secret). That a nonce's count only grows is the registrar's to check
//! (it keeps the counts in Redis).

use hmac::{KeyInit as _, Mac as _};
use md5::{Digest as _, Md5};
use sha2::Sha256;

/// A parsed `WWW-Authenticate` / `Proxy-Authenticate: Digest ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub qop_auth: bool,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn md5(s: &str) -> String {
    hex(&Md5::digest(s.as_bytes()))
}

/// The `key=value` pairs of a Digest header (values may be quoted), keys
/// in lower case; `None` for another scheme or a broken list.
fn params(value: &str) -> Option<Vec<(String, String)>> {
    let mut rest = value.trim().strip_prefix("Digest")?.trim();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (k, after) = rest.split_once('=')?;
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let (v, next) = q.split_once('"')?;
            (v, next)
        } else {
            let (v, next) = after.split_at(after.find(',').unwrap_or(after.len()));
            (v.trim(), next)
        };
        out.push((k, v.to_string()));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(out)
}

/// Parses a Digest challenge; `None` for another scheme or algorithm.
pub fn parse(value: &str) -> Option<Challenge> {
    let mut c = Challenge {
        realm: String::new(),
        nonce: String::new(),
        opaque: None,
        qop_auth: false,
    };
    for (k, v) in params(value)? {
        match k.as_str() {
            "realm" => c.realm = v,
            "nonce" => c.nonce = v,
            "opaque" => c.opaque = Some(v),
            "qop" => c.qop_auth = v.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth")),
            "algorithm" if !v.eq_ignore_ascii_case("MD5") => return None,
            _ => {}
        }
    }
    (!c.nonce.is_empty()).then_some(c)
}

/// The credentials header value answering `c` for `method uri`.
pub fn authorization(
    c: &Challenge,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> String {
    let ha1 = md5(&format!("{user}:{}:{password}", c.realm));
    let ha2 = md5(&format!("{method}:{uri}"));
    let mut v = if c.qop_auth {
        let nc = "00000001";
        let response = md5(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", c.nonce));
        format!(
            "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"{cnonce}\"",
            c.realm, c.nonce
        )
    } else {
        let response = md5(&format!("{ha1}:{}:{ha2}", c.nonce));
        format!(
            "Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5",
            c.realm, c.nonce
        )
    };
    if let Some(o) = &c.opaque {
        v.push_str(&format!(", opaque=\"{o}\""));
    }
    v
}

/// `MD5(user:realm:password)`: what the registrar keeps instead of the
/// password (RFC 2617 §3.2.2.2).
pub fn ha1(user: &str, realm: &str, password: &str) -> String {
    md5(&format!("{user}:{realm}:{password}"))
}

/// The credentials of an `Authorization: Digest ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    /// `qop=auth` with its `nc` and `cnonce`.
    pub qop: Option<(String, String)>,
}

impl Credentials {
    /// The nonce count of `qop=auth` credentials (8 hex digits, RFC 2617
    /// §3.2.2), if it is one.
    pub fn nonce_count(&self) -> Option<u64> {
        let (nc, _) = self.qop.as_ref()?;
        (nc.len() == 8)
            .then(|| u64::from_str_radix(nc, 16).ok())
            .flatten()
    }
}

impl Credentials {
    /// Parses the header; `None` when a field the check needs is missing,
    /// or for another scheme, algorithm or quality of protection.
    pub fn parse(value: &str) -> Option<Credentials> {
        let mut c = Credentials {
            username: String::new(),
            realm: String::new(),
            nonce: String::new(),
            uri: String::new(),
            response: String::new(),
            qop: None,
        };
        let (mut qop, mut nc, mut cnonce) = (None, None, None);
        for (k, v) in params(value)? {
            match k.as_str() {
                "username" => c.username = v,
                "realm" => c.realm = v,
                "nonce" => c.nonce = v,
                "uri" => c.uri = v,
                "response" => c.response = v.to_ascii_lowercase(),
                "qop" => qop = Some(v),
                "nc" => nc = Some(v),
                "cnonce" => cnonce = Some(v),
                "algorithm" if !v.eq_ignore_ascii_case("MD5") => return None,
                _ => {}
            }
        }
        match qop {
            None => {}
            Some(q) if q.eq_ignore_ascii_case("auth") => c.qop = Some((nc?, cnonce?)),
            Some(_) => return None,
        }
        let complete = [&c.username, &c.nonce, &c.uri, &c.response]
            .iter()
            .all(|f| !f.is_empty());
        complete.then_some(c)
    }

    /// The response matches the one `ha1` gives for `method` (compared in
    /// constant time: the time says nothing about how close a guess came).
    pub fn verify(&self, ha1: &str, method: &str) -> bool {
        let ha2 = md5(&format!("{method}:{}", self.uri));
        let want = match &self.qop {
            Some((nc, cnonce)) => md5(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce)),
            None => md5(&format!("{ha1}:{}:{ha2}", self.nonce)),
        };
        want.len() == self.response.len()
            && want
                .bytes()
                .zip(self.response.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// What a nonce we are shown turns out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours, for this source, young enough.
    Fresh,
    /// Ours but too old (or for another source): challenge again with
    /// `stale=true` if the credentials were right.
    Stale,
    /// Not one of ours (another gateway's, or made up).
    Unknown,
}

/// Nonces without state: `<seconds, 16 hex><salt, 16 hex><HMAC-SHA256(
/// secret, seconds, salt and source), 32 hex>`, so any number of challenges
/// cost no memory, no two are alike (the salt is random: a count kept per
/// nonce is one challenge's), and a nonce works only from the source it
/// was given to (the registrar names it by transport, address and port),
/// for `max_age`.
pub struct Nonces {
    secret: [u8; 32],
    max_age: u64,
}

impl Nonces {
    /// A new random secret (nonces do not outlive the process: a softphone
    /// that shows an old one is challenged again).
    pub fn new(max_age: u64) -> Nonces {
        Nonces {
            secret: rand::random(),
            max_age,
        }
    }

    fn mac(&self, secs: u64, salt: u64, source: &str) -> String {
        // HMAC takes a key of any length (RFC 2104 §2): `new_from_slice`
        // never refuses ours (32 bytes), so the fallback is not reached.
        let Ok(mut m) = hmac::Hmac::<Sha256>::new_from_slice(&self.secret) else {
            return String::new();
        };
        m.update(&secs.to_be_bytes());
        m.update(&salt.to_be_bytes());
        m.update(source.as_bytes());
        let mac = m.finalize().into_bytes();
        hex(mac.get(..16).unwrap_or_default())
    }

    /// A nonce for `source` at `now` (seconds since the epoch).
    pub fn issue(&self, now: u64, source: &str) -> String {
        let salt: u64 = rand::random();
        format!("{now:016x}{salt:016x}{}", self.mac(now, salt, source))
    }

    pub fn check(&self, nonce: &str, now: u64, source: &str) -> NonceCheck {
        let Some((secs, rest)) = nonce.split_at_checked(16) else {
            return NonceCheck::Unknown;
        };
        let Some((salt, mac)) = rest.split_at_checked(16) else {
            return NonceCheck::Unknown;
        };
        let (Ok(secs), Ok(salt)) = (u64::from_str_radix(secs, 16), u64::from_str_radix(salt, 16))
        else {
            return NonceCheck::Unknown;
        };
        let ours = |s: &str| {
            let want = self.mac(secs, salt, s);
            want.len() == mac.len()
                && want
                    .bytes()
                    .zip(mac.bytes())
                    .fold(0u8, |a, (x, y)| a | (x ^ y))
                    == 0
        };
        if !ours(source) {
            return NonceCheck::Unknown;
        }
        if secs > now.saturating_add(5) || now.saturating_sub(secs) > self.max_age {
            return NonceCheck::Stale;
        }
        NonceCheck::Fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example_vector() {
        // RFC 2617 §3.5 (GET /dir/index.html, Mufasa / Circle Of Life).
        let c = parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert!(c.qop_auth);
        let v = authorization(
            &c,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "0a4f113b",
        );
        assert!(
            v.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{v}"
        );
        assert!(v.ends_with("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
    }

    #[test]
    fn without_qop_and_other_schemes() {
        let c = parse("Digest realm=\"court\", nonce=\"abc\", algorithm=MD5").unwrap();
        assert!(!c.qop_auth);
        let v = authorization(&c, "u", "p", "INVITE", "sip:8201@pbx", "x");
        let want = md5(&format!(
            "{}:abc:{}",
            md5("u:court:p"),
            md5("INVITE:sip:8201@pbx")
        ));
        assert!(v.contains(&format!("response=\"{want}\"")), "{v}");
        assert_eq!(parse("Basic realm=\"x\""), None);
        assert_eq!(
            parse("Digest realm=\"x\", nonce=\"n\", algorithm=SHA-256"),
            None
        );
    }

    #[test]
    fn the_registrar_checks_credentials_against_the_ha1() {
        // RFC 2617 §3.5: the client's response, checked from HA1 alone.
        let header = "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"";
        let c = Credentials::parse(header).unwrap();
        assert_eq!(c.username, "Mufasa");
        let ha1 = ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        assert!(c.verify(&ha1, "GET"));
        assert!(!c.verify(&ha1, "POST"));
        assert!(!c.verify(
            &super::ha1("Mufasa", "testrealm@host.com", "circle of life"),
            "GET"
        ));
        // What our own client side sends is what the registrar accepts.
        let ch = parse("Digest realm=\"hotline\", nonce=\"n1\", qop=\"auth\"").unwrap();
        let v = authorization(&ch, "p-sun", "secret", "REGISTER", "sip:hotline", "c1");
        let c = Credentials::parse(&v).unwrap();
        assert!(c.verify(&super::ha1("p-sun", "hotline", "secret"), "REGISTER"));
        // Missing fields, other algorithms, auth-int: not credentials.
        assert_eq!(
            Credentials::parse("Digest username=\"a\", nonce=\"n\""),
            None
        );
        assert_eq!(
            Credentials::parse(
                "Digest username=\"a\", nonce=\"n\", uri=\"u\", response=\"r\", algorithm=SHA-256"
            ),
            None
        );
        assert_eq!(
            Credentials::parse("Digest username=\"a\", nonce=\"n\", uri=\"u\", response=\"r\", qop=auth-int, nc=1, cnonce=\"x\""),
            None
        );
        assert_eq!(Credentials::parse("Digest username=\"a"), None);
        // The nonce count: 8 hex digits.
        assert_eq!(c.nonce_count(), Some(1));
        let count = |nc: &str| {
            Credentials::parse(&format!("Digest username=\"a\", nonce=\"n\", uri=\"u\", response=\"r\", qop=auth, nc={nc}, cnonce=\"x\"")).unwrap().nonce_count()
        };
        assert_eq!(count("0000000a"), Some(10));
        assert_eq!(count("1"), None);
        assert_eq!(count("zzzzzzzz"), None);
        assert_eq!(Credentials::parse("Basic YTpi"), None);
    }

    #[test]
    fn nonces_are_bound_to_time_and_source() {
        let n = Nonces::new(300);
        let ip = "UDP 192.0.2.7:5060";
        let other = "UDP 192.0.2.8:5060";
        for elsewhere in ["UDP 192.0.2.7:5062", "TCP 192.0.2.7:5060"] {
            assert_eq!(n.check(&n.issue(7, ip), 7, elsewhere), NonceCheck::Unknown);
        }
        let nonce = n.issue(1_000_000, ip);
        assert_ne!(nonce, n.issue(1_000_000, ip), "no two challenges alike");
        assert_eq!(n.check(&nonce, 1_000_000, ip), NonceCheck::Fresh);
        assert_eq!(n.check(&nonce, 1_000_300, ip), NonceCheck::Fresh);
        assert_eq!(n.check(&nonce, 1_000_301, ip), NonceCheck::Stale);
        assert_eq!(n.check(&nonce, 1_000_000, other), NonceCheck::Unknown);
        assert_eq!(
            Nonces::new(300).check(&nonce, 1_000_000, ip),
            NonceCheck::Unknown
        );
        let mut forged = nonce.clone();
        forged.replace_range(0..16, &format!("{:016x}", 1_000_200));
        assert_eq!(n.check(&forged, 1_000_301, ip), NonceCheck::Unknown);
        for junk in [
            "",
            "zz",
            "ü",
            &"f".repeat(48),
            &format!("{}ü", &nonce[..16]),
        ] {
            assert_eq!(
                n.check(junk, 1_000_000, ip),
                NonceCheck::Unknown,
                "{junk:?}"
            );
        }
    }
}
