#!/usr/bin/env bash
# Load harness for the gateway (issue 9): the real binary, a real
# redis-server, SIPp placing full calls; everything on 127.0.0.1.
#
#   benches/load/run.sh run [options]        one load run, prints a summary
#   benches/load/run.sh standard [--doc] [--results DIR] [--bin PATH]
#                                            the standard set (the issue's four
#                                            targets, scaled to ~10 minutes);
#                                            --doc writes docs/performance.md,
#                                            --results keeps the JSON files
#
# Options of `run`:
#   --rate R        new calls a second (default 10)
#   --limit L       at most L calls at once (SIPp -l; default 1000)
#   --calls N       calls to place (default 20) ...
#   --duration S    ... or place calls for S seconds (N = R x S)
#   --message S     seconds the caller speaks after the intake (default 1)
#   --listen        the caller lets every prompt play out before keying (audio
#                   both ways most of the call: about 59 s + S a call);
#                   default: keys barge into the prompts (about 14 s + S)
#   --keys K        how the caller keys the intake: info (SIP INFO,
#                   application/dtmf-relay; the default) or pcap (RFC 4733
#                   events by SIPp's play_pcap_audio: a raw socket per key,
#                   which taxes every UDP send on the machine; for comparison)
#   --no-pin        let SIPp, Redis and the gateway share both cores (default:
#                   with 2 cores or more, the gateway on core 1, SIPp and Redis
#                   on core 0, by taskset: each side's CPU is its own)
#   --warm W        place W calls first (same rate and limit), let the gateway
#                   settle, and take the baseline then: the idle gateway
#                   that has carried calls (the cold start's RSS is kept
#                   beside it)
#   --name NAME     label in the results (default "run")
#   --json FILE     write the results as JSON to FILE
#   --bin PATH      gateway binary (default $HOTLINE_BIN, else
#                   target/release/hotline)
#   --keep          keep the work directory (logs, recordings)
#
# Environment: LOAD_SETTLE (seconds of rest before the after figures,
# default 12); LOAD_ALLOC_STATS=1 (jemalloc's full report at the cold start,
# before and after, into the gateway's log, through gdb); _RJEM_MALLOC_CONF
# reaches the gateway's jemalloc (allocator trials).
# Each call: INVITE (PCMA + telephone-event), 100, 180, 200, ACK; the caller's
# audio (benches/load/caller_audio.py, SIPp rtp_stream) and the intake's keys
# (SIP INFO, or RFC 4733 events: --keys), the message, #; the gateway reads
# the ticket back and sends BYE (benches/load/scenario.py fills the scenario in).
# Needs: sipp (sip-tester; as root for --keys pcap's raw sockets), redis-server,
# python3, curl, taskset (util-linux). Every process it starts is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/benches/load
BIN=${HOTLINE_BIN:-$ROOT/target/release/hotline}

die() {
    echo "load: $*" >&2
    exit 2
}

# A loopback port free for both UDP and TCP (tried again while another
# process holds the TCP side of the one the system offered).
free_port() {
    python3 -c 'import socket
while True:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0))
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", s.getsockname()[1])); break
    except OSError:
        s.close(); t.close()
print(s.getsockname()[1])'
}

