#!/usr/bin/env python3
"""Writes the results of `run.sh standard` into docs/performance.md between
<!-- load:begin --> and <!-- load:end --> (appended at the end when the
markers are missing); everything else in the file is left as it is.

    write_doc.py --doc FILE --bin BIN --took S --command CMD RESULT.json...
"""
import argparse
import datetime
import json
import os
import platform
import subprocess

BEGIN = "<!-- load:begin -->"
END = "<!-- load:end -->"


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GB"
    sipp = sh("sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1").rstrip(".")
    redis = sh("redis-server --version | grep -o 'v=[^ ]*'").replace("v=", "Redis ")
    return (
        f"{model or platform.processor()}, {os.cpu_count()} cores, {mem} RAM, "
        f"Linux {platform.release()}; {sipp}, {redis}"
    )


def ms(s):
    if not s or s.get("median") is None:
        return "–"
    return f"{s['median']:.1f} / {s['p99']:.1f} / {s['max']:.1f}"


def mb(v):
    return "–" if v is None else f"{v:.0f}"


def row(r):
    failed = str(r["failed"])
    if r["failed_by_reason"]:
        failed += " (" + ", ".join(f"{k} {v}" for k, v in r["failed_by_reason"].items()) + ")"
    cut = {k: v for k, v in r["gateway_ended"].items() if k != "intake_complete"}
    if cut:
        failed += "; gateway ended " + ", ".join(f"{v} by {k}" for k, v in cut.items())
    missing = "–" if r["rtp_missing_pct"] is None else f"{r['rtp_missing_pct']:.3f} %"
    return (
        f"| {r['name']} | {r.get('keys', 'pcap')}{'' if r.get('pinned') else ', shared cores'} | "
        f"{r['attempted']} | {r['rate']:g}/s | {r['peak_concurrent']} | "
        f"{r['answered']} | {failed} | {ms(r['trying_ms'])} | {ms(r['answer_ms'])} | "
        f"{r['rtp_expected']} / {r['rtp_written']:.0f} ({missing}) | "
        f"{r['cpu_s']} s ({r['cpu_cores_avg']:.2f} avg, {r['cpu_cores_peak5s']:.2f} busiest 5 s) | "
        f"{r.get('cpu_us_per_call') or '–'} | "
        f"{mb(r['rss_baseline_mb'])} → {mb(r['rss_peak_mb'])} → {mb(r['rss_after_mb'])} | "
        f"{r['rss_per_call_kb']} | {r['sipp_cpu_s']} s |"
    )


