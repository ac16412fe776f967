//! The SIP stack's counters (what `/metrics` shows of it): each bumped at
//! the one place its event happens, beside the log line for it.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// Monotonic counters, shared by reference.
        #[derive(Debug, Default)]
        pub struct SipMetrics {
            $($(#[$doc])* pub $name: AtomicU64,)*
        }

        impl SipMetrics {
            /// `(name, value)` for every counter.
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
    /// Offers refused because `[sip] srtp = "required"` and they had no
    /// usable key.
    srtp_refused,
}

impl SipMetrics {
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
