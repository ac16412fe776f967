#!/usr/bin/env python3
"""The kill loop (issue 22): crash consistency under load, proven.

N cycles of: start the gateway, let SIPp's calls (with the caller's audio)
run into it for a random 3-8 s, kill -9 it. The same redis-server, journal
and recordings directory every time; SIPp runs throughout (its INVITEs
retransmitted while the gateway is down reach the next one). Then a final
start (repair, journal replay) and a report:

  calls answered     SIPp received a 200 to its INVITE (and sent the ACK)
  with a ticket      answered calls whose Call-ID has a ticket in Redis
  in flight          answered less than IN_FLIGHT before a kill (its ACK may
                     not have been journaled: not counted as lost)
  lost               answered calls without a ticket, not in flight
  duplicates         Call-IDs with more than one ticket
  recordings         WAV files; readable (a RIFF/WAVE header, whole frames);
                     verified (`hotline recording verify`)
  not final          manifests still saying `recording` after the final start
  audio lost         for each recording a kill cut: from the end of what it
                     holds to the kill; the most of them (target <= 1 s)
  answering again    from each start of the process to its first answered
                     OPTIONS (median, worst; target 2 s less systemd's
                     RestartSec of 1 s in deploy/hotline.service)

    benches/killloop/run.py [--cycles N] [--rate R] [--seed S] [--bin PATH]
                            [--json FILE] [--keep]

Exit status 1 when anything is lost, duplicated, unreadable, unverified or
not final. Everything runs on 127.0.0.1 and is stopped on exit; bounded by
N cycles of at most 8 s each, plus a minute for the final start.
"""
import argparse
import calendar
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import wave

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "benches", "killloop")
IN_FLIGHT = 0.2


def free_port():
    while True:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket()
        try:
            t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()


