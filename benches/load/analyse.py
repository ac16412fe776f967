#!/usr/bin/env python3
"""Reads what one load run left in its work directory (run.sh) and writes
the results as JSON, with a short summary on stdout. Standard library only.

Sources: SIPp's stat file (calls, failures by reason, concurrency), its
message counts, its -trace_logs timing lines (INVITE -> 100, INVITE -> 200,
microseconds), its error file; the gateway's /metrics, its "call ended"
log lines, the /proc samples run.sh took; the recordings themselves (the
caller's channel: samples the caller's RTP put there)."""
import argparse
import array
import collections
import glob
import json
import os
import re
import sys

FRAME = 160


def percentile(values, p):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p * (len(s) - 1)))))]


def stats_ms(values):
    if not values:
        return {"n": 0, "median": None, "p99": None, "max": None}
    return {
        "n": len(values),
        "median": round(percentile(values, 0.5), 3),
        "p99": round(percentile(values, 0.99), 3),
        "max": round(max(values), 3),
    }


def read_stat(path):
    rows = []
    with open(path) as f:
        header = f.readline().strip().rstrip(";").split(";")
        for line in f:
            vals = line.strip().rstrip(";").split(";")
            if len(vals) >= len(header) - 1:
                rows.append(dict(zip(header, vals)))
    return rows


def read_counts(path):
    """Last line of the -trace_counts file: {column: value}."""
    with open(path) as f:
        lines = [line.strip().rstrip(";") for line in f if line.strip()]
    header = lines[0].split(";")
    last = lines[-1].split(";")
    return {h: v for h, v in zip(header, last)}


