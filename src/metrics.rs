//! Process-wide counters an operator wants to see (and tests read). Each is
//! bumped at the one place its event happens, beside the log line for it.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Monotonic counters, shared by reference.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $($(#[$doc])* pub $name: AtomicU64,)*
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
    /// Calls offered to the gateway (INVITEs that created a call).
    calls_offered,
    /// Calls answered with 200 OK.
    calls_answered,
    /// Calls ended, for any reason.
    calls_ended,
    /// RTP packets sent.
    rtp_sent,
    /// RTP packets received from the latched source.
    rtp_received,
    /// RTP packets dropped (wrong source, malformed).
    rtp_dropped,
    /// Escalation steps fired.
    escalation_steps,
    /// Page attempts delivered, by any channel.
    pages_delivered,
    /// Page attempts that failed or were not answered.
    pages_failed,
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
}
