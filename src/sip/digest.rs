//! HTTP Digest authentication for the requests we send (RFC 3261 §22,
//! RFC 2617 with MD5, `qop=auth` when offered): the answer to a 401/407.

use md5::{Digest as _, Md5};

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

/// Parses a Digest challenge; `None` for another scheme or algorithm.
pub fn parse(value: &str) -> Option<Challenge> {
    let rest = value.trim().strip_prefix("Digest")?.trim();
    let mut c = Challenge {
        realm: String::new(),
        nonce: String::new(),
        opaque: None,
        qop_auth: false,
    };
    // key=value pairs separated by commas (values may be quoted).
    let mut rest = rest;
    while !rest.is_empty() {
        let (k, after) = rest.split_once('=')?;
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (&q[..end], &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        match k.as_str() {
            "realm" => c.realm = v.to_string(),
            "nonce" => c.nonce = v.to_string(),
            "opaque" => c.opaque = Some(v.to_string()),
            "qop" => c.qop_auth = v.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth")),
            "algorithm" if !v.eq_ignore_ascii_case("MD5") => return None,
            _ => {}
        }
        rest = next.trim_start().trim_start_matches(',').trim_start();
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
}
