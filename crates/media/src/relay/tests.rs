//! Two media sessions on loopback sockets, bridged: each peer hears the
//! other, across A-law and µ-law, and the first session's recording holds
//! both sides.

use std::sync::{Arc, Mutex};

use tokio::time::Duration;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::g711;
use crate::ports::RtpSocket;
use crate::rtp::{FrameSink, MediaCommand, Session};
use hotline_sip::sdp::{Direction, Media};

/// One recorded frame: what the peer said, what it heard.
type Frame = ([i16; FRAME], [i16; FRAME]);

#[derive(Clone, Default)]
struct Frames(Arc<Mutex<Vec<Frame>>>);

impl FrameSink for Frames {
    fn frame(&mut self, left: &[i16; FRAME], right: &[i16; FRAME]) {
        self.0.lock().unwrap().push((*left, *right));
    }
}

fn leg(codec: Codec, pt: u8, peer: std::net::SocketAddr) -> (RtpSocket, Media) {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_nonblocking(true).unwrap();
    let media = Media {
        codec,
        payload_type: pt,
        telephone_event: None,
        remote: Some(peer),
        direction: Direction::SendRecv,
        srtp: None,
    };
    (RtpSocket::unpooled(s), media)
}

fn packet(pt: u8, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 1, 2, 3, pt];
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Counts RTP packets of payload type `pt` whose every byte is `want`
/// arriving on `sock`, until `enough` (or 10 s: a bound, not a timing).
async fn hears(sock: &tokio::net::UdpSocket, pt: u8, want: u8, enough: usize) -> usize {
    let mut buf = [0u8; 2048];
    let mut heard = 0;
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    while heard < enough {
        match tokio::time::timeout_at(end, sock.recv_from(&mut buf)).await {
            Ok(Ok((n, _))) => {
                if n == 172 && buf[1] & 0x7f == pt && buf[12..n].iter().all(|b| *b == want) {
                    heard += 1;
                }
            }
            _ => break,
        }
    }
    heard
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridged_sessions_carry_each_peer_to_the_other_across_laws() {
    // The caller's leg is A-law, the officer's µ-law.
    let caller = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let officer = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (a_sock, a_media) = leg(Codec::Pcma, 8, caller.local_addr().unwrap());
    let (b_sock, b_media) = leg(Codec::Pcmu, 0, officer.local_addr().unwrap());
    let (a_addr, b_addr) = (a_sock.local_addr().unwrap(), b_sock.local_addr().unwrap());
    let peer = std::net::IpAddr::from([127, 0, 0, 1]);
    let stop = CancellationToken::new();
    let recording = Frames::default();
    let run = |sock, media: Media, sink: Frames| {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let (ev_tx, _ev_rx) = tokio::sync::mpsc::channel(64);
        let session = Session::new(sock, &media, peer, Duration::from_secs(30));
        let stop = stop.clone();
        let task = tokio::spawn(async move {
            let mut sink = sink;
            session.run(rx, ev_tx, stop, &mut sink).await;
            drop(_ev_rx);
        });
        (tx, task)
    };
    let (a_cmd, a_task) = run(a_sock, a_media, recording.clone());
    let (b_cmd, b_task) = run(b_sock, b_media, Frames::default());
    let (a_side, b_side) = bridge();
    a_cmd.send(MediaCommand::Bridge(a_side)).await.unwrap();
    b_cmd.send(MediaCommand::Bridge(b_side)).await.unwrap();

    // Each peer speaks (the caller a steady +1000 in A-law, the officer
    // -2000 in µ-law) until each has heard 35 packets of the other.
    let (said_a, said_b) = (g711::linear_to_alaw(1000), g711::linear_to_ulaw(-2000));
    // The caller hears the officer's -2000 in A-law; the officer the
    // caller's +1000 (as A-law decoded it) in µ-law.
    let to_caller = g711::linear_to_alaw(g711::ulaw_to_linear(said_b));
    let to_officer = g711::linear_to_ulaw(g711::alaw_to_linear(said_a));
    let done = CancellationToken::new();
    let senders = async {
        for seq in 0..500u16 {
            if done.is_cancelled() {
                break;
            }
            caller
                .send_to(&packet(8, seq, &[said_a; 160]), a_addr)
                .await
                .unwrap();
            officer
                .send_to(&packet(0, seq, &[said_b; 160]), b_addr)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let listeners = async {
        let heard = tokio::join!(
            hears(&caller, 8, to_caller, 35),
            hears(&officer, 0, to_officer, 35)
        );
        done.cancel();
        heard
    };
    let ((), (caller_heard, officer_heard)) = tokio::join!(senders, listeners);
    stop.cancel();
    let _ = tokio::join!(a_task, b_task);
    assert!(
        caller_heard >= 35,
        "the caller heard the officer: {caller_heard} of 50"
    );
    assert!(
        officer_heard >= 35,
        "the officer heard the caller: {officer_heard} of 50"
    );
    // One recording, both sides: the caller left, the officer right.
    let frames = recording.0.lock().unwrap();
    let left = frames
        .iter()
        .filter(|(l, _)| l.iter().all(|s| *s == g711::alaw_to_linear(said_a)))
        .count();
    let right = frames
        .iter()
        .filter(|(_, r)| r.iter().all(|s| *s == g711::ulaw_to_linear(said_b)))
        .count();
    assert!(
        left >= 35 && right >= 35,
        "recorded: caller {left}, officer {right} frames"
    );
}
