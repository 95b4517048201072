#!/usr/bin/env bash
# test_members.sh - sluice-server as a cluster member (issue 13) against the shared 3-member etcd
# fixture: bad cluster settings fail at start with a clear message and write nothing; two masters
# elect one leader and list each other; a worker registers; a live name is refused; kill -9 of the
# leader makes the other master lead within the lease; DELETE of members answers as DM does;
# a follower forwards writes and reads to the leader, and a new leader serves what the old one
# wrote (from etcd); a member whose secret.key differs from the cluster's is refused.
# Needs the sandbox source (SLUICE_SOURCE_*) for the source it registers.
set -uo pipefail
SERVER=${SLUICE_SERVER_BIN:?SLUICE_SERVER_BIN is not set}
: "${SLUICE_ETCD_ENDPOINTS:?SLUICE_ETCD_ENDPOINTS is not set: eval \"\$(scripts/etcd env)\"}"
for v in SLUICE_SOURCE_HOST SLUICE_SOURCE_PORT SLUICE_SOURCE_USER SLUICE_SOURCE_PASSWORD; do
    [ -n "${!v:-}" ] || { echo "FAIL: $v is not set (eval \"\$(scripts/sandbox env)\")" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "FAIL: jq is needed" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-cluster-test.XXXXXX")
ROOT=/sluice-test-members/$$            # this run's keys only
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

# etcd keys under a prefix, counted through the v3 gateway (base64 key and range_end)
etcd_count() {
    local first=${SLUICE_ETCD_ENDPOINTS%%,*} k e
    k=$(printf '%s' "$1" | base64 -w0)
    e=$(printf '%s' "${1%?}$(printf '%s' "${1: -1}" | tr '/' '0')" | base64 -w0)
    curl -s -X POST "$first/v3/kv/range" -d "{\"key\":\"$k\",\"range_end\":\"$e\",\"count_only\":true}" |
        jq -r '.count // "0"'
}

# start NAME ROLE: a member on a free port, waits until it serves. Every member but the first
# gets the first one's secret.key: a cluster's members share it (passwords sealed by any master).
start() {
    local n=$1 role=$2 log=$WORK/$1.log i before
    if [ "$n" != m1 ] && [ ! -e "$WORK/$n/secret.key" ]; then
        mkdir -p "$WORK/$n" && cp "$WORK/m1/secret.key" "$WORK/$n/" && chmod 600 "$WORK/$n/secret.key"
    fi
    before=$(grep -c 'serving the DM OpenAPI' "$log" 2>/dev/null)
    "$SERVER" --addr 127.0.0.1:0 --data-dir "$WORK/$n" --role "$role" --name "$n" \
        --etcd "$SLUICE_ETCD_ENDPOINTS" --etcd-root "$ROOT" \
        --lease-ttl "$TTL" >>"$log" 2>&1 &
    PIDS[$n]=$!
    for i in $(seq 1 300); do
        if [ "$(grep -c 'serving the DM OpenAPI' "$log")" -gt "${before:-0}" ]; then
            PORTS[$n]=$(sed -n 's/.*serving the DM OpenAPI.*(port \([0-9]*\)).*/\1/p' "$log" | tail -1)
            return 0
        fi
        kill -0 "${PIDS[$n]}" 2>/dev/null || { tail -20 "$log" >&2; fail "$n died at start"; exit 1; }
        sleep 0.1
    done
    fail "$n did not serve within 30 s"; exit 1
}
api() { curl -s "http://127.0.0.1:${PORTS[$1]}/api/v1/$2"; }
# call NAME METHOD PATH [BODY]: prints the HTTP code, the body goes to $WORK/body
call() {
    curl -s -o "$WORK/body" -w '%{http_code}' -X "$2" ${4:+-H 'Content-Type: application/json' -d "$4"} \
        "http://127.0.0.1:${PORTS[$1]}/api/v1/$3"
}
# leader_of VIA WANT [STEPS]: the live leader as member VIA lists it, once it is WANT or after
# STEPS tries 0.1 s apart (default: the TTL and a generous margin)
leader_of() {
    local l= i
    for i in $(seq 1 "${3:-$((TTL * 20 + 100))}"); do
        l=$(api "$1" cluster/masters | jq -r '.data[] | select(.leader and .alive) | .name' 2>/dev/null)
        [ "$l" = "$2" ] && break
        sleep 0.1
    done
    echo "$l"
}
src_body() {
    printf '{"source_name":"%s","host":"%s","port":%s,"user":"%s","password":"%s","enable":true}' \
        "$1" "$SLUICE_SOURCE_HOST" "$SLUICE_SOURCE_PORT" "$SLUICE_SOURCE_USER" "$SLUICE_SOURCE_PASSWORD"
}

# ---- bad settings: a clear message, a non-zero exit, nothing written (here or in etcd) ----
out=$("$SERVER" --data-dir "$WORK/bad1" --role boss --name x --etcd "$SLUICE_ETCD_ENDPOINTS" 2>&1)
check "unknown role exits non-zero" "$?" 2
check "unknown role is named" "$(grep -c "unknown role 'boss'" <<<"$out")" 1
check "unknown role writes no data dir" "$([ -e "$WORK/bad1" ] && echo yes || echo no)" no
out=$("$SERVER" --data-dir "$WORK/bad2" --role master --name x --etcd 127.0.0.1:1 --etcd-root "$ROOT" 2>&1)
check "unreachable etcd exits non-zero" "$([ $? -ne 0 ] && echo yes)" yes
check "unreachable etcd names the endpoint" "$(grep -c 'http://127.0.0.1:1' <<<"$out")" 1
check "unreachable etcd writes no data dir" "$([ -e "$WORK/bad2" ] && echo yes || echo no)" no
out=$("$SERVER" --data-dir "$WORK/bad3" --role worker --name x 2>&1)
check "a role without --etcd exits non-zero" "$?" 2
check "a role without --etcd says so" "$(grep -c 'needs --etcd' <<<"$out")" 1
out=$("$SERVER" --data-dir "$WORK/bad4" --etcd "$SLUICE_ETCD_ENDPOINTS" --etcd-root "$ROOT" 2>&1)
check "a member without --name exits non-zero" "$?" 2
check "nothing of this run in etcd yet" "$(etcd_count "$ROOT/")" 0

# ---- two masters, one worker ----
start m1 master
start m2 master
start w1 worker
j=$(api m2 cluster/masters)
check "two masters listed" "$(jq -r '.total' <<<"$j")" 2
check "both alive" "$(jq -r '[.data[] | select(.alive)] | length' <<<"$j")" 2
check "exactly one leader" "$(jq -r '[.data[] | select(.leader)] | length' <<<"$j")" 1
check "the first master leads" "$(jq -r '.data[] | select(.leader) | .name' <<<"$j")" m1
check "a master's advertised address (the port it got)" "$(jq -r '.data[] | select(.name=="m2") | .addr' <<<"$j")" "127.0.0.1:${PORTS[m2]}"
j=$(api m1 cluster/workers)
check "the worker listed" "$(jq -c '[.total, .data[0].name, .data[0].bound_stage]' <<<"$j")" '[1,"w1","free"]'

# any master answers: a follower forwards a write and a read to the leader
check "POST /sources on the follower" "$(call m2 POST sources "$(src_body src-a)")" 201
check "the leader has it" "$(api m1 sources | jq -r '[.data[].source_name] | join(",")')" src-a
check "the follower lists it (forwarded)" "$(api m2 sources | jq -r '[.data[].source_name] | join(",")')" src-a
check "a worker answers too" "$(api w1 sources/src-a | jq -r '.source_name')" src-a
check "a duplicate on the follower is the leader's 409" "$(call m2 POST sources "$(src_body src-a)")" 409
check "with DM's code" "$(jq -r '.error_code' "$WORK/body")" 46007

# a member with another secret.key is refused before it runs anything
mkdir -p "$WORK/badkey" && head -c 64 /dev/urandom >"$WORK/badkey/secret.key" && chmod 600 "$WORK/badkey/secret.key"
out=$("$SERVER" --addr 127.0.0.1:0 --data-dir "$WORK/badkey" --role master --name mx \
      --etcd "$SLUICE_ETCD_ENDPOINTS" --etcd-root "$ROOT" 2>&1)
check "a member with another secret.key exits non-zero" "$([ $? -ne 0 ] && echo yes)" yes
check "and says why" "$(grep -c 'is not the key of this cluster' <<<"$out")" 1

# a live name is refused: non-zero, the holder named, the holder untouched
mkdir -p "$WORK/w1b" && cp "$WORK/m1/secret.key" "$WORK/w1b/"
out=$("$SERVER" --addr 127.0.0.1:0 --data-dir "$WORK/w1b" --role worker --name w1 \
      --etcd "$SLUICE_ETCD_ENDPOINTS" --etcd-root "$ROOT" 2>&1)
check "a live worker name is refused" "$([ $? -ne 0 ] && echo yes)" yes
check "the refusal names the live holder" "$(grep -c "alive already (at 127.0.0.1:${PORTS[w1]})" <<<"$out")" 1
check "the holder is still listed" "$(api m1 cluster/workers | jq -r '.total')" 1
# role all registers as master and as worker: a name refused for either writes neither (no
# master record with no process behind it, listed offline forever)
out=$("$SERVER" --addr 127.0.0.1:0 --data-dir "$WORK/w1b" --role all --name w1 \
      --etcd "$SLUICE_ETCD_ENDPOINTS" --etcd-root "$ROOT" 2>&1)
check "a live worker name is refused for role all" "$([ $? -ne 0 ] && echo yes)" yes
check "the refusal names the live worker" "$(grep -c "a worker named w1 is alive already" <<<"$out")" 1
check "no master record is left behind" "$(api m1 cluster/masters | jq -r '[.data[].name] | sort | join(",")')" m1,m2
check "only the two masters' records and alive keys" \
    "$(etcd_count "$ROOT/member/master/") $(etcd_count "$ROOT/alive/master/")" "2 2"

# ---- kill -9 the leader: the other master leads once the lease runs out ----
kill -KILL "${PIDS[m1]}"; wait "${PIDS[m1]}" 2>/dev/null; unset 'PIDS[m1]'
check "m2 leads after the leader died" "$(leader_of m2 m2)" m2
j=$(api m2 cluster/masters)
check "the new leader serves what the old one wrote" "$(api m2 sources/src-a | jq -r '.source_name')" src-a
check "its password stays sealed in etcd and masked" "$(api m2 sources/src-a | jq -r '.password')" '******'
check "a write on the new leader" "$(call m2 DELETE sources/src-a)" 204
check "the worker forwards to the new leader" "$(api w1 sources | jq -r '.total')" 0
check "the dead master is listed offline" "$(jq -r '.data[] | select(.name=="m1") | .alive' <<<"$j")" false

# ---- DELETE of members ----
code=$(curl -s -o "$WORK/body" -w '%{http_code}' -X DELETE "http://127.0.0.1:${PORTS[m2]}/api/v1/cluster/masters/m2")
check "DELETE of a live master is 409" "$code" 409
check "with DM's error body" "$(jq -r '.error_msg | test("still online")' "$WORK/body")" true
code=$(curl -s -o "$WORK/body" -w '%{http_code}' -X DELETE "http://127.0.0.1:${PORTS[m2]}/api/v1/cluster/workers/nobody")
check "DELETE of an unknown worker is 404" "$code" 404
check "with DM's code" "$(jq -r '.error_code' "$WORK/body")" 46004
if [ -n "${SLUICE_CLI_BIN:-}" ]; then     # the same through `sluice cluster`
    out=$("$SLUICE_CLI_BIN" cluster offline worker nobody --server "http://127.0.0.1:${PORTS[m2]}" 2>&1)
    check "sluice cluster offline of an unknown worker fails" "$?" 1
    check "with the server's message" "$(grep -c 'dm-worker with name nobody not exists' <<<"$out")" 1
    "$SLUICE_CLI_BIN" cluster offline boss m1 --server "http://127.0.0.1:${PORTS[m2]}" >/dev/null 2>&1
    check "sluice cluster offline of an unknown role is a usage error" "$?" 2
    out=$("$SLUICE_CLI_BIN" cluster masters --server "http://127.0.0.1:${PORTS[m2]}")
    check "sluice cluster masters shows the leader" "$(jq -r '.data[] | select(.leader) | .name' <<<"$out")" m2
fi
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "http://127.0.0.1:${PORTS[m2]}/api/v1/cluster/masters/m1")
check "DELETE of a dead master is 204" "$code" 204
check "it is gone from the list" "$(api m2 cluster/masters | jq -r '.total')" 1