def wav_caller_samples(path):
    """(frames in the file, non-zero samples in the left channel)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return 0, 0
    off = 12
    while off + 8 <= len(data):
        cid, size = data[off:off + 4], int.from_bytes(data[off + 4:off + 8], "little")
        if cid == b"data":
            body = data[off + 8:off + 8 + size]
            a = array.array("h")
            a.frombytes(body[: len(body) // 4 * 4])
            left = a[0::2]
            return len(left), len(left) - left.count(0)
        off += 8 + size + (size & 1)
    return 0, 0


def smaps(path):
    """Resident MB by kind of mapping in a copy of /proc/<pid>/smaps."""
    parts = {}
    if not os.path.exists(path):
        return parts
    kind = None
    with open(path) as f:
        for line in f:
            fields = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                name = fields[5] if len(fields) > 5 else ""
                if name.endswith("/hotline"):
                    kind = "binary"
                elif name.startswith("/"):
                    kind = "libraries"
                elif name in ("", "[heap]"):
                    kind = "anonymous"
                else:
                    kind = "other"
            elif fields and fields[0] == "Rss:" and kind:
                parts[kind] = parts.get(kind, 0) + int(fields[1])
    if parts:
        parts["total"] = sum(parts.values())
    return {k: round(v / 1024, 1) for k, v in sorted(parts.items())}


def main():
    ap = argparse.ArgumentParser()
    for k in ("work", "name", "json", "loadavg", "keys"):
        ap.add_argument("--" + k, required=True)
    for k in ("rate", "start", "end", "message"):
        ap.add_argument("--" + k, type=float, required=True)
    for k in ("limit", "calls", "audio-packets", "hwm-kb", "sipp-rc", "clk-tck", "listen", "pinned",
              "warm", "log-offset"):
        ap.add_argument("--" + k, type=int, required=True)
    a = ap.parse_args()
    w = a.work
    sipp_dir = os.path.join(w, "sipp")
    r = {
        "name": a.name,
        "rate": a.rate,
        "limit": a.limit,
        "calls_planned": a.calls,
        "message_s": a.message,
        "listen": bool(a.listen),
        "keys": a.keys,
        "pinned": bool(a.pinned),
        "sipp_exit": a.sipp_rc,
        # Calls placed before the baseline was taken (run.sh --warm).
        "warm_calls": a.warm,
        "wall_s": round(a.end - a.start, 1),
        "loadavg": a.loadavg,
    }

    # SIPp: calls and failures.
    rows = read_stat(os.path.join(sipp_dir, "stat.csv"))
    last = rows[-1] if rows else {}
    num = lambda row, k: int(float(row.get(k, "0") or 0))  # noqa: E731
    r["attempted"] = num(last, "TotalCallCreated")
    r["successful"] = num(last, "SuccessfulCall(C)")
    r["failed"] = num(last, "FailedCall(C)")
    r["failed_by_reason"] = {
        k[len("Failed"):-3]: num(last, k)
        for k in last
        if k.startswith("Failed") and k.endswith("(C)") and k != "FailedCall(C)" and num(last, k)
    }
    r["peak_concurrent"] = max((num(row, "CurrentCall") for row in rows), default=0)
    counts_files = glob.glob(os.path.join(sipp_dir, "*_counts.csv"))
    counts = read_counts(counts_files[0]) if counts_files else {}
    answered_key = next((k for k in counts if re.match(r"^\d+_200_Recv$", k)), None)
    r["answered"] = int(counts.get(answered_key, 0)) if answered_key else 0
    bye_key = next((k for k in counts if re.match(r"^\d+_BYE_Recv$", k)), None)
    r["gateway_bye"] = int(counts.get(bye_key, 0)) if bye_key else 0
    errors = []
    err_path = os.path.join(sipp_dir, "errors.log")
    if os.path.exists(err_path):
        with open(err_path, errors="replace") as f:
            errors = [line.strip() for line in f if line.strip()]
    r["sipp_errors"] = errors[:10]

    # Timing: INVITE -> 100 and -> 200, from the -trace_logs lines.
    trying, answer, no_trying = [], [], 0
    for p in glob.glob(os.path.join(sipp_dir, "*_logs.log")):
        with open(p) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 8 or parts[0] != "T":
                    continue
                t0s, t0u, t1s, t1u, t2s, t2u = map(float, parts[2:])
                t0 = t0s + t0u / 1e6
                if t1s:
                    trying.append((t1s + t1u / 1e6 - t0) * 1000)
                else:
                    no_trying += 1
                answer.append((t2s + t2u / 1e6 - t0) * 1000)
    r["trying_ms"] = stats_ms(trying)
    r["answer_ms"] = stats_ms(answer)
    r["no_trying"] = no_trying

    # The gateway: how its calls ended, its counters.
    ended = collections.Counter()
    media = collections.Counter()
    cases = []
    call_seconds = 0.0
    with open(os.path.join(w, "gateway.log"), errors="replace") as f:
        # This run's lines: those after the first wave's (--warm).
        f.seek(a.log_offset)
        for line in f:
            m = re.search(r'step=CaseNumber \{ number: "(\d+)" \}', line)
            if m:
                cases.append(m.group(1))
            if "call ended" in line:
                m = re.search(r'ended="?([a-z_]+)', line)
                ended[m.group(1) if m else "?"] += 1
                m = re.search(r'duration_s="?([0-9.]+)', line)
                call_seconds += float(m.group(1)) if m else 0.0
                for k in ("rtp_dropped", "rtp_late"):
                    m = re.search(k + r"=(\d+)", line)
                    media[k] += int(m.group(1)) if m else 0
    r["gateway_ended"] = dict(ended)
    # The case numbers the gateway took (each call its own: scenario.py).
    r["case_numbers"] = len(cases)
    r["distinct_cases"] = len(set(cases))
    # Seconds of answered calls (media both ways, recorded), from the
    # gateway's own "call ended" lines.
    r["call_seconds"] = round(call_seconds, 1)
    # Caller packets the calls dropped (foreign source, malformed) or got
    # after their place in the recording was written (late).
    r["gateway_rtp_dropped"] = media["rtp_dropped"]
    r["gateway_rtp_late"] = media["rtp_late"]
    metrics = {}
    counted = {"cold": {}, "before": {}, "after": {}}
    allocator = {"cold": {}, "before": {}, "after": {}}
    for when in counted:
        mp = os.path.join(w, f"metrics_{when}.txt")
        if not os.path.exists(mp):
            continue
        with open(mp) as f:
            for line in f:
                m = re.match(r"^hotline_([a-z_]+)_total (\d+)$", line.strip())
                if m:
                    counted[when][m.group(1)] = int(m.group(2))
                m = re.match(r'^hotline_allocator_bytes\{kind="(\w+)"\} (\d+)$', line.strip())
                if m:
                    allocator[when][m.group(1)] = round(int(m.group(2)) / 2**20, 1)
    # This run's counts: the first wave's (--warm) are in the before.
    for k, v in counted["after"].items():
        metrics[k] = v - counted["before"].get(k, 0)
    # jemalloc's figures (MB) at the cold start, before the calls and once
    # they have settled: allocated (live), active, resident (RSS jemalloc
    # accounts for), dirty (freed, not yet given back), metadata, retained.
    r["allocator_mb"] = allocator
    # Resident memory by mapping (MB), from /proc/<pid>/smaps: the binary's
    # own pages (its code and data as they are first run), the shared
    # libraries', the anonymous mappings (jemalloc's heap and metadata, the
    # threads' stacks), the rest, and their total (the process's RSS).
    r["rss_mappings"] = {when: smaps(os.path.join(w, f"smaps_{when}.txt")) for when in ("cold", "before", "after")}
    r["gateway_metrics"] = {
        k: metrics.get(k)
        for k in (
            "calls_offered",
            "calls_answered",
            "calls_ended",
            "sip_overload_rejected",
            "sip_queue_full",
            "rtp_sent",
            "rtp_received",
            "rtp_dropped",
        )
    }

    # CPU and memory from the samples (epoch, cpu ticks, rss kB).
    samples, heap = [], []
    with open(os.path.join(w, "samples.txt")) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                samples.append((float(parts[0]), int(parts[1]), int(parts[2])))
            if len(parts) == 5 and a.start <= float(parts[0]) <= a.end:
                heap.append((int(parts[3]), int(parts[4])))
    before = [s for s in samples if s[0] <= a.start] or samples[:1]
    during = [s for s in samples if a.start <= s[0] <= a.end] or samples
    base = before[-1]
    final = samples[-1]
    # RSS at rest, before the calls and at the end: the median of the
    # samples over the ten seconds before (kB). One sample can fall on a
    # burst of the idle gateway's own work (the paging worker escalating
    # thousands of unacknowledged tickets frees megabytes at once, given
    # back within seconds); the median does not.
    def at_rest(until):
        near = sorted(s[2] for s in samples if until - 10.5 <= s[0] <= until)
        return near[len(near) // 2] if near else None
    rss_base = at_rest(a.start) or base[2]
    rss_after = at_rest(final[0]) or final[2]
    cpu_s = (final[1] - base[1]) / a.clk_tck
    r["cpu_s"] = round(cpu_s, 1)
    r["cpu_cores_avg"] = round(cpu_s / max(a.end - a.start, 0.001), 2)
    peak = 0.0
    for i, s in enumerate(samples):
        if s[0] < a.start:
            continue
        # Busiest 5 s window.
        j = i
        while j + 1 < len(samples) and samples[j + 1][0] - s[0] <= 5.5:
            j += 1
        if samples[j][0] - s[0] >= 4.5:
            peak = max(peak, (samples[j][1] - s[1]) / a.clk_tck / (samples[j][0] - s[0]))
    r["cpu_cores_peak5s"] = round(peak, 2)
    # CPU per answered call, set-up and media together (write_doc.py splits
    # the two across runs); microseconds.
    r["cpu_us_per_call"] = round(cpu_s * 1e6 / r["answered"]) if r["answered"] else None
    r["rss_baseline_mb"] = round(rss_base / 1024, 1)
    r["rss_peak_mb"] = round(max(s[2] for s in during + [final]) / 1024, 1)
    r["rss_hwm_mb"] = round(a.hwm_kb / 1024, 1)
    r["rss_after_mb"] = round(rss_after / 1024, 1)
    # jemalloc at the peak: what the program held, what the allocator had
    # resident (MB).
    r["heap_peak_mb"] = (
        {"allocated": round(max(h[0] for h in heap) / 2**20, 1),
         "resident": round(max(h[1] for h in heap) / 2**20, 1)}
        if heap else None
    )
    r["rss_after_vs_baseline"] = round(rss_after / rss_base - 1, 3)
    # The cold start's RSS (before the first wave, --warm), and the after
    # against it.
    cold_mb = r["rss_mappings"]["cold"].get("total")
    r["rss_cold_mb"] = cold_mb
    r["rss_after_vs_cold"] = round(rss_after / 1024 / cold_mb - 1, 3) if cold_mb else None
    r["rss_per_call_kb"] = (
        round((max(s[2] for s in during + [final]) - rss_base) / r["peak_concurrent"], 1)
        if r["peak_concurrent"]
        else None
    )

    # SIPp's own CPU: a load generator at its limit skews every number.
    sp = os.path.join(w, "sipp_samples.txt")
    sipp_samples = []
    if os.path.exists(sp):
        with open(sp) as f:
            sipp_samples = [line.split() for line in f if len(line.split()) == 3]
    r["sipp_cpu_s"] = (
        round((int(sipp_samples[-1][1]) - int(sipp_samples[0][1])) / a.clk_tck, 1)
        if len(sipp_samples) > 1
        else None
    )

    # Recordings: the caller's channel holds a non-zero sample for every
    # sample of PCMA the caller sent that reached it (A-law has no zero).
    wavs = sorted(glob.glob(os.path.join(w, "recordings", "**", "*.wav"), recursive=True))
    warm_path = os.path.join(w, "warm_recordings.txt")
    if os.path.exists(warm_path):
        with open(warm_path) as f:
            first_wave = {line.strip() for line in f}
        wavs = [p for p in wavs if p not in first_wave]
    expected_per_call = a.audio_packets
    written_samples = 0
    short_calls = 0
    for p in wavs:
        _, nonzero = wav_caller_samples(p)
        written_samples += min(nonzero, expected_per_call * FRAME)
        if nonzero < expected_per_call * FRAME:
            short_calls += 1
    # Every call that got its 200 (and so sent its ACK and its audio) owes
    # a recording with all of its audio.
    expected = expected_per_call * r["answered"]
    written = written_samples / FRAME
    r["recordings"] = len(wavs)
    r["rtp_expected"] = expected
    r["rtp_written"] = round(written, 1)
    r["rtp_missing_pct"] = round(100 * (expected - written) / expected, 3) if expected else None
    r["recordings_short"] = short_calls

    with open(a.json, "w") as f:
        json.dump(r, f, indent=1)
    print(
        f"{a.name}: attempted {r['attempted']}, answered {r['answered']}, failed {r['failed']} "
        f"{r['failed_by_reason'] or ''}; peak concurrent {r['peak_concurrent']}\n"
        f"  100 Trying ms {r['trying_ms']}  ({no_trying} without)\n"
        f"  200 OK ms     {r['answer_ms']}\n"
        f"  RTP expected {expected}, in recordings {r['rtp_written']} "
        f"(missing {r['rtp_missing_pct']} %, {short_calls} short of {len(wavs)} recordings)\n"
        f"  gateway CPU {r['cpu_s']} s over {r['wall_s']} s (avg {r['cpu_cores_avg']} cores, "
        f"busiest 5 s {r['cpu_cores_peak5s']}); RSS cold start {r['rss_cold_mb']} MB, "
        f"baseline {r['rss_baseline_mb']} MB (after {a.warm} calls), "
        f"peak {r['rss_peak_mb']} MB (HWM {r['rss_hwm_mb']}), after {r['rss_after_mb']} MB; "
        f"{r['rss_per_call_kb']} KB per concurrent call\n"
        f"  gateway: {r['gateway_metrics']} ended {r['gateway_ended']}; caller RTP "
        f"dropped {r['gateway_rtp_dropped']}, late {r['gateway_rtp_late']}; sipp CPU {r['sipp_cpu_s']} s"
    )
    if errors:
        print("  sipp errors (first): " + " | ".join(errors[:3]), file=sys.stderr)


if __name__ == "__main__":
    main()
