//! One call's RTP: a sans-IO sender (sequence, timestamp, SSRC, marker) and
//! receiver (validation, symmetric-RTP latching), and [`Session`], the
//! async loop that paces prompts on a 20 ms clock and reads what arrives.

use std::net::SocketAddr;

use super::ports::RtpSocket;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::{Duration, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::dtmf::{Digit, EventDedup, InBand};
use super::prompt::{Prompt, FRAME};
use super::relay::Bridge;
use super::track::{CallerTrack, Placed};
use hotline_sip::sdp::{Codec, Direction, Media};

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

    /// A new payload type for the same stream (a codec change mid-call):
    /// sequence and timestamp go on.
    pub fn set_payload_type(&mut self, pt: u8) {
        self.pt = pt;
        self.spurt = true;
    }

    /// The next packet carrying `payload` (one 20 ms frame, padded with
    /// silence to a full frame).
    pub fn packet(&mut self, payload: &[u8], silence: u8) -> Bytes {
        let mut buf = [0u8; PACKET];
        let n = self.packet_into(payload, silence, &mut buf);
        Bytes::copy_from_slice(&buf[..n])
    }

    /// The same into a buffer of the session's (no allocation per packet);
    /// returns its length.
    pub fn packet_into(&mut self, payload: &[u8], silence: u8, buf: &mut [u8; PACKET]) -> usize {
        buf[0] = 0x80;
        buf[1] = (u8::from(self.spurt) << 7) | (self.pt & 0x7f);
        buf[2..4].copy_from_slice(&self.seq.to_be_bytes());
        buf[4..8].copy_from_slice(&self.ts.to_be_bytes());
        buf[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        let n = payload.len().min(FRAME);
        buf[12..12 + n].copy_from_slice(&payload[..n]);
        buf[12 + n..].fill(silence);
        self.spurt = false;
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(FRAME as u32);
        PACKET
    }

    /// Time passes without sending (between prompts): the clock moves on
    /// and the next packet starts a new talk spurt.
    pub fn pause(&mut self, frames: u32) {
        self.ts = self.ts.wrapping_add(frames.wrapping_mul(FRAME as u32));
        self.spurt = true;
    }
}

/// Bytes of one packet we send: the fixed header and a 20 ms frame.
pub const PACKET: usize = 12 + FRAME;

/// An accepted packet, borrowed from the datagram (RFC 3550 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpView<'a> {
    pub payload_type: u8,
    pub marker: bool,
    pub sequence_number: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: &'a [u8],
}

impl<'a> RtpView<'a> {
    /// Parses the fixed header, CSRCs, a header extension and padding;
    /// `None` if the datagram is not a well-formed RTP version 2 packet.
    pub fn parse(data: &'a [u8]) -> Option<RtpView<'a>> {
        if data.len() < 12 || data[0] >> 6 != 2 {
            return None;
        }
        let mut start = 12 + 4 * usize::from(data[0] & 0x0f);
        if data[0] & 0x10 != 0 {
            let words = data.get(start + 2..start + 4)?;
            start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
        }
        let mut end = data.len();
        if data[0] & 0x20 != 0 {
            let pad = usize::from(*data.last()?);
            if pad == 0 || pad > end.checked_sub(start)? {
                return None;
            }
            end -= pad;
        }
        Some(RtpView {
            payload_type: data[1] & 0x7f,
            marker: data[1] & 0x80 != 0,
            sequence_number: u16::from_be_bytes([data[2], data[3]]),
            timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
            payload: data.get(start..end)?,
        })
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
    /// Addresses RTP may latch to: the SDP's and the SIP peer's (behind
    /// NAT the two differ). Empty: any.
    allowed: Vec<std::net::IpAddr>,
}

impl RtpReceiver {
    pub fn new(media: &Media) -> RtpReceiver {
        RtpReceiver {
            latched: None,
            pt: media.payload_type,
            event_pt: media.telephone_event,
            allowed: media.remote.map(|r| r.ip()).into_iter().collect(),
        }
    }

    /// Also accept RTP from the signalling peer's address. With it the
    /// allow-list is never empty: an offer without a usable address
    /// (`c=0.0.0.0`, a host name) lets only the peer latch, not whoever
    /// sends first.
    pub fn allow(&mut self, ip: std::net::IpAddr) {
        if !self.allowed.contains(&ip) {
            self.allowed.push(ip);
        }
    }

    pub fn accept<'a>(&mut self, from: SocketAddr, data: &'a [u8]) -> Result<RtpView<'a>, Drop> {
        match self.latched {
            Some(l) if l != from => return Err(Drop::WrongSource),
            None if !self.allowed.is_empty() && !self.allowed.contains(&from.ip()) => {
                return Err(Drop::WrongSource)
            }
            _ => {}
        }
        let p = RtpView::parse(data).ok_or(Drop::Malformed)?;
        let pt = p.payload_type;
        if pt != self.pt && Some(pt) != self.event_pt {
            return Err(Drop::WrongPayloadType);
        }
        self.latched.get_or_insert(from);
        Ok(p)
    }
}

