#!/usr/bin/env python3
"""Writes the caller's audio for the load harness: raw PCMA (8 kHz A-law)
of a 440 Hz tone, whole 20 ms packets, for SIPp's rtp_stream. A-law has no
code that decodes to zero, so every sample of it that reaches a recording
is a non-zero sample in the caller's channel: the harness counts them.

    caller_audio.py OUT.al SECONDS

Prints the number of 20 ms packets in the file. Standard library only.
"""
import math
import sys

FRAME = 160  # samples (bytes of A-law) per 20 ms packet


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


def main():
    out, seconds = sys.argv[1], float(sys.argv[2])
    packets = max(1, int(seconds * 50))
    # One second holds 440 whole periods: a table of one second repeats.
    period = [alaw(int(8000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(8000)]
    data = bytes(period[i % 8000] for i in range(packets * FRAME))
    with open(out, "wb") as f:
        f.write(data)
    print(packets)


if __name__ == "__main__":
    main()
