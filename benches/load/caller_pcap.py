#!/usr/bin/env python3
"""Writes the caller's side of one load-test call as a pcap for SIPp's
play_pcap_audio: PCMA audio in 20 ms packets (a 440 Hz tone; every A-law
code decodes to a non-zero sample, so the harness can count what reached
the recording) with the intake's keys as RFC 4733 events on the same SSRC,
sequence and clock, as a phone sends them.

    caller_pcap.py OUT.pcap MESSAGE_SECONDS

Prints the number of audio packets in the file (the RTP each call must
leave in its recording). Standard library only.
"""
import math
import struct
import sys

PT_AUDIO = 8  # PCMA
PT_EVENT = 101
FRAME = 160  # samples per 20 ms packet
EVENTS = {str(d): d for d in range(10)}
EVENTS.update({"*": 10, "#": 11})


def alaw(sample):
    """ITU-T G.711 A-law from a 16-bit linear sample."""
    sign = 0x00 if sample < 0 else 0x80
    if sample < 0:
        sample = -sample - 1
    sample = min(sample, 32767) >> 3
    if sample < 32:
        code = sample >> 1
    else:
        seg = sample.bit_length() - 5
        code = (seg << 4) | ((sample >> seg) & 0x0F)
    return (code | sign) ^ 0x55


def timeline(message_s):
    """What the caller does, in 20 ms packets (see run.sh / README)."""
    audio = lambda s: ("audio", int(s * 50))  # noqa: E731
    steps = [audio(2.0), ("key", "1")]  # talks over the greeting, then 1: a lead
    steps += [audio(1.0)]  # over the case-number question
    for k in "234":
        steps += [("key", k), audio(0.2)]
    steps += [("key", "#"), audio(1.0)]  # over the read-back
    steps += [("key", "1"), audio(1.0)]  # confirms; over the message intro
    steps += [("key", "5"), audio(message_s), ("key", "#")]  # the message, ended
    return steps


def main():
    out, message_s = sys.argv[1], float(sys.argv[2])
    ssrc, seq, ts = 0x5EED1234, 1000, 80000
    t = 0.0
    packets = []  # (time, rtp bytes)
    n_audio = 0
    phase = 0
    for kind, arg in timeline(message_s):
        if kind == "audio":
            for _ in range(arg):
                payload = bytes(
                    alaw(int(8000 * math.sin(2 * math.pi * 440 * (phase + i) / 8000)))
                    for i in range(FRAME)
                )
                phase += FRAME
                hdr = struct.pack(">BBHII", 0x80, PT_AUDIO, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
                packets.append((t, hdr + payload))
                seq += 1
                ts += FRAME
                t += 0.02
                n_audio += 1
        else:
            # RFC 4733: 7 packets 20 ms apart, duration growing, then the
            # end packet three times; one timestamp (the event's start).
            ev = EVENTS[arg]
            for i in range(10):
                dur = FRAME * min(i + 1, 7)
                end = 0x80 if i >= 7 else 0
                marker = 0x80 if i == 0 else 0
                hdr = struct.pack(">BBHII", 0x80, marker | PT_EVENT, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)
                packets.append((t, hdr + struct.pack(">BBH", ev, end | 10, dur)))
                seq += 1
                if i < 7:
                    t += 0.02
            ts += FRAME * 7
    with open(out, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for when, rtp in packets:
            udp = struct.pack(">HHHH", 6000, 6000, 8 + len(rtp), 0) + rtp
            ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                             bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
            frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
            sec = int(when)
            usec = int(round((when - sec) * 1e6))
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
    print(n_audio)


if __name__ == "__main__":
    main()