/// Where the session hands the call's audio, one 20 ms frame per channel at
/// a time, on one clock (the recording implements it).
pub trait FrameSink: Send {
    fn frame(&mut self, left: &[i16; FRAME], right: &[i16; FRAME]);
    /// The caller put the call on hold (`true`) or resumed it, at the
    /// current frame (the recording marks the span).
    fn hold(&mut self, _held: bool) {}
}

/// Requests from the call task.
#[derive(Debug)]
pub enum MediaCommand {
    /// Play these one after the other; `PlayFinished { id }` follows the last.
    Play { id: u32, prompts: Vec<Prompt> },
    /// Stop at once what plays and what waits to be played (barge-in).
    Stop,
    /// The session was renegotiated (re-INVITE, UPDATE): new address,
    /// codec or direction, in force from the next tick.
    Update(Media),
    /// Join another session: from the next tick what its peer says is sent
    /// here instead of prompts (and recorded as what our peer hears), and
    /// what our peer says goes there.
    Bridge(Bridge),
    /// Part again: prompts play on where they were.
    Unbridge,
}

/// What the session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaEvent {
    PlayFinished {
        id: u32,
    },
    /// A key: an RFC 4733 event, or a tone in the audio when no
    /// telephone-event was negotiated.
    Digit(super::dtmf::Digit),
    /// No RTP from the caller for the configured time.
    Timeout,
    /// The peer closed its media (a browser's DTLS `close_notify`).
    Gone,
}

/// Counters of one session.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MediaStats {
    pub sent: u64,
    /// Packets accepted from the caller (audio and events).
    pub received: u64,
    /// Dropped: malformed, oversize, foreign source, other payload type.
    pub dropped: u64,
    pub duplicates: u64,
    /// Arrived after their place was written.
    pub late: u64,
    /// Timestamp jumps that re-anchored the caller's track.
    pub jumps: u64,
    /// Packets whose handling panicked (a bug: the packet is dropped, the
    /// call goes on; the log has its bytes).
    pub panics: u64,
    /// SRTP packets that failed authentication or were replayed (dropped).
    pub srtp_failed: u64,
}

/// What protects the call's media.
enum Crypto {
    Plain,
    Srtp(Box<super::srtp::Srtp>),
    /// SRTP was agreed but its contexts could not be made: nothing is sent
    /// or taken (never in clear).
    Broken,
    /// A browser: ICE-lite, DTLS and SRTP on the one socket.
    WebRtc(Box<super::webrtc::WebRtc>),
}

impl Crypto {
    fn of(media: &Media) -> Crypto {
        match &media.srtp {
            None => Crypto::Plain,
            Some(keys) => match super::srtp::Srtp::sdes(keys) {
                Ok(s) => Crypto::Srtp(Box::new(s)),
                Err(e) => {
                    tracing::error!(error = %e, "cannot set up SRTP: the call's media stays off");
                    Crypto::Broken
                }
            },
        }
    }
}

/// The codec's 256 linear samples, by byte.
fn law_of(codec: Codec) -> [i16; 256] {
    std::array::from_fn(|b| match codec {
        Codec::Pcmu => super::g711::ulaw_to_linear(b as u8),
        Codec::Pcma => super::g711::alaw_to_linear(b as u8),
    })
}

/// Frames the recording runs behind the clock, so reordered packets land in
/// place (80 ms: the socket is read once a tick, which takes up to 20 ms of
/// it).
pub const REORDER_FRAMES: usize = 4;
/// Largest datagram taken as RTP.
pub const MAX_DATAGRAM: usize = 1500;
/// Datagrams read from the socket at most per tick (a flood waits in the
/// kernel's buffer, and is dropped there, rather than stalling the clock).
const READS_PER_TICK: usize = 64;

