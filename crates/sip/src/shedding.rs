//! How loaded the gateway is, for shedding new calls before admitted ones
//! starve: the media clocks report ticks that ran late, the RTP port pool
//! reports the ports it has leased, a draining gateway says so; the SIP
//! core reads [`Load::shed`] before taking a new INVITE. Atomics only,
//! shared by reference.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// A tick later than this is a late one.
pub const LATE_TICK: Duration = Duration::from_millis(60);
/// Late ticks are counted over windows this long...
const WINDOW: Duration = Duration::from_millis(500);
/// ... and the clock is late when at least this share of a window's ticks
/// was (and at least [`LATE_MIN`] of them): one stalled tick among
/// thousands (a page fault, a burst of the load generator) is no overload;
/// the recorder is 80 ms behind the clock and loses nothing to it.
const LATE_PERCENT: u64 = 1;
const LATE_MIN: u64 = 20;
/// The media clock counts as late for this long after a late window.
const LATE_HOLD: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Load {
    base: Instant,
    /// Milliseconds after `base` until which the media clock counts as late.
    late_until_ms: AtomicU64,
    /// Ticks, and those that ran later than [`LATE_TICK`] (for `/metrics`).
    pub ticks: AtomicU64,
    pub late_ticks: AtomicU64,
    /// The current window: its start (ms after `base`), its ticks and late
    /// ticks.
    window_ms: AtomicU64,
    window_ticks: AtomicU64,
    window_late: AtomicU64,
    ports_total: AtomicU32,
    ports_leased: AtomicU32,
    /// Draining for an upgrade: no new calls, those in progress finish.
    draining: AtomicBool,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            base: Instant::now(),
            late_until_ms: AtomicU64::new(0),
            ticks: AtomicU64::new(0),
            late_ticks: AtomicU64::new(0),
            window_ms: AtomicU64::new(0),
            window_ticks: AtomicU64::new(0),
            window_late: AtomicU64::new(0),
            ports_total: AtomicU32::new(0),
            ports_leased: AtomicU32::new(0),
            draining: AtomicBool::new(false),
        }
    }
}

impl Load {
    fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_millis() as u64
    }

    /// A media tick scheduled for `scheduled` ran at `now`. At the end of
    /// each window the clock is judged: late when enough of its ticks were.
    pub fn tick(&self, scheduled: Instant, now: Instant) {
        self.ticks.fetch_add(1, Ordering::Relaxed);
        self.window_ticks.fetch_add(1, Ordering::Relaxed);
        if now.saturating_duration_since(scheduled) > LATE_TICK {
            self.late_ticks.fetch_add(1, Ordering::Relaxed);
            self.window_late.fetch_add(1, Ordering::Relaxed);
        }
        let (now_ms, start) = (self.ms(now), self.window_ms.load(Ordering::Relaxed));
        let over = now_ms >= start + WINDOW.as_millis() as u64;
        // One tick closes the window (the others see the new start).
        if over
            && self
                .window_ms
                .compare_exchange(start, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let ticks = self.window_ticks.swap(0, Ordering::Relaxed);
            let late = self.window_late.swap(0, Ordering::Relaxed);
            if late >= LATE_MIN && late * 100 >= ticks * LATE_PERCENT {
                self.late_until_ms
                    .fetch_max(self.ms(now + LATE_HOLD), Ordering::Relaxed);
            }
        }
    }

    /// RTP ports leased now.
    pub fn leased(&self) -> u32 {
        self.ports_leased.load(Ordering::Relaxed)
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

    /// From now on no new call (the gateway drains for an upgrade).
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Why a new call should be refused now, if it should: the gateway
    /// drains, the media clock runs late, or fewer than 5 % (at least 4) of
    /// the RTP ports are free.
    pub fn shed(&self, now: Instant) -> Option<&'static str> {
        if self.draining() {
            return Some("draining");
        }
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

    /// The `k`-th window: `n` ticks in its first 400 ms, in the order they
    /// ran, `late` of them 100 ms after they were due.
    fn window(load: &Load, base: Instant, k: u32, n: u32, late: u32) -> Instant {
        let start = base + WINDOW * k;
        for i in 0..n {
            let ran = start + Duration::from_micros(u64::from(i) * 400_000 / u64::from(n));
            let due = if i < late {
                ran - Duration::from_millis(100)
            } else {
                ran
            };
            load.tick(due, ran);
        }
        start
    }

    #[tokio::test(start_paused = true)]
    async fn a_window_with_enough_late_ticks_sheds_for_a_while() {
        let load = Load::default();
        let base = Instant::now() + Duration::from_secs(1);
        // Each window is judged by the first tick of the next one.
        window(&load, base, 0, 1000, 19); // under the minimum of 20
        window(&load, base, 1, 10_000, 50); // half a percent
        assert_eq!(load.shed(base + WINDOW), None);
        let closed = window(&load, base, 2, 2000, 40); // 2 %
        assert_eq!(load.shed(closed), None, "not judged yet");
        let judged = window(&load, base, 3, 1, 0);
        assert_eq!(load.shed(judged), Some("media clock late"));
        assert_eq!(
            load.shed(judged + LATE_HOLD - Duration::from_millis(1)),
            Some("media clock late")
        );
        assert_eq!(
            load.shed(judged + LATE_HOLD + Duration::from_millis(1)),
            None
        );
        assert_eq!(load.late_ticks.load(Ordering::Relaxed), 19 + 50 + 40);
        assert_eq!(load.ticks.load(Ordering::Relaxed), 1000 + 10_000 + 2000 + 1);
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
