//! The lead ticket as the court's logbook keeps it (rule 第十条(四)):
//! `model` (register sections, the state machine, a change), `actions` (the
//! officers' transitions as domain rules), `stats` (the leadership's
//! statistics, sans-IO over tickets and timelines), `report` (text views),
//! `csv` (the one way an export writes a cell), `labels` (the one table of
//! display names), `charts` (the statistics' SVG charts), `xlsx` (the
//! workbooks), `monthly` (the printable monthly report), `triage` (where a ticket
//! goes when it opens: handler, linked reports, joining a dispatch),
//! `clocks` (the deadlines after opening: pickup, answer, arrival,
//! verification, and the alarms when they pass), `whereabouts` (a place
//! named in a transcript). The store is the
//! gateway's.

pub mod actions;
pub mod charts;
pub mod clocks;
pub mod csv;
pub mod labels;
pub mod model;
pub mod monthly;
pub mod report;
pub mod stats;
pub mod triage;
pub mod whereabouts;
pub mod xlsx;

pub use model::{State, Ticket};
