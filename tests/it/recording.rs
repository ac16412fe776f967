//! Recordings: what the caller sent lands in the left channel, at its place,
//! whatever the network did to the packets; the greeting in the right one;
//! crash recovery; verify.

use std::path::PathBuf;
use std::time::Duration;

use hotline::media::g711;
use hotline::tickets::Store;

use crate::helpers::*;

const FRAME: usize = 160;

/// A second of a 440 Hz tone starting at its peak (so the first sample is
/// not silence), as 50 frames of linear samples.
fn tone(frames: usize) -> Vec<i16> {
    (0..frames * FRAME)
        .map(|i| (9000.0 * (i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8000.0).cos()) as i16)
        .collect()
}

fn encode(pt: u8, samples: &[i16]) -> Vec<u8> {
    samples
        .iter()
        .map(|&s| {
            if pt == 0 {
                g711::linear_to_ulaw(s)
            } else {
                g711::linear_to_alaw(s)
            }
        })
        .collect()
}

fn decode(pt: u8, bytes: &[u8]) -> Vec<i16> {
    bytes
        .iter()
        .map(|&b| {
            if pt == 0 {
                g711::ulaw_to_linear(b)
            } else {
                g711::alaw_to_linear(b)
            }
        })
        .collect()
}

/// (left, right) channels of a recording.
fn channels(path: &PathBuf) -> (Vec<i16>, Vec<i16>) {
    let r = hound::WavReader::open(path).expect("the WAV opens");
    assert_eq!(
        (
            r.spec().channels,
            r.spec().sample_rate,
            r.spec().bits_per_sample
        ),
        (2, 8000, 16)
    );
    let s: Vec<i16> = r.into_samples::<i16>().map(Result::unwrap).collect();
    (
        s.iter().step_by(2).copied().collect(),
        s.iter().skip(1).step_by(2).copied().collect(),
    )
}

/// Where the caller's audio starts in the left channel.
fn start_of(left: &[i16]) -> usize {
    left.iter()
        .position(|s| *s != 0)
        .expect("caller audio in the left channel")
}

/// Places a call, sends `packets` (already mangled as the test wants),
/// hangs up, and returns the left channel from the caller's first sample on.
async fn record(
    gw: &Gateway,
    call_id: &str,
    pt: u8,
    send: impl AsyncFnOnce(&TestCall),
) -> (Vec<i16>, Vec<i16>) {
    let call = TestCall::place(gw.udp, call_id, pt).await;
    send(&call).await;
    // Everything sent before the BYE is recorded: the session reads what
    // waits on its socket and writes out its buffers when the call ends.
    call.hangup().await;
    let path = recording_of(&gw.store, call_id).await;
    assert!(hotline::recording::verify::verify(&path).is_ok());
    channels(&path)
}

fn in_order(pt: u8, signal: &[i16]) -> Vec<Vec<u8>> {
    encode(pt, signal)
        .chunks(FRAME)
        .enumerate()
        .map(|(i, f)| TestCall::packet(1000 + i as u16, 5000 + (i * FRAME) as u32, pt, f))
        .collect()
}

