//! The hotline gateway's domain: what the court's rules say, with no I/O
//! runtime, no Redis and no sockets (a crate of its own, so that the
//! compiler keeps it so). `court_time` the court's day and clock
//! (Asia/Shanghai); `dial_plan` what the court dials through its trunk;
//! `roster` who is on duty at an instant (roster, calendars, the resolver,
//! working hours); `partners` the police and assisting units whose calls
//! skip the menu; `cases` the case directory (case → handler); `escalation` the paging policy (what fires when, who a
//! target names, the proof that a first step reaches someone); `scripts`
//! the call scripts (the caller's intake, the officer's question,
//! ringback), sans-IO over keys, prompts finished and deadlines; `tickets`
//! the ticket model and state machine, the officers' actions as changes,
//! the statistics, their charts and exports, the monthly report, the text
//! views, the one CSV cell writer, the one table of display names.
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

pub mod cases;
pub mod court_time;
pub mod dial_plan;
pub mod escalation;
pub mod partners;
pub mod roster;
pub mod scripts;
pub mod tickets;
