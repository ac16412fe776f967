//! The allocator: jemalloc, the binary's global allocator (`main.rs`),
//! built without thread caches (`.cargo/config.toml`, ADR 0004). Its
//! figures for `/metrics`, and the freed pages it holds given back to the
//! system while the gateway is idle.
//!
//! jemalloc's background thread purges freed ("dirty") pages as they age
//! (`dirty_decay_ms`, 10 s), but it sleeps through a backlog below its
//! threshold (1,024 pages): after a wave of calls about 3 MB of freed pages
//! stayed resident for minutes (docs/performance.md, issue 36). An arena
//! whose decay time is set to 0 purges its dirty pages at once (jemalloc's
//! `arena.<i>.dirty_decay_ms`); [`give_back`] does that and sets the time
//! back, and [`run`] calls it every [`IDLE_CHECK`] in which no call holds
//! an RTP port.

use std::sync::Arc;
use std::time::Duration;

use tikv_jemalloc_ctl::{arenas, epoch, stats, Access, AsName};
use tokio_util::sync::CancellationToken;

use crate::shedding::Load;

/// How often the idle gateway gives freed pages back.
pub const IDLE_CHECK: Duration = Duration::from_secs(2);

/// jemalloc's figures (bytes): `allocated` is what the program holds,
/// `active` the pages those sit in, `resident` what jemalloc has in RAM
/// (its metadata and the freed pages not yet given back included), `dirty`
/// those freed pages, `retained` address space kept unmapped. `resident`
/// above `active` is memory the allocator keeps, not the gateway. Empty
/// when the statistics cannot be read.
pub fn figures() -> String {
    if epoch::advance().is_err() {
        return String::new();
    }
    let mut out = String::from("# TYPE hotline_allocator_bytes gauge\n");
    for (kind, value) in [
        ("allocated", stats::allocated::read().ok()),
        ("active", stats::active::read().ok()),
        ("resident", stats::resident::read().ok()),
        ("dirty", dirty_now()),
        ("metadata", stats::metadata::read().ok()),
        ("mapped", stats::mapped::read().ok()),
        ("retained", stats::retained::read().ok()),
    ] {
        if let Some(v) = value {
            out.push_str(&format!("hotline_allocator_bytes{{kind=\"{kind}\"}} {v}\n"));
        }
    }
    out
}

/// The freed pages every arena holds, in bytes, as of the last epoch.
fn dirty_now() -> Option<usize> {
    // 4096: MALLCTL_ARENAS_ALL, the arenas' statistics merged.
    let pages: usize = "stats.arenas.4096.pdirty\0".name().read().ok()?;
    let page: usize = "arenas.page\0".name().read().ok()?;
    Some(pages * page)
}

/// Every arena's freed pages back to the system now; the decay time each
/// arena had is set again. Arenas not in use are skipped.
pub fn give_back() {
    let Ok(n) = arenas::narenas::read() else {
        return;
    };
    for i in 0..n {
        let key = format!("arena.{i}.dirty_decay_ms\0");
        let name = key.as_str().name();
        let decay: Result<isize, _> = name.read();
        if let Ok(ms) = decay {
            // A decay time of 0 purges at once; then the time it had.
            if name.write(0isize).is_ok() {
                let _ = name.write(ms);
            }
        }
    }
}

/// Gives freed pages back every [`IDLE_CHECK`] in which no call (the
/// callers', the paging calls, the browsers') holds an RTP port; ends at
/// `stop`.
pub async fn run(load: Arc<Load>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(IDLE_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if load.leased() == 0 {
            give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// jemalloc is built without thread caches (`.cargo/config.toml`): a
    /// build that lost the setting fails here.
    #[test]
    fn no_thread_caches() {
        let on: bool = "opt.tcache\0".name().read().expect("jemalloc's options");
        assert!(!on, "jemalloc built with thread caches");
    }

    /// The unit tests run on jemalloc too (lib.rs), so this measures the
    /// allocator the gateway runs on.
    #[test]
    fn freed_pages_go_back_at_once() {
        let freed = || {
            epoch::advance().unwrap();
            dirty_now().expect("jemalloc's statistics")
        };
        // 16 MB in blocks of 64 KB (above the thread caches' largest
        // class), written and freed: jemalloc keeps the pages (its decay
        // takes 10 s).
        let blocks: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8; 64 * 1024]).collect();
        assert_eq!(blocks.iter().map(Vec::len).sum::<usize>(), 16 << 20);
        drop(blocks);
        let before = freed();
        assert!(before >= 8 << 20, "the freed blocks' pages kept: {before}");
        give_back();
        let after = freed();
        assert!(after < 2 << 20, "given back: {before} -> {after}");
        assert!(figures().contains("hotline_allocator_bytes{kind=\"dirty\"} "));
    }
}
