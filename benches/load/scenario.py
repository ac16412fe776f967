#!/usr/bin/env python3
"""Fills in the load harness's SIPp scenario (uac_full.xml) for one run.

    scenario.py TEMPLATE OUT --keys info|pcap --audio FILE --message-ms MS
                --cases FILE --calls N --pause NAME=MS ...

Each `<!-- @KEY k@ -->` line becomes the key k (1-9, pound; caseI the I-th
digit of the call's case number):
- info: a SIP INFO in the dialog (application/dtmf-relay, Signal and
  Duration, RFC 2976 and the de-facto body the gateway reads), its 200 OK
  awaited; CSeq 2, 3, ... in order. Costs the gateway what a PBX relaying
  keys by INFO costs it in production.
- pcap: an RFC 4733 event from the pcaps sip-tester ships
  (play_pcap_audio). SIPp opens a raw socket for each, and the kernel hands
  every raw socket a copy of every UDP packet on the machine: the load
  generator then taxes the gateway's sends (kept as a row to compare).

Each call reports a case of its own: FILE, SIPp's injection file (-inf), gets
N lines of three random digits (seeded, so runs compare), read in order, and
the INFO keys them ([field0] ...). A court's line hears of many cases; one
case for every call would have the gateway's triage read that case's earlier
reports (up to 200) at every call, a cost production does not pay. The pcap
keys cannot be chosen per call: they key 2 3 4 for every call.
"""

import argparse
import random
import re

INFO = """  <send retrans="500">
    <![CDATA[
      INFO [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:1360000[call_number]@[local_ip]:[local_port]>;tag=[pid]L[call_number]
      To: <sip:12368@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: {cseq} INFO
      [routes]
      Contact: <sip:13600000000@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={signal}
      Duration=160
    ]]>
  </send>
  <recv response="200"/>"""

PCAP = ('  <nop><action><exec play_pcap_audio='
        '"/usr/share/sip-tester/dtmf_2833_{key}.pcap"/></action></nop>')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("template")
    ap.add_argument("out")
    ap.add_argument("--keys", choices=["info", "pcap"], default="info")
    ap.add_argument("--audio", required=True)
    ap.add_argument("--message-ms", required=True, type=int)
    ap.add_argument("--cases", required=True)
    ap.add_argument("--calls", required=True, type=int)
    ap.add_argument("--pause", action="append", default=[], metavar="NAME=MS")
    a = ap.parse_args()
    rng = random.Random(36)
    with open(a.cases, "w", encoding="utf-8") as f:
        f.write("SEQUENTIAL\n")
        for _ in range(a.calls):
            f.write("".join(f"{rng.randrange(10)};" for _ in range(3)) + "\n")
    text = open(a.template, encoding="utf-8").read()
    cseq = iter(range(2, 100))

    def key(m):
        k = m.group(1)
        if k.startswith("case"):
            i = int(k[4:]) - 1
            k = "234"[i] if a.keys == "pcap" else f"[field{i}]"
        if a.keys == "pcap":
            return PCAP.format(key=k)
        return INFO.format(cseq=next(cseq), signal="#" if k == "pound" else k)

    text = re.sub(r"^  <!-- @KEY (\w+)@ -->$", key, text, flags=re.M)
    text = text.replace("@AUDIO@", a.audio).replace("@MESSAGE_MS@", str(a.message_ms))
    for p in a.pause:
        name, ms = p.split("=", 1)
        text = text.replace(f"@P_{name}@", str(int(ms)))
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise SystemExit(f"scenario.py: not filled in: {sorted(set(left))}")
    open(a.out, "w", encoding="utf-8").write(text)


if __name__ == "__main__":
    main()
