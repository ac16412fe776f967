//! Micro-benchmarks of the per-message and per-frame hot paths, through the
//! crate's own code: SIP parse, transaction and UAS core steps, RTP parse
//! and build, the caller track, G.711, in-band DTMF, the WAV recorder (with
//! its once-a-second header flush) and one Redis ticket transition.
//!
//! Run: `cargo bench --bench hot_paths [-- FILTER...]` (a row runs when its
//! name contains one of the filters; none: all). The Redis rows start their
//! own redis-server on a free 127.0.0.1 port and are skipped without one.
//! Each row runs for about `BUDGET`; the table goes to stdout.

// Micro-benchmarks time synchronous code with the wall clock.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod support;

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hotline::media::dtmf::{self, InBand};
use hotline::media::g711;
use hotline::media::prompt::FRAME;
use hotline::media::rtp::{FrameSink, RtpReceiver, RtpSender};
use hotline::media::track::CallerTrack;
use hotline::recording::{ChunkChain, Recorder};
use hotline::sip::core::{CallCommand, CallEvent, Core, CoreConfig, Link, Output, Peer};
use hotline::sip::message::{self, Limits};
use hotline::sip::sdp::{Codec, Direction, Media};
use hotline::sip::transaction::{ServerTx, TimerConfig};
use hotline::tickets::model::Change;
use hotline::tickets::model::{Register, State};
use hotline::tickets::store::NewTicket;
use hotline::tickets::Store;

/// Wall time given to each row (warm-up excluded).
const BUDGET: Duration = Duration::from_millis(700);

const SDP: &str = "v=0\r\n\
o=- 3920118734 3920118734 IN IP4 192.0.2.7\r\n\
s=SIP Call\r\n\
c=IN IP4 192.0.2.7\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

/// A request as a typical carrier or softphone sends it.
fn request(method: &str, n: u64, cseq: u32, to_tag: Option<&str>, body: &str) -> Vec<u8> {
    let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
    let ctype = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_string()
    };
    format!(
        "{method} sip:12368@192.0.2.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.7:5062;rport;branch=z9hG4bK-{method}-{n}\r\n\
Max-Forwards: 70\r\n\
From: \"Caller\" <sip:13800138000@192.0.2.7>;tag=f{n}\r\n\
To: <sip:12368@192.0.2.1>{to_tag}\r\n\
Call-ID: bench-{n}@192.0.2.7\r\n\
CSeq: {cseq} {method}\r\n\
Contact: <sip:13800138000@192.0.2.7:5062>\r\n\
User-Agent: bench-ua/1.0\r\n\
Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO\r\n\
Supported: replaces, timer\r\n\
{ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

struct Bench {
    filters: Vec<String>,
    /// Rows printed so far.
    rows: usize,
}

impl Bench {
    fn wanted(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| name.contains(f.as_str()))
    }

    fn any_wanted(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.wanted(n))
    }

    fn record(&mut self, name: &str, iterations: u64, timed: Duration) {
        if !self.wanted(name) || iterations == 0 {
            return;
        }
        let ns_per_op = timed.as_nanos() as f64 / iterations as f64;
        println!(
            "{name:<34} {iterations:>12} {ns_per_op:>12.1} {:>14.0}",
            1e9 / ns_per_op
        );
        self.rows += 1;
    }

    /// Runs `batch` (which times its own hot section and says how many
    /// operations it did) once to warm up, then until `BUDGET` has passed.
    fn run(&mut self, name: &str, mut batch: impl FnMut() -> (u64, Duration)) {
        if !self.wanted(name) {
            return;
        }
        batch();
        let (mut ops, mut timed) = (0u64, Duration::ZERO);
        let start = Instant::now();
        while start.elapsed() < BUDGET {
            let (n, t) = batch();
            ops += n;
            timed += t;
        }
        self.record(name, ops, timed);
    }

    /// `op` called `per_batch` times in a timed loop.
    fn simple(&mut self, name: &str, per_batch: u64, mut op: impl FnMut()) {
        self.run(name, || {
            let t = Instant::now();
            for _ in 0..per_batch {
                op();
            }
            (per_batch, t.elapsed())
        });
    }
}