def verdicts(res):
    out = []

    def line(target, scaled, got, ok, note=""):
        out.append(f"| {target} | {scaled} | {got} | {'met' if ok else '**not met**'} | {note} |")

    def complete(r):
        return r["gateway_ended"].get("intake_complete", 0)

    r = res.get("rate")
    if r:
        ok = r["failed"] == 0 and complete(r) == r["attempted"] == r["calls_planned"]
        line(
            "200 new calls/s for a minute, full flow, no failed call",
            f"{r['rate']:g}/s, {r['calls_planned']} calls ({r['calls_planned'] / r['rate']:.0f} s)",
            f"{r['answered']} of {r['attempted']} answered, {r['failed']} failed in SIPp, "
            f"{r['attempted'] - complete(r)} not completed (the gateway hung up: "
            f"{', '.join(f'{v} {k}' for k, v in r['gateway_ended'].items() if k != 'intake_complete') or '–'}), "
            f"{r['rtp_missing_pct']} % RTP missing, peak {r['peak_concurrent']} at once",
            ok,
            f"sipp used {r['sipp_cpu_s']} s CPU, the gateway {r['cpu_s']} s",
        )
    r = res.get("concurrent")
    if r:
        ok = (
            r["peak_concurrent"] >= 1000
            and r["failed"] == 0
            and complete(r) == r["attempted"]
            and (r["rtp_missing_pct"] or 0) <= 0.1
            and r["cpu_cores_peak5s"] <= 1.0
        )
        line(
            "1,000 concurrent recorded calls, audio both ways, 2 minutes; ≤ 0.1 % RTP missing; ≤ 1 core",
            f"{r['limit']} at once, calls of ~{(59 if r.get('listen') else 14) + r['message_s']:.0f} s"
            f"{' letting every prompt play (audio both ways)' if r.get('listen') else ''}, "
            f"{r['calls_planned']} calls",
            f"peak {r['peak_concurrent']}, {r['rtp_missing_pct']} % missing "
            f"({r['gateway_rtp_late']} late), {r['cpu_cores_avg']:.2f} cores avg, "
            f"{r['cpu_cores_peak5s']:.2f} busiest 5 s",
            ok,
        )
    r = res.get("latency")
    if r:
        t, a = r["trying_ms"], r["answer_ms"]
        ok = t["p99"] is not None and t["p99"] <= 2 and a["p99"] <= 10
        line(
            "100 Trying ≤ 2 ms, 200 OK ≤ 10 ms at p99, 100 calls/s",
            f"{r['rate']:g}/s, {r['calls_planned']} calls",
            f"100 Trying p99 {t['p99']} ms, 200 OK p99 {a['p99']} ms",
            ok,
            "SIPp's own clock: includes its scheduling",
        )
    # The comparison row (pcap keys: SIPp's raw sockets, one case for every
    # call) is not the gateway's production cost.
    per_call = [
        x for x in res.values()
        if x.get("rss_per_call_kb") is not None and x["peak_concurrent"] >= 100
        and x.get("keys") != "pcap"
    ]
    big = res.get("memory") or (max(res.values(), key=lambda x: x["attempted"]) if res else None)
    if per_call:
        worst = max(x["rss_per_call_kb"] for x in per_call)
        line(
            "≤ 100 KB RSS per concurrent call",
            "RSS per call in each run keyed by INFO",
            f"{worst} KB per call (worst run)",
            worst <= 100,
        )
    if big and big["rss_after_vs_baseline"] is not None:
        # With a first wave (--warm), judged against the idle gateway after
        # it: a wave at the same rate and limit has run the calls' code
        # (the binary's pages) and sized the allocator for the peak (its
        # metadata), once; what 10,000 calls more leave is what does not
        # come back. The cold start is shown beside.
        back, cold = big["rss_after_vs_baseline"], big.get("rss_after_vs_cold")
        warm = big.get("warm_calls") or 0
        if warm and cold is not None:
            got = (
                f"after: {big['rss_after_mb']} MB, {100 * back:+.0f} % against the idle gateway "
                f"after a first wave of {warm} calls ({big['rss_baseline_mb']} MB); "
                f"{100 * cold:+.0f} % against its cold start ({big['rss_cold_mb']} MB)"
            )
        else:
            got = (
                f"after: {big['rss_after_mb']} MB, {100 * back:+.0f} % against its start "
                f"({big['rss_baseline_mb']} MB)"
            )
        line(
            "RSS back to baseline ± 10 % after 10,000 calls",
            f"{big['answered']} calls answered ({big['name']}), RSS a minute after",
            got,
            abs(back) <= 0.10,
        )
    return out


