#!/usr/bin/env python3
"""How fast a killed gateway answers again (issue 13: within 2 s).

Starts its own redis-server on a free loopback port, then N times: starts the
release gateway (loopback only, ports picked by the OS), sends an OPTIONS
every 10 ms until one is answered 200, records the time from the process's
start, and kills it with SIGKILL, as a crash would. Systemd's RestartSec (1 s
in deploy/hotline.service) comes on top of what is measured here.

    benches/restart/run.py [N] [--bin PATH]   # default 10 starts of
                                              # target/release/hotline (run
                                              # `cargo build --release` first)
Prints one line per start and the median and worst. Bounded: N starts, each
given 10 s.
"""
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release", "hotline")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    args = sys.argv[1:]
    binary = BIN
    if "--bin" in args:
        i = args.index("--bin")
        binary = args[i + 1]
        del args[i:i + 2]
    n = int(args[0]) if args else 10
    if not os.path.exists(binary):
        sys.exit(f"{binary} is missing: cargo build --release")
    work = tempfile.mkdtemp(prefix="hotline-restart-")
    rport = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--dir", work,
         "--appendonly", "yes", "--save", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sip_port = free_port()
    cfg = os.path.join(work, "hotline.toml")
    roster = os.path.join(work, "roster.toml")
    with open(os.path.join(ROOT, "config", "roster.toml")) as f:
        lines = [l for l in f if not l.startswith(("sip = ", "webhook = "))]
    with open(roster, "w") as f:
        f.writelines(lines)
    with open(cfg, "w") as f:
        f.write(f"""[sip]
listen = ["127.0.0.1:{sip_port}"]
[media]
bind_ip = "127.0.0.1"
advertise_ip = "127.0.0.1"
[http]
listen = "127.0.0.1:0"
[redis]
url = "redis://127.0.0.1:{rport}/"
journal_dir = "{work}/journal"
[privacy]
key_file = "{work}/caller.key"
[recording]
dir = "{work}/recordings"
[prompts]
dir = "{ROOT}/config/prompts"
[roster]
file = "{roster}"
holidays = "{ROOT}/config/holidays"
""")
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    probe.settimeout(0.01)
    me = probe.getsockname()
    times = []
    try:
        time.sleep(0.3)  # redis up
        for i in range(n):
            start = time.monotonic()
            gw = subprocess.Popen([binary, "serve", "--config", cfg],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  env=dict(os.environ, HOTLINE_LOG="warn"))
            answered = None
            k = 0
            while time.monotonic() - start < 10:
                k += 1
                msg = (f"OPTIONS sip:12368@127.0.0.1 SIP/2.0\r\n"
                       f"Via: SIP/2.0/UDP {me[0]}:{me[1]};branch=z9hG4bK-r{i}-{k}\r\n"
                       f"Max-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=r\r\n"
                       f"To: <sip:12368@127.0.0.1>\r\nCall-ID: restart-{i}-{k}\r\n"
                       f"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n").encode()
                probe.sendto(msg, ("127.0.0.1", sip_port))
                try:
                    data, _ = probe.recvfrom(65536)
                    if data.startswith(b"SIP/2.0 200"):
                        answered = time.monotonic() - start
                        break
                except socket.timeout:
                    pass
            gw.send_signal(signal.SIGKILL)
            gw.wait()
            if answered is None:
                print(f"start {i + 1}: no answer within 10 s")
                sys.exit(1)
            times.append(answered)
            print(f"start {i + 1}: answered after {answered * 1000:.0f} ms")
    finally:
        redis.send_signal(signal.SIGKILL)
        redis.wait()
    print(f"median {statistics.median(times) * 1000:.0f} ms, worst {max(times) * 1000:.0f} ms "
          f"over {n} starts (target: 2000 ms, less systemd's RestartSec)")


if __name__ == "__main__":
    main()
