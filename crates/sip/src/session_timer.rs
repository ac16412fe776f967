//! Session timers (RFC 4028), sans-IO: reading `Session-Expires` and
//! `Min-SE`, what a UAS answers, and when a session is refreshed or ends.
//!
//! The refresher sends a re-INVITE or UPDATE at half the interval; the other
//! side ends the session with BYE when none came `min(32 s, interval / 3)`
//! before the interval is over (§10).

use std::time::Duration;

use tokio::time::Instant;

/// The smallest interval we accept (RFC 4028 §4: never below 90 s).
pub const MIN_SE: u64 = 90;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    Uac,
    Uas,
}

impl Refresher {
    pub fn as_str(self) -> &'static str {
        match self {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        }
    }
}

/// A `Session-Expires` value (`x` is its compact form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionExpires {
    pub interval: u64,
    pub refresher: Option<Refresher>,
}

/// `delta-seconds *(;param)`; `None` when it does not parse.
pub fn parse_session_expires(v: &str) -> Option<SessionExpires> {
    let mut parts = v.split(';');
    let n = parts.next()?.trim();
    if n.is_empty() || n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let interval = n.parse().ok()?;
    let mut refresher = None;
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            if k.trim().eq_ignore_ascii_case("refresher") {
                refresher = match v.trim().to_ascii_lowercase().as_str() {
                    "uac" => Some(Refresher::Uac),
                    "uas" => Some(Refresher::Uas),
                    _ => return None,
                };
            }
        }
    }
    Some(SessionExpires {
        interval,
        refresher,
    })
}

/// `Min-SE: delta-seconds *(;param)`.
pub fn parse_min_se(v: &str) -> Option<u64> {
    let n = v.split(';').next()?.trim();
    if n.is_empty() || n.len() > 10 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// What a UAS does with an INVITE's timer headers (§9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UasTimer {
    /// No Session-Expires: no timer.
    None,
    /// Below our minimum: 422 with `Min-SE`.
    TooSmall { min_se: u64 },
    /// The timer in force: the 2xx carries `Session-Expires` (and `Require:
    /// timer` when the UAC supports it).
    Use {
        interval: u64,
        refresher: Refresher,
        require: bool,
    },
}

/// The UAS side: `se`, `min_se` and whether the UAC listed `timer` in
/// Supported. When the UAC leaves the choice to us, we refresh (we are the
/// side that stays up); a UAC without `timer` cannot refresh, so we do.
pub fn uas_negotiate(se: Option<SessionExpires>, min_se: Option<u64>, uac_timer: bool) -> UasTimer {
    let Some(se) = se else {
        return UasTimer::None;
    };
    let floor = MIN_SE.max(min_se.unwrap_or(0));
    if se.interval < MIN_SE {
        return UasTimer::TooSmall { min_se: floor };
    }
    let refresher = match (uac_timer, se.refresher) {
        (false, _) => Refresher::Uas,
        (true, Some(r)) => r,
        (true, None) => Refresher::Uas,
    };
    UasTimer::Use {
        interval: se.interval,
        refresher,
        require: uac_timer,
    }
}

/// A running session timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    pub interval: Duration,
    /// We send the refreshes (else we wait for them).
    pub we_refresh: bool,
    /// The last refresh (or the session's start).
    pub since: Instant,
}

impl Timer {
    /// When we refresh, or when the session ends for want of a refresh.
    pub fn due(&self) -> Instant {
        if self.we_refresh {
            self.since + self.interval / 2
        } else {
            let margin = Duration::from_secs(32).min(self.interval / 3);
            self.since + self.interval - margin
        }
    }

    /// `Session-Expires` for our requests and responses.
    pub fn header(&self, we_are_uas: bool) -> String {
        let refresher = match (self.we_refresh, we_are_uas) {
            (true, true) | (false, false) => Refresher::Uas,
            _ => Refresher::Uac,
        };
        format!(
            "{};refresher={}",
            self.interval.as_secs(),
            refresher.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse() {
        assert_eq!(
            parse_session_expires("1800;refresher=uac"),
            Some(SessionExpires {
                interval: 1800,
                refresher: Some(Refresher::Uac)
            })
        );
        assert_eq!(
            parse_session_expires(" 90 ; Refresher = UAS"),
            Some(SessionExpires {
                interval: 90,
                refresher: Some(Refresher::Uas)
            })
        );
        assert_eq!(parse_session_expires("4000").unwrap().refresher, None);
        for bad in ["", "abc", "-1", "99999999999", "90;refresher=both"] {
            assert_eq!(parse_session_expires(bad), None, "{bad}");
        }
        assert_eq!(parse_min_se("120;x=1"), Some(120));
        assert_eq!(parse_min_se("x"), None);
    }

    #[test]
    fn the_uas_answers_as_rfc_4028_section_9_says() {
        let se = |i, r| {
            Some(SessionExpires {
                interval: i,
                refresher: r,
            })
        };
        assert_eq!(uas_negotiate(None, None, true), UasTimer::None);
        assert_eq!(
            uas_negotiate(se(60, None), None, true),
            UasTimer::TooSmall { min_se: 90 }
        );
        assert_eq!(
            uas_negotiate(se(60, None), Some(120), true),
            UasTimer::TooSmall { min_se: 120 }
        );
        assert_eq!(
            uas_negotiate(se(90, Some(Refresher::Uac)), None, true),
            UasTimer::Use {
                interval: 90,
                refresher: Refresher::Uac,
                require: true
            }
        );
        // Left to us: we refresh.
        assert_eq!(
            uas_negotiate(se(1800, None), None, true),
            UasTimer::Use {
                interval: 1800,
                refresher: Refresher::Uas,
                require: true
            }
        );
        // A UAC without timer support (a proxy asked for it): we refresh,
        // and do not require it.
        assert_eq!(
            uas_negotiate(se(1800, Some(Refresher::Uac)), None, false),
            UasTimer::Use {
                interval: 1800,
                refresher: Refresher::Uas,
                require: false
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn refresh_at_half_expire_before_the_end() {
        let now = Instant::now();
        let mut t = Timer {
            interval: Duration::from_secs(90),
            we_refresh: true,
            since: now,
        };
        assert_eq!(t.due(), now + Duration::from_secs(45));
        assert_eq!(t.header(true), "90;refresher=uas");
        t.we_refresh = false;
        // min(32, 90/3 = 30) before the end.
        assert_eq!(t.due(), now + Duration::from_secs(60));
        assert_eq!(t.header(true), "90;refresher=uac");
        t.interval = Duration::from_secs(1800);
        assert_eq!(t.due(), now + Duration::from_secs(1800 - 32));
    }
}
