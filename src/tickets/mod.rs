//! Lead tickets: the duty logbook (rule 第十条(四)) — model and state machine
//! (`model`), the officers' transitions as domain rules (`actions`), the Redis store with atomic transitions and timelines
//! (`store`, on `conn`: one Redis, or the master Sentinel names, followed
//! across a failover), and the path from a call to its ticket that survives Redis
//! outages (`journal`, `writer`). This module owns every Redis key, so
//! beside the tickets it keeps the officers' credentials (`sessions`), the
//! duty's state (`duty`: the rotation's offset, the escalation schedule,
//! pages for the mobile page), the registrar's records of the officers'
//! softphones (`softphones`) and the counters that limit logins,
//! REGISTERs and callbacks (`attempts`), the channel watch's records
//! (`watch`), the duty's swaps and overrides, their log and notices, the
//! reminders' claims and the calendar subscriptions (`swaps`), the
//! transcription queue (`transcripts`), and the
//! statistics for the leadership
//! (`stats`, sans-IO over tickets and timelines), and the one way their
//! exports write a CSV cell (`csv`). Knows nothing of SIP or HTTP.

// The ticket model, the officers' actions, the statistics, the text views
// and the CSV cell writer are the domain's (crates/domain).
pub use hotline_domain::tickets::{
    actions, charts, clocks, csv, labels, model, monthly, report, stats, triage, whereabouts, xlsx,
};

pub mod activities;
pub mod attempts;
pub mod conn;
pub mod duty;
pub mod journal;
pub mod sessions;
pub mod softphones;
pub mod store;
pub mod swaps;
pub mod transcripts;
pub mod watch;
pub mod writer;

pub use model::{State, Ticket};
pub use store::{Store, StoreError};
pub use writer::Tickets;