fn sip(b: &mut Bench) {
    let limits = Limits::default();
    let invite = request("INVITE", 1, 1, None, SDP);
    let bye = request("BYE", 1, 2, Some("gw1"), "");
    b.simple("sip_parse_invite_sdp", 1000, || {
        black_box(message::parse(black_box(&invite), true, &limits).unwrap());
    });
    b.simple("sip_parse_bye", 1000, || {
        black_box(message::parse(black_box(&bye), true, &limits).unwrap());
    });

    // The INVITE server transaction over UDP: created on the INVITE, 100
    // Trying, 200 OK (RFC 6026 Accepted), its next deadline.
    let timers = TimerConfig::default();
    let trying = Bytes::from_static(b"SIP/2.0 100 Trying\r\n\r\n");
    let ok = Bytes::from_static(b"SIP/2.0 200 OK\r\n\r\n");
    b.simple("sip_tx_invite_new_100_200", 1000, || {
        let now = tokio::time::Instant::now();
        let mut tx = ServerTx::new(true, false, timers);
        tx.respond(100, trying.clone(), now);
        tx.respond(200, ok.clone(), now);
        black_box(tx.next_deadline());
        black_box(&tx);
    });
    let mut proceeding = ServerTx::new(true, false, timers);
    proceeding.respond(100, trying.clone(), tokio::time::Instant::now());
    b.simple("sip_tx_absorb_retransmit", 1000, || {
        black_box(proceeding.on_retransmit());
    });

    core(b);
}

/// Whole calls through the sans-IO UAS core, as the core task drives it:
/// INVITE in (100, 180, `Incoming` out), `Answer` (200 with SDP), ACK
/// (`Confirmed`), BYE (200, `Ended`). Each phase is timed over a batch of
/// calls held at once; the clock moves on 200 calls/s between batches and
/// expired timers run as the driver would run them.
fn core(b: &mut Bench) {
    const ROWS: [&str; 5] = [
        "sip_core_invite",
        "sip_core_answer_200",
        "sip_core_ack",
        "sip_core_bye",
        "sip_core_timers_per_call",
    ];
    if !b.any_wanted(&ROWS) {
        return;
    }
    const CALLS: usize = 500;
    let mut core = Core::new(
        CoreConfig::default(),
        Arc::new(hotline::sip::metrics::SipMetrics::default()),
    );
    let peer = Peer {
        link: Link::Udp(0),
        addr: "192.0.2.7:5062".parse().unwrap(),
        local: "192.0.2.1:5060".parse().unwrap(),
    };
    let rtp: SocketAddr = "192.0.2.1:20000".parse().unwrap();
    let limits = Limits::default();
    let mut now = tokio::time::Instant::now();
    let mut seq: u64 = 0;
    let mut sent: Vec<Bytes> = Vec::with_capacity(CALLS * 3);
    let mut events: Vec<CallEvent> = Vec::with_capacity(CALLS * 2);
    let mut totals = [(0u64, Duration::ZERO); 5];
    let mut batch = |core: &mut Core, totals: &mut [(u64, Duration); 5]| {
        let first = seq;
        seq += CALLS as u64;
        let invites: Vec<Vec<u8>> = (first..seq)
            .map(|n| request("INVITE", n, 1, None, SDP))
            .collect();
        sent.clear();
        events.clear();
        let t = Instant::now();
        for m in &invites {
            core.on_message(m, peer, now);
            drain(core, &mut sent, &mut events);
        }
        let invite_t = t.elapsed();
        let calls: Vec<u64> = events
            .iter()
            .filter_map(|e| match e {
                CallEvent::Incoming { call, .. } => Some(*call),
                _ => None,
            })
            .collect();
        assert_eq!(calls.len(), CALLS, "every INVITE offered a call");

        sent.clear();
        events.clear();
        let t = Instant::now();
        for &call in &calls {
            core.on_command(CallCommand::Answer { call, rtp }, now);
            drain(core, &mut sent, &mut events);
        }
        let answer_t = t.elapsed();
        assert_eq!(sent.len(), CALLS, "one 200 per call");
        // Our To tag, from each 200 (in call order).
        let tags: Vec<String> = sent
            .iter()
            .map(|ok| {
                message::parse(ok, true, &limits)
                    .unwrap()
                    .to_tag
                    .expect("200 carries our tag")
            })
            .collect();
        let acks: Vec<Vec<u8>> = (first..seq)
            .zip(&tags)
            .map(|(n, tag)| request("ACK", n, 1, Some(tag), ""))
            .collect();
        let byes: Vec<Vec<u8>> = (first..seq)
            .zip(&tags)
            .map(|(n, tag)| request("BYE", n, 2, Some(tag), ""))
            .collect();

        sent.clear();
        events.clear();
        let t = Instant::now();
        for m in &acks {
            core.on_message(m, peer, now);
            drain(core, &mut sent, &mut events);
        }
        let ack_t = t.elapsed();
        assert_eq!(events.len(), CALLS, "every ACK confirmed its call");

        sent.clear();
        events.clear();
        let t = Instant::now();
        for m in &byes {
            core.on_message(m, peer, now);
            drain(core, &mut sent, &mut events);
        }
        let bye_t = t.elapsed();
        assert_eq!(events.len(), CALLS, "every BYE ended its call");
        assert_eq!(core.active_calls(), 0);

        // 200 calls/s: the batch took CALLS / 200 seconds of the clock.
        now += Duration::from_millis(5) * CALLS as u32;
        sent.clear();
        events.clear();
        let t = Instant::now();
        if core.next_deadline().is_some_and(|d| d <= now) {
            core.on_timers(now);
            drain(core, &mut sent, &mut events);
        }
        let timers_t = t.elapsed();
        for (total, d) in totals
            .iter_mut()
            .zip([invite_t, answer_t, ack_t, bye_t, timers_t])
        {
            total.0 += CALLS as u64;
            total.1 += d;
        }
    };
    // Warm-up, and fill the timer heap to its steady state (64·T1 = 32 s
    // of transactions at 200 calls/s) before measuring.
    let mut warm = [(0u64, Duration::ZERO); 5];
    for _ in 0..14 {
        batch(&mut core, &mut warm);
    }
    let start = Instant::now();
    while start.elapsed() < BUDGET * 2 {
        batch(&mut core, &mut totals);
    }
    for (name, (n, d)) in ROWS.iter().zip(totals) {
        b.record(name, n, d);
    }
}

