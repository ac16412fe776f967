//! Integration tests: one binary. Each test starts its own gateway on port 0
//! (and, from the tickets issue on, its own redis-server on a free port).

mod api;
mod bridge;
mod browser;
mod cli;
mod cluster;
mod drain;
mod edge;
mod fuzz;
mod helpers;
mod hostile;
mod intake;
mod layers;
mod load;
mod midcall;
mod package;
mod paging;
mod proxy;
mod recording;
mod registers;
mod report;
mod secure;
mod sentinel;
mod sip;
mod softphone;
mod tickets;
mod torture;
mod webcall;
