//! One call's RTP: a sans-IO sender (sequence, timestamp, SSRC, marker) and
//! receiver (validation, symmetric-RTP latching), and [`Session`], the
//! async loop that paces prompts on a 20 ms clock and reads what arrives.

use std::net::SocketAddr;

use bytes::Bytes;
use rtc_rtp::{Header, Packet};
use rtc_shared::marshal::{Marshal, MarshalSize, Unmarshal};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::prompt::{Prompt, FRAME};
use crate::sip::sdp::{Codec, Media};

/// Frame duration.
pub const PTIME: Duration = Duration::from_millis(20);

/// Builds our outgoing packets (RFC 3550 §5.1): random SSRC, sequence and
/// timestamp start; marker on the first packet of a talk spurt.
#[derive(Debug)]
pub struct RtpSender {
    pub ssrc: u32,
    seq: u16,
    ts: u32,
    pt: u8,
    spurt: bool,
}

impl RtpSender {
    pub fn new(pt: u8) -> RtpSender {
        RtpSender {
            ssrc: rand::random(),
            seq: rand::random(),
            ts: rand::random(),
            pt,
            spurt: true,
        }
    }

    /// The next packet carrying `payload` (one 20 ms frame, padded with
    /// silence to a full frame).
    pub fn packet(&mut self, payload: &[u8], silence: u8) -> Bytes {
        let mut body = payload.to_vec();
        body.resize(FRAME, silence);
        let p = Packet {
            header: Header {
                version: 2,
                marker: self.spurt,
                payload_type: self.pt,
                sequence_number: self.seq,
                timestamp: self.ts,
                ssrc: self.ssrc,
                ..Default::default()
            },
            payload: Bytes::from(body),
        };
        self.spurt = false;
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(FRAME as u32);
        let mut buf = vec![0u8; p.marshal_size()];
        let n = p
            .marshal_to(&mut buf)
            .expect("buffer sized by marshal_size");
        buf.truncate(n);
        Bytes::from(buf)
    }

    /// Time passes without sending (between prompts): the clock moves on
    /// and the next packet starts a new talk spurt.
    pub fn pause(&mut self, frames: u32) {
        self.ts = self.ts.wrapping_add(frames * FRAME as u32);
        self.spurt = true;
    }
}

/// Why an incoming datagram was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    Malformed,
    WrongSource,
    WrongPayloadType,
}

/// Accepts RTP from the caller: the first valid packet latches its source
/// (symmetric RTP, RFC 4961), later ones must come from there.
#[derive(Debug)]
pub struct RtpReceiver {
    pub latched: Option<SocketAddr>,
    pt: u8,
    event_pt: Option<u8>,
}

impl RtpReceiver {
    pub fn new(media: &Media) -> RtpReceiver {
        RtpReceiver {
            latched: None,
            pt: media.payload_type,
            event_pt: media.telephone_event,
        }
    }

    pub fn accept(&mut self, from: SocketAddr, data: &[u8]) -> Result<Packet, Drop> {
        if let Some(l) = self.latched {
            if l != from {
                return Err(Drop::WrongSource);
            }
        }
        let mut buf = data;
        let p = Packet::unmarshal(&mut buf).map_err(|_| Drop::Malformed)?;
        if p.header.version != 2 {
            return Err(Drop::Malformed);
        }
        let pt = p.header.payload_type;
        if pt != self.pt && Some(pt) != self.event_pt {
            return Err(Drop::WrongPayloadType);
        }
        self.latched.get_or_insert(from);
        Ok(p)
    }
}

/// Requests from the call task.
#[derive(Debug)]
pub enum MediaCommand {
    Play(Prompt),
}

/// What the session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    PlayFinished { frames: usize },
}

/// Counters of one session.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MediaStats {
    pub sent: u64,
    pub received: u64,
    pub dropped: u64,
}

/// One call's RTP socket and state.
pub struct Session {
    socket: UdpSocket,
    codec: Codec,
    remote: Option<SocketAddr>,
    sender: RtpSender,
    receiver: RtpReceiver,
    pub stats: MediaStats,
}

impl Session {
    pub fn new(socket: UdpSocket, media: &Media) -> Session {
        Session {
            socket,
            codec: media.codec,
            remote: media.remote,
            sender: RtpSender::new(media.payload_type),
            receiver: RtpReceiver::new(media),
            stats: MediaStats::default(),
        }
    }

    fn silence(&self) -> u8 {
        match self.codec {
            Codec::Pcmu => super::g711::linear_to_ulaw(0),
            Codec::Pcma => super::g711::linear_to_alaw(0),
        }
    }

    /// Where we send: the latched source once RTP arrived, else the SDP address.
    fn target(&self) -> Option<SocketAddr> {
        self.receiver.latched.or(self.remote)
    }

