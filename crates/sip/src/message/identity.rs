//! Who calls: the caller's number and name from P-Asserted-Identity (only
//! when a trusted element asserted it, RFC 3325 §6) or From, whether the
//! number is asserted by the court's trunk or only claimed, and whether
//! they asked for privacy (RFC 3323, or an anonymous From).

use super::*;

/// The caller as a request names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    /// From P-Asserted-Identity when `asserted`, else the From user part;
    /// never "anonymous".
    pub number: Option<String>,
    pub display: Option<String>,
    pub privacy: bool,
    /// The number came from inside the trust domain (the court's PBX or
    /// SBC: its P-Asserted-Identity, or its From); else anyone could have
    /// written it, and it is only claimed.
    pub asserted: bool,
}

impl Message {
    /// The caller of this request; `asserted`: it came from inside the
    /// trust domain (the court's PBX or SBC), so its P-Asserted-Identity,
    /// or else its From, is the caller's number (from anyone else either
    /// is only a claim).
    pub fn caller_identity(&self, asserted: bool) -> CallerIdentity {
        let (display, from_user) = display_and_user(&self.reply.from);
        let pai_user = self
            .header("P-Asserted-Identity")
            .filter(|_| asserted)
            .and_then(|p| display_and_user(&p).1);
        let anonymous = |s: &Option<String>| {
            s.as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("anonymous"))
        };
        let asked = self.header("Privacy").is_some_and(|p| {
            p.split([';', ',']).any(|t| {
                matches!(
                    t.trim().to_ascii_lowercase().as_str(),
                    "id" | "user" | "header" | "session" | "critical"
                )
            })
        });
        let privacy = asked
            || anonymous(&display)
            || anonymous(&from_user)
            || self
                .reply
                .from
                .to_ascii_lowercase()
                .contains("anonymous.invalid");
        let number = pai_user
            .or(from_user)
            .filter(|u| !u.eq_ignore_ascii_case("anonymous"));
        CallerIdentity {
            asserted: asserted && number.is_some(),
            number,
            display,
            privacy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(from: &str, extra: &str) -> Message {
        let text = format!(
            "INVITE sip:12368@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bKi1\r\n\
Max-Forwards: 70\r\nFrom: {from};tag=a\r\nTo: <sip:12368@192.0.2.1>\r\nCall-ID: i1\r\n\
CSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        parse(text.as_bytes(), true, &Limits::default()).unwrap()
    }

    #[test]
    fn the_number_is_asserted_only_from_inside_the_trust_domain() {
        let m = msg(
            "\"张三\" <sip:13800000000@192.0.2.7>",
            "P-Asserted-Identity: <tel:+8613900000000>\r\n",
        );
        let trusted = m.caller_identity(true);
        assert_eq!(trusted.number.as_deref(), Some("+8613900000000"));
        assert_eq!(trusted.display.as_deref(), Some("张三"));
        assert!(!trusted.privacy);
        assert!(trusted.asserted);
        let claimed = m.caller_identity(false);
        assert_eq!(claimed.number.as_deref(), Some("13800000000"));
        assert!(!claimed.asserted);
        // From the trunk without P-Asserted-Identity: its From vouched for.
        let from_only = msg("<sip:053285550000@192.0.2.7>", "").caller_identity(true);
        assert_eq!(from_only.number.as_deref(), Some("053285550000"));
        assert!(from_only.asserted);
    }

    #[test]
    fn privacy_asked_for_or_anonymous() {
        let id = msg("<sip:13800000000@192.0.2.7>", "Privacy: id\r\n").caller_identity(false);
        assert!(id.privacy);
        let anon =
            msg("\"Anonymous\" <sip:anonymous@anonymous.invalid>", "").caller_identity(false);
        assert!(anon.privacy);
        assert_eq!(anon.number, None);
        let none = msg("<sip:13800000000@192.0.2.7>", "Privacy: none\r\n").caller_identity(false);
        assert!(!none.privacy);
    }
}
