//! DTMF in the three forms phones and trunks use: RFC 4733 telephone-events,
//! SIP INFO bodies (parsed here, delivered by the call layer), and in-band
//! tones found in the decoded audio with a Goertzel filter bank. Sans-IO.

use super::prompt::FRAME;

/// A key: `0`-`9`, `*`, `#`, `A`-`D`.
pub type Digit = char;

const EVENTS: [char; 16] = [
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#', 'A', 'B', 'C', 'D',
];

/// RFC 4733 §2.3: one telephone-event payload. All packets of one event
/// share the RTP timestamp; the end packet is sent three times.
pub struct EventDedup {
    last: Option<u32>,
}

impl Default for EventDedup {
    fn default() -> Self {
        EventDedup::new()
    }
}

impl EventDedup {
    pub fn new() -> EventDedup {
        EventDedup { last: None }
    }

    /// The digit when this packet starts a new event (barge-in needs it at
    /// once, not at the end), `None` for the rest of the event.
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<Digit> {
        let event = *payload.first()?;
        if payload.len() < 4 || self.last == Some(timestamp) {
            return None;
        }
        let digit = *EVENTS.get(event as usize)?;
        self.last = Some(timestamp);
        Some(digit)
    }
}

/// The digit in a SIP INFO body: `application/dtmf-relay` (`Signal=5`,
/// `Duration=160`) or `application/dtmf` (the key alone).
pub fn from_info(content_type: Option<&str>, body: &[u8]) -> Option<Digit> {
    let text = std::str::from_utf8(body).ok()?;
    let value = match content_type? {
        "application/dtmf-relay" => text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            k.trim().eq_ignore_ascii_case("signal").then(|| v.trim())
        })?,
        "application/dtmf" => text.trim(),
        _ => return None,
    };
    match value {
        "10" => Some('*'),
        "11" => Some('#'),
        v if v.len() == 1 => {
            let c = v.chars().next()?.to_ascii_uppercase();
            EVENTS.contains(&c).then_some(c)
        }
        _ => None,
    }
}

