//! The RTP sender, receiver and the session's event outbox.
use super::*;
use rtc_rtp::Packet;
use rtc_shared::marshal::Unmarshal;

fn media() -> Media {
    Media {
        codec: Codec::Pcmu,
        payload_type: 0,
        telephone_event: Some(101),
        remote: None,
        direction: hotline_sip::sdp::Direction::SendRecv,
        srtp: None,
    }
}

#[test]
fn events_beyond_the_channel_wait_for_the_next_tick_in_order() {
    let (tx, mut rx) = mpsc::channel(1);
    let mut outbox = Outbox::new(tx);
    for k in ['1', '2', '3'] {
        outbox.push(MediaEvent::Digit(k));
    }
    let mut got = Vec::new();
    while let Ok(MediaEvent::Digit(k)) = rx.try_recv() {
        got.push(k);
        outbox.flush(); // the next tick
    }
    assert_eq!(got, ['1', '2', '3']);
    // Once the call task is gone, nothing piles up.
    drop(rx);
    outbox.push(MediaEvent::Timeout);
    assert!(outbox.waiting.is_empty());
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
fn only_the_sdp_or_signalling_address_may_latch() {
    let mut m = media();
    m.remote = Some("192.0.2.10:4000".parse().unwrap());
    let mut r = RtpReceiver::new(&m);
    r.allow("198.51.100.7".parse().unwrap());
    let mut s = RtpSender::new(0);
    let stranger: SocketAddr = "203.0.113.66:4000".parse().unwrap();
    assert_eq!(
        r.accept(stranger, &s.packet(&[0; 160], 0)).unwrap_err(),
        Drop::WrongSource
    );
    assert_eq!(r.latched, None, "a stranger cannot take the call's media");
    // Behind NAT: the SIP peer's public address, another port.
    let nat: SocketAddr = "198.51.100.7:61000".parse().unwrap();
    assert!(r.accept(nat, &s.packet(&[0; 160], 0)).is_ok());
    assert_eq!(r.latched, Some(nat));
}

#[test]
fn an_offer_without_an_address_lets_only_the_peer_latch() {
    // c=0.0.0.0 or a host name: no address from SDP.
    let m = media();
    assert_eq!(m.remote, None);
    let mut r = RtpReceiver::new(&m);
    r.allow("198.51.100.7".parse().unwrap());
    let mut s = RtpSender::new(0);
    let injector: SocketAddr = "203.0.113.66:4000".parse().unwrap();
    assert_eq!(
        r.accept(injector, &s.packet(&[0; 160], 0)).unwrap_err(),
        Drop::WrongSource,
        "injected audio is not latched"
    );
    let peer: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    assert!(r.accept(peer, &s.packet(&[0; 160], 0)).is_ok());
    assert_eq!(r.latched, Some(peer));
}

#[test]
fn garbage_before_latching_does_not_latch() {
    let mut r = RtpReceiver::new(&media());
    let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    assert!(r.accept(a, b"hello world, not rtp").is_err());
    assert_eq!(r.latched, None);
}
