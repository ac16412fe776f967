//! What a caller hears and what was recorded: the greeting, WAV files,
//! envelopes and their correlation.

use rtc_rtp::Packet;
use rtc_shared::marshal::Unmarshal;
use tokio::net::UdpSocket;

use super::*;

/// The greeting's first 20 ms (160 samples of the committed WAV), encoded.
pub fn greeting_first_frame(encode: fn(i16) -> u8) -> Vec<u8> {
    hound::WavReader::open(repo().join("config/prompts/greeting.wav"))
        .unwrap()
        .into_samples::<i16>()
        .take(160)
        .map(|s| encode(s.unwrap()))
        .collect()
}

/// Frames of the committed greeting (20 ms each, last one padded).
fn greeting_frames() -> usize {
    let r = hound::WavReader::open(repo().join("config/prompts/greeting.wav")).unwrap();
    (r.duration() as usize).div_ceil(160)
}

/// Reads RTP until `stop` resolves; returns the packets.
async fn collect_rtp(sock: UdpSocket, stop: tokio::sync::oneshot::Receiver<()>) -> Vec<Packet> {
    let mut stop = stop;
    let mut packets = Vec::new();
    let mut buf = vec![0u8; 2048];
    loop {
        tokio::select! {
            _ = &mut stop => return packets,
            r = sock.recv_from(&mut buf) => {
                let (n, _) = r.unwrap();
                packets.push(Packet::unmarshal(&mut &buf[..n]).expect("valid RTP"));
            }
        }
    }
}

/// A SIPp call to `target` (the gateway, or a proxy in front of it) over
/// `transport` hears the greeting, packet for packet.
pub async fn a_sipp_call_hears_the_greeting(target: std::net::SocketAddr, transport: &str) {
    let rtp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp_port = rtp.local_addr().unwrap().port().to_string();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let collector = tokio::spawn(collect_rtp(rtp, stop_rx));
    let frames = greeting_frames();
    // Listen 1.5 s longer than the greeting lasts.
    let hold = (frames * 20 + 1500).to_string();
    let (ok, log) = sipp(
        target,
        "uac_greeting.xml",
        transport,
        &["-set", "rtpport", &rtp_port, "-d", &hold],
    )
    .await;
    assert!(ok, "sipp failed: {log}");
    stop_tx.send(()).unwrap();
    let mut packets = collector.await.unwrap();
    // The greeting is the first talk spurt; the menu starts the next one.
    let menu = packets
        .iter()
        .skip(1)
        .position(|p| p.header.marker)
        .map(|i| i + 1)
        .expect("the menu follows the greeting");
    packets.truncate(menu);
    assert_eq!(
        packets.len(),
        frames,
        "one packet per 20 ms frame of the greeting"
    );
    let first = &packets[0].header;
    assert!(first.marker, "marker on the first packet");
    for (i, p) in packets.iter().enumerate() {
        let h = &p.header;
        assert_eq!(h.payload_type, 0, "PCMU as offered first");
        assert_eq!(h.ssrc, first.ssrc);
        assert_eq!(
            h.sequence_number,
            first.sequence_number.wrapping_add(i as u16)
        );
        assert_eq!(h.timestamp, first.timestamp.wrapping_add(160 * i as u32));
        assert_eq!(p.payload.len(), 160);
    }
    // The audio is the greeting: first frame equals the WAV's first 160 samples, µ-law.
    assert_the_greeting_opens(0, &packets[0].payload);
}

/// `payload`, sent with payload type `pt` (0 PCMU, 8 PCMA), is the
/// greeting's first frame.
pub fn assert_the_greeting_opens(pt: u8, payload: &[u8]) {
    let encode = match pt {
        0 => hotline::media::g711::linear_to_ulaw,
        8 => hotline::media::g711::linear_to_alaw,
        _ => panic!("payload type {pt} is no G.711"),
    };
    assert_eq!(payload, &greeting_first_frame(encode)[..], "the greeting");
}