async fn known_signal_lands_in_the_left_channel(pt: u8) {
    let gw = Gateway::start(settings()).await;
    let signal = tone(50);
    let packets = in_order(pt, &signal);
    let (left, right) = record(&gw, &format!("rec-{pt}@t"), pt, async |c: &TestCall| {
        for p in &packets {
            c.send(p).await;
        }
        // Stay on the line until 40 frames of the greeting reached us.
        for _ in 0..40 {
            recv(&c.rtp, Duration::from_secs(5))
                .await
                .expect("greeting RTP");
        }
    })
    .await;
    let at = start_of(&left);
    let expect = decode(pt, &encode(pt, &signal));
    assert_eq!(
        &left[at..at + expect.len()],
        &expect[..],
        "sample for sample"
    );
    assert!(
        left[at + expect.len()..].iter().all(|s| *s == 0),
        "silence after"
    );
    // The right channel holds the greeting as sent (through the codec),
    // from the first frame of the clock after the reorder delay.
    let greeting: Vec<i16> = hound::WavReader::open(repo().join("config/prompts/greeting.wav"))
        .unwrap()
        .into_samples::<i16>()
        .take(FRAME * 40)
        .map(Result::unwrap)
        .collect();
    let sent = decode(pt, &encode(pt, &greeting));
    let r0 = hotline::media::rtp::REORDER_FRAMES * FRAME;
    assert!(
        right.len() >= r0 + sent.len(),
        "recording shorter than the greeting heard"
    );
    assert!(
        right[r0..r0 + sent.len()] == sent[..],
        "the greeting, sample for sample"
    );
    assert!(right[..r0].iter().all(|s| *s == 0));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcmu_caller_audio_recorded_exactly() {
    known_signal_lands_in_the_left_channel(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pcma_caller_audio_recorded_exactly() {
    known_signal_lands_in_the_left_channel(8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_damage_has_the_expected_effect() {
    let gw = Gateway::start(settings()).await;
    let signal = tone(50);
    let clean = decode(0, &encode(0, &signal));
    let packets = in_order(0, &signal);

    // Reordered (pairs swapped) and duplicated: identical to the original.
    let (left, _) = record(&gw, "reorder@t", 0, async |c: &TestCall| {
        for pair in packets.chunks(2) {
            for p in pair.iter().rev() {
                c.send(p).await;
                c.send(p).await;
            }
        }
    })
    .await;
    // The first packet sent is the second frame: the track anchors there.
    let at = start_of(&left);
    assert_eq!(
        &left[at..at + clean.len()],
        &clean[..],
        "reordered + duplicated"
    );

    // Lost: frame 10 missing, silence exactly there.
    let (left, _) = record(&gw, "loss@t", 0, async |c: &TestCall| {
        for (i, p) in packets.iter().enumerate() {
            if i != 10 {
                c.send(p).await;
            }
        }
    })
    .await;
    let at = start_of(&left);
    let mut expect = clean.clone();
    expect[10 * FRAME..11 * FRAME].fill(0);
    assert_eq!(
        &left[at..at + clean.len()],
        &expect[..],
        "lost frame is silence"
    );

    // Foreign source, malformed, wrong payload type, oversize: ignored.
    let (left, _) = record(&gw, "junk@t", 0, async |c: &TestCall| {
        let stranger = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let loud = TestCall::packet(1020, 5000 + 20 * 160, 0, &[0x80; 160]);
        for (i, p) in packets.iter().enumerate() {
            c.send(p).await;
            if i == 5 {
                stranger.send_to(&loud, c.gw_rtp).await.unwrap();
                c.send(b"\x00\x01garbage").await; // version 0
                c.send(&TestCall::packet(1021, 5000 + 21 * 160, 8, &[0x80; 160]))
                    .await; // PCMA, not negotiated
                let mut bad_csrc = TestCall::packet(1022, 5000 + 22 * 160, 0, &[0x80; 160]);
                bad_csrc[0] |= 0x0f; // 15 CSRCs announced, none there
                c.send(&bad_csrc[..20]).await;
                c.send(&vec![0x80; 1600]).await; // oversize
            }
        }
    })
    .await;
    let at = start_of(&left);
    assert_eq!(
        &left[at..at + clean.len()],
        &clean[..],
        "nothing foreign or broken recorded"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_caller_is_hung_up_after_media_timeout() {
    let mut s = settings();
    s.media.timeout_seconds = 1;
    let gw = Gateway::start(s).await;
    let call = TestCall::place(gw.udp, "quiet@t", 0).await;
    // The gateway's BYE (bounded wait).
    loop {
        let m = recv(&call.sip, Duration::from_secs(5))
            .await
            .expect("a BYE");
        if m.starts_with(b"BYE ") {
            break;
        }
    }
    let store = gw.store.clone();
    eventually("ticket says media_timeout", Duration::from_secs(10), || {
        let store = store.clone();
        async move {
            let Ok(Some(n)) = store.number_for_call("quiet@t").await else {
                return false;
            };
            store
                .get(&n)
                .await
                .is_ok_and(|t| t.register.intake.call_end.as_deref() == Some("media_timeout"))
        }
    })
    .await;
    recording_of(&gw.store, "quiet@t").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_call_leaves_a_repaired_recording() {
    let redis = Redis::start("everysec").await;
    let dir = tempfile_dir("kill");
    let config = write_config(&dir, &redis, &repo().join("config/roster.toml"), "");
    let mut gw = Process::start(&config);
    let call = TestCall::place(gw.udp, "killed@t", 0).await;
    // 2.5 s of tone, paced like a phone (the flush is once a second of audio).
    let signal = tone(125);
    let packets = in_order(0, &signal);
    let mut pace = tokio::time::interval(Duration::from_millis(20));
    for p in &packets {
        pace.tick().await;
        call.send(p).await;
    }
    gw.child.kill().unwrap();
    gw.child.wait().unwrap();
    drop(gw);

    // The next start repairs the file and notes it on the ticket.
    let _gw = Process::start(&config);
    let store = Store::connect(&redis.url(), "hotline:").unwrap();
    let path = recording_of(&store, "killed@t").await;
    let n = store.number_for_call("killed@t").await.unwrap().unwrap();
    let timeline = store.timeline(&n).await.unwrap();
    assert!(
        timeline
            .iter()
            .any(|e| e.action == "recording" && e.details.contains("\"recovered\"")),
        "{timeline:?}"
    );
    let m = hotline::recording::Manifest::read(&hotline::recording::manifest_path(&path)).unwrap();
    assert_eq!(m.status, hotline::recording::Status::Recovered);
    assert!(hotline::recording::verify::verify(&path).is_ok());
    let (left, _) = channels(&path);
    let at = start_of(&left);
    let have = left.len() - at;
    let expect = decode(0, &encode(0, &signal));
    // All but at most the last second (and the 60 ms reorder delay).
    assert!(
        have + 8000 + 480 >= expect.len(),
        "only {have} of {} samples",
        expect.len()
    );
    let n = have.min(expect.len());
    assert!(
        left[at..at + n] == expect[..n],
        "what was kept is the caller's audio"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_that_cannot_be_written_never_costs_the_call() {
    // The recordings "directory" is a file: nothing can be created under it
    // (root ignores permissions, so a read-only directory would not do).
    let blocker = tempfile_dir("blocker").join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let gw = Gateway::start_with_recordings(settings(), blocker).await;
    let call = TestCall::place(gw.udp, "nodisk@t", 0).await;
    // The call goes on: the greeting arrives.
    for _ in 0..10 {
        recv(&call.rtp, Duration::from_secs(5))
            .await
            .expect("greeting RTP");
    }
    call.hangup().await;
    let store = gw.store.clone();
    eventually(
        "the failure is noted on the ticket",
        Duration::from_secs(10),
        || {
            let store = store.clone();
            async move {
                let Ok(Some(n)) = store.number_for_call("nodisk@t").await else {
                    return false;
                };
                store.timeline(&n).await.is_ok_and(|tl| {
                    tl.iter()
                        .any(|e| e.action == "recording" && e.details.contains("\"failed\""))
                })
            }
        },
    )
    .await;
    assert_eq!(gw.metrics.get("calls_answered"), 1);
    gw.stop().await;
}

/// Retention: at `retain_days` past its day a recording of a final ticket
/// is deleted and the deletion is on the ticket's timeline; one on legal
/// hold, one of a ticket still open and one not yet due are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_only_due_recordings_of_final_unheld_tickets() {
    use hotline::recording::{path_for, Recorder};
    use hotline::tickets::model::Change;
    use hotline::tickets::model::{Register, State};
    use hotline::tickets::store::NewTicket;
    use hotline::tickets::{actions, Store};
    let redis = Redis::start("everysec").await;
    let store = Store::connect(&redis.url(), "hotline:").unwrap();
    let dir = tempfile_dir("retention");
    let old: jiff::Timestamp = "2026-01-05T04:00:00Z".parse().unwrap();
    let now: jiff::Timestamp = "2026-03-01T04:00:00Z".parse().unwrap();
    let recent: jiff::Timestamp = "2026-02-20T04:00:00Z".parse().unwrap();
    // One ticket per case, each with a recording made on `at`.
    let mut made = Vec::new();
    for (tag, at, to) in [
        ("due", old, Some(State::Abandoned)),
        ("held", old, Some(State::Abandoned)),
        ("open", old, None),
        ("recent", recent, Some(State::Abandoned)),
    ] {
        let t = NewTicket {
            call_id: format!("{tag}@ret"),
            call: String::new(),
            received_at: at,
            register: Register::default(),
        };
        let (number, _) = store.create(&t, "test").await.unwrap();
        if let Some(to) = to {
            let mut c = Change::new("gateway", "call_ended");
            c.to = Some(to);
            store.change(&number, &c, |_| {}).await.unwrap();
        }
        let path = path_for(&dir, at, &number, &t.call_id);
        let mut r = Recorder::create(path.clone(), &t.call_id, &number).unwrap();
        let frame = [7i16; 160];
        for _ in 0..50 {
            hotline::media::rtp::FrameSink::frame(&mut r, &frame, &frame);
        }
        let done = r.finish();
        made.push((tag, number, done.path));
    }
    let held = &made[1].1;
    let why = actions::Reason::parse("案件复议中，保全录音").unwrap();
    store
        .act(held, &actions::hold("m-chen", Some(&why), now))
        .await
        .unwrap();
    let deleted = hotline::retention::sweep(&store, &dir, 30, now).await;
    assert_eq!(deleted, [made[0].2.clone()], "only the due one");
    for (tag, number, path) in &made {
        let gone = *tag == "due";
        assert_eq!(!path.exists(), gone, "{tag}: {}", path.display());
        assert_eq!(
            !hotline::recording::manifest_path(path).exists(),
            gone,
            "{tag}'s manifest"
        );
        let tl = store.timeline(number).await.unwrap();
        let noted = tl.iter().any(|e| e.action == "recording_deleted");
        assert_eq!(noted, gone, "{tag}: {tl:?}");
    }
    // Released, the held one goes at the next sweep.
    store
        .act(held, &actions::hold("m-chen", None, now))
        .await
        .unwrap();
    assert_eq!(
        hotline::retention::sweep(&store, &dir, 30, now).await,
        [made[1].2.clone()]
    );
    // With retention off nothing is ever deleted.
    assert!(hotline::retention::sweep(&store, &dir, 0, now)
        .await
        .is_empty());
}