# Processes this script started, stopped by pid on any exit.
PIDS=()
WORK=""
KEEP=0
SET_DIR=""
cleanup() {
    local p
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    for p in "${PIDS[@]:-}"; do
        [ -n "$p" ] && wait "$p" 2>/dev/null || true
    done
    PIDS=()
    if [ -n "$WORK" ] && [ "$KEEP" = 0 ]; then
        rm -rf "$WORK"
    fi
    if [ -n "$SET_DIR" ]; then
        rm -rf "$SET_DIR"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits up to $2 seconds for the pattern $1 in the file $3.
wait_for_line() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if grep -q "$1" "$3" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# /proc sampler: every second "epoch_s cpu_ticks rss_kb", and with an HTTP
# address (the gateway's) " allocated_bytes resident_bytes" from jemalloc's
# figures on /metrics.
sampler() {
    local pid=$1 out=$2 http=${3:-}
    while [ -r "/proc/$pid/stat" ]; do
        local stat rss alloc=""
        stat=$(cut -d' ' -f14,15 "/proc/$pid/stat" 2>/dev/null) || break
        rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null) || break
        if [ -n "$http" ]; then
            alloc=$(curl -s --max-time 1 "http://$http/metrics" | awk '
                /^hotline_allocator_bytes\{kind="allocated"\}/ {a = $2}
                /^hotline_allocator_bytes\{kind="resident"\}/ {r = $2}
                END {if (a != "") print " " a " " r}')
        fi
        echo "$(date +%s.%N) $((${stat% *} + ${stat#* })) $rss$alloc" >>"$out"
        sleep 1
    done
}

# Waits (up to 30 s) until the gateway at $1 counts as many ended calls as
# offered: recordings finalised, tickets written.
drained() {
    local i m offered ended
    for ((i = 0; i < 300; i++)); do
        m=$(curl -s --max-time 2 "http://$1/metrics" || true)
        offered=$(echo "$m" | awk '/^hotline_calls_offered_total/ {print $2}')
        ended=$(echo "$m" | awk '/^hotline_calls_ended_total/ {print $2}')
        [ -n "$offered" ] && [ "$offered" = "$ended" ] && return 0
        sleep 0.1
    done
}

cmd_run() {
    local rate=10 limit=1000 calls=20 duration="" message=1 name=run json="" listen=0
    local keys=info pin=1 warm=0
    while [ $# -gt 0 ]; do
        case $1 in
        --rate) rate=$2; shift 2 ;;
        --limit) limit=$2; shift 2 ;;
        --calls) calls=$2; shift 2 ;;
        --duration) duration=$2; shift 2 ;;
        --message) message=$2; shift 2 ;;
        --name) name=$2; shift 2 ;;
        --json) json=$2; shift 2 ;;
        --bin) BIN=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --listen) listen=1; shift ;;
        --keys) keys=$2; shift 2 ;;
        --no-pin) pin=0; shift ;;
        --warm) warm=$2; shift 2 ;;
        *) die "unknown option $1" ;;
        esac
    done
    if [ -n "$duration" ]; then
        calls=$(python3 -c "print(max(1, round($rate * $duration)))")
    fi
    [ -x "$BIN" ] || die "no gateway binary at $BIN (cargo build --release, or --bin)"
    for t in sipp redis-server python3 curl; do
        command -v $t >/dev/null || die "$t is not installed"
    done

    if [ -n "${LOAD_KEEP_DIR:-}" ]; then
        # Kept until the whole set is done: deleting thousands of recordings
        # just before the next run makes ext4 search long for free inodes
        # (recently deleted ones are skipped), which the gateway's file
        # creation would pay for.
        KEEP=1
        WORK=$(mktemp -d "$LOAD_KEEP_DIR/hotline-load.XXXXXX")
    else
        WORK=$(mktemp -d "${TMPDIR:-/tmp}/hotline-load.XXXXXX")
    fi
    local w=$WORK
    mkdir -p "$w/recordings" "$w/journal" "$w/redis" "$w/sipp"

    # Pauses between the keys (ms; uac_full.xml): barging into each prompt,
    # or waiting for each to end (greeting + menu 21.5 s, the case-number
    # question 7.2 s, the read-back ~6.5 s, the message intro 12.7 s).
    local p_menu=2000 p_case=1000 p_confirm=1000 p_intro=1000
    if [ "$listen" = 1 ]; then
        p_menu=22000 p_case=7500 p_confirm=6900 p_intro=13000
    fi
    # The caller's audio: from the ACK until the # that ends the message,
    # a little shorter so that all of it is sent before the gateway's BYE.
    local audio_packets message_ms talk_ms
    message_ms=$(python3 -c "print(max(100, int($message * 1000)))")
    talk_ms=$((p_menu + p_case + 1200 + p_confirm + p_intro + message_ms))
    audio_packets=$(python3 "$HERE/caller_audio.py" "$w/caller.al" \
        "$(python3 -c "print(($talk_ms - 100) / 1000)")")
    python3 "$HERE/scenario.py" "$HERE/uac_full.xml" "$w/sipp/uac_full.xml" \
        --keys "$keys" --audio "$w/caller.al" --message-ms "$message_ms" \
        --cases "$w/sipp/cases.csv" --calls "$calls" --pause "MENU=$p_menu" --pause "CASE=$p_case" \
        --pause "CONFIRM=$p_confirm" --pause "INTRO=$p_intro"
    # Each side on a core of its own (the gateway on the last, the load on
    # the first), or both sides sharing every core.
    local gw_cpu=() load_cpu=()
    if [ "$pin" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
        gw_cpu=(taskset -c "$(($(nproc) - 1))")
        load_cpu=(taskset -c 0)
    else
        pin=0
    fi

    # Redis of our own: free port, own directory, no persistence to wait on.
    local redis_port
    redis_port=$(free_port)
    "${load_cpu[@]}" redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$w/redis" \
        --save "" --appendonly no >"$w/redis.log" 2>&1 &
    PIDS+=($!)
    local i
    for ((i = 0; i < 50; i++)); do
        redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 || die "redis-server did not start"

    # The sample roster without SIP URIs or webhooks: no DNS look-ups on a
    # closed machine; pages go out as events for the officers' page.
    grep -v -E '^(sip|webhook) = ' "$ROOT/config/roster.toml" >"$w/roster.toml"
    local max_calls=$((limit + limit / 2 + 100))
    cat >"$w/hotline.toml" <<EOF
# Derived from config/hotline.toml by benches/load/run.sh: loopback only.
[sip]
listen = ["127.0.0.1:0"]
max_calls = $max_calls
ring_ms = 0
# SIPp is one source placing hundreds of calls a second: a trusted one, as
# the court's PBX or Kamailio would be (the admission limits are for the rest).
trusted = ["127.0.0.1"]
[media]
bind_ip = "127.0.0.1"
advertise_ip = "127.0.0.1"
rtp_port_min = 20000
rtp_port_max = 29999
[http]
listen = "127.0.0.1:0"
# The transcriber is measured on its own (benches/transcribe).
[transcribe]
enabled = false
[redis]
url = "redis://127.0.0.1:$redis_port/"
journal_dir = "$w/journal"
[recording]
dir = "$w/recordings"
[privacy]
key_file = "$w/caller.key"
[prompts]
dir = "$ROOT/config/prompts"
[roster]
file = "$w/roster.toml"
holidays = "$ROOT/config/holidays"
EOF

    NO_COLOR=1 HOTLINE_LOG=info "${gw_cpu[@]}" "$BIN" serve --config "$w/hotline.toml" >"$w/gateway.log" 2>&1 &
    local gw=$!
    PIDS+=($gw)
    wait_for_line "http listening" 20 "$w/gateway.log" || {
        tail -20 "$w/gateway.log" >&2
        die "the gateway did not start"
    }
    local sip http
    sip=$(sed -n 's/.*sip listening udp=\([0-9.:]*\).*/\1/p' "$w/gateway.log" | head -1)
    http=$(sed -n 's/.*http listening \([0-9.:]*\).*/\1/p' "$w/gateway.log" | head -1)
    [ -n "$sip" ] && [ -n "$http" ] || die "no listening addresses in the gateway's log"

    # Bounded: SIPp gives up after all calls could have been placed and
    # run their course twice over.
    local limit_s
    limit_s=$(python3 -c "c, r, l, t = $calls + $warm, $rate, $limit, $talk_ms / 1000 + 10
print(int(max(c / r, c / l * t) + 2 * t + 60))")

    # The gateway's memory at a point of the run: its mappings (what each
    # holds resident) and its metrics (the allocator's figures), as
    # smaps_/metrics_<when>.txt.
    snapshot() {
        cp "/proc/$gw/smaps" "$w/smaps_$1.txt" 2>/dev/null || true
        curl -s --max-time 5 "http://$http/metrics" >"$w/metrics_$1.txt" || true
        # LOAD_ALLOC_STATS=1: jemalloc's own report too (through gdb, into
        # the gateway's log; keep it with --keep).
        if [ "${LOAD_ALLOC_STATS:-0}" = 1 ]; then
            echo "=== allocator statistics: $1 ===" >>"$w/gateway.log"
            gdb -p "$gw" -batch -ex 'call (void)_rjem_malloc_stats_print(0,0,"")' >/dev/null 2>&1 || true
        fi
    }
    # CPU and RSS every second from here on: the baseline and the after
    # are read over the ten seconds before the calls and before the end.
    sampler "$gw" "$w/samples.txt" "$http" &
    PIDS+=($!)
    # The cold start; a first wave (--warm) and its settling; the baseline.
    sleep 3
    snapshot cold
    if [ "$warm" -gt 0 ]; then
        mkdir -p "$w/sipp-warm"
        cp "$w/sipp/uac_full.xml" "$w/sipp/cases.csv" "$w/sipp-warm/"
        (
            cd "$w/sipp-warm"
            exec "${load_cpu[@]}" sipp "$sip" -sf uac_full.xml -inf cases.csv -t u1 -i 127.0.0.1 \
                -p "$(free_port)" -mi 127.0.0.1 -mp "$(free_port)" \
                -r "$rate" -l "$limit" -m "$warm" -nostdin -timeout "${limit_s}s" \
                >sipp.out 2>sipp.err
        ) || echo "load: the first wave's SIPp exited with $?" >&2
        drained "$http"
        sleep "${LOAD_SETTLE:-12}"
        # Its recordings are not this run's.
        find "$w/recordings" -name '*.wav' >"$w/warm_recordings.txt"
    fi
    local log_offset
    log_offset=$(stat -c %s "$w/gateway.log")
    sleep 2
    snapshot before
    local start end loadavg
    loadavg=$(cut -d' ' -f1-3 /proc/loadavg)
    start=$(date +%s.%N)
    local sipp_port media_port
    sipp_port=$(free_port)
    media_port=$(free_port)
    local sipp_rc=0
    (
        cd "$w/sipp"
        exec "${load_cpu[@]}" sipp "$sip" -sf uac_full.xml -inf cases.csv -t u1 -i 127.0.0.1 -p "$sipp_port" \
            -mi 127.0.0.1 -mp "$media_port" \
            -r "$rate" -l "$limit" -m "$calls" -nostdin \
            -timeout "${limit_s}s" -timeout_error \
            -trace_stat -stf stat.csv -fd 1 -trace_counts \
            -trace_err -error_file errors.log \
            -trace_logs -max_recv_loops 2000 -max_sched_loops 2000 \
            >sipp.out 2>sipp.err
    ) &
    local sipp_pid=$!
    PIDS+=($sipp_pid)
    sampler "$sipp_pid" "$w/sipp_samples.txt" &
    PIDS+=($!)
    wait "$sipp_pid" || sipp_rc=$?
    end=$(date +%s.%N)
    # Calls still draining in the gateway (recordings finalised, tickets
    # written).
    drained "$http"
    # RSS after the calls: let it settle (idle blocking threads end after
    # 10 s; LOAD_SETTLE seconds, default 12).
    sleep "${LOAD_SETTLE:-12}"
    snapshot after
    local hwm
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$gw/status" 2>/dev/null || echo 0)
    local stat_end
    stat_end=$(cut -d' ' -f14,15 "/proc/$gw/stat")
    echo "$(date +%s.%N) $((${stat_end% *} + ${stat_end#* })) $(awk '/^VmRSS/ {print $2}' "/proc/$gw/status")" >>"$w/samples.txt"
    kill -TERM "$gw" 2>/dev/null || true
    wait "$gw" 2>/dev/null || true

    python3 "$HERE/analyse.py" \
        --work "$w" --name "$name" --rate "$rate" --limit "$limit" --calls "$calls" \
        --message "$message" --listen "$listen" --keys "$keys" --pinned "$pin" --audio-packets "$audio_packets" --start "$start" --end "$end" \
        --hwm-kb "$hwm" --sipp-rc "$sipp_rc" --warm "$warm" --log-offset "$log_offset" --clk-tck "$(getconf CLK_TCK)" --loadavg "$loadavg" \
        --json "${json:-$w/result.json}"
    cleanup
}

# The issue's targets, scaled to fit ~15 minutes on this machine (keys by
# SIP INFO, the gateway on a core of its own, unless said):
#   latency    100 calls/s for 15 s: 100 Trying and 200 OK percentiles
#   concurrent 1,000 calls at once for 1-2 minutes (2,000 calls of ~64 s
#              that let every prompt play while the caller talks: audio
#              both ways; placed at 50/s up to the limit)
#   rate       200 calls/s for a minute (12,000 calls), full flow, no failure
#   rate-pcap  200 calls/s for 15 s with the keys as RFC 4733 events from
#              pcaps (the harness before: raw sockets), to compare
#   overload   120 calls/s for 30 s: more than twice the 50/s one core
#              carries (the memory run's rate); every admitted call keeps
#              its audio, the rest get 503 with Retry-After
#   memory     a first wave of 2,000 calls, a minute's rest (the baseline:
#              the idle gateway that has carried calls; its cold start kept
#              beside it), then 10,000 calls at 50/s (about 750 at once):
#              RSS per call, and RSS back to the baseline a minute after
cmd_standard() {
    local doc=0 out=""
    while [ $# -gt 0 ]; do
        case $1 in
        --doc) doc=1; shift ;;
        --bin) BIN=$2; shift 2 ;;
        --results) out=$2; shift 2 ;;
        *) die "unknown option $1" ;;
        esac
    done
    if [ -n "$out" ]; then
        mkdir -p "$out"
    else
        out=$(mktemp -d "${TMPDIR:-/tmp}/hotline-load-set.XXXXXX")
        WORK=$out
    fi
    export LOAD_KEEP_DIR
    LOAD_KEEP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/hotline-load-work.XXXXXX")
    SET_DIR=$LOAD_KEEP_DIR
    local started
    started=$(date +%s)
    "$0" run --bin "$BIN" --name latency --rate 100 --duration 15 --limit 3000 --message 0 \
        --json "$out/latency.json" || echo "load: the latency run failed" >&2
    "$0" run --bin "$BIN" --name concurrent --rate 50 --calls 2000 --limit 1000 --listen --message 5 \
        --json "$out/concurrent.json" || echo "load: the concurrent run failed" >&2
    "$0" run --bin "$BIN" --name rate --rate 200 --duration 60 --limit 4000 --message 0 \
        --json "$out/rate.json" || echo "load: the rate run failed" >&2
    "$0" run --bin "$BIN" --name rate-pcap --keys pcap --rate 200 --duration 15 --limit 4000 --message 0 \
        --json "$out/rate-pcap.json" || echo "load: the rate-pcap run failed" >&2
    "$0" run --bin "$BIN" --name overload --rate 120 --duration 30 --limit 8000 --message 0 \
        --json "$out/overload.json" || echo "load: the overload run failed" >&2
    # RSS measured 60 s after the last call (the SIP core keeps a call's
    # transactions 32 s; the idle gateway gives freed pages back every 2 s).
    LOAD_SETTLE=60 "$0" run --bin "$BIN" --name memory --rate 50 --warm 2000 --calls 10000 --limit 2000 --message 0 \
        --json "$out/memory.json" || echo "load: the memory run failed" >&2
    local took=$(($(date +%s) - started))
    if [ "$doc" = 1 ]; then
        python3 "$HERE/write_doc.py" --doc "$ROOT/docs/performance.md" --bin "$BIN" \
            --took "$took" --command "benches/load/run.sh standard --doc" \
            "$out"/*.json
    fi
}

case ${1:-} in
run) shift; cmd_run "$@" ;;
standard) shift; cmd_standard "$@" ;;
*) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