def answers_options(port, probe, n):
    msg = (f"OPTIONS sip:12368@127.0.0.1 SIP/2.0\r\n"
           f"Via: SIP/2.0/UDP 127.0.0.1:{probe.getsockname()[1]};branch=z9hG4bK-kl{n}\r\n"
           f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=kl\r\n"
           f"To: <sip:12368@127.0.0.1>\r\nCall-ID: killloop-probe-{n}\r\n"
           f"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
    probe.sendto(msg, ("127.0.0.1", port))
    try:
        data, _ = probe.recvfrom(65536)
        return data.startswith(b"SIP/2.0 200")
    except socket.timeout:
        return False


def redis(port, *args):
    out = subprocess.run(["redis-cli", "-p", str(port), "--raw", *args],
                         capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def sipp_answers(path):
    """Call-ID -> time (Unix seconds) SIPp received the 200 to its INVITE."""
    answered = {}
    if not os.path.exists(path):
        return answered
    text = open(path, errors="replace").read()
    # Blocks: "----- <date> <time>.<us>\nUDP message received [n] bytes :\n\n<msg>"
    for block in re.split(r"\n-{20,} ", text):
        m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*\n(?:UDP|TCP) message received", block)
        if not m or "SIP/2.0 200" not in block or not re.search(r"CSeq:\s*1 INVITE", block):
            continue
        cid = re.search(r"Call-ID:\s*(\S+)", block)
        if cid and cid.group(1) not in answered:
            t = time.mktime(time.strptime(m.group(1).split(".")[0], "%Y-%m-%d %H:%M:%S"))
            answered[cid.group(1)] = t + float("0." + m.group(1).split(".")[1])
    return answered


def readable(path):
    try:
        with wave.open(path, "rb") as w:
            return w.getnchannels() == 2 and w.getframerate() == 8000
    except (wave.Error, EOFError, OSError):
        return False


def parse_time(s):
    # RFC 3339 with nanoseconds, UTC ("2026-12-01T09:00:00.123456789Z").
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", s)
    base = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    return base + (float(m.group(2)) if m.group(2) else 0.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=10)
    ap.add_argument("--rate", type=float, default=20)
    ap.add_argument("--seed", type=int, default=22)
    ap.add_argument("--bin", default=os.environ.get("HOTLINE_BIN", os.path.join(ROOT, "target", "release", "hotline")))
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"killloop: {a.bin} is missing (cargo build --release, or --bin)")
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix="hotline-killloop-")
    procs = []

    def stop_all():
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()

    try:
        for d in ("recordings", "journal", "redis", "sipp"):
            os.makedirs(os.path.join(work, d))
        rport, sip_port, http_port = free_port(), free_port(), free_port()
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--dir",
             os.path.join(work, "redis"), "--appendonly", "yes", "--appendfsync", "everysec",
             "--save", ""], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _ in range(100):
            try:
                if redis(rport, "ping") == ["PONG"]:
                    break
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.05)
        roster = os.path.join(work, "roster.toml")
        with open(os.path.join(ROOT, "config", "roster.toml")) as f:
            lines = [l for l in f if not l.startswith(("sip = ", "webhook = "))]
        with open(roster, "w") as f:
            f.writelines(lines)
        cfg = os.path.join(work, "hotline.toml")
        with open(cfg, "w") as f:
            f.write(f"""# benches/killloop/run.py: loopback only.
[sip]
listen = ["127.0.0.1:{sip_port}"]
# SIPp is one source placing many calls: trusted, as a PBX would be.
trusted = ["127.0.0.1"]
[media]
bind_ip = "127.0.0.1"
advertise_ip = "127.0.0.1"
rtp_port_min = 30000
rtp_port_max = 39999
[http]
listen = "127.0.0.1:{http_port}"
# The transcriber is measured on its own (benches/transcribe).
[transcribe]
enabled = false
[redis]
url = "redis://127.0.0.1:{rport}/"
journal_dir = "{work}/journal"
[recording]
dir = "{work}/recordings"
[privacy]
key_file = "{work}/caller.key"
[prompts]
dir = "{ROOT}/config/prompts"
[roster]
file = "{roster}"
holidays = "{ROOT}/config/holidays"
""")
        audio = os.path.join(work, "caller.al")
        subprocess.run([sys.executable, os.path.join(ROOT, "benches", "load", "caller_audio.py"), audio, "4"],
                       check=True, stdout=subprocess.DEVNULL)
        scenario = os.path.join(work, "sipp", "uac_call.xml")
        with open(os.path.join(HERE, "uac_call.xml")) as f, open(scenario, "w") as g:
            g.write(f.read().replace("@AUDIO@", audio))
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        probe.settimeout(0.05)
        log = open(os.path.join(work, "gateway.log"), "ab")

        starts = []

        def start_gateway():
            began = time.monotonic()
            gw = subprocess.Popen([a.bin, "serve", "--config", cfg], stdout=log, stderr=log,
                                  env=dict(os.environ, HOTLINE_LOG="info", NO_COLOR="1"))
            procs.append(gw)
            for n in range(400):
                if answers_options(sip_port, probe, n):
                    starts.append(time.monotonic() - began)
                    return gw
            sys.exit("killloop: the gateway did not answer within 20 s")

        gw = start_gateway()
        total = int(a.cycles * 8 * a.rate) + 100
        sipp = subprocess.Popen(
            ["sipp", f"127.0.0.1:{sip_port}", "-sf", scenario, "-t", "u1", "-i", "127.0.0.1",
             "-p", str(free_port()), "-mi", "127.0.0.1", "-mp", str(free_port()),
             "-r", str(a.rate), "-m", str(total), "-l", "1000", "-nostdin",
             "-trace_msg", "-message_file", os.path.join(work, "sipp", "messages.log"),
             "-timeout", f"{a.cycles * 10 + 60}s"],
            cwd=os.path.join(work, "sipp"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(sipp)
        kills = []
        for c in range(a.cycles):
            time.sleep(rng.uniform(3, 8))
            gw.send_signal(signal.SIGKILL)
            gw.wait()
            kills.append(time.time())
            print(f"cycle {c + 1}: killed at +{kills[-1] - kills[0]:.1f} s", flush=True)
            if c + 1 < a.cycles:
                gw = start_gateway()
        # No more calls; the last start repairs and replays.
        sipp.send_signal(signal.SIGKILL)
        sipp.wait()
        gw = start_gateway()
        for _ in range(600):
            try:
                h = json.loads(subprocess.run(["curl", "-s", "--max-time", "2", f"http://127.0.0.1:{http_port}/healthz"],
                                              capture_output=True, text=True).stdout or "{}")
                if h.get("journal_pending") == 0 and h.get("redis") == "ok":
                    break
            except json.JSONDecodeError:
                pass
            time.sleep(0.1)
        time.sleep(1)
        gw.send_signal(signal.SIGTERM)
        gw.wait(timeout=30)

        # The report.
        answered = sipp_answers(os.path.join(work, "sipp", "messages.log"))
        tickets = {}
        for key in redis(rport, "--scan", "--pattern", "hotline:ticket:*"):
            if key.count(":") == 2:
                cid = redis(rport, "hget", key, "call_id")
                if cid:
                    tickets.setdefault(cid[0], []).append(key)
        in_flight = {c for c, t in answered.items()
                     if any(0 <= k - t < IN_FLIGHT for k in kills) and c not in tickets}
        lost = sorted(c for c in answered if c not in tickets and c not in in_flight)
        duplicates = sorted(c for c, ks in tickets.items() if len(ks) > 1)
        wavs, manifests = [], []
        for d, _, files in os.walk(os.path.join(work, "recordings")):
            wavs += [os.path.join(d, f) for f in files if f.endswith(".wav")]
            manifests += [os.path.join(d, f) for f in files if f.endswith(".json")]
        unreadable = [w for w in wavs if not readable(w)]
        unverified = [w for w in wavs
                      if subprocess.run([a.bin, "recording", "verify", w], capture_output=True).returncode != 0]
        not_final, statuses, audio_lost = [], {}, []
        for mpath in manifests:
            m = json.load(open(mpath))
            statuses[m["status"]] = statuses.get(m["status"], 0) + 1
            if m["status"] == "recording":
                not_final.append(mpath)
            if m["status"] in ("recovered", "lost") and m.get("started"):
                start = parse_time(m["started"])
                end = start + m["samples"] / 8000
                after = [k for k in kills if k >= start]
                if after:
                    audio_lost.append(max(0.0, after[0] - end))
        report = {
            "cycles": a.cycles, "rate": a.rate, "seed": a.seed,
            "calls_answered": len(answered),
            "with_ticket": sum(1 for c in answered if c in tickets),
            "in_flight_at_a_kill": len(in_flight),
            "lost": len(lost), "duplicates": len(duplicates),
            "recordings": len(wavs), "readable": len(wavs) - len(unreadable),
            "verified": len(wavs) - len(unverified),
            "manifests": statuses, "not_final": len(not_final),
            "recordings_cut_by_a_kill": len(audio_lost),
            "most_audio_lost_s": round(max(audio_lost, default=0.0), 3),
            "answering_again_ms": {
                "median": round(sorted(starts)[len(starts) // 2] * 1000),
                "worst": round(max(starts) * 1000),
                "starts": len(starts),
            },
        }
        for k, v in report.items():
            print(f"{k}: {v}")
        for c in lost[:10]:
            print(f"lost: {c}")
        for w in (unreadable + unverified)[:10]:
            print(f"bad recording: {w}")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(report, f, indent=2)
        bad = lost or duplicates or unreadable or unverified or not_final or not answered
        return 1 if bad else 0
    finally:
        stop_all()
        if a.keep:
            print(f"work directory: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
