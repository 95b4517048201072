#!/usr/bin/env bash
# test_bindings.sh - source bindings (issue 13, binding.h) against the shared 3-member etcd
# fixture: the leader binds each enabled source to its own live worker (GET /cluster/workers:
# bound_stage bound, bound_source_name); kill -9 of a bound worker moves its source to a free
# worker with a larger epoch and lists the dead one offline, the other binding untouched; a
# deleted source frees its worker; transfer (REST and `sluice cluster transfer`) with DM's
# errors for an unknown, busy or offline worker; two transfers of one source at once (one 409).
# Needs the sandbox source (SLUICE_SOURCE_*) to register sources.
set -uo pipefail
SERVER=${SLUICE_SERVER_BIN:?SLUICE_SERVER_BIN is not set}
CLI=${SLUICE_CLI_BIN:?SLUICE_CLI_BIN is not set}
: "${SLUICE_ETCD_ENDPOINTS:?SLUICE_ETCD_ENDPOINTS is not set: eval \"\$(scripts/etcd env)\"}"
for v in SLUICE_SOURCE_HOST SLUICE_SOURCE_PORT SLUICE_SOURCE_USER SLUICE_SOURCE_PASSWORD; do
    [ -n "${!v:-}" ] || { echo "FAIL: $v is not set (eval \"\$(scripts/sandbox env)\")" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "FAIL: jq is needed" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bindings-test.XXXXXX")
ROOT=/sluice-test-bindings/$$
TTL=3
FAILS=0 CHECKS=0
declare -A PIDS PORTS
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

cleanup() {
    for n in "${!PIDS[@]}"; do kill -KILL "${PIDS[$n]}" 2>/dev/null; done
    if [ "$FAILS" = 0 ]; then rm -rf "$WORK"; else echo "(kept $WORK)"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
check() { CHECKS=$((CHECKS + 1)); if [ "$2" != "$3" ]; then fail "$1: got '$2', want '$3'"; fi; }

# start NAME ROLE: a member on a free port sharing m1's secret.key; waits until it serves
start() {
    local n=$1 role=$2 log=$WORK/$1.log i
    if [ "$n" != m1 ]; then
        mkdir -p "$WORK/$n" && cp "$WORK/m1/secret.key" "$WORK/$n/" && chmod 600 "$WORK/$n/secret.key"
    fi
    "$SERVER" --addr 127.0.0.1:0 --data-dir "$WORK/$n" --role "$role" --name "$n" \
        --etcd "$SLUICE_ETCD_ENDPOINTS" --etcd-root "$ROOT" --lease-ttl "$TTL" >>"$log" 2>&1 &
    PIDS[$n]=$!
    for i in $(seq 1 300); do
        if grep -q 'serving the DM OpenAPI' "$log"; then
            PORTS[$n]=$(sed -n 's/.*serving the DM OpenAPI.*(port \([0-9]*\)).*/\1/p' "$log" | tail -1)
            return 0
        fi
        kill -0 "${PIDS[$n]}" 2>/dev/null || { tail -20 "$log" >&2; fail "$n died at start"; exit 1; }
        sleep 0.1
    done
    fail "$n did not serve within 30 s"; exit 1
}
call() {
    curl -s -o "$WORK/body" -w '%{http_code}' -X "$2" ${4:+-H 'Content-Type: application/json' -d "$4"} \
        "http://127.0.0.1:${PORTS[$1]}/api/v1/$3"
}
src_body() {
    printf '{"source_name":"%s","host":"%s","port":%s,"user":"%s","password":"%s","enable":true}' \
        "$1" "$SLUICE_SOURCE_HOST" "$SLUICE_SOURCE_PORT" "$SLUICE_SOURCE_USER" "$SLUICE_SOURCE_PASSWORD"
}
workers() { curl -s "http://127.0.0.1:${PORTS[m1]}/api/v1/cluster/workers"; }
# the worker bound to source $1 ("" while none)
worker_of() { workers | jq -r --arg s "$1" '[.data[] | select(.bound_stage == "bound" and .bound_source_name == $s) | .name] | join(",")'; }
epoch_of() { workers | jq -r --arg s "$1" '[.data[] | select(.bound_source_name == $s) | .epoch] | max'; }
# wait_for DESC CMD WANT: poll CMD (the leader binds at each lease renewal) for up to 60 s
wait_for() {
    local got i
    for i in $(seq 1 600); do
        got=$(eval "$2")
        [ "$got" = "$3" ] && break
        sleep 0.1
    done
    check "$1" "$got" "$3"
}

start m1 master
start w1 worker
start w2 worker
check "free workers before any source" "$(workers | jq -r '[.data[].bound_stage] | join(",")')" free,free
check "POST /sources s1" "$(call m1 POST sources "$(src_body s1)")" 201
check "POST /sources s2" "$(call m1 POST sources "$(src_body s2)")" 201
wait_for "both sources bound, each to its own worker" \
    "workers | jq -r '[.data[] | select(.bound_stage == \"bound\") | .bound_source_name] | sort | join(\",\")'" s1,s2
w_s1=$(worker_of s1) w_s2=$(worker_of s2)
e_s1=$(epoch_of s1) e_s2=$(epoch_of s2)
check "s1 and s2 on different workers" "$([ -n "$w_s1" ] && [ -n "$w_s2" ] && [ "$w_s1" != "$w_s2" ] && echo yes)" yes
check "a binding has an epoch" "$([ "$e_s1" -gt 0 ] 2>/dev/null && echo yes)" yes

# kill -9 the worker of s1: with no free worker, s1 waits (its worker shows offline once its
# lease is gone); a new worker takes it with a larger epoch
kill -KILL "${PIDS[$w_s1]}"; wait "${PIDS[$w_s1]}" 2>/dev/null; unset "PIDS[$w_s1]"
wait_for "the killed worker is offline" \
    "workers | jq -r --arg w $w_s1 '.data[] | select(.name == \$w) | .bound_stage'" offline
start w3 worker
wait_for "s1 moves to the new worker" "worker_of s1" w3
check "its epoch grew" "$([ "$(epoch_of s1)" -gt "$e_s1" ] && echo yes)" yes
check "s2 stays where it was" "$(worker_of s2)" "$w_s2"
check "s2 keeps its epoch" "$(epoch_of s2)" "$e_s2"

# POST /sources/{name}/transfer: DM's errors for an unknown, busy or offline worker, an unknown
# source; then `sluice cluster transfer` to a free worker rebinds at once with a larger epoch
code() { call m1 POST "sources/$1/transfer" "{\"worker_name\":\"$2\"}"; echo " $(jq -r .error_code "$WORK/body")"; }
check "transfer to an unknown worker" "$(code s1 nobody)" "404 46004"
check "transfer to a busy worker" "$(code s1 "$w_s2")" "409 46033"
check "transfer to an offline worker" "$(code s1 "$w_s1")" "409 46033"
check "transfer of an unknown source" "$(code nosuch w3)" "404 46008"
check "transfer without worker_name" "$(call m1 POST sources/s1/transfer '{}')" 400
start w4 worker
e_s1=$(epoch_of s1)
"$CLI" cluster transfer s1 w4 --server "http://127.0.0.1:${PORTS[m1]}" >"$WORK/cli.out" 2>&1
check "sluice cluster transfer exits 0" "$?" 0
check "s1 is on w4 at once" "$(worker_of s1)" w4
check "the transfer's epoch grew" "$([ "$(epoch_of s1)" -gt "$e_s1" ] && echo yes)" yes
check "w3 is free again" "$(workers | jq -r '.data[] | select(.name == "w3") | .bound_stage')" free
"$CLI" cluster transfer s1 nobody --server "http://127.0.0.1:${PORTS[m1]}" >"$WORK/cli.out" 2>&1
check "the CLI fails on an unknown worker" "$?" 1
check "with the server's message" "$(grep -c 'dm-worker with name nobody not exists' "$WORK/cli.out")" 1

# two transfers of one source at the same moment: one at a time per source. While the first
# waits for the old worker, a second answers 409 (49006); only the first moves the source, and
# the worker it named holds it. Before, both answered 200: the second asked the same old worker
# and then bound over the first's new binding, whose worker was never asked to stop.
# The holder is paused for a second so that both wait for it at once; the two requests may still
# reach the same HTTP thread of the leader (it then serves them one after the other, and both
# are 200), so the race is run until one overlapped (at most 6 times). Whatever the outcome, the
# leader's log must show one release request at a time, each asking the source's holder.
start w5 worker
from=$(($(wc -l <"$WORK/m1.log") + 1))
overlapped=0
for round in 1 2 3 4 5 6; do
    holder=$(worker_of s1)
    targets=$(printf '%s\n' w3 w4 w5 | grep -vx "$holder" | paste -sd' ')
    kill -STOP "${PIDS[$holder]}"
    racers=()
    for t in $targets; do
        curl -s -o "$WORK/race.$t" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
            -d "{\"worker_name\":\"$t\"}" "http://127.0.0.1:${PORTS[m1]}/api/v1/sources/s1/transfer" \
            >"$WORK/race.$t.code" &
        racers+=($!)
    done
    sleep 1
    kill -CONT "${PIDS[$holder]}"
    wait "${racers[@]}"
    codes=$(for t in $targets; do cat "$WORK/race.$t.code"; echo; done | sort | paste -sd' ')
    if [ "$codes" = "200 409" ]; then
        overlapped=1
        for t in $targets; do
            if [ "$(cat "$WORK/race.$t.code")" = 200 ]; then won=$t; else lost=$t; fi
        done
        check "the refused one says a transfer is in progress" \
            "$(jq -r '.error_code' "$WORK/race.$lost")" 49006
        check "s1 is on the worker the 200 named" "$(worker_of s1)" "$won"
        check "the other worker is free" \
            "$(workers | jq -r --arg w $lost '.data[] | select(.name == $w) | .bound_stage')" free
        break
    fi
    check "two transfers one after the other: both 200" "$codes" "200 200"
    [ "$codes" = "200 200" ] || break
done
check "two transfers overlapped once in 6 rounds (one 200, one 409)" "$overlapped" 1
# each "asked worker H to stop it" names the holder of the time, and none is asked while another
# request waits: no worker is bound over without being asked to stop first
check "one release request at a time, each of the holder" "$(tail -n +"$from" "$WORK/m1.log" | awk '
    /source s1: asked worker/ { h = $0; sub(/.*asked worker /, "", h); sub(/ .*/, "", h)
        if (pending != "" || (holder != "" && h != holder)) { print "ask of " h " while holder " holder " pending " pending; exit }
        pending = h }
    /source s1 transferred to worker/ { t = $0; sub(/.*transferred to worker /, "", t); sub(/ .*/, "", t)
        if (pending == "") { print "rebind to " t " without a request"; exit }
        holder = t; pending = "" }
    END { print "ok" }' | head -1)" ok
check "no release request is left" "$(curl -s -X POST "${SLUICE_ETCD_ENDPOINTS##*,}/v3/kv/range" \
    -d "{\"key\":\"$(printf '%s' "$ROOT/release/s1" | base64 -w0)\"}" | jq -r '.count // 0')" 0

# a deleted source frees its worker
check "DELETE /sources/s2" "$(call m1 DELETE sources/s2)" 204
wait_for "s2's worker is free" \
    "workers | jq -r --arg w $w_s2 '.data[] | select(.name == \$w) | .bound_stage + \":\" + .bound_source_name'" free:

for n in "${!PIDS[@]}"; do
    kill -TERM "${PIDS[$n]}"; wait "${PIDS[$n]}"; check "$n stops cleanly" "$?" 0; unset "PIDS[$n]"
done
if grep -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$WORK"/*.log >/dev/null; then
    fail "sanitizer report in a member's log"
fi
echo "$CHECKS checks, $FAILS failures"
[ "$FAILS" = 0 ]
