//! Paging (rules 第二十三条, 第二十五条): when a ticket becomes `open`, the
//! people on duty are paged through every contact method they have, and the
//! escalation climbs until someone goes. `policy` is the sans-IO engine.
//! Never answers calls and never edits tickets except through the store.

pub mod policy;
