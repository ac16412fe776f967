//! G.711 µ-law (PCMU) and A-law (PCMA) conversion (ITU-T G.711), one
//! sample at a time; decoding goes through 256-entry tables built once.

use std::sync::OnceLock;

const BIAS: i32 = 0x84;
const CLIP: i32 = 32635;

/// 16-bit linear to µ-law.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut s = sample as i32;
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    // s >= BIAS, so s >> 7 is 1..=255: its top bit is the segment.
    let exponent = (31 - ((s >> 7) as u32).leading_zeros()) as i32;
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// µ-law to 16-bit linear.
pub fn ulaw_to_linear(u: u8) -> i16 {
    static TABLE: OnceLock<[i16; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0i16; 256];
        for (i, v) in t.iter_mut().enumerate() {
            let u = !(i as u8);
            let sign = u & 0x80;
            let exponent = ((u >> 4) & 0x07) as i32;
            let mantissa = (u & 0x0f) as i32;
            let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
            *v = if sign != 0 { -magnitude } else { magnitude } as i16;
        }
        t
    })[u as usize]
}

/// 16-bit linear to A-law.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut s = (sample as i32) >> 3; // 13-bit
    let mask = if s >= 0 {
        0xD5
    } else {
        s = -s - 1;
        0x55
    };
    let seg_ends = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let seg = seg_ends.iter().position(|&e| s <= e).unwrap_or(8) as i32;
    let a = if seg >= 8 {
        0x7F
    } else {
        let shift = if seg < 2 { 1 } else { seg };
        (seg << 4) | ((s >> shift) & 0x0F)
    };
    (a ^ mask) as u8
}

/// A-law to 16-bit linear.
pub fn alaw_to_linear(a: u8) -> i16 {
    static TABLE: OnceLock<[i16; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = [0i16; 256];
        for (i, v) in t.iter_mut().enumerate() {
            let a = (i as u8) ^ 0x55;
            let seg = ((a & 0x70) >> 4) as i32;
            let mut m = ((a & 0x0f) as i32) << 4;
            m = match seg {
                0 => m + 8,
                1 => m + 0x108,
                _ => (m + 0x108) << (seg - 1),
            };
            *v = if a & 0x80 != 0 { m } else { -m } as i16;
        }
        t
    })[a as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_code_points() {
        // Silence codes from G.711.
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
    }

    #[test]
    fn round_trip_error_is_within_one_step() {
        for s in (-32768i32..=32767).step_by(7) {
            let s = s as i16;
            for (enc, dec) in [
                (
                    linear_to_ulaw as fn(i16) -> u8,
                    ulaw_to_linear as fn(u8) -> i16,
                ),
                (linear_to_alaw, alaw_to_linear),
            ] {
                let back = dec(enc(s)) as i32;
                // Quantisation step at the top segment is 1024 (µ-law) / 1024 (A-law).
                let err = (back - s as i32).abs();
                let allowed = (s as i32).abs() / 16 + 16;
                assert!(err <= allowed, "{s} -> {back}");
            }
        }
    }

    #[test]
    fn every_code_decodes_and_re_encodes_to_itself() {
        for c in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(c)), c, "alaw {c:#x}");
            let u = linear_to_ulaw(ulaw_to_linear(c));
            // 0x7F and 0xFF are both zero in µ-law.
            assert!(u == c || (c == 0x7F && u == 0xFF), "ulaw {c:#x} -> {u:#x}");
        }
    }
}
