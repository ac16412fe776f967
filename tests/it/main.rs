//! Integration tests: one binary. Each test starts its own gateway on port 0
//! (and, from the tickets issue on, its own redis-server on a free port).
//!
//! Adding a test: put it in the scenario file of its subject (`api/` has a
//! file per resource), `use crate::helpers::*;`, and build it from the
//! helpers (`helpers/mod.rs` lists them by concern): `Gateway::start(
//! settings())` or a `Process` with `write_config`, `TestCall::place` for a
//! caller, `Invite` for an INVITE sent by hand, `ticket_of`/`ticket_now`,
//! `phone`/`webhook` for pages, `Api` for the officers' API, rosters from
//! `test_roster_text`. Something a second file needs goes into `helpers/`,
//! never from one scenario file into another. Wait for outcomes with
//! `eventually` (bounded), never a bare sleep. Run only the tests at hand:
//! `cargo test --test it api::login::`.

mod ack;
mod api;
mod bridge;
mod browser;
mod cli;
mod cluster;
mod drain;
mod edge;
mod exports;
mod fuzz;
mod helpers;
mod hostile;
mod intake;
mod layers;
mod load;
mod midcall;
mod package;
mod paging;
mod partners;
mod proxy;
mod recording;
mod registers;
mod report;
mod secure;
mod sentinel;
mod sip;
mod softphone;
mod swaps;
mod tickets;
mod torture;
mod transcribe;
mod triage;
mod watch;
mod webcall;
