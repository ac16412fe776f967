//! How loaded the gateway is, for shedding new calls before admitted ones
//! starve: the media clocks report ticks that ran late, the RTP port pool
//! reports the ports it has leased; the SIP core reads [`Load::shed`] before
//! taking a new INVITE. Atomics only, shared by reference.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// A tick later than this marks the clock as late.
pub const LATE_TICK: Duration = Duration::from_millis(60);
/// The media clock counts as late for this long after its last late tick.
const LATE_HOLD: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Load {
    base: Instant,
    /// Milliseconds after `base` until which the media clock counts as late.
    late_until_ms: AtomicU64,
    /// Ticks that ran later than [`LATE_TICK`] (for `/metrics`).
    pub late_ticks: AtomicU64,
    ports_total: AtomicU32,
    ports_leased: AtomicU32,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            base: Instant::now(),
            late_until_ms: AtomicU64::new(0),
            late_ticks: AtomicU64::new(0),
            ports_total: AtomicU32::new(0),
            ports_leased: AtomicU32::new(0),
        }
    }
}

impl Load {
    fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_millis() as u64
    }

    /// A media tick scheduled for `scheduled` ran at `now`.
    pub fn tick(&self, scheduled: Instant, now: Instant) {
        if now.saturating_duration_since(scheduled) > LATE_TICK {
            self.late_ticks.fetch_add(1, Ordering::Relaxed);
            self.late_until_ms
                .fetch_max(self.ms(now + LATE_HOLD), Ordering::Relaxed);
        }
    }

    pub fn set_ports(&self, total: u32) {
        self.ports_total.store(total, Ordering::Relaxed);
    }

    pub fn port_leased(&self) {
        self.ports_leased.fetch_add(1, Ordering::Relaxed);
    }

    pub fn port_returned(&self) {
        let _ = self
            .ports_leased
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Why a new call should be refused now, if it should: the media clock
    /// runs late, or fewer than 5 % (at least 4) of the RTP ports are free.
    pub fn shed(&self, now: Instant) -> Option<&'static str> {
        if self.ms(now) < self.late_until_ms.load(Ordering::Relaxed) {
            return Some("media clock late");
        }
        let total = self.ports_total.load(Ordering::Relaxed);
        let leased = self.ports_leased.load(Ordering::Relaxed);
        if total > 0 && total.saturating_sub(leased) < (total / 20).max(4) {
            return Some("RTP ports low");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_late_tick_sheds_for_a_while() {
        let load = Load::default();
        let t = Instant::now();
        load.tick(t, t + Duration::from_millis(5));
        assert_eq!(load.shed(t), None);
        load.tick(t, t + Duration::from_millis(100));
        assert_eq!(
            load.shed(t + Duration::from_millis(100)),
            Some("media clock late")
        );
        assert_eq!(
            load.shed(t + Duration::from_millis(2099)),
            Some("media clock late")
        );
        assert_eq!(load.shed(t + Duration::from_millis(2101)), None);
        assert_eq!(load.late_ticks.load(Ordering::Relaxed), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn few_free_ports_shed() {
        let load = Load::default();
        let now = Instant::now();
        load.set_ports(100);
        for _ in 0..95 {
            load.port_leased();
        }
        assert_eq!(load.shed(now), None, "5 of 100 free");
        load.port_leased();
        assert_eq!(load.shed(now), Some("RTP ports low"));
        load.port_returned();
        assert_eq!(load.shed(now), None);
    }
}
