//! Process-wide counters an operator wants to see (and tests read). Each is
//! bumped at the one place its event happens, beside the log line for it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Monotonic counters, shared by reference; the SIP stack's own
        /// in `sip` (`hotline_sip::metrics`).
        #[derive(Debug, Default)]
        pub struct Metrics {
            pub sip: std::sync::Arc<hotline_sip::metrics::SipMetrics>,
            $($(#[$doc])* pub $name: AtomicU64,)*
            /// Page attempts by `(channel, outcome)`.
            pages: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
            /// The channel watch's checks by `(channel, outcome)`.
            checks: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
        }

        impl Metrics {
            /// `(name, value)` for every counter, for `/metrics` and tests.
            pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
                let mut all = self.sip.snapshot();
                all.extend([$((stringify!($name), self.$name.load(Ordering::Relaxed)),)*]);
                all
            }
        }
    };
}

counters! {
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
    /// Alarms of the clocks after opening (pickup, arrival, answer,
    /// verification; warnings and reminders included) paged.
    clock_alarms,
    /// Deadlines passed unmet (`deadlines.missed` on a ticket).
    deadlines_missed,
    /// Consultations' digests sent to a handler (one per member reached).
    consultation_digests,
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

    /// Counts one check of the channel watch on `channel` (`trunk`,
    /// `webhook`): `ok` or `failed`.
    pub fn channel_check(&self, channel: &'static str, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        let mut checks = self.checks.lock().unwrap_or_else(|e| e.into_inner());
        *checks.entry((channel, outcome)).or_default() += 1;
    }

    /// Prometheus text for every counter, page attempts and the watch's
    /// checks labelled.
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
        let checks = self.checks.lock().unwrap_or_else(|e| e.into_inner());
        if !checks.is_empty() {
            out.push_str("# TYPE hotline_channel_checks_total counter\n");
        }
        for ((channel, outcome), n) in checks.iter() {
            out.push_str(&format!(
                "hotline_channel_checks_total{{channel=\"{channel}\",outcome=\"{outcome}\"}} {n}\n"
            ));
        }
        out
    }
}

/// A label's value as the exposition format writes it: backslash, double
/// quote and line feed escaped (a name from the configuration may hold any).
pub fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
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
        m.channel_check("trunk", false);
        assert!(m
            .render()
            .contains("hotline_channel_checks_total{channel=\"trunk\",outcome=\"failed\"} 1\n"));
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
