//! The hotline gateway's SIP stack (a crate of its own: it depends on no
//! other crate of the gateway's). SIP signalling: message parsing and writing (`message`, the only place
//! rsipstack's types appear), SDP offer/answer (`sdp`), transactions
//! (`transaction`), per-source limits, bans and the scanner list
//! (`admission`), routing inside dialogs (`dialog`), session timers
//! (`session_timer`) and the UAS core with its
//! dialogs (`core`), all sans-IO;
//! `transport` is the thin tokio driver that owns the UDP and TCP sockets.
//!
//! It never touches Redis, HTTP or audio: it reports calls to the gateway's
//! `call` module as [`core::CallEvent`]s and takes [`core::CallCommand`]s
//! back. `shedding` is overload shedding (what the core reads before taking a
//! new call), `metrics` its counters.
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

pub mod admission;
pub mod core;
pub mod dialog;
pub mod digest;
pub mod message;
pub mod metrics;
pub mod sdp;
pub mod session_timer;
pub mod shedding;
pub mod transaction;
pub mod transport;
