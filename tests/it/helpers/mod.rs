//! Everything a test needs besides the test itself, by concern; `use
//! crate::helpers::*;` brings all of it.
//!
//! - `gateway`: a gateway in-process or as a process, settings, config
//!   files, temporary directories, free ports, bounded waits
//! - `redis`: a redis-server of the test's own; tickets seeded straight
//!   into it (`seed_created`, `seed_open`, `seed_opened`,
//!   `seed_dispatched`), tickets, timelines and recordings read back from it
//! - `sip`: SIP messages by hand, SIPp as caller or phone
//! - `phones`: `TestCall` (a caller over raw UDP), `Side` (one side's
//!   media), the officer's paging phone, softphones registering
//! - `proxy`: Kamailio in front of the gateway
//! - `api`: the officers' API as a client
//! - `roster`: rosters made from the sample one
//! - `audio`: the greeting, WAVs, envelopes
//! - `source`: the crate's own source files (routes, modules)
//! - `xlsx`: workbooks read back by openpyxl

mod api;
mod audio;
mod gateway;
mod phones;
mod proxy;
mod redis;
mod roster;
mod sip;
mod source;
mod xlsx;

pub use self::api::*;
pub use self::audio::*;
pub use self::gateway::*;
pub use self::phones::*;
pub use self::proxy::*;
pub use self::redis::*;
pub use self::roster::*;
pub use self::sip::*;
pub use self::source::*;
pub use self::xlsx::*;

/// The heavy neighbours: one Chromium (or the schemathesis run) at a time.
/// Two at once on the machine's two cores starve a browser's audio (a web
/// caller's greeting heard at 0.70 correlation instead of 0.85) and its
/// keys; every test that drives Chromium, and schemathesis, holds it.
pub static CHROMIUM: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