/// What the core task does after every input: take the core's outputs
/// (here kept instead of sent).
fn drain(core: &mut Core, sent: &mut Vec<Bytes>, events: &mut Vec<CallEvent>) {
    while let Some(o) = core.poll_output() {
        match o {
            Output::Send { data, .. } => sent.push(data),
            Output::Event(e) => events.push(e),
            Output::Close(_)
            | Output::RequestDone { .. }
            | Output::Register(_)
            | Output::Text(_)
            | Output::Registration(_) => {}
        }
    }
}

fn media() -> Media {
    Media {
        codec: Codec::Pcmu,
        payload_type: 0,
        telephone_event: Some(101),
        remote: Some("192.0.2.7:40000".parse().unwrap()),
        direction: Direction::SendRecv,
        srtp: None,
    }
}

/// One 20 ms frame of speech-like audio: a 140 Hz voice with harmonics and
/// some noise, loud enough to pass the DTMF detector's energy gate.
fn voice_frame(seed: u32) -> [i16; FRAME] {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    std::array::from_fn(|i| {
        let t = (seed as usize * FRAME + i) as f32 / 8000.0;
        let mut v = 0f32;
        for h in 1..=8 {
            v += (2.0 * std::f32::consts::PI * 140.0 * h as f32 * t).sin() / h as f32;
        }
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let noise = ((x >> 16) as i16 as f32) / 16.0;
        (v * 4000.0 + noise) as i16
    })
}