/// One call's RTP socket and state.
///
/// The socket is not registered with the runtime: each tick of the 20 ms
/// clock reads what arrived since the last one (non-blocking) before it
/// takes the frame, so a call costs one wake-up per tick, not one per packet.
pub struct Session {
    /// Its pool's `Load` hears of each late tick (the SIP core sheds on it).
    socket: RtpSocket,
    codec: Codec,
    audio_pt: u8,
    remote: Option<SocketAddr>,
    sender: RtpSender,
    receiver: RtpReceiver,
    track: CallerTrack,
    timeout: Duration,
    events: EventDedup,
    /// In-band detection, when no telephone-event was negotiated.
    inband: Option<InBand>,
    /// The codec's 256 samples, by byte.
    law: [i16; 256],
    /// The signalling peer's address (RTP may come from there too).
    peer: std::net::IpAddr,
    /// The peer's direction: whether we send, whether it does.
    direction: Direction,
    crypto: Crypto,
    /// The keys `crypto` was made with.
    srtp_keys: Option<hotline_sip::sdp::Sdes>,
    pub stats: MediaStats,
}

impl Session {
    /// `socket`: non-blocking (as `PortPool` binds it). `peer`: the address
    /// the call's signalling comes from (RTP may come from there or from the
    /// SDP's address, nowhere else).
    pub fn new(
        socket: RtpSocket,
        media: &Media,
        peer: std::net::IpAddr,
        timeout: Duration,
    ) -> Session {
        let mut receiver = RtpReceiver::new(media);
        receiver.allow(peer);
        Session {
            socket,
            codec: media.codec,
            audio_pt: media.payload_type,
            remote: media.remote,
            sender: RtpSender::new(media.payload_type),
            receiver,
            track: CallerTrack::new(),
            timeout,
            events: EventDedup::new(),
            inband: media.telephone_event.is_none().then(InBand::new),
            law: law_of(media.codec),
            peer,
            direction: media.direction,
            crypto: Crypto::of(media),
            srtp_keys: media.srtp.clone(),
            stats: MediaStats::default(),
        }
    }

    /// The media of a browser's call, over its keyed WebRTC path (STUN
    /// consent checks go on being answered, DTLS retransmissions too).
    pub fn webrtc(mut self, path: super::webrtc::WebRtc) -> Session {
        if let Some(t) = path.target() {
            self.receiver.allow(t.ip());
        }
        self.crypto = Crypto::WebRtc(Box::new(path));
        self.srtp_keys = None;
        self
    }

    /// Sends what the WebRTC path queued (STUN answers, DTLS flights).
    fn send_control(&self, out: &mut Vec<(Vec<u8>, SocketAddr)>) {
        for (d, to) in out.drain(..) {
            let _ = self.socket.send_to(&d, to);
        }
    }

    /// A renegotiated session (RFC 3264 §8): the new address, codec and
    /// direction from now on; the latch is re-armed for the new address and
    /// the caller's track and key detection start afresh.
    fn apply(&mut self, media: &Media) {
        let mut receiver = RtpReceiver::new(media);
        receiver.allow(self.peer);
        self.receiver = receiver;
        self.codec = media.codec;
        self.law = law_of(media.codec);
        if self.audio_pt != media.payload_type {
            self.sender.set_payload_type(media.payload_type);
        }
        self.audio_pt = media.payload_type;
        self.remote = media.remote;
        self.track = CallerTrack::new();
        self.events = EventDedup::new();
        self.inband = media.telephone_event.is_none().then(InBand::new);
        self.direction = media.direction;
        // New keys, new contexts (the same keys keep theirs: a refresh);
        // a browser's path is never renegotiated.
        if media.srtp != self.srtp_keys && !matches!(self.crypto, Crypto::WebRtc(_)) {
            self.crypto = Crypto::of(media);
            self.srtp_keys = media.srtp.clone();
        }
    }

    /// Sends one RTP packet of ours, protected when the call is SRTP.
    fn send(&mut self, packet: &[u8], to: SocketAddr) {
        let sent = match &mut self.crypto {
            Crypto::Plain => self.socket.send_to(packet, to).is_ok(),
            Crypto::Srtp(s) => match s.protect(packet) {
                Some(wire) => self.socket.send_to(&wire, to).is_ok(),
                None => false,
            },
            Crypto::WebRtc(w) => match w.protect(packet) {
                Some(wire) => self.socket.send_to(&wire, to).is_ok(),
                None => false,
            },
            Crypto::Broken => false,
        };
        if sent {
            self.stats.sent += 1;
        }
    }

