#!/usr/bin/env bash
# The cluster on one machine (issue 19), all on loopback: Kamailio in front
# (deploy/kamailio/kamailio.cfg: dispatcher, OPTIONS probes, pike), two
# gateways, a Redis master and replica and three sentinels. It shows, with
# SIPp callers through Kamailio:
#   1. calls are spread over both gateways;
#   2. after kill -9 of one gateway new calls are answered by the other, and
#      its open tickets' paging resumes there once its leases run out;
#   3. after kill -9 of the Redis master Sentinel fails over, calls go on
#      being answered, and every ticket exists exactly once afterwards;
#   4. a drained gateway (hotline drain) drops no call in progress, and the
#      calls meanwhile go to the other.
# Prints its figures; exits non-zero at the first check that fails.
#
#   scripts/cluster-test.sh [path/to/hotline]   (default: target/debug/hotline)
# Needs kamailio, redis-server, sipp, curl, python3 (scripts/test.sh installs
# them). Bounded: about a minute; every process it starts is stopped at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
bin=${1:-target/debug/hotline}
[ -x "$bin" ] || { echo "cluster-test: no gateway binary at $bin (cargo build)" >&2; exit 2; }
bin=$(realpath "$bin")
work=$(mktemp -d /tmp/hotline-cluster.XXXXXX)
pids=()
cleanup() {
    {
        for p in "${pids[@]}"; do kill -9 "$p" || true; done
        pkill -9 -f "$work/kamailio" || true
        wait
    } 2>/dev/null
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "cluster-test: FAILED at line $LINENO: $BASH_COMMAND" >&2' ERR

fail() { echo "cluster-test: FAILED: $*" >&2; exit 1; }
# A free loopback port (TCP and UDP both free).
port() {
    python3 - <<'PY'
import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); break
    except OSError:
        pass
    finally:
        t.close(); u.close()
print(p)
PY
}
# until SECONDS COMMAND...: COMMAND succeeds within SECONDS (polled).
until_ok() {
    local limit=$1; shift
    local end=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.2
    done
}
rcli() { redis-cli -p "$1" "${@:2}"; }
metric() { curl -s --max-time 2 "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
now_ms() { date +%s%3N; }

# Redis: master, replica, three sentinels.
master=$(port); replica=$(port)
mkdir -p "$work/r1" "$work/r2"
redis-server --port "$master" --bind 127.0.0.1 --dir "$work/r1" --appendonly yes --save "" >/dev/null &
pids+=($!)
redis-server --port "$replica" --bind 127.0.0.1 --dir "$work/r2" --appendonly yes --save "" \
    --replicaof 127.0.0.1 "$master" >/dev/null &
pids+=($!)
sentinels=()
for i in 1 2 3; do
    p=$(port); sentinels+=("$p")
    cat >"$work/sentinel-$i.conf" <<EOF
port $p
bind 127.0.0.1
dir $work
sentinel monitor hotline 127.0.0.1 $master 2
sentinel down-after-milliseconds hotline 1000
sentinel failover-timeout hotline 5000
EOF
    redis-server "$work/sentinel-$i.conf" --sentinel >/dev/null &
    pids+=($!)
done
until_ok 20 sh -c "redis-cli -p ${sentinels[0]} sentinel replicas hotline | grep -q $replica" ||
    fail "the sentinels do not see the replica"

# Two gateways: the same Redis (through the sentinels) and caller key.
grep -v '^sip = \|^webhook = ' config/roster.toml >"$work/roster.toml"
kport=$(port)
gateway_config() { # n sip http rtp_min
    mkdir -p "$work/gw$1"
    cat >"$work/gw$1/hotline.toml" <<EOF
[sip]
listen = ["127.0.0.1:$2"]
# Kamailio relays (routing only); the calls come from SIPp at 127.0.0.1,
# which plays the court's PBX here (its load is not limited per source).
proxies = ["127.0.0.1/32"]
trusted = ["127.0.0.1/32"]
drain_seconds = 30
[media]
bind_ip = "127.0.0.1"
advertise_ip = "127.0.0.1"
rtp_port_min = $4
rtp_port_max = $(($4 + 1999))
[http]
listen = "127.0.0.1:$3"
# The transcriber is tested on its own (tests/it/transcribe.rs).
[transcribe]
enabled = false
[redis]
url = "redis://127.0.0.1:$master/"
sentinels = ["127.0.0.1:${sentinels[0]}", "127.0.0.1:${sentinels[1]}", "127.0.0.1:${sentinels[2]}"]
master_name = "hotline"
journal_dir = "$work/gw$1/journal"
[privacy]
key_file = "$work/caller.key"
[recording]
dir = "$work/gw$1/recordings"
[prompts]
dir = "$repo/config/prompts"
[roster]
file = "$work/roster.toml"
holidays = "$repo/config/holidays"
[paging]
lease_seconds = 5
# Violence is paged again every 3 s until acknowledged: the pages after a
# gateway's death show its leases taken over. To the director, who has a
# phone at every hour (the duty unit names nobody in working hours, and the
# day desk has no phone in the sample roster: a page to nobody is no page).
[paging.policies.violence]
steps = [
  { after_seconds = 0, targets = ["director"], repeat_seconds = 3, until = "acknowledged" },
]
EOF
}
declare -A sip http gwpid
start_gateway() { # n
    HOTLINE_LOG=info "$bin" serve --config "$work/gw$1/hotline.toml" >>"$work/gw$1/log" 2>&1 &
    gwpid[$1]=$!
    pids+=($!)
    until_ok 20 curl -sf "http://127.0.0.1:${http[$1]}/healthz" || fail "gateway $1 did not start: $(tail -5 "$work/gw$1/log")"
}
for n in 1 2; do
    sip[$n]=$(port); http[$n]=$(port)
    gateway_config "$n" "${sip[$n]}" "${http[$n]}" $((40000 + n * 2000))
done
# The first creates the caller key; the second shares it.
start_gateway 1
start_gateway 2

# Kamailio in front, probing both (one worker per socket: SIPp here insists
# on the 180 before the 200, which workers in parallel may reorder).
printf '1 sip:127.0.0.1:%s\n1 sip:127.0.0.1:%s\n' "${sip[1]}" "${sip[2]}" >"$work/dispatcher.list"
mkdir -p "$work/kamailio"
kamailio -f deploy/kamailio/kamailio.cfg -DD -E -n 1 -w "$work/kamailio" -Y "$work/kamailio" \
    -P "$work/kamailio/pid" -A 'LISTEN_HOST=127.0.0.1' -A "LISTEN_PORT=$kport" \
    -A "DISPATCHER_LIST=\"$work/dispatcher.list\"" 2>"$work/kamailio.log" &
pids+=($!)
until_ok 10 bash -c "echo >/dev/tcp/127.0.0.1/$kport" || fail "kamailio did not start: $(tail -5 "$work/kamailio.log")"
sleep 3 # two probe rounds: both gateways up

# calls TAG N [SCENARIO]: N SIPp calls through Kamailio (5 a second, 0.5 s
# each; uac_greeting.xml unless said); prints how many succeeded.
calls() {
    local out="$work/sipp-$1"
    mkdir -p "$out"
    (cd "$out" && sipp "127.0.0.1:$kport" -sf "$repo/tests/sipp/${3:-uac_greeting.xml}" -m "$2" -r 5 -l 10 -d 500 \
        -i 127.0.0.1 -p "$(port)" -set rtpport "$(port)" -nostdin -timeout 60s -timeout_error \
        -trace_stat -stf stat.csv -trace_err -error_file errors.log >/dev/null 2>&1) || true
    # SuccessfulCall(C) is a column of the last line of the stat file.
    python3 - "$out/stat.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
head, last = rows[0], rows[-1]
print(last[head.index("SuccessfulCall(C)")])
PY
}
answered() { metric "${http[$1]}" hotline_calls_answered_total; }
# The tickets of violence reports (on the Redis at port $1).
violence() {
    for k in $(rcli "$1" --scan --pattern 'hotline:ticket:*' | awk -F: 'NF == 3'); do
        if [ "$(rcli "$1" hget "$k" category)" = violence ]; then echo "${k#hotline:ticket:}"; fi
    done
}
# When ticket $2 was last paged (Unix ms; 0: never), on the Redis at port $1.
last_page_ms() {
    rcli "$1" --raw xrevrange "hotline:ticket:$2:timeline" + - count 50 | python3 -c '
import re, sys
lines = sys.stdin.read().split("\n")
i = 0
while i < len(lines):
    if re.fullmatch(r"\d+-\d+", lines[i]):
        fields = dict(zip(lines[i + 1:i + 15:2], lines[i + 2:i + 15:2]))
        if fields.get("action") == "page":
            print(lines[i].split("-")[0]); sys.exit()
    i += 1
print(0)'
}

# 1. Spread.
ok=$(calls spread 20)
a1=$(answered 1); a2=$(answered 2)
echo "spread: $ok/20 answered; gateway 1 $a1, gateway 2 $a2"
[ "$ok" = 20 ] || fail "calls through Kamailio not all answered"
[ "${a1:-0}" -gt 0 ] && [ "${a2:-0}" -gt 0 ] || fail "calls not spread over both gateways"

# Four violence reports: open at once, paged every 3 s by either gateway.
ok=$(calls violence 4 uac_violence.xml)
[ "$ok" = 4 ] || fail "violence reports through Kamailio not all answered"
open_tickets=$(violence "$master")
[ "$(echo "$open_tickets" | wc -w)" = 4 ] || fail "violence tickets: $open_tickets"

# 2. kill -9 of a gateway.
{ kill -9 "${gwpid[1]}" && wait "${gwpid[1]}"; } 2>/dev/null || true
killed=$(now_ms)
ok=$(calls gateway-killed 10)
echo "gateway 1 killed: $ok/10 calls answered (all by gateway 2: $(answered 2) in all)"
[ "$ok" = 10 ] || fail "calls were lost after a gateway died"
# Its leases run out (5 s): every open ticket is paged again, by gateway 2.
resumed() {
    for n in $open_tickets; do
        [ "$(last_page_ms "$master" "$n")" -gt $((killed + 5000)) ] || return 1
    done
}
until_ok 30 resumed || fail "paging did not resume on the survivor"
echo "paging of the 4 open tickets resumed on gateway 2 within $(( ($(now_ms) - killed) / 1000 )) s of the kill"
down=$(grep -m1 -o "HOTLINE-DOWN.*${sip[1]}" "$work/kamailio.log" >/dev/null && echo yes || echo no)
echo "gateway 1 marked down by Kamailio: $down"
start_gateway 1
sleep 3

# 3. kill -9 of the Redis master.
before=$(rcli "$master" --scan --pattern 'hotline:ticket:*' | awk -F: 'NF == 3' | wc -l)
{ kill -9 "${pids[0]}" && wait "${pids[0]}"; } 2>/dev/null || true
failover_start=$(now_ms)
ok=$(calls redis-killed 10)
until_ok 30 sh -c "redis-cli -p ${sentinels[0]} sentinel get-master-addr-by-name hotline | grep -q $replica" ||
    fail "Sentinel did not fail over"
failover_s=$(( ($(now_ms) - failover_start) / 1000 ))
echo "redis master killed: $ok/10 calls answered; Sentinel named the replica within ${failover_s} s"
[ "$ok" = 10 ] || fail "calls were not answered during the Redis failover"
# Back as a replica: the journals empty.
redis-server --port "$master" --bind 127.0.0.1 --dir "$work/r1" --appendonly yes --save "" >/dev/null &
pids+=($!)
expected=$((20 + 4 + 10 + 10))
count() { rcli "$replica" --scan --pattern 'hotline:ticket:*' | awk -F: 'NF == 3' | wc -l; }
until_ok 30 sh -c "[ \$(redis-cli -p $replica --scan --pattern 'hotline:ticket:*' | awk -F: 'NF == 3' | wc -l) -ge $expected ]" || true
tickets=$(count)
distinct=$(for k in $(rcli "$replica" --scan --pattern 'hotline:ticket:*' | awk -F: 'NF == 3'); do
    rcli "$replica" hget "$k" call_id; done | sort -u | wc -l)
echo "tickets: $tickets for $expected calls ($before before the failover), $distinct distinct Call-IDs"
[ "$tickets" = "$expected" ] || fail "tickets lost or doubled: $tickets for $expected calls"
[ "$distinct" = "$expected" ] || fail "a call has two tickets"

# 4. Drain with a call in progress: a 6 s call, then drain the gateway
# that has it; calls meanwhile go to the other.
mkdir -p "$work/sipp-long"
(cd "$work/sipp-long" && sipp "127.0.0.1:$kport" -sf "$repo/tests/sipp/uac_greeting.xml" -m 1 -d 6000 \
    -i 127.0.0.1 -p "$(port)" -set rtpport "$(port)" -nostdin -timeout 30s -timeout_error >/dev/null 2>&1) &
long=$!
sleep 1.5
holder=1
[ "$(metric "${http[2]}" hotline_rtp_ports_leased)" -gt 0 ] && holder=2
other=$((3 - holder))
"$bin" drain --config "$work/gw$holder/hotline.toml" >/dev/null || fail "hotline drain failed"
ok=$(calls during-drain 5)
wait "$long" || fail "the call in progress was dropped by the drain"
code=0; wait "${gwpid[$holder]}" || code=$?
echo "drain of gateway $holder: the call in progress completed; $ok/5 calls meanwhile answered (by gateway $other); it exited $code"
[ "$ok" = 5 ] || fail "calls during the drain were lost"
[ "$code" = 0 ] || fail "the drained gateway exited $code"
echo "cluster-test: ok"
