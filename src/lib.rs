//! # hotline
//!
//! Telephony gateway for the 24-hour duty line of the Shibei District court's
//! enforcement command center.
//!
//! # Layout
//!
//! - [`config`] holds typed settings (file < environment < flags).
//! - [`sip`] holds SIP messages, SDP, transactions, the UAS core (sans-IO) and
//!   its UDP/TCP driver. Never sees audio, Redis or HTTP.
//! - [`media`] holds RTP sessions, G.711, prompt playback. Never parses SIP.
//! - [`intake`] is the spoken menu and keypad intake (sans-IO).
//! - [`recording`] writes the WAV evidence, manifests, repair, verify.
//! - [`call`] runs one task per call; the one place that joins a call's parts.
//! - [`tickets`] holds the lead tickets: model, Redis store, journal.
//! - [`court_time`] the court's day and clock (Asia/Shanghai); [`dial_plan`]
//!   what the court dials through its trunk (both pure).
//! - [`roster`] answers who is on duty at an instant (pure), with the calendar.
//! - [`paging`] pages the people on duty and escalates.
//! - [`api`] is the HTTP side: health, metrics, the officers' API and page.
//! - [`registrar`] takes the officers' softphones' REGISTERs.
//! - [`metrics`] holds the counters; [`load`] the media clock's lateness and
//!   the RTP ports leased, which the SIP core sheds new calls on.
//! - [`privacy`] seals callers' identities and masks them for display.
//! - [`app`] binds every socket, wires the tasks, owns shutdown.
//!
//! Tasks and channels are drawn in `docs/architecture.md`.
#![forbid(unsafe_code)]
// `pub` only where the crate's users (the binary, the tests) reach it, so
// that an item nobody uses shows as dead code.
#![warn(unreachable_pub)]

// The SIP stack and its overload shedding live in `crates/sip`, the media
// in `crates/media`; named here as they always were.
pub use hotline_media as media;
// The domain (crates/domain: no I/O runtime, no Redis, no sockets).
pub use hotline_domain::{court_time, dial_plan, escalation, intake, roster};
pub use hotline_sip as sip;
pub use hotline_sip::load;

pub mod api;
pub mod app;
pub mod call;
pub mod config;
pub mod hex;
pub mod live;
pub mod metrics;
pub mod paging;
pub mod privacy;
pub mod recording;
pub mod registrar;
pub mod reload;
pub mod retention;
pub mod tickets;
pub mod tls;
pub mod webhook;