# ---- etcd loses its quorum (two members of three killed): writes answer 503 with DM's body;
# once it is back the members join again (their leases ran out meanwhile) and one leads ----
if [ -n "${SLUICE_ETCD_SCRIPT:-}" ]; then
    "$SLUICE_ETCD_SCRIPT" kill 2 >/dev/null; "$SLUICE_ETCD_SCRIPT" kill 3 >/dev/null
    check "a write without an etcd quorum is 503" "$(call m2 POST sources "$(src_body src-q)")" 503
    check "with DM's error body" "$(jq -r '.error_code' "$WORK/body")" 49005
    sleep "$TTL"                        # the leases run out while etcd cannot renew them
    "$SLUICE_ETCD_SCRIPT" start 2 >/dev/null; "$SLUICE_ETCD_SCRIPT" start 3 >/dev/null
    check "after the quorum is back m2 leads again" "$(leader_of m2 m2 $((TTL * 20 + 300)))" m2
    for i in $(seq 1 300); do
        code=$(call m2 POST sources "$(src_body src-q)"); [ "$code" = 201 ] && break
        # 409: an earlier try that answered 503 (etcd timed out) was applied after all
        [ "$code" = 409 ] && break; sleep 0.1
    done
    check "and writes go through" "$(call m2 GET sources/src-q)" 200
    # alive: free, or bound already to the source just written (the leader binds it at once)
    check "the worker is alive again" "$(api m2 cluster/workers | jq -r '.data[0].bound_stage | test("free|bound")')" true