fn rtp(b: &mut Bench) {
    let m = media();
    let from = m.remote.unwrap();
    let voice = voice_frame(1);
    let ulaw: Vec<u8> = voice.iter().map(|&s| g711::linear_to_ulaw(s)).collect();
    let packet = RtpSender::new(0).packet(&ulaw, 0xFF);
    let mut receiver = RtpReceiver::new(&m);
    b.simple("rtp_parse_pcmu_172B", 1000, || {
        black_box(receiver.accept(from, black_box(&packet)).unwrap());
    });
    let mut sender = RtpSender::new(0);
    b.simple("rtp_build_pcmu", 1000, || {
        black_box(sender.packet(black_box(&ulaw), 0xFF));
    });
    // Placing a packet's samples on the caller's track and taking one frame
    // for the recording clock (one of each per 20 ms), 60 ms behind.
    let mut track = CallerTrack::new();
    let (mut seq, mut ts, mut clock) = (1000u16, 90_000u32, 0u64);
    let mut out = [0i16; FRAME];
    b.simple("rtp_track_put_take_frame", 1000, || {
        black_box(track.put(seq, ts, black_box(&voice), clock + 3 * FRAME as u64));
        track.take(&mut out);
        black_box(&out);
        seq = seq.wrapping_add(1);
        ts = ts.wrapping_add(FRAME as u32);
        clock += FRAME as u64;
    });
    // SRTP (AES-CM-128, HMAC-SHA1-80): what an encrypted call adds per
    // packet each way; the receiving side checks the tag and the replay
    // window, so each packet is a new one.
    let (k1, k2) = ([7u8; 30], [9u8; 30]);
    let mut ours = hotline::media::srtp::Srtp::new(&k1, &k2).unwrap();
    let mut theirs = hotline::media::srtp::Srtp::new(&k2, &k1).unwrap();
    let mut sender = RtpSender::new(0);
    b.simple("srtp_protect_pcmu", 1000, || {
        black_box(
            ours.protect(&sender.packet(black_box(&ulaw), 0xFF))
                .unwrap(),
        );
    });
    // Each batch a fresh receiving context over the same packets: every one
    // authenticated and decrypted (a replay would be refused before).
    let mut sender = RtpSender::new(0);
    let wires: Vec<_> = (0..20_000)
        .map(|_| theirs.protect(&sender.packet(&ulaw, 0xFF)).unwrap())
        .collect();
    b.run("srtp_unprotect_pcmu", || {
        let mut rx = hotline::media::srtp::Srtp::new(&k1, &k2).unwrap();
        let start = Instant::now();
        for w in &wires {
            black_box(rx.unprotect(black_box(w)).unwrap());
        }
        (wires.len() as u64, start.elapsed())
    });
}

fn g711_rows(b: &mut Bench) {
    let voice = voice_frame(2);
    let ulaw: [u8; FRAME] = std::array::from_fn(|i| g711::linear_to_ulaw(voice[i]));
    let alaw: [u8; FRAME] = std::array::from_fn(|i| g711::linear_to_alaw(voice[i]));
    let mut pcm = [0i16; FRAME];
    let mut bytes = [0u8; FRAME];
    b.simple("g711_pcmu_decode_frame", 1000, || {
        for (o, &c) in pcm.iter_mut().zip(black_box(&ulaw)) {
            *o = g711::ulaw_to_linear(c);
        }
        black_box(&pcm);
    });
    b.simple("g711_pcma_decode_frame", 1000, || {
        for (o, &c) in pcm.iter_mut().zip(black_box(&alaw)) {
            *o = g711::alaw_to_linear(c);
        }
        black_box(&pcm);
    });
    b.simple("g711_pcmu_encode_frame", 1000, || {
        for (o, &s) in bytes.iter_mut().zip(black_box(&voice)) {
            *o = g711::linear_to_ulaw(s);
        }
        black_box(&bytes);
    });
    b.simple("g711_pcma_encode_frame", 1000, || {
        for (o, &s) in bytes.iter_mut().zip(black_box(&voice)) {
            *o = g711::linear_to_alaw(s);
        }
        black_box(&bytes);
    });
}

fn dtmf_rows(b: &mut Bench) {
    let silence = [0i16; FRAME];
    let voices: Vec<[i16; FRAME]> = (0..50).map(voice_frame).collect();
    let tone: [i16; FRAME] = dtmf::tone('5', 20, 8000.0).try_into().unwrap();
    let mut d = InBand::new();
    b.simple("dtmf_inband_frame_silence", 1000, || {
        black_box(d.on_frame(black_box(&silence)));
    });
    let mut d = InBand::new();
    let mut i = 0;
    b.simple("dtmf_inband_frame_voice", 1000, || {
        black_box(d.on_frame(black_box(&voices[i % voices.len()])));
        i += 1;
    });
    let mut d = InBand::new();
    b.simple("dtmf_inband_frame_tone", 1000, || {
        black_box(d.on_frame(black_box(&tone)));
    });
}

