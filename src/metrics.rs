//! Process-wide counters an operator wants to see (and tests read). Each is
//! bumped at the one place its event happens, beside the log line for it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Monotonic counters, shared by reference.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $($(#[$doc])* pub $name: AtomicU64,)*
            /// Page attempts by `(channel, outcome)`.
            pages: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
        }

        impl Metrics {
            /// `(name, value)` for every counter, for `/metrics` and tests.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.load(Ordering::Relaxed)),)*]
            }
        }
    };
}

counters! {
    /// SIP messages that parsed.
    sip_messages,
    /// Malformed requests answered with an error status.
    sip_malformed_answered,
    /// Malformed messages that could not be answered and were dropped.
    sip_malformed_dropped,
    /// Responses matching no transaction of ours.
    sip_stray_responses,
    /// Request retransmissions absorbed by a transaction.
    sip_retransmissions_absorbed,
    /// INVITEs refused with 503 because `sip.max_calls` was reached.
    sip_overload_rejected,
    /// Inbound messages dropped because the SIP core's queue was full.
    sip_queue_full,
    /// Panics caught while handling one SIP message (a bug: the message is
    /// dropped, the core goes on; the log has its bytes).
    sip_panics,
    /// Requests answered 503 + Retry-After without keeping a transaction
    /// (a per-source limit, `max_calls`, shedding).
    sip_refused_stateless,
    /// Messages from banned sources, dropped unanswered.
    sip_banned_dropped,
    /// Requests from known scanners (User-Agent), dropped unanswered.
    sip_scanner_dropped,
    /// Answers sent without keeping a transaction because the table was at
    /// its bound.
    sip_stateless_answers,
    /// New calls refused because the media clock ran late or RTP ports ran low.
    sip_shed,
    /// Calls offered to the gateway (INVITEs that created a call).
    calls_offered,
    /// Calls answered with 200 OK.
    calls_answered,
    /// Calls whose 200 OK was acknowledged: each has a ticket.
    calls_confirmed,
    /// Calls ended, for any reason.
    calls_ended,
    /// Calls whose 200 OK was never acknowledged (no ticket was opened).
    calls_unconfirmed,
    /// RTP packets sent.
    rtp_sent,
    /// RTP packets received from the latched source.
    rtp_received,
    /// RTP packets dropped (wrong source, malformed).
    rtp_dropped,
    /// RTP packets whose handling panicked (a bug; dropped, the call goes on).
    rtp_panics,
    /// Calls carried as SRTP (keys by SDES).
    srtp_calls,
    /// SRTP packets that failed authentication or were replayed: dropped,
    /// never played or recorded.
    srtp_auth_failed,
    /// Offers refused because `[sip] srtp = "required"` and they had no
    /// usable key.
    srtp_refused,
    /// PINs evaluated at login (each an argon2 check; a login refused by a
    /// limit evaluates none).
    login_pin_checks,
    /// Browser calls refused by a per-source limit.
    webrtc_refused,
    /// Browser calls whose ICE or DTLS did not complete (no ticket).
    webrtc_failed,
    /// Escalation steps fired.
    escalation_steps,
    /// Tickets acknowledged by a key 1 on a paging call.
    pages_acknowledged,
    /// Five-minute rule breaches (rule 第二十三条).
    breaches,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self, name: &str) -> u64 {
        self.snapshot()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, v)| v)
    }

    /// Counts one page attempt on `channel` (`delivered` or `failed`).
    pub fn page(&self, channel: &'static str, delivered: bool) {
        let outcome = if delivered { "delivered" } else { "failed" };
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        *pages.entry((channel, outcome)).or_default() += 1;
    }

    /// Prometheus text for every counter, page attempts labelled.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, value) in self.snapshot() {
            out.push_str(&format!(
                "# TYPE hotline_{name}_total counter\nhotline_{name}_total {value}\n"
            ));
        }
        out.push_str("# TYPE hotline_pages_total counter\n");
        let pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        for ((channel, outcome), n) in pages.iter() {
            out.push_str(&format!(
                "hotline_pages_total{{channel=\"{channel}\",outcome=\"{outcome}\"}} {n}\n"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_attempts_are_labelled_by_channel_and_outcome() {
        let m = Metrics::default();
        m.page("call", false);
        m.page("call", false);
        m.page("sip_message", true);
        Metrics::inc(&m.breaches);
        let text = m.render();
        assert!(text.contains("hotline_pages_total{channel=\"call\",outcome=\"failed\"} 2\n"));
        assert!(
            text.contains("hotline_pages_total{channel=\"sip_message\",outcome=\"delivered\"} 1\n")
        );
        assert!(!text.contains("outcome=\"delivered\"} 2"));
        assert!(text.contains("hotline_breaches_total 1\n"));
    }
}