    /// Where the session stands: the peer's direction.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    fn silence(&self) -> u8 {
        match self.codec {
            Codec::Pcmu => super::g711::linear_to_ulaw(0),
            Codec::Pcma => super::g711::linear_to_alaw(0),
        }
    }

    /// Where we send: the latched source once RTP arrived, else the SDP
    /// address; a browser's: where its checks come from.
    fn target(&self) -> Option<SocketAddr> {
        match &self.crypto {
            Crypto::WebRtc(w) => w.target(),
            _ => self.receiver.latched.or(self.remote),
        }
    }

    /// A datagram from `from` while the clock stands at `clock` samples.
    /// Returns whether it was taken, and the key it started, if any.
    fn on_datagram(&mut self, from: SocketAddr, data: &[u8], clock: u64) -> (bool, Option<Digit>) {
        if data.len() > MAX_DATAGRAM {
            self.stats.dropped += 1;
            return (false, None);
        }
        let plain;
        let data = match &mut self.crypto {
            Crypto::Plain => data,
            Crypto::Srtp(s) => match s.unprotect(data) {
                Ok(p) => {
                    plain = p;
                    plain.as_ref()
                }
                // RTCP (rtcp-mux) is not used; it is not the caller's audio.
                Err(super::srtp::Refused::Rtcp) => return (false, None),
                Err(super::srtp::Refused::Auth) => {
                    self.stats.srtp_failed += 1;
                    return (false, None);
                }
            },
            Crypto::Broken => {
                self.stats.dropped += 1;
                return (false, None);
            }
            Crypto::WebRtc(w) => {
                use super::webrtc::Inbound;
                let mut out = Vec::new();
                let got = w.on_datagram(from, data, tokio::time::Instant::now(), &mut out);
                let target = w.target();
                self.send_control(&mut out);
                match got {
                    Inbound::Rtp(p) => {
                        if let Some(t) = target {
                            self.receiver.allow(t.ip());
                        }
                        plain = p;
                        plain.as_ref()
                    }
                    // Consent checks and DTLS are not the caller's audio.
                    Inbound::Handled | Inbound::Rtcp => return (false, None),
                    Inbound::AuthFailed => {
                        self.stats.srtp_failed += 1;
                        return (false, None);
                    }
                    Inbound::Dropped(_) => {
                        self.stats.dropped += 1;
                        return (false, None);
                    }
                }
            }
        };
        let p = match self.receiver.accept(from, data) {
            Ok(p) => p,
            Err(_) => {
                self.stats.dropped += 1;
                return (false, None);
            }
        };
        self.stats.received += 1;
        if p.payload_type != self.audio_pt {
            // A telephone-event: a key, no audio.
            return (true, self.events.on_packet(p.timestamp, p.payload));
        }
        let mut samples = [0i16; MAX_DATAGRAM];
        let samples = &mut samples[..p.payload.len()];
        for (s, b) in samples.iter_mut().zip(p.payload) {
            *s = self.law[usize::from(*b)];
        }
        let at = clock + (REORDER_FRAMES * FRAME) as u64;
        match self.track.put(p.sequence_number, p.timestamp, samples, at) {
            Placed::Ok => {}
            Placed::Duplicate => self.stats.duplicates += 1,
            Placed::Late => self.stats.late += 1,
            Placed::Reanchored => {
                self.stats.jumps += 1;
                // The caller's media address (a browser's too): masked.
                tracing::info!(from = %hotline_sip::admission::mask_ip(from.ip()), "RTP timestamp jump: caller track re-anchored");
            }
        }
        (true, None)
    }

    /// Reads what waits on the socket (at most `limit` datagrams); returns
    /// whether anything was taken, and the keys that started.
    fn read_socket(
        &mut self,
        buf: &mut [u8; MAX_DATAGRAM + 1],
        clock: u64,
        limit: usize,
        keys: &mut Vec<Digit>,
    ) -> bool {
        let mut taken = false;
        for _ in 0..limit {
            match self.socket.recv_from(buf) {
                Ok((n, from)) => {
                    // A panic on one packet costs that packet only.
                    // `recv_from` wrote `n <= buf.len()` bytes.
                    let data = &buf[..n];
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.on_datagram(from, data, clock)
                    })) {
                        Ok((ok, key)) => {
                            taken |= ok;
                            keys.extend(key);
                        }
                        Err(_) => {
                            self.stats.panics += 1;
                            tracing::error!(from = %hotline_sip::admission::mask_ip(from.ip()), bytes = %data.escape_ascii(), "panic while handling an RTP packet: the packet is dropped, the call goes on");
                        }
                    }
                }
                // WouldBlock: nothing more. Anything else (an ICMP error
                // reported on the socket): try again next tick.
                Err(_) => break,
            }
        }
        taken
    }

    /// This side's next frame: while bridged the other side's peer, else
    /// the prompt playing (the next queued one started); sent to the peer
    /// unless on hold, and returned for the recording's right channel.
    fn our_frame(
        &mut self,
        player: &mut Player,
        bridge: Option<&mut Bridge>,
        silence: u8,
        out: &mut [u8; PACKET],
        outbox: &mut Outbox,
    ) -> [i16; FRAME] {
        if player.playing.is_none() {
            if let Some((p, id)) = player.queue.pop_front() {
                self.sender.pause(player.silent_frames);
                player.silent_frames = 0;
                player.playing = Some((p, 0, id));
            }
        }
        let mut right = [0i16; FRAME];
        // On hold (or a peer that takes no audio) nothing is
        // sent, and what plays waits where it was.
        let sending = self.direction.peer_receives();
        // Bridged: the other side's peer instead of prompts.
        if let Some(b) = bridge {
            match b.take().filter(|_| sending) {
                Some(frame) => {
                    let payload = super::relay::encode(self.codec, &frame);
                    right = frame;
                    self.sender.pause(player.silent_frames);
                    player.silent_frames = 0;
                    let n = self.sender.packet_into(&payload, silence, out);
                    if let Some(to) = self.target() {
                        self.send(out.get(..n).unwrap_or_default(), to);
                    }
                }
                None if sending => player.silent_frames += 1,
                None => {}
            }
        } else {
            match player.playing.as_mut().filter(|_| sending) {
                Some((prompt, frame, id)) => {
                    let payload = prompt.frame(self.codec, *frame);
                    for (r, b) in right.iter_mut().zip(payload) {
                        *r = self.law[usize::from(*b)];
                    }
                    let n = self.sender.packet_into(payload, silence, out);
                    *frame += 1;
                    let (done, id) = (*frame >= prompt.frames(), *id);
                    if let Some(to) = self.target() {
                        // Non-blocking: a full send buffer costs this
                        // frame, never the clock.
                        self.send(out.get(..n).unwrap_or_default(), to);
                    }
                    if done {
                        player.playing = None;
                        if let Some(id) = id {
                            outbox.push(MediaEvent::PlayFinished { id });
                        }
                    }
                }
                None if sending => player.silent_frames += 1,
                None => {}
            }
        }
        right
    }

    /// Runs until `stop`: a 20 ms clock from the start; on each tick what
    /// arrived is read, the next prompt frame (if one is playing) goes out,
    /// and one frame of each side goes to `sink`.
    pub async fn run(
        mut self,
        mut commands: mpsc::Receiver<MediaCommand>,
        events: mpsc::Sender<MediaEvent>,
        stop: CancellationToken,
        sink: &mut dyn FrameSink,
    ) -> MediaStats {
        let mut buf = [0u8; MAX_DATAGRAM + 1];
        let mut out = [0u8; PACKET];
        let mut keys: Vec<Digit> = Vec::new();
        let mut outbox = Outbox::new(events);
        let mut player = Player::default();
        let mut clock = tokio::time::interval(PTIME);
        clock.set_missed_tick_behavior(MissedTickBehavior::Burst);
        // Our side, delayed like the caller's so both stay aligned.
        let mut right_q: std::collections::VecDeque<[i16; FRAME]> =
            std::iter::repeat_n([0i16; FRAME], REORDER_FRAMES).collect();
        let mut left = [0i16; FRAME];
        let mut position: u64 = 0;
        let mut last_rx = Instant::now();
        let mut timed_out = false;
        let mut silence = self.silence();
        // Joined to another session, when bridged.
        let mut bridge: Option<Bridge> = None;
        if self.direction.is_hold() {
            sink.hold(true);
        }
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                cmd = commands.recv() => match cmd {
                    Some(MediaCommand::Play { id, prompts }) => player.enqueue(id, prompts, &mut outbox),
                    Some(MediaCommand::Stop) => player.stop(),
                    Some(MediaCommand::Bridge(b)) => bridge = Some(b),
                    Some(MediaCommand::Unbridge) => bridge = None,
                    Some(MediaCommand::Update(media)) => {
                        let was_held = self.direction.is_hold();
                        self.apply(&media);
                        silence = self.silence();
                        last_rx = Instant::now();
                        timed_out = false;
                        if was_held != self.direction.is_hold() {
                            sink.hold(!was_held);
                        }
                    }
                    None => break,
                },
                scheduled = clock.tick() => {
                    if let Some(load) = self.socket.load() {
                        load.tick(scheduled, Instant::now());
                    }
                    if let Crypto::WebRtc(w) = &mut self.crypto {
                        let mut out = Vec::new();
                        w.on_timer(Instant::now(), &mut out);
                        self.send_control(&mut out);
                    }
                    outbox.flush();
                    if self.read_socket(&mut buf, position, READS_PER_TICK, &mut keys) {
                        last_rx = Instant::now();
                    }
                    for k in keys.drain(..) {
                        outbox.push(MediaEvent::Digit(k));
                    }
                    let right = self.our_frame(&mut player, bridge.as_mut(), silence, &mut out, &mut outbox);
                    right_q.push_back(right);
                    let right = right_q.pop_front().expect("queue holds REORDER_FRAMES");
                    self.track.take(&mut left);
                    if let Some(b) = bridge.as_ref() {
                        b.give(left);
                    }
                    position += FRAME as u64;
                    sink.frame(&left, &right);
                    if let Some(k) = self.inband.as_mut().and_then(|d| d.on_frame(&left)) {
                        outbox.push(MediaEvent::Digit(k));
                    }
                    // A peer that sends nothing by agreement (hold,
                    // recvonly) is not timed out.
                    if !self.direction.peer_sends() {
                        last_rx = Instant::now();
                    }
                    if !timed_out && last_rx.elapsed() >= self.timeout {
                        timed_out = true;
                        outbox.push(MediaEvent::Timeout);
                    }
                    if !timed_out && matches!(&self.crypto, Crypto::WebRtc(w) if w.closed()) {
                        timed_out = true;
                        outbox.push(MediaEvent::Gone);
                    }
                }
            }
        }
        // What already arrived but was not read yet, then everything the
        // reorder delay and the track still hold: the recording ends with
        // the last audio the caller sent.
        self.read_socket(&mut buf, position, 16 * READS_PER_TICK, &mut keys);
        while !right_q.is_empty() || self.track.pending() > 0 {
            let right = right_q.pop_front().unwrap_or([0; FRAME]);
            self.track.take(&mut left);
            sink.frame(&left, &right);
        }
        self.stats
    }
}