fn recording_rows(b: &mut Bench, dir: &Path) {
    // A one-minute recording per file (3000 frames), then a new one; only
    // `frame` is timed (creating and finishing happen once per call).
    const FRAMES: u64 = 3000;
    let lefts: Vec<[i16; FRAME]> = (0..50).map(voice_frame).collect();
    let right = voice_frame(99);
    let mut n = 0u32;
    b.run("wav_write_frame_with_flush", || {
        n += 1;
        let path = dir.join(format!("2026-{n:06}_bench.wav"));
        let mut rec = Recorder::create(path, &format!("bench-{n}"), "2026-000000").unwrap();
        let t = Instant::now();
        for i in 0..FRAMES as usize {
            rec.frame(&lefts[i % lefts.len()], &right);
        }
        let timed = t.elapsed();
        let done = rec.finish();
        assert!(done.problem.is_none(), "{:?}", done.problem);
        let _ = std::fs::remove_file(&done.path);
        let _ = std::fs::remove_file(done.path.with_extension("json"));
        (FRAMES, timed)
    });
    // The part of it that is the evidence hash chain (640 bytes a frame).
    let bytes = vec![0x5au8; FRAME * 4];
    let mut chain = ChunkChain::new();
    let mut frames = 0u32;
    b.simple("wav_sha256_chain_frame", 1000, || {
        chain.update(black_box(&bytes));
        frames += 1;
        if frames == 50 * 60 {
            black_box(std::mem::take(&mut chain).finish());
            frames = 0;
        }
    });
}

fn redis_rows(b: &mut Bench) {
    const ROWS: [&str; 2] = ["redis_ticket_create", "redis_ticket_transition"];
    if !b.any_wanted(&ROWS) {
        return;
    }
    let redis = match support::Redis::start() {
        Ok(r) => r,
        Err(e) => {
            println!("redis_ticket_*: skipped ({e})");
            return;
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The connection manager spawns its task on the current runtime.
    let _enter = rt.enter();
    let store = Store::connect(&redis.url(), "hotline:").unwrap();
    let up = rt.block_on(async {
        for _ in 0..50 {
            if store.rotation_offset().await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    });
    if !up {
        println!("redis_ticket_*: skipped (redis-server did not answer)");
        return;
    }
    // Per batch: 100 tickets created as calls arrive (timed), then each
    // moved by the end of its call, intake -> abandoned, with the op id,
    // details and register edit the ticket writer sends (timed).
    const PER_BATCH: u64 = 100;
    let mut seq = 0u64;
    let mut totals = [(0u64, Duration::ZERO); 2];
    let mut batch = |totals: &mut [(u64, Duration); 2]| {
        rt.block_on(async {
            let mut numbers = Vec::with_capacity(PER_BATCH as usize);
            let t = Instant::now();
            for _ in 0..PER_BATCH {
                seq += 1;
                let ticket = NewTicket {
                    call_id: format!("bench-{seq}@192.0.2.7"),
                    call: String::new(),
                    received_at: jiff::Timestamp::now(),
                    register: Register::default(),
                };
                let (n, created) = store.create(&ticket, "gateway").await.unwrap();
                assert!(created);
                numbers.push((seq, n));
            }
            totals[0].0 += PER_BATCH;
            totals[0].1 += t.elapsed();
            let t = Instant::now();
            for (s, n) in &numbers {
                let mut change = Change::new("gateway", "call_ended");
                change.op_id = Some(format!("ended-{s}"));
                change.details = serde_json::json!({ "seconds": 42, "how": "caller_bye" });
                change.to = Some(State::Abandoned);
                store
                    .change(n, &change, |r| {
                        r.intake.call_seconds = Some(42.0);
                        r.intake.call_end = Some("caller_bye".into());
                    })
                    .await
                    .unwrap();
            }
            totals[1].0 += PER_BATCH;
            totals[1].1 += t.elapsed();
        })
    };
    batch(&mut [(0, Duration::ZERO); 2]);
    let start = Instant::now();
    while start.elapsed() < BUDGET * 2 {
        batch(&mut totals);
    }
    for (name, (n, d)) in ROWS.iter().zip(totals) {
        b.record(name, n, d);
    }
}

fn main() {
    // cargo passes `--bench`; anything else not starting with `-` filters.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let mut b = Bench { filters, rows: 0 };
    let dir: PathBuf =
        std::env::temp_dir().join(format!("hotline-hot-paths-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    println!(
        "{:<34} {:>12} {:>12} {:>14}",
        "name", "iterations", "ns/op", "ops/s"
    );
    sip(&mut b);
    rtp(&mut b);
    g711_rows(&mut b);
    dtmf_rows(&mut b);
    recording_rows(&mut b, &dir);
    redis_rows(&mut b);
    let _ = std::fs::remove_dir_all(&dir);
    if b.rows == 0 {
        eprintln!("no benchmark matches {:?}", b.filters);
    }
}
