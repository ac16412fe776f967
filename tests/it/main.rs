//! Integration tests: one binary. Each test starts its own gateway on port 0
//! (and, from the tickets issue on, its own redis-server on a free port).

mod cli;
mod helpers;
mod sip;
mod tickets;
mod torture;