def costs(res):
    """CPU per call set-up and per call-second, fitted across the runs that
    kept their audio (gateway CPU = set-up × calls + media × call-seconds,
    least squares), memory per concurrent call, and what they project."""
    # Calls refused with 503 (shedding) count in SIPp's failures but cost
    # the gateway a stateless answer: the runs are kept, their answered
    # calls fitted.
    ok = [r for r in res.values()
          if r.get("call_seconds") and r["answered"] and (r["rtp_missing_pct"] or 0) <= 0.1]
    out = ["", "### Cost per call", ""]
    if len(ok) < 2:
        return out + ["Fewer than two runs kept their audio: no fit."]
    # Normal equations of cpu_us = s*calls + m*seconds.
    a11 = sum(r["answered"] ** 2 for r in ok)
    a12 = sum(r["answered"] * r["call_seconds"] for r in ok)
    a22 = sum(r["call_seconds"] ** 2 for r in ok)
    b1 = sum(r["answered"] * r["cpu_s"] * 1e6 for r in ok)
    b2 = sum(r["call_seconds"] * r["cpu_s"] * 1e6 for r in ok)
    det = a11 * a22 - a12 * a12
    if det == 0:
        return out + ["The runs' calls all last as long: set-up and media cannot be told apart."]
    setup = (b1 * a22 - b2 * a12) / det
    media = (a11 * b2 - a12 * b1) / det
    kb = max(
        r["rss_per_call_kb"] for r in ok
        if r.get("rss_per_call_kb") is not None and r.get("keys") != "pcap"
    )
    out += [
        "Fitted over the runs that kept all their audio ("
        + ", ".join(f"{r['name']}: {r['answered']} calls, {r['call_seconds']:.0f} call-seconds, "
                    f"{r['cpu_s']} s CPU" for r in ok)
        + "), gateway CPU = set-up × calls + media × call-seconds:",
        "",
        "| per | gateway CPU | memory |",
        "|---|---|---|",
        f"| call set-up (INVITE to ticket, the prompts' start, the recording's file and hashes, BYE) "
        f"| {setup:,.0f} µs | – |",
        f"| second of a call (RTP both ways, mixing, recording) | {media:,.0f} µs | – |",
        f"| concurrent call | – | {kb} KB RSS (the worst run) |",
        "",
        f"Projection, not a measurement: a 16-core server kept at 70 % carries "
        f"{16 * 0.7 * 1e6 / media:,.0f} concurrent recorded calls by CPU "
        f"({16 * 0.7 * 1e6 / media * kb / 1024 / 1024:.1f} GB RSS at {kb} KB each), less "
        f"{setup / 1e6:.4f} cores for every new call a second; the SIP thread (signalling, "
        f"one core whatever the server) is not what limits it. Two cores at 70 %: "
        f"{2 * 0.7 * 1e6 / media:,.0f} calls.",
    ]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--doc", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--took", type=int, required=True)
    ap.add_argument("--command", required=True)
    ap.add_argument("results", nargs="+")
    a = ap.parse_args()
    res = {}
    for p in a.results:
        with open(p) as f:
            r = json.load(f)
        res[r["name"]] = r
    rev = sh(f"git -C {os.path.dirname(os.path.abspath(a.doc))} rev-parse --short HEAD")
    dirty = sh(f"git -C {os.path.dirname(os.path.abspath(a.doc))} status --porcelain -- src")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN,
        "## Calls under load (`benches/load/`)",
        "",
        "Written by `benches/load/run.sh standard --doc`; edit the script, not this section.",
        "",
        f"- date: {now}; load average (1, 5, 15 min) before each run: "
        + "; ".join(f"{n} {r.get('loadavg', '–')}" for n, r in res.items()),
        f"- machine: {machine()}",
        f"- binary: `{os.path.relpath(a.bin, os.path.dirname(os.path.dirname(os.path.abspath(a.doc))))}` "
        f"at {rev}{' (with local changes in src/)' if dirty else ''}",
        f"- command: `{a.command}` (took {a.took} s)",
        "",
        "Every call is a full one: INVITE offering PCMA and telephone-event, 100/180/200, ACK;",
        "the caller talks (SIPp `rtp_stream`, A-law, 20 ms) from the ACK to the end of the message",
        "while keying the intake's answers (1; a case number, each call its own of three digits,",
        "2 3 4 for every call with pcap keys; #, 1, 5, the message, #) as SIP INFO",
        "(`application/dtmf-relay`; keys `info`) or as RFC 4733 events by SIPp's `play_pcap_audio`",
        "(keys `pcap`: a raw socket per key, which the kernel hands a copy of every UDP packet on the",
        "machine, so the generator taxes the gateway's sends; kept to compare); the gateway plays its",
        "prompts meanwhile, reads the ticket number back and hangs up. The gateway runs on one core",
        "and SIPp with Redis on the other (`taskset`), unless the row says shared cores.",
        "",
        "| run | keys | calls | rate | peak concurrent | answered | failed | 100 Trying ms (median / p99 / max) "
        "| 200 OK ms (median / p99 / max) | RTP expected / in recordings (missing) | gateway CPU "
        "| gateway CPU µs per call | RSS MB baseline → peak → after | RSS per concurrent call (KB) | SIPp CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = ("latency", "concurrent", "rate", "rate-pcap", "overload", "memory")
    for name in order:
        if name in res:
            lines.append(row(res[name]))
    for name, r in res.items():
        if name not in order:
            lines.append(row(r))
    lines += [
        "",
        "RTP expected: the caller's audio packets (20 ms) of every answered call; in recordings:",
        "non-zero samples in the caller's channel / 160 (A-law decodes to no zero, silence where",
        "a packet is missing). RSS per call: (peak − baseline) / peak concurrent calls.",
        "",
        "| target (issue 9) | run here | result | | |",
        "|---|---|---|---|---|",
    ]
    lines += verdicts(res)
    lines += costs(res)
    lines.append(END)
    section = "\n".join(lines) + "\n"

    text = open(a.doc).read() if os.path.exists(a.doc) else "# Performance\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + section.rstrip("\n") + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(a.doc, "w") as f:
        f.write(text)
    print(f"wrote {a.doc}")


if __name__ == "__main__":
    main()