    fn on_datagram(&mut self, from: SocketAddr, data: &[u8]) {
        match self.receiver.accept(from, data) {
            Ok(_) => self.stats.received += 1,
            Err(_) => self.stats.dropped += 1,
        }
    }

    /// Runs until `stop`: plays what it is told to, one prompt after the
    /// other, paced on one clock; receives all the time.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<MediaCommand>,
        events: mpsc::Sender<MediaEvent>,
        stop: CancellationToken,
    ) -> MediaStats {
        let mut buf = vec![0u8; 2048];
        let mut queue: std::collections::VecDeque<Prompt> = Default::default();
        // (prompt, next frame, clock)
        let mut playing: Option<(Prompt, usize, tokio::time::Interval)> = None;
        let mut idle_since = Instant::now();
        loop {
            if playing.is_none() {
                if let Some(p) = queue.pop_front() {
                    let gap = Instant::now().saturating_duration_since(idle_since);
                    self.sender
                        .pause((gap.as_millis() / PTIME.as_millis()) as u32);
                    let mut clock = tokio::time::interval(PTIME);
                    clock.set_missed_tick_behavior(MissedTickBehavior::Burst);
                    playing = Some((p, 0, clock));
                }
            }
            let tick = async {
                match playing.as_mut() {
                    Some((_, _, clock)) => clock.tick().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return self.stats,
                cmd = commands.recv() => match cmd {
                    Some(MediaCommand::Play(p)) => queue.push_back(p),
                    None => return self.stats,
                },
                r = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, from)) = r {
                        let data = buf[..n].to_vec();
                        self.on_datagram(from, &data);
                    }
                }
                _ = tick => {
                    let silence = self.silence();
                    let (prompt, frame, _) = playing.as_mut().expect("ticking only while playing");
                    let packet = self.sender.packet(prompt.frame(self.codec, *frame), silence);
                    *frame += 1;
                    let done = *frame >= prompt.frames();
                    let frames = prompt.frames();
                    if let Some(to) = self.target() {
                        if self.socket.send_to(&packet, to).await.is_ok() {
                            self.stats.sent += 1;
                        }
                    }
                    if done {
                        playing = None;
                        idle_since = Instant::now();
                        let _ = events.try_send(MediaEvent::PlayFinished { frames });
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media() -> Media {
        Media {
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event: Some(101),
            remote: None,
            direction: crate::sip::sdp::Direction::SendRecv,
        }
    }

    #[test]
    fn sender_numbers_packets() {
        let mut s = RtpSender::new(0);
        let a = Packet::unmarshal(&mut &s.packet(&[1; 160], 0xFF)[..]).unwrap();
        let b = Packet::unmarshal(&mut &s.packet(&[2; 80], 0xFF)[..]).unwrap();
        assert!(a.header.marker && !b.header.marker);
        assert_eq!(
            b.header.sequence_number,
            a.header.sequence_number.wrapping_add(1)
        );
        assert_eq!(b.header.timestamp, a.header.timestamp.wrapping_add(160));
        assert_eq!(a.header.ssrc, b.header.ssrc);
        assert_eq!(b.payload.len(), 160);
        assert_eq!(b.payload[100], 0xFF);
        s.pause(50);
        let c = Packet::unmarshal(&mut &s.packet(&[3; 160], 0xFF)[..]).unwrap();
        assert!(c.header.marker);
        assert_eq!(
            c.header.timestamp,
            b.header.timestamp.wrapping_add(160 * 51)
        );
    }

    #[test]
    fn receiver_latches_first_source() {
        let mut r = RtpReceiver::new(&media());
        let mut s = RtpSender::new(0);
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:4002".parse().unwrap();
        assert!(r.accept(a, &s.packet(&[0; 160], 0)).is_ok());
        assert_eq!(r.latched, Some(a));
        assert_eq!(
            r.accept(b, &s.packet(&[0; 160], 0)).unwrap_err(),
            Drop::WrongSource
        );
        assert_eq!(r.accept(a, b"\x80\x00").unwrap_err(), Drop::Malformed);
        let mut other = RtpSender::new(8);
        assert_eq!(
            r.accept(a, &other.packet(&[0; 160], 0)).unwrap_err(),
            Drop::WrongPayloadType
        );
        let mut te = RtpSender::new(101);
        assert!(r.accept(a, &te.packet(&[0; 4], 0)).is_ok());
    }

    #[test]
    fn garbage_before_latching_does_not_latch() {
        let mut r = RtpReceiver::new(&media());
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert!(r.accept(a, b"hello world, not rtp").is_err());
        assert_eq!(r.latched, None);
    }
}