/// What a session plays: prompts queued, each with the id to report when
/// it is the last, the one playing (its next frame), and the frames of
/// silence sent since (the next packet's timestamp skips them).
#[derive(Default)]
struct Player {
    queue: std::collections::VecDeque<(Prompt, Option<u32>)>,
    playing: Option<(Prompt, usize, Option<u32>)>,
    silent_frames: u32,
}

impl Player {
    fn enqueue(&mut self, id: u32, prompts: Vec<Prompt>, outbox: &mut Outbox) {
        let n = prompts.len();
        for (i, p) in prompts.into_iter().enumerate() {
            self.queue.push_back((p, (i + 1 == n).then_some(id)));
        }
        if n == 0 {
            outbox.push(MediaEvent::PlayFinished { id });
        }
    }

    fn stop(&mut self) {
        self.queue.clear();
        self.playing = None;
    }
}

/// Events for the call task, in order and never dropped while it listens:
/// the media clock must not wait on the channel, so what it cannot take now
/// waits here and goes at the next tick.
struct Outbox {
    tx: mpsc::Sender<MediaEvent>,
    waiting: std::collections::VecDeque<MediaEvent>,
}

impl Outbox {
    fn new(tx: mpsc::Sender<MediaEvent>) -> Outbox {
        Outbox {
            tx,
            waiting: Default::default(),
        }
    }

    fn push(&mut self, event: MediaEvent) {
        self.waiting.push_back(event);
        self.flush();
    }

    fn flush(&mut self) {
        while !self.waiting.is_empty() {
            match self.tx.try_reserve() {
                Ok(slot) => slot.send(self.waiting.pop_front().expect("not empty")),
                Err(mpsc::error::TrySendError::Full(())) => return,
                // The call task is gone: nobody to tell.
                Err(mpsc::error::TrySendError::Closed(())) => self.waiting.clear(),
            }
        }
    }
}

#[cfg(test)]
mod tests;