fi

# ---- DELETE of a live master: the leader steps down first, then the other master leads; the
# removed one serves on (it forwards) but takes no part in elections until it is restarted ----
start m3 master
check "m3 joins as a follower" "$(api m3 cluster/masters | jq -r '.data[] | select(.name=="m3") | [.alive, .leader] | join(",")')" "true,false"
check "DELETE of the live leader m2 is 204" "$(call m3 DELETE cluster/masters/m2)" 204
j=$(api m3 cluster/masters)
check "m2 is gone from the list" "$(jq -r '[.data[] | select(.name=="m2")] | length' <<<"$j")" 0
check "m2 led no more when the answer came" "$(jq -r '[.data[] | select(.leader)] | map(.name) | join(",")' <<<"$j" | grep -c m2)" 0
check "m3 leads after m2 stepped down" "$(leader_of m3 m3)" m3
check "the removed m2 still answers (forwarded to m3)" "$(call m2 GET sources)" 200
code=$(call m2 DELETE cluster/masters/m3)
check "DELETE of the only live master is 409" "$code" 409
check "saying why" "$(jq -r '.error_msg | test("only live master")' "$WORK/body")" true
check "DELETE of an unknown master is 404" "$(call m3 DELETE cluster/masters/nobody)" 404
# m3 dies: the removed m2 must not take over (it would if it still campaigned)
kill -KILL "${PIDS[m3]}"; wait "${PIDS[m3]}" 2>/dev/null; unset 'PIDS[m3]'
sleep $((TTL * 2))
check "the removed master does not lead" "$(api m2 cluster/masters | jq -r '[.data[] | select(.leader)] | length')" 0
grep -q "master m2 was removed from the cluster" "$WORK/m2.log"
check "m2 logged that it was removed" "$?" 0
kill -TERM "${PIDS[m2]}"; wait "${PIDS[m2]}"; check "the removed m2 stops cleanly" "$?" 0; unset 'PIDS[m2]'
start m2 master
check "restarted, m2 joins again and leads" "$(leader_of m2 m2)" m2
call m2 DELETE sources/src-q >/dev/null    # (when the quorum part made it) frees the worker
for i in $(seq 1 $((TTL * 20 + 100))); do
    [ "$(api m2 cluster/workers | jq -r '.data[0].bound_stage')" = free ] && break
    sleep 0.1
done

# ---- a graceful stop gives the name back at once (the lease is revoked, not left to expire) ----
kill -TERM "${PIDS[w1]}"; wait "${PIDS[w1]}"; rc=$?; unset 'PIDS[w1]'
check "the worker stops cleanly" "$rc" 0
check "and is offline at once" "$(api m2 cluster/workers | jq -r '.data[0].bound_stage')" offline
start w1 worker
check "its name can be taken again" "$(api m2 cluster/workers | jq -r '.data[0].bound_stage')" free
for n in m2 w1; do
    kill -TERM "${PIDS[$n]}"; wait "${PIDS[$n]}"; check "$n stops cleanly" "$?" 0; unset "PIDS[$n]"
done
if grep -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$WORK"/*.log >/dev/null; then
    fail "sanitizer report in a member's log"
fi

echo "$CHECKS checks, $FAILS failures"
[ "$FAILS" = 0 ]
