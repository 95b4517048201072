#!/usr/bin/env bash
# test_relay_config.sh - a source's relay settings in a cluster, against the shared etcd fixture
# and the sandbox source: a master and a worker, one source bound to the worker, no task.
#  - relay/enable checks relay_dir on the server that runs the relay, the bound worker: the
#    leader checks only its form and creates nothing (a path inside the leader's data dir is
#    accepted there and refused by the worker, in the relay's status; a path inside the
#    worker's is accepted and used); worker_name_list names the cluster's workers (the bound
#    one), not the single server's "worker1";
#  - a change of another source (a disabled one created, then deleted) leaves the running relay
#    alone: it is not stopped and its status never disappears.
set -uo pipefail
SERVER=${SLUICE_SERVER_BIN:?SLUICE_SERVER_BIN is not set}
: "${SLUICE_ETCD_ENDPOINTS:?SLUICE_ETCD_ENDPOINTS is not set: eval \"\$(scripts/etcd env)\"}"
for v in SLUICE_SOURCE_HOST SLUICE_SOURCE_PORT SLUICE_SOURCE_USER SLUICE_SOURCE_PASSWORD; do
    [ -n "${!v:-}" ] || { echo "FAIL: $v is not set (eval \"\$(scripts/sandbox env)\")" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "FAIL: jq is needed" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-relaycfg-test.XXXXXX")
ROOT=/sluice-test-relaycfg/$$
TTL=3
SRC=rc$$-src
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
api() { curl -s -m 60 "http://127.0.0.1:${PORTS[m1]}/api/v1/$1"; }
call() {
    curl -s -m 60 -o "$WORK/body" -w '%{http_code}' -X "$1" ${3:+-H 'Content-Type: application/json' -d "$3"} \
        "http://127.0.0.1:${PORTS[m1]}/api/v1/$2"
}
src_body() {
    printf '{"source_name":"%s","host":"%s","port":%s,"user":"%s","password":"%s","enable":%s}' \
        "$1" "$SLUICE_SOURCE_HOST" "$SLUICE_SOURCE_PORT" "$SLUICE_SOURCE_USER" "$SLUICE_SOURCE_PASSWORD" "$2"
}
relay() { api "sources/$SRC/status" | jq -r ".data[0].relay_status.$1 // empty"; }
wait_for() {   # DESC CMD WANT: poll CMD for up to 30 s
    local got i
    for i in $(seq 1 300); do
        got=$(eval "$2")
        [ "$got" = "$3" ] && break
        sleep 0.1
    done
    check "$1" "$got" "$3"
}

start m1 master
start w1 worker
check "POST /sources" "$(call POST sources "$(src_body "$SRC" true)")" 201
wait_for "the source is bound to w1" "api cluster/workers | jq -r '.data[] | select(.name == \"w1\") | .bound_source_name'" "$SRC"

# ---- relay_dir is the worker's: the leader checks its form only and creates nothing ----
check "relay_dir with '..' is refused" \
    "$(call POST "sources/$SRC/relay/enable" '{"relay_dir":"a/../../b"}')" 400
check "relay_dir inside the leader's data dir: the leader accepts its form" \
    "$(call POST "sources/$SRC/relay/enable" "{\"relay_dir\":\"$WORK/m1/leader_rl\"}")" 200
check "and creates nothing in its own data dir" "$([ -e "$WORK/m1/leader_rl" ] && echo created || echo none)" none
wait_for "the worker refuses it: outside its data dir" \
    "relay error_msg | grep -c 'outside the server.s data dir $WORK/w1'" 1
check "the relay is Paused" "$(relay stage)" Paused
check "relay/disable" "$(call POST "sources/$SRC/relay/disable" '{}')" 200
check "worker_name_list naming no worker of the cluster" \
    "$(call POST "sources/$SRC/relay/enable" '{"worker_name_list":["nobody"]}') $(jq -r .error_code "$WORK/body")" "400 46004"
check "worker_name_list naming the single server's worker" \
    "$(call POST "sources/$SRC/relay/enable" '{"worker_name_list":["worker1"]}') $(jq -r .error_code "$WORK/body")" "400 46004"
check "relay_dir inside the worker's data dir, worker_name_list the bound worker" \
    "$(call POST "sources/$SRC/relay/enable" "{\"relay_dir\":\"$WORK/w1/rl\",\"worker_name_list\":[\"w1\"]}")" 200
wait_for "the relay runs" "relay stage" Running
check "in the worker's directory" "$(ls "$WORK/w1/rl/$SRC/relay.index" 2>/dev/null | wc -l)" 1
check "nothing on the leader" "$([ -e "$WORK/m1/rl" ] && echo created || echo none)" none

# ---- a change of another source leaves the relay alone ----
stops=$(grep -c "stops the relay of source $SRC" "$WORK/w1.log")
runs=$(grep -c "runs the relay of source $SRC" "$WORK/w1.log")
sample() {   # the relay's stage every 0.1 s for 3 s, the distinct values
    local i
    for i in $(seq 1 30); do relay stage; echo; sleep 0.1; done | grep -v '^$' | sort -u | paste -sd,
}
check "POST /sources s3 (disabled)" "$(call POST sources "$(src_body "s3-$$" false)")" 201
check "the relay's status meanwhile" "$(sample)" Running
check "DELETE /sources s3" "$(call DELETE "sources/s3-$$")" 204
check "the relay's status meanwhile" "$(sample)" Running
check "the worker did not stop the relay" "$(grep -c "stops the relay of source $SRC" "$WORK/w1.log")" "$stops"
check "nor start it again" "$(grep -c "runs the relay of source $SRC" "$WORK/w1.log")" "$runs"

for n in "${!PIDS[@]}"; do
    kill -TERM "${PIDS[$n]}"; wait "${PIDS[$n]}"; check "$n stops cleanly" "$?" 0; unset "PIDS[$n]"
done
if grep -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$WORK"/*.log >/dev/null; then
    fail "sanitizer report in a member's log"
fi
echo "$CHECKS checks, $FAILS failures"
[ "$FAILS" = 0 ]