const ROWS: [f32; 4] = [697.0, 770.0, 852.0, 941.0];
const COLS: [f32; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
const KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

fn goertzel(samples: &[i16], freq: f32) -> f32 {
    let k = 2.0 * (2.0 * std::f32::consts::PI * freq / 8000.0).cos();
    let (mut s1, mut s2) = (0f32, 0f32);
    for &x in samples {
        let s = x as f32 + k * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - k * s1 * s2
}

/// In-band detection on 20 ms frames (ITU-T Q.24 style checks): the
/// strongest row and column tones must carry most of the frame's energy,
/// stand clear of the other tones of their group, be within the twist
/// limits, and last two frames (40 ms); a new key needs a pause between.
pub struct InBand {
    candidate: Option<(Digit, u8)>,
    /// The key being held (reported already).
    held: Option<Digit>,
}

impl Default for InBand {
    fn default() -> Self {
        InBand::new()
    }
}

/// Frames a tone must last to count.
const MIN_FRAMES: u8 = 2;

impl InBand {
    pub fn new() -> InBand {
        InBand {
            candidate: None,
            held: None,
        }
    }

    /// The key whose tone this frame is, if any (one frame's judgement).
    pub fn classify(frame: &[i16]) -> Option<Digit> {
        let energy: f32 = frame.iter().map(|&x| (x as f32) * (x as f32)).sum();
        // Too quiet to be a key (about -40 dBm0).
        if energy < (FRAME as f32) * 100.0 * 100.0 {
            return None;
        }
        let r: Vec<f32> = ROWS.iter().map(|&f| goertzel(frame, f)).collect();
        let c: Vec<f32> = COLS.iter().map(|&f| goertzel(frame, f)).collect();
        let best = |v: &[f32]| {
            let (i, m) = v.iter().enumerate().fold(
                (0, 0f32),
                |acc, (i, &x)| if x > acc.1 { (i, x) } else { acc },
            );
            let second = v
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .fold(0f32, |a, (_, &x)| a.max(x));
            (i, m, second)
        };
        let (ri, rm, r2) = best(&r);
        let (ci, cm, c2) = best(&c);
        // Each tone 8 dB over the others in its group.
        if rm < 6.3 * r2 || cm < 6.3 * c2 {
            return None;
        }
        // Twist: column at most 4 dB under, 8 dB over the row.
        if cm < rm * 0.4 || cm > rm * 6.3 {
            return None;
        }
        // The two tones hold most of the frame's energy (Parseval: a tone of
        // power P gives a Goertzel magnitude of about P * N / 2).
        let tones = (rm + cm) * 2.0 / FRAME as f32;
        if tones < 0.7 * energy {
            return None;
        }
        Some(KEYS[ri][ci])
    }

    /// Feeds one 20 ms frame; returns a key when one starts.
    pub fn on_frame(&mut self, frame: &[i16]) -> Option<Digit> {
        match InBand::classify(frame) {
            None => {
                self.candidate = None;
                self.held = None;
                None
            }
            Some(d) if self.held == Some(d) => None,
            Some(d) => {
                let n = match self.candidate {
                    Some((c, n)) if c == d => n + 1,
                    _ => 1,
                };
                self.candidate = Some((d, n));
                if n >= MIN_FRAMES {
                    self.held = Some(d);
                    self.candidate = None;
                    Some(d)
                } else {
                    None
                }
            }
        }
    }
}

/// `ms` of the DTMF tone for `key` at 8 kHz (for tests and tools).
pub fn tone(key: Digit, ms: usize, amplitude: f32) -> Vec<i16> {
    let (ri, ci) = KEYS
        .iter()
        .enumerate()
        .find_map(|(r, row)| row.iter().position(|&k| k == key).map(|c| (r, c)))
        .expect("a DTMF key");
    (0..ms * 8)
        .map(|i| {
            let t = i as f32 / 8000.0;
            let v = (2.0 * std::f32::consts::PI * ROWS[ri] * t).sin()
                + (2.0 * std::f32::consts::PI * COLS[ci] * t).sin();
            (v * amplitude / 2.0) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detect(samples: &[i16]) -> String {
        let mut d = InBand::new();
        samples
            .chunks(FRAME)
            .filter(|f| f.len() == FRAME)
            .filter_map(|f| d.on_frame(f))
            .collect()
    }

    #[test]
    fn every_key_is_found_once() {
        for key in "0123456789*#ABCD".chars() {
            let mut s = tone(key, 100, 12000.0);
            s.extend(vec![0; 800]);
            assert_eq!(detect(&s), key.to_string(), "{key}");
        }
    }

    #[test]
    fn a_sequence_with_pauses_and_repeats() {
        let mut s = Vec::new();
        for key in "1229#".chars() {
            s.extend(tone(key, 80, 8000.0));
            s.extend(vec![0; 480]);
        }
        assert_eq!(detect(&s), "1229#");
    }

    #[test]
    fn too_short_or_one_tone_or_noise_is_nothing() {
        assert_eq!(detect(&tone('5', 20, 8000.0)), "");
        let single: Vec<i16> = (0..1600)
            .map(|i| {
                (8000.0 * (2.0 * std::f32::consts::PI * 770.0 * i as f32 / 8000.0).sin()) as i16
            })
            .collect();
        assert_eq!(detect(&single), "");
        let mut x: u32 = 12345;
        let noise: Vec<i16> = (0..8000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                ((x >> 16) as i16) / 4
            })
            .collect();
        assert_eq!(detect(&noise), "");
    }

    #[test]
    fn speech_is_not_a_key() {
        // Committed espeak-ng speech and the greeting: no digits anywhere.
        for file in [
            "tests/fixtures/speech.wav",
            "config/prompts/greeting.wav",
            "config/prompts/menu.wav",
        ] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(file);
            let s: Vec<i16> = hound::WavReader::open(&path)
                .unwrap()
                .into_samples::<i16>()
                .map(Result::unwrap)
                .collect();
            assert_eq!(detect(&s), "", "{file}");
        }
    }

    #[test]
    fn rfc4733_events_counted_once() {
        let mut d = EventDedup::new();
        let pkt = |ev: u8, end: bool| vec![ev, if end { 0x80 } else { 0 } | 10, 0, 160];
        let mut got = String::new();
        for (ts, ev, end) in [
            (100, 5, false),
            (100, 5, false),
            (100, 5, true),
            (100, 5, true),
            (100, 5, true),
            (900, 11, false),
            (900, 11, true),
        ] {
            if let Some(k) = d.on_packet(ts, &pkt(ev, end)) {
                got.push(k);
            }
        }
        assert_eq!(got, "5#");
    }

    #[test]
    fn info_bodies() {
        assert_eq!(
            from_info(
                Some("application/dtmf-relay"),
                b"Signal=5\r\nDuration=160\r\n"
            ),
            Some('5')
        );
        assert_eq!(
            from_info(Some("application/dtmf-relay"), b"Signal= #\r\n"),
            Some('#')
        );
        assert_eq!(
            from_info(Some("application/dtmf-relay"), b"Signal=11\r\n"),
            Some('#')
        );
        assert_eq!(from_info(Some("application/dtmf"), b"7"), Some('7'));
        assert_eq!(from_info(Some("application/dtmf"), b"x"), None);
        assert_eq!(from_info(Some("text/plain"), b"5"), None);
    }
}
