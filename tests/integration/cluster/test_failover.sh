#!/usr/bin/env bash
# test_failover.sh - failover with nothing lost and nothing applied twice (issue 13), against the
# shared 3-member etcd fixture and the sandbox MariaDB servers. Two members of role all (each a
# master and a worker: the source's bound worker runs its subtask, and here the leader is that
# worker) replicate one source under a live writer into a keyed and a keyless table:
#   kill -9 of the leader: the other one leads and resumes from the checkpoints in the target;
#   one etcd member killed (with SLUICE_ETCD_SCRIPT, as under ctest): replication goes on;
#   SIGSTOP of the new leader past its lease, then SIGCONT: the old leader is fenced (its
#   checkpoint transactions fail on the target's fence row; its metadata writes fail on etcd's
#   leader key) and commits nothing more.
# Then the tables are equal on source and target and the keyless table has no duplicate.
set -uo pipefail
SERVER=${SLUICE_SERVER_BIN:?SLUICE_SERVER_BIN is not set}
PLUGINS=${SLUICE_PLUGIN_DIR:?SLUICE_PLUGIN_DIR is not set}
: "${SLUICE_ETCD_ENDPOINTS:?SLUICE_ETCD_ENDPOINTS is not set: eval \"\$(scripts/etcd env)\"}"
for v in SLUICE_SOURCE_HOST SLUICE_SOURCE_PORT SLUICE_SOURCE_USER SLUICE_SOURCE_PASSWORD \
         SLUICE_TARGET_HOST SLUICE_TARGET_PORT SLUICE_TARGET_USER SLUICE_TARGET_PASSWORD; do
    [ -n "${!v:-}" ] || { echo "FAIL: $v is not set (eval \"\$(scripts/sandbox env)\")" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "FAIL: jq is needed" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-failover-test.XXXXXX")
ROOT=/sluice-test-failover/$$
TTL=3
DB=clu_fo_$$ COPY=clu_fo_copy_$$ TASK=fo$$
FAILS=0 CHECKS=0 WRITER=
declare -A PIDS PORTS
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

src_sql() { mariadb -h "$SLUICE_SOURCE_HOST" -P "$SLUICE_SOURCE_PORT" -u "$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD" -N -e "$1"; }
dst_sql() { mariadb -h "$SLUICE_TARGET_HOST" -P "$SLUICE_TARGET_PORT" -u "$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD" -N -e "$1"; }

cleanup() {
    [ -n "$WRITER" ] && kill "$WRITER" 2>/dev/null
    for n in "${!PIDS[@]}"; do kill -CONT "${PIDS[$n]}" 2>/dev/null; kill -KILL "${PIDS[$n]}" 2>/dev/null; done
    src_sql "DROP DATABASE IF EXISTS \`$DB\`" 2>/dev/null
    dst_sql "DROP DATABASE IF EXISTS \`$COPY\`; DROP TABLE IF EXISTS dm_meta.\`${TASK}_syncer_checkpoint\`;
             DELETE FROM dm_meta.sluice_fence WHERE source_name = 'fo-src'" 2>/dev/null
    if [ "$FAILS" = 0 ]; then rm -rf "$WORK"; else echo "(kept $WORK)"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
check() { CHECKS=$((CHECKS + 1)); if [ "$2" != "$3" ]; then fail "$1: got '$2', want '$3'"; fi; }

start() {
    local n=$1 log=$WORK/$1.log i before
    if [ "$n" != m1 ] && [ ! -e "$WORK/$n/secret.key" ]; then
        mkdir -p "$WORK/$n" && cp "$WORK/m1/secret.key" "$WORK/$n/" && chmod 600 "$WORK/$n/secret.key"
    fi
    before=$(grep -c 'serving the DM OpenAPI' "$log" 2>/dev/null)
    "$SERVER" --addr 127.0.0.1:0 --data-dir "$WORK/$n" --plugin-dir "$PLUGINS" --role all --name "$n" \
        --etcd "$SLUICE_ETCD_ENDPOINTS" --etcd-root "$ROOT" --lease-ttl "$TTL" >>"$log" 2>&1 &
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
api() { curl -s -m 30 "http://127.0.0.1:${PORTS[$1]}/api/v1/$2"; }
call() {
    curl -s -m 60 -o "$WORK/body" -w '%{http_code}' -X "$2" ${4:+-H 'Content-Type: application/json' -d "$4"} \
        "http://127.0.0.1:${PORTS[$1]}/api/v1/$3"
}
# wait_leader ASK WANT: until member ASK says WANT leads (the TTL and a generous margin)
wait_leader() {
    local i l=
    for i in $(seq 1 $((TTL * 10 + 600))); do
        l=$(api "$1" cluster/masters | jq -r '.data[] | select(.leader and .alive) | .name' 2>/dev/null)
        [ "$l" = "$2" ] && return 0
        sleep 0.1
    done
    fail "$2 did not become the leader (last seen: '$l')"
}
# wait_rows MIN: until the target's keyless table has more than MIN rows (replication moves)
wait_rows() {
    local i c=0
    for i in $(seq 1 1200); do
        c=$(dst_sql "SELECT COUNT(*) FROM \`$COPY\`.k" 2>/dev/null || echo 0)
        [ "${c:-0}" -gt "$1" ] && return 0
        sleep 0.1
    done
    fail "the target did not get past $1 rows (has $c)"
}

# ---- the source and its writer ----
src_sql "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`;
         CREATE TABLE \`$DB\`.t (id INT PRIMARY KEY, v INT NOT NULL);
         CREATE TABLE \`$DB\`.k (n INT NOT NULL, note VARCHAR(20))" || { fail "source setup"; exit 1; }
read -r BFILE BPOS < <(src_sql "SHOW MASTER STATUS" | awk '{print $1, $2}')
writer() {   # keyed upserts and keyless appends, 10 rows per round trip, until $WORK/stop
    local i=0
    while [ ! -e "$WORK/stop" ]; do
        local sql="" j
        for j in 1 2 3 4 5 6 7 8 9 10; do
            i=$((i + 1))
            sql+="INSERT INTO \`$DB\`.k VALUES ($i, 'row $i'); "
            sql+="INSERT INTO \`$DB\`.t VALUES ($((i % 97)), $i) ON DUPLICATE KEY UPDATE v = v + $i; "
        done
        src_sql "$sql" || { echo "writer failed at $i" >&2; return 1; }
        sleep 0.05
    done
}

start m1
start m2
wait_leader m2 m1
src='{"source_name":"fo-src","host":"'$SLUICE_SOURCE_HOST'","port":'$SLUICE_SOURCE_PORT',"user":"'$SLUICE_SOURCE_USER'","password":"'$SLUICE_SOURCE_PASSWORD'","enable":true}'
task='{"task":{"name":"'$TASK'","task_mode":"incremental","target_config":{"host":"'$SLUICE_TARGET_HOST'","port":'$SLUICE_TARGET_PORT',"user":"'$SLUICE_TARGET_USER'","password":"'$SLUICE_TARGET_PASSWORD'"},"table_migrate_rule":[{"source":{"source_name":"fo-src","schema":"'$DB'","table":"*"},"target":{"schema":"'$COPY'"}}],"source_config":{"source_conf":[{"source_name":"fo-src","binlog_name":"'$BFILE'","binlog_pos":'$BPOS'}]}}}'
dst_sql "CREATE DATABASE IF NOT EXISTS \`$COPY\`;
         CREATE TABLE \`$COPY\`.t (id INT PRIMARY KEY, v INT NOT NULL);
         CREATE TABLE \`$COPY\`.k (n INT NOT NULL, note VARCHAR(20))"
check "source created through the follower" "$(call m2 POST sources "$src")" 201
check "task created through the follower" "$(call m2 POST tasks "$task")" 200
check "task started through the follower" "$(call m2 POST tasks/$TASK/start '{}')" 200
writer & WRITER=$!
wait_rows 100

# ---- (b) kill -9 of the leader: m2 leads and resumes the subtask from the target's checkpoint ----
kill -KILL "${PIDS[m1]}"; wait "${PIDS[m1]}" 2>/dev/null; unset 'PIDS[m1]'
at=$(dst_sql "SELECT COUNT(*) FROM \`$COPY\`.k")
wait_leader m2 m2
wait_rows "$at"
check "the new leader runs the subtask" "$(api m2 tasks/$TASK/status | jq -r '.data[0].stage')" Running
start m1                                   # back as a follower
check "the old leader rejoins as a follower" \
    "$(api m1 cluster/masters | jq -r '.data[] | select(.name=="m1") | .leader')" false

# ---- (e) one etcd member of three dies: nothing stops (the fixture's script, member 1) ----
ETCD_SCRIPT=${SLUICE_ETCD_SCRIPT:-}
if [ -n "$ETCD_SCRIPT" ]; then
    "$ETCD_SCRIPT" kill 1 >/dev/null
    at=$(dst_sql "SELECT COUNT(*) FROM \`$COPY\`.k")
    wait_rows "$at"
    # if the killed member led etcd, the others elect a new etcd leader first (about a second
    # here): a request in that window may answer 503, then they answer again
    for i in $(seq 1 100); do
        t=$(api m1 cluster/masters | jq -r '.total' 2>/dev/null); [ "$t" = 2 ] && break; sleep 0.1
    done
    check "the API answers with an etcd member down" "$t" 2
fi

# ---- (c) SIGSTOP of the leader past its lease: m1 takes over; SIGCONT: m2 is fenced ----
kill -STOP "${PIDS[m2]}"
wait_leader m1 m1
kill -CONT "${PIDS[m2]}"
at=$(dst_sql "SELECT COUNT(*) FROM \`$COPY\`.k")
wait_rows "$at"
for i in $(seq 1 300); do grep -q 'no longer the leader' "$WORK/m2.log" && break; sleep 0.1; done
check "the paused leader learns it was deposed" "$(grep -c 'no longer the leader' "$WORK/m2.log")" 1
# the fence in the target holds the epoch of the source's newest binding (to m1, the process
# that runs it now: its start raised it past m2's)
e1=$(curl -s -X POST "${SLUICE_ETCD_ENDPOINTS##*,}/v3/kv/range" \
     -d "{\"key\":\"$(printf '%s' "$ROOT/bound/fo-src" | base64 -w0)\"}" | jq -r '.kvs[0].mod_revision')
# m1's subtask raises the fence when its sink starts, a moment after m1 says it runs the source
for i in $(seq 1 300); do
    fence=$(dst_sql "SELECT epoch FROM dm_meta.sluice_fence WHERE source_name = 'fo-src'")
    [ "$fence" = "$e1" ] && break
    sleep 0.1
done
check "the target's fence is the epoch of the source's new binding" "$fence" "$e1"
for i in $(seq 1 300); do grep -q 'joined again under a new lease' "$WORK/m2.log" && break; sleep 0.1; done
check "and joins again as a follower" \
    "$(api m1 cluster/masters | jq -c '.data[] | select(.name=="m2") | [.alive, .leader]')" '[true,false]'
check "m1 runs the subtask" "$(api m1 tasks/$TASK/status | jq -r '.data[0].stage')" Running
# the status names its worker once m1 publishes its live status (woken by the stage write, so
# within moments of the stage record the line above read); until then it names none
for i in $(seq 1 300); do
    w=$(api m2 tasks/$TASK/status | jq -r '.data[0].worker_name'); [ "$w" = m1 ] && break; sleep 0.1
done
check "m2 forwards to m1" "$w" m1

[ -n "$ETCD_SCRIPT" ] && "$ETCD_SCRIPT" start 1 >/dev/null

# ---- the writer stops; everything arrives once ----
touch "$WORK/stop"; wait "$WRITER"; check "the writer ran to the end" "$?" 0; WRITER=
want=$(src_sql "SELECT COUNT(*) FROM \`$DB\`.k")
for i in $(seq 1 1200); do
    got=$(dst_sql "SELECT COUNT(*) FROM \`$COPY\`.k"); [ "$got" -ge "$want" ] && break; sleep 0.1
done
sleep 1   # a duplicate would arrive with or after the last row: look again once more
check "keyless rows: as many on the target as on the source" "$(dst_sql "SELECT COUNT(*) FROM \`$COPY\`.k")" "$want"
check "keyless rows: no duplicate" "$(dst_sql "SELECT COUNT(*) - COUNT(DISTINCT n) FROM \`$COPY\`.k")" 0
check "keyless rows: the same set" "$(dst_sql "SELECT SUM(n), MAX(n) FROM \`$COPY\`.k")" \
    "$(src_sql "SELECT SUM(n), MAX(n) FROM \`$DB\`.k")"
check "keyed table: the same checksum" "$(dst_sql "CHECKSUM TABLE \`$COPY\`.t" | cut -f2)" \
    "$(src_sql "CHECKSUM TABLE \`$DB\`.t" | cut -f2)"
echo "replicated $want keyless rows across two failovers"

for n in m1 m2; do
    kill -TERM "${PIDS[$n]}"; wait "${PIDS[$n]}"; check "$n stops cleanly" "$?" 0; unset "PIDS[$n]"
done
if grep -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$WORK"/*.log >/dev/null; then
    fail "sanitizer report in a member's log"
fi
echo "$CHECKS checks, $FAILS failures"
[ "$FAILS" = 0 ]
