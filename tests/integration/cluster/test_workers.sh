#!/usr/bin/env bash
# test_workers.sh - workers run their bound sources' subtasks (issue 13), against the shared
# 3-member etcd fixture and the sandbox MariaDB servers: 2 masters (role master: they run
# nothing) and 3 workers; 2 sources (two source definitions on the sandbox source: separate
# sources to sluice, each with its own binding, fence row, task and database), each replicated by
# a task_mode all task under a live writer into a keyed and a keyless append-only table.
#   - each source runs on its bound worker, under the binding's epoch; status comes from it;
#     a stop and a start on the API reach the worker;
#   (a) kill -9 of the worker of s1: s1 is rebound to the free worker, which resumes it;
#   (d) transfer of s2 under load to a free worker: the old worker stops it first;
#   (c) SIGSTOP of the worker running s1 past its lease: s1 moves, and after SIGCONT the old
#       worker commits nothing more (the target's fence holds the new binding's epoch);
#   DELETE of a live bound worker moves its source first (204); with no free worker it is 409;
#   a forced DELETE of a running task stops it on its worker before its checkpoints are removed.
# Then, after the writers stop, every table is equal on source and target (CHECKSUM TABLE and
# row by row) and the keyless tables hold every row once.
set -uo pipefail
SERVER=${SLUICE_SERVER_BIN:?SLUICE_SERVER_BIN is not set}
PLUGINS=${SLUICE_PLUGIN_DIR:?SLUICE_PLUGIN_DIR is not set}
: "${SLUICE_ETCD_ENDPOINTS:?SLUICE_ETCD_ENDPOINTS is not set: eval \"\$(scripts/etcd env)\"}"
for v in SLUICE_SOURCE_HOST SLUICE_SOURCE_PORT SLUICE_SOURCE_USER SLUICE_SOURCE_PASSWORD \
         SLUICE_TARGET_HOST SLUICE_TARGET_PORT SLUICE_TARGET_USER SLUICE_TARGET_PASSWORD; do
    [ -n "${!v:-}" ] || { echo "FAIL: $v is not set (eval \"\$(scripts/sandbox env)\")" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "FAIL: jq is needed" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-workers-test.XXXXXX")
ROOT=/sluice-test-workers/$$
TTL=3
FAILS=0 CHECKS=0
declare -A PIDS PORTS WRITERS
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
SRCS="s1 s2"
db() { echo "clu_w_$1_$$"; }
copy() { echo "clu_w_copy_$1_$$"; }
task() { echo "w$$$1"; }

src_sql() { mariadb -h "$SLUICE_SOURCE_HOST" -P "$SLUICE_SOURCE_PORT" -u "$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD" -N -e "$1"; }
dst_sql() { mariadb -h "$SLUICE_TARGET_HOST" -P "$SLUICE_TARGET_PORT" -u "$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD" -N -e "$1"; }

cleanup() {
    touch "$WORK/stop"
    for s in "${!WRITERS[@]}"; do kill "${WRITERS[$s]}" 2>/dev/null; done
    for n in "${!PIDS[@]}"; do kill -CONT "${PIDS[$n]}" 2>/dev/null; kill -KILL "${PIDS[$n]}" 2>/dev/null; done
    for s in $SRCS; do
        src_sql "DROP DATABASE IF EXISTS \`$(db $s)\`" 2>/dev/null
        dst_sql "DROP DATABASE IF EXISTS \`$(copy $s)\`;
                 DROP TABLE IF EXISTS dm_meta.\`$(task $s)_syncer_checkpoint\`,
                   dm_meta.\`$(task $s)_loader_checkpoint\`, dm_meta.\`$(task $s)_loader_tables\`;
                 DELETE FROM dm_meta.sluice_fence WHERE source_name = 'w$$-$s'" 2>/dev/null
    done
    if [ "$FAILS" = 0 ]; then rm -rf "$WORK"; else echo "(kept $WORK)"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
check() { CHECKS=$((CHECKS + 1)); if [ "$2" != "$3" ]; then fail "$1: got '$2', want '$3'"; fi; }

# start NAME ROLE: a member on a free port sharing m1's secret.key; waits until it serves
start() {
    local n=$1 role=$2 log=$WORK/$1.log i before
    if [ "$n" != m1 ] && [ ! -e "$WORK/$n/secret.key" ]; then
        mkdir -p "$WORK/$n" && cp "$WORK/m1/secret.key" "$WORK/$n/" && chmod 600 "$WORK/$n/secret.key"
    fi
    before=$(grep -c 'serving the DM OpenAPI' "$log" 2>/dev/null)
    "$SERVER" --addr 127.0.0.1:0 --data-dir "$WORK/$n" --plugin-dir "$PLUGINS" --role "$role" --name "$n" \
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
api() { curl -s -m 60 "http://127.0.0.1:${PORTS[$1]}/api/v1/$2"; }
call() {
    curl -s -m 60 -o "$WORK/body" -w '%{http_code}' -X "$2" ${4:+-H 'Content-Type: application/json' -d "$4"} \
        "http://127.0.0.1:${PORTS[$1]}/api/v1/$3"
}
etcd_get() {   # KEY FIELD: a field of the key's etcd record (mod_revision, ...)
    curl -s -X POST "${SLUICE_ETCD_ENDPOINTS##*,}/v3/kv/range" \
        -d "{\"key\":\"$(printf '%s' "$1" | base64 -w0)\"}" | jq -r ".kvs[0].$2 // empty"
}
bound_to() {   # SOURCE: the worker its binding names
    etcd_get "$ROOT/bound/$1" value | base64 -d 2>/dev/null | jq -r '.worker // empty' 2>/dev/null
}
# until SOURCE is bound to a worker other than NOT (and alive); echoes it
wait_moved() {
    local i w
    for i in $(seq 1 $((TTL * 10 + 300))); do
        w=$(bound_to "$1")
        if [ -n "$w" ] && [ "$w" != "$2" ] && kill -0 "${PIDS[$w]:-0}" 2>/dev/null; then echo "$w"; return 0; fi
        sleep 0.1
    done
    fail "source $1 did not move away from $2 (bound to '$w')"
}
status() { api m2 "tasks/$(task $1)/status" | jq -r ".data[0].$2" 2>/dev/null; }
wait_status() {   # SOURCE FIELD WANT
    local i v
    for i in $(seq 1 300); do
        v=$(status "$1" "$2"); [ "$v" = "$3" ] && return 0; sleep 0.1
    done
    check "task of $1: $2" "$v" "$3"
}
# wait_rows SOURCE MIN: until the target's keyless table of SOURCE has more than MIN rows
wait_rows() {
    local i c=0
    for i in $(seq 1 1200); do
        c=$(dst_sql "SELECT COUNT(*) FROM \`$(copy $1)\`.k" 2>/dev/null || echo 0)
        [ "${c:-0}" -gt "$2" ] && return 0
        sleep 0.1
    done
    fail "the target of $1 did not get past $2 rows (has $c)"
}
rows() { dst_sql "SELECT COUNT(*) FROM \`$(copy $1)\`.k" 2>/dev/null || echo 0; }
writer() {   # SOURCE: keyed upserts and keyless appends, 10 rows per round trip, until $WORK/stop
    local d i=0 j sql
    d=$(db "$1")
    while [ ! -e "$WORK/stop" ]; do
        sql=""
        for j in 1 2 3 4 5 6 7 8 9 10; do
            i=$((i + 1))
            sql+="INSERT INTO \`$d\`.k VALUES ($i, 'row $i'); "
            sql+="INSERT INTO \`$d\`.t VALUES ($((i % 97)), $i) ON DUPLICATE KEY UPDATE v = v + $i; "
        done
        src_sql "$sql" || { echo "writer of $1 failed at $i" >&2; return 1; }
        sleep 0.05
    done
}

# ---- the cluster, the sources, the tasks ----
for s in $SRCS; do
    src_sql "DROP DATABASE IF EXISTS \`$(db $s)\`; CREATE DATABASE \`$(db $s)\`;
             CREATE TABLE \`$(db $s)\`.t (id INT PRIMARY KEY, v INT NOT NULL);
             CREATE TABLE \`$(db $s)\`.k (n INT NOT NULL, note VARCHAR(20));
             INSERT INTO \`$(db $s)\`.k VALUES (-1, 'before'), (-2, 'before')" || { fail "source setup"; exit 1; }
    dst_sql "DROP DATABASE IF EXISTS \`$(copy $s)\`"
done
start m1 master
start m2 master
for w in w1 w2 w3; do start "$w" worker; done
for s in $SRCS; do
    body='{"source_name":"w'$$-$s'","host":"'$SLUICE_SOURCE_HOST'","port":'$SLUICE_SOURCE_PORT',"user":"'$SLUICE_SOURCE_USER'","password":"'$SLUICE_SOURCE_PASSWORD'","enable":true}'
    check "source $s created through a follower" "$(call m2 POST sources "$body")" 201
    t='{"task":{"name":"'$(task $s)'","task_mode":"all","target_config":{"host":"'$SLUICE_TARGET_HOST'","port":'$SLUICE_TARGET_PORT',"user":"'$SLUICE_TARGET_USER'","password":"'$SLUICE_TARGET_PASSWORD'"},"table_migrate_rule":[{"source":{"source_name":"w'$$-$s'","schema":"'$(db $s)'","table":"*"},"target":{"schema":"'$(copy $s)'"}}],"source_config":{"full_migrate_conf":{"data_dir":"'$WORK/dump'","export_threads":1,"import_threads":1},"source_conf":[{"source_name":"w'$$-$s'"}]}}}'
    check "task of $s created" "$(call m2 POST tasks "$t")" 200
done
# rename the sources to their cluster names from here on
S1=w$$-s1 S2=w$$-s2
for s in $SRCS; do writer "$s" & WRITERS[$s]=$!; done
for s in $SRCS; do check "task of $s started" "$(call m2 POST "tasks/$(task $s)/start" '{}')" 200; done
for s in $SRCS; do wait_rows "$s" 50; done

# each source runs on its bound worker, under the binding's epoch, and nowhere else
for s in $SRCS; do
    w=$(bound_to "w$$-$s")
    check "task of $s runs on the worker bound to its source" "$(status "$s" worker_name)" "$w"
    check "task of $s is Running" "$(status "$s" stage)" Running
    check "the target's fence of $s is its binding's epoch" \
        "$(dst_sql "SELECT epoch FROM dm_meta.sluice_fence WHERE source_name = 'w$$-$s'")" \
        "$(etcd_get "$ROOT/bound/w$$-$s" mod_revision)"
done
check "the masters run nothing" "$(grep -c 'runs task' "$WORK/m1.log" "$WORK/m2.log" | awk -F: '{s += $2} END {print s}')" 0

# a stop and a start on the API reach the worker
check "stop of s2's task" "$(call m1 POST "tasks/$(task s2)/stop" '{}')" 200
wait_status s2 stage Stopped
at=$(rows s2); sleep 1
check "a stopped task applies nothing" "$(rows s2)" "$at"
check "start of s2's task" "$(call m1 POST "tasks/$(task s2)/start" '{}')" 200
wait_status s2 stage Running
wait_rows s2 "$at"

# ---- (a) kill -9 of the worker of s1: rebound to the free worker, resumed there ----
old=$(bound_to "$S1"); e0=$(etcd_get "$ROOT/bound/$S1" mod_revision)
kill -KILL "${PIDS[$old]}"; wait "${PIDS[$old]}" 2>/dev/null; unset "PIDS[$old]"
at=$(rows s1)
new=$(wait_moved "$S1" "$old")
[ "$(etcd_get "$ROOT/bound/$S1" mod_revision)" -gt "$e0" ]; check "the new binding has a larger epoch" "$?" 0
wait_rows s1 "$at"
wait_status s1 worker_name "$new"
start "$old" worker     # back, free

# ---- (d) transfer of s2 under load to the free worker ----
from=$(bound_to "$S2")
to=$old
at=$(rows s2)
check "transfer of s2" "$(call m2 POST "sources/$S2/transfer" '{"worker_name":"'$to'"}')" 200
check "s2 is bound to the chosen worker" "$(bound_to "$S2")" "$to"
check "the old worker stopped s2 before the rebind" "$(grep -c "stopped source $S2 for its transfer" "$WORK/$from.log")" 1
wait_rows s2 "$at"
wait_status s2 worker_name "$to"

# ---- (c) SIGSTOP of the worker running s1 past its lease; SIGCONT: fenced ----
paused=$(bound_to "$S1")
kill -STOP "${PIDS[$paused]}"
at=$(rows s1)
new=$(wait_moved "$S1" "$paused")
wait_rows s1 "$at"
kill -CONT "${PIDS[$paused]}"
for i in $(seq 1 300); do grep -q "worker $paused stops task $(task s1) source $S1" "$WORK/$paused.log" && break; sleep 0.1; done
check "the paused worker stops s1 when it runs again" \
    "$(grep -c "worker $paused stops task $(task s1) source $S1" "$WORK/$paused.log" | sed 's/^[1-9][0-9]*$/yes/')" yes
at=$(rows s1)
wait_rows s1 "$at"
check "the target's fence of s1 is its new binding's epoch" \
    "$(dst_sql "SELECT epoch FROM dm_meta.sluice_fence WHERE source_name = '$S1'")" \
    "$(etcd_get "$ROOT/bound/$S1" mod_revision)"
wait_status s1 worker_name "$new"

# ---- DELETE of a live worker: its source moves first; none free: 409 ----
for i in $(seq 1 300); do   # the paused worker joins again (free) under a new lease
    [ "$(api m1 cluster/workers | jq -r ".data[] | select(.name==\"$paused\") | .bound_stage")" = free ] && break
    sleep 0.1
done
gone=$(bound_to "$S2")
at=$(rows s2)
check "DELETE of the live worker of s2" "$(call m2 DELETE "cluster/workers/$gone")" 204
check "s2 moved to the free worker" "$(bound_to "$S2")" "$paused"
check "the deleted worker is no longer listed" "$(api m1 cluster/workers | jq -r "[.data[].name] | index(\"$gone\")")" null
wait_rows s2 "$at"
busy=$(bound_to "$S1")
check "DELETE of a bound worker with none free" "$(call m1 DELETE "cluster/workers/$busy")" 409
check "is DM's not-free error" "$(jq -r .error_code "$WORK/body")" 46033
check "and leaves its source where it is" "$(bound_to "$S1")" "$busy"

# ---- the writers stop; everything arrives once ----
touch "$WORK/stop"
for s in $SRCS; do wait "${WRITERS[$s]}"; check "the writer of $s ran to the end" "$?" 0; unset "WRITERS[$s]"; done
for s in $SRCS; do
    want=$(src_sql "SELECT COUNT(*) FROM \`$(db $s)\`.k")
    for i in $(seq 1 1200); do [ "$(rows $s)" -ge "$want" ] && break; sleep 0.1; done
done
sleep 1   # a duplicate would arrive with or after the last row: look again once more
for s in $SRCS; do
    check "$s keyless rows: as many on the target" "$(rows $s)" "$(src_sql "SELECT COUNT(*) FROM \`$(db $s)\`.k")"
    check "$s keyless rows: no duplicate" "$(dst_sql "SELECT COUNT(*) - COUNT(DISTINCT n) FROM \`$(copy $s)\`.k")" 0
    for tb in t k; do
        check "$s table $tb: the same checksum" "$(dst_sql "CHECKSUM TABLE \`$(copy $s)\`.$tb" | cut -f2)" \
            "$(src_sql "CHECKSUM TABLE \`$(db $s)\`.$tb" | cut -f2)"
    done
    check "$s keyed table: row by row" "$(dst_sql "SELECT id, v FROM \`$(copy $s)\`.t ORDER BY id" | md5sum)" \
        "$(src_sql "SELECT id, v FROM \`$(db $s)\`.t ORDER BY id" | md5sum)"
    check "$s keyless table: row by row" "$(dst_sql "SELECT n, note FROM \`$(copy $s)\`.k ORDER BY n" | md5sum)" \
        "$(src_sql "SELECT n, note FROM \`$(db $s)\`.k ORDER BY n" | md5sum)"
    echo "$s: $(rows $s) keyless rows replicated"
done

# ---- a forced delete of a running task: its worker stops it before the checkpoints go ----
w=$(bound_to "$S2")
check "DELETE of s2's running task" "$(call m2 DELETE "tasks/$(task s2)?force=true")" 204
check "its worker stopped it" \
    "$(grep -c "worker $w stops task $(task s2) source $S2: the task was deleted" "$WORK/$w.log")" 1
check "its checkpoint table is gone and stays gone" "$(sleep 1; dst_sql "SELECT COUNT(*) FROM
    information_schema.tables WHERE table_schema = 'dm_meta' AND table_name = '$(task s2)_syncer_checkpoint'")" 0

for n in "${!PIDS[@]}"; do
    kill -TERM "${PIDS[$n]}"; wait "${PIDS[$n]}"; check "$n stops cleanly" "$?" 0; unset "PIDS[$n]"
done
if grep -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$WORK"/*.log >/dev/null; then
    fail "sanitizer report in a member's log"
fi
echo "$CHECKS checks, $FAILS failures"
[ "$FAILS" = 0 ]
