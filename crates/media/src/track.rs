//! The caller's audio on the call's clock, sans-IO: each accepted RTP packet
//! is placed by its timestamp relative to the first one; the recording clock
//! takes one 20 ms frame at a time, a few frames behind, so reordered packets
//! still land in place. Duplicates are dropped, gaps stay silent, and a
//! timestamp jump (a new talk spurt after a long hold, a restarted sender)
//! re-anchors instead of writing minutes of silence.

use std::collections::VecDeque;

use super::prompt::FRAME;

/// How far ahead of the clock a packet may land before it counts as a jump
/// (2 s at 8 kHz).
pub const MAX_AHEAD: u64 = 16_000;

/// What happened to a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// Written at its place.
    Ok,
    /// Same sequence number seen recently.
    Duplicate,
    /// Its place has already been written out.
    Late,
    /// Too far from the clock: the track re-anchored on it.
    Reanchored,
}

#[derive(Debug)]
pub struct CallerTrack {
    /// (RTP timestamp, clock position in samples) of the anchor packet.
    anchor: Option<(u32, u64)>,
    /// Samples from `start` on; zeros where nothing arrived.
    buf: VecDeque<i16>,
    /// Clock position of `buf[0]`: everything before it is written out.
    start: u64,
    /// Sequence numbers seen lately (a window of 64).
    recent: VecDeque<u16>,
}

impl Default for CallerTrack {
    fn default() -> Self {
        CallerTrack::new()
    }
}

impl CallerTrack {
    pub fn new() -> CallerTrack {
        CallerTrack {
            anchor: None,
            buf: VecDeque::with_capacity(FRAME * 8),
            start: 0,
            recent: VecDeque::with_capacity(64),
        }
    }

    /// A packet with `samples` arrived while the clock stood at `now`
    /// (samples since the call's clock started).
    pub fn put(&mut self, seq: u16, ts: u32, samples: &[i16], now: u64) -> Placed {
        if self.recent.contains(&seq) {
            return Placed::Duplicate;
        }
        if self.recent.len() == 64 {
            self.recent.pop_front();
        }
        self.recent.push_back(seq);
        let mut outcome = Placed::Ok;
        let (ts0, pos0) = *self.anchor.get_or_insert((ts, now.max(self.start)));
        let rel = ts.wrapping_sub(ts0) as i32 as i64;
        let mut pos = pos0 as i64 + rel;
        // Too far ahead of the clock, or far behind what was written: a jump.
        if pos > (now + MAX_AHEAD) as i64 || pos + (MAX_AHEAD as i64) < self.start as i64 {
            let at = now.max(self.start);
            self.anchor = Some((ts, at));
            pos = at as i64;
            outcome = Placed::Reanchored;
        }
        if pos < self.start as i64 {
            return Placed::Late;
        }
        let offset = (pos as u64 - self.start) as usize;
        let end = offset + samples.len();
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        for (slot, s) in self.buf.range_mut(offset..end).zip(samples) {
            *slot = *s;
        }
        outcome
    }

    /// Samples placed but not yet taken (at most [`MAX_AHEAD`] and a packet).
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next frame of the clock (silence where nothing arrived).
    pub fn take(&mut self, out: &mut [i16; FRAME]) {
        let n = FRAME.min(self.buf.len());
        for (o, s) in out.iter_mut().zip(self.buf.drain(..n)) {
            *o = s;
        }
        out[n..].fill(0);
        self.start += FRAME as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(v: i16) -> Vec<i16> {
        vec![v; FRAME]
    }

    fn take(t: &mut CallerTrack) -> i16 {
        let mut f = [0i16; FRAME];
        t.take(&mut f);
        assert!(f.iter().all(|s| *s == f[0]), "a frame holds one packet");
        f[0]
    }

    #[test]
    fn reordered_packets_land_in_place() {
        let mut t = CallerTrack::new();
        assert_eq!(t.put(10, 1000, &frame(1), 0), Placed::Ok);
        assert_eq!(t.put(12, 1320, &frame(3), 160), Placed::Ok);
        assert_eq!(t.put(11, 1160, &frame(2), 160), Placed::Ok);
        assert_eq!([take(&mut t), take(&mut t), take(&mut t)], [1, 2, 3]);
    }

    #[test]
    fn duplicates_dropped_and_gaps_silent() {
        let mut t = CallerTrack::new();
        t.put(1, 0, &frame(5), 0);
        assert_eq!(t.put(1, 0, &frame(9), 0), Placed::Duplicate);
        t.put(3, 320, &frame(7), 0); // 2 lost
        assert_eq!([take(&mut t), take(&mut t), take(&mut t)], [5, 0, 7]);
    }

    #[test]
    fn late_packets_do_not_rewrite_the_past() {
        let mut t = CallerTrack::new();
        t.put(1, 0, &frame(5), 0);
        take(&mut t);
        take(&mut t);
        assert_eq!(t.put(2, 160, &frame(6), 320), Placed::Late);
        assert_eq!(take(&mut t), 0);
    }

    #[test]
    fn timestamp_jump_reanchors_instead_of_filling_hours() {
        let mut t = CallerTrack::new();
        t.put(1, 0, &frame(5), 0);
        // An hour ahead in RTP time, arriving at the next frame.
        assert_eq!(t.put(2, 8000 * 3600, &frame(6), 160), Placed::Reanchored);
        assert_eq!([take(&mut t), take(&mut t)], [5, 6]);
        assert!(t.buf.is_empty());
        // And the next packet follows the new anchor.
        assert_eq!(t.put(3, 8000 * 3600 + 160, &frame(7), 320), Placed::Ok);
        assert_eq!(take(&mut t), 7);
    }

    #[test]
    fn sequence_and_timestamp_wrap() {
        let mut t = CallerTrack::new();
        t.put(u16::MAX, u32::MAX - 159, &frame(1), 0);
        t.put(0, 0, &frame(2), 0);
        t.put(1, 160, &frame(3), 0);
        assert_eq!([take(&mut t), take(&mut t), take(&mut t)], [1, 2, 3]);
    }
}