/// The first RTP packet the gateway sends on `call` is the greeting's
/// first frame, in the codec of its answer.
pub async fn hears_the_greeting(call: &TestCall) {
    let answered: u8 = call
        .answer
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|m| m.split(' ').nth(2))
        .and_then(|pt| pt.trim().parse().ok())
        .expect("the answer's payload type");
    let mut buf = [0u8; 2048];
    let (n, _) = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        call.rtp.recv_from(&mut buf),
    )
    .await
    .expect("RTP within 5 s")
    .unwrap();
    let packet = Packet::unmarshal(&mut &buf[..n]).expect("valid RTP");
    assert_eq!(packet.header.payload_type, answered, "the answer's codec");
    assert_eq!(packet.payload.len(), 160, "an RTP packet of one frame");
    assert_the_greeting_opens(answered, &packet.payload);
}

/// The 10 ms RMS envelope of 8 kHz samples.
pub fn envelope(samples: &[i16]) -> Vec<f64> {
    samples
        .chunks_exact(80)
        .map(|c| (c.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / 80.0).sqrt())
        .collect()
}

/// The best Pearson correlation of `needle` against `hay` at any lag.
pub fn best_correlation(hay: &[f64], needle: &[f64]) -> f64 {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (nm, mut best) = (mean(needle), f64::MIN);
    let nd: Vec<f64> = needle.iter().map(|x| x - nm).collect();
    let nv = nd.iter().map(|x| x * x).sum::<f64>();
    for w in hay.windows(needle.len()) {
        let wm = mean(w);
        let (mut cov, mut wv) = (0.0, 0.0);
        for (a, b) in w.iter().zip(&nd) {
            cov += (a - wm) * b;
            wv += (a - wm).powi(2);
        }
        if wv > 0.0 && nv > 0.0 {
            best = best.max(cov / (wv * nv).sqrt());
        }
    }
    best
}

/// The Pearson correlation of two equally long envelopes (0 when either is
/// flat).
fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (am, bm) = (mean(a), mean(b));
    let (mut cov, mut av, mut bv) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        cov += (x - am) * (y - bm);
        av += (x - am).powi(2);
        bv += (y - bm).powi(2);
    }
    if av > 0.0 && bv > 0.0 {
        cov / (av * bv).sqrt()
    } else {
        0.0
    }
}

/// How well `needle` is found in `hay` when the audio came through a jitter
/// buffer that stretches and squeezes time (a browser's, under load): the
/// needle in `pieces` consecutive parts, the first found at its best lag
/// anywhere, each next one at its best lag within `drift` frames of where
/// the one before it ended; the mean of the parts' correlations. Unrelated
/// audio scores low: every part must be found in order, close to the last.
pub fn aligned_correlation(hay: &[f64], needle: &[f64], pieces: usize, drift: usize) -> f64 {
    let len = needle.len() / pieces;
    assert!(
        len > 0 && hay.len() >= needle.len(),
        "needle {} hay {}",
        needle.len(),
        hay.len()
    );
    let mut total = 0.0;
    let mut next: Option<usize> = None;
    for part in needle.chunks_exact(len).take(pieces) {
        let (lo, hi) = match next {
            None => (0, hay.len() - len),
            Some(at) => (at.saturating_sub(drift), (at + drift).min(hay.len() - len)),
        };
        let Some((c, at)) = (lo..=hi.max(lo))
            .filter(|&i| i + len <= hay.len())
            .map(|i| (pearson(&hay[i..i + len], part), i))
            .max_by(|a, b| a.0.total_cmp(&b.0))
        else {
            return 0.0;
        };
        total += c;
        next = Some(at + len);
    }
    total / pieces as f64
}

pub fn wav(path: &std::path::Path) -> Vec<i16> {
    hound::WavReader::open(path)
        .unwrap()
        .into_samples::<i16>()
        .map(Result::unwrap)
        .collect()
}
