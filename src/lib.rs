//! # hotline
//!
//! Telephony gateway for the 24-hour duty line of the Shibei District court's
//! enforcement command center.
//!
//! # Layout
//!
//! The layers are crates of a workspace: [`sip`] (`crates/sip`: messages,
//! SDP, transactions, the sans-IO core and its driver, overload shedding
//! ([`shedding`]); depends on no crate of ours), [`media`] (`crates/media`: RTP,
//! SRTP, WebRTC, G.711, DTMF, prompts), and the domain (`crates/domain`:
//! [`court_time`], [`dial_plan`], [`roster`], [`partners`], [`cases`],
//! [`escalation`], the call
//! scripts [`scripts`], the ticket model and actions in [`tickets`]); this
//! crate is the application:
//!
//! - [`config`] holds typed settings (file < environment < flags).
//! - [`recording`] writes the WAV evidence, manifests, repair, verify.
//! - [`call`] runs one task per call; the one place that joins a call's parts.
//! - [`tickets`] holds the Redis store, the journal and its writer.
//! - [`paging`] pages the people on duty and escalates.
//! - [`api`] is the HTTP side: health, metrics, the officers' API and page.
//! - [`registrar`] takes the officers' softphones' REGISTERs.
//! - [`watch`] watches the channels: the trunk, the webhook receivers,
//!   softphones, the duty.
//! - [`swaps`] swaps and overrides of the duty, the notices they owe, the
//!   evening reminders.
//! - [`metrics`] holds the counters; [`allocator`] jemalloc's figures, and
//!   freed pages given back while the gateway is idle.
//! - [`privacy`] seals callers' identities and masks them for display.
//! - [`live`] and [`reload`]: the configuration in force, and reloading it.
//! - [`app`] binds every socket, wires the tasks, supervises them, owns
//!   shutdown.
//!
//! Tasks and channels are drawn in `docs/architecture.md`.
#![forbid(unsafe_code)]
// `pub` only where the crate's users (the binary, the tests) reach it, so
// that an item nobody uses shows as dead code.
#![warn(unreachable_pub)]

// The unit tests run on the allocator the binary runs on (`allocator`'s
// tests measure it).
#[cfg(test)]
#[global_allocator]
static TEST_ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

// The SIP stack and its overload shedding live in `crates/sip`, the media
// in `crates/media`; named here as they always were.
pub use hotline_media as media;
// The domain (crates/domain: no I/O runtime, no Redis, no sockets).
pub use hotline_domain::{cases, court_time, dial_plan, escalation, partners, roster, scripts};
pub use hotline_sip as sip;
pub use hotline_sip::shedding;

pub mod allocator;
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
mod requests;
pub mod retention;
pub mod swaps;
pub mod tickets;
pub mod tls;
pub mod transcribe;
pub mod watch;
pub mod webhook;
