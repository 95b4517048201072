#!/usr/bin/env bash
# test_shard_cluster.sh - a pessimistic shard DDL lock across worker processes (issues 13, 16),
# against the shared 3-member etcd fixture and the sandbox MariaDB servers: one master and two
# workers; two sources (two source definitions on the sandbox source, each bound to its own
# worker) with two shard tables each, merged by one task_mode all task into one target table.
# The shards run ALTER TABLE ... ADD COLUMN one after the other, with rows between: the lock
# (kept in etcd, written revision-checked by both workers) holds the early shards, the last
# arrival runs the DDL once, and the held shards of the other worker process learn that the
# lock resolved by themselves (no process restarts them). At the end the target has the column
# once and every row of the four shards, row by row by key. Then the task is deleted with
# keep_meta while a second lock holds a shard on each worker, and created again: the lock is
# still in etcd, and the held shards apply their rows after its DDL as before.
set -uo pipefail
SERVER=${SLUICE_SERVER_BIN:?SLUICE_SERVER_BIN is not set}
PLUGINS=${SLUICE_PLUGIN_DIR:?SLUICE_PLUGIN_DIR is not set}
: "${SLUICE_ETCD_ENDPOINTS:?SLUICE_ETCD_ENDPOINTS is not set: eval \"\$(scripts/etcd env)\"}"
for v in SLUICE_SOURCE_HOST SLUICE_SOURCE_PORT SLUICE_SOURCE_USER SLUICE_SOURCE_PASSWORD \
         SLUICE_TARGET_HOST SLUICE_TARGET_PORT SLUICE_TARGET_USER SLUICE_TARGET_PASSWORD; do
    [ -n "${!v:-}" ] || { echo "FAIL: $v is not set (eval \"\$(scripts/sandbox env)\")" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "FAIL: jq is needed" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-shard-cluster.XXXXXX")
ROOT=/sluice-test-shard/$$
TTL=3
FAILS=0 CHECKS=0
declare -A PIDS PORTS
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
TASK=sh$$
DST=clu_sh_dst_$$
db() { echo "clu_sh_$1_$$"; }
SRC_A=sh$$-a SRC_B=sh$$-b

src_sql() { mariadb -h "$SLUICE_SOURCE_HOST" -P "$SLUICE_SOURCE_PORT" -u "$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD" -N -e "$1"; }
dst_sql() { mariadb -h "$SLUICE_TARGET_HOST" -P "$SLUICE_TARGET_PORT" -u "$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD" -N -e "$1"; }

cleanup() {
    for n in "${!PIDS[@]}"; do kill -KILL "${PIDS[$n]}" 2>/dev/null; done
    src_sql "DROP DATABASE IF EXISTS \`$(db a)\`; DROP DATABASE IF EXISTS \`$(db b)\`" 2>/dev/null
    dst_sql "DROP DATABASE IF EXISTS \`$DST\`;
             DROP TABLE IF EXISTS dm_meta.\`${TASK}_syncer_checkpoint\`, dm_meta.\`${TASK}_loader_checkpoint\`,
               dm_meta.\`${TASK}_loader_tables\`, dm_meta.\`${TASK}_syncer_sharding_meta\`,
               dm_meta.\`${TASK}_schema_tracker\`;
             DELETE FROM dm_meta.sluice_fence WHERE source_name IN ('$SRC_A', '$SRC_B')" 2>/dev/null
    if [ "$FAILS" = 0 ]; then rm -rf "$WORK"; else echo "(kept $WORK)"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
check() { CHECKS=$((CHECKS + 1)); if [ "$2" != "$3" ]; then fail "$1: got '$2', want '$3'"; fi; }

start() {   # NAME ROLE: a member on a free port sharing m1's secret.key; waits until it serves
    local n=$1 role=$2 log=$WORK/$1.log i
    if [ "$n" != m1 ]; then
        mkdir -p "$WORK/$n" && cp "$WORK/m1/secret.key" "$WORK/$n/" && chmod 600 "$WORK/$n/secret.key"
    fi
    "$SERVER" --addr 127.0.0.1:0 --data-dir "$WORK/$n" --plugin-dir "$PLUGINS" --role "$role" --name "$n" \
        --etcd "$SLUICE_ETCD_ENDPOINTS" --etcd-root "$ROOT" --lease-ttl "$TTL" >>"$log" 2>&1 &
    PIDS[$n]=$!
    for i in $(seq 1 300); do
        if grep -q 'serving the DM OpenAPI' "$log" 2>/dev/null; then
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
# rows N: K rows into shard N (a.t1 a.t2 b.t1 b.t2 = 1..4), ids N*1000000 + a counter
declare -A NEXT
shard() { case $1 in 1) echo "\`$(db a)\`.t1" ;; 2) echo "\`$(db a)\`.t2" ;; 3) echo "\`$(db b)\`.t1" ;; 4) echo "\`$(db b)\`.t2" ;; esac; }
rows() {
    local n=$1 k=$2 sql="" i
    for i in $(seq 1 "$k"); do
        NEXT[$n]=$(( ${NEXT[$n]:-0} + 1 ))
        sql+="INSERT INTO $(shard "$n") (id, src, v) VALUES ($((n * 1000000 + NEXT[$n])), 'shard $n', $i); "
    done
    src_sql "$sql" || fail "writing shard $n"
}
total() { echo $(( ${NEXT[1]:-0} + ${NEXT[2]:-0} + ${NEXT[3]:-0} + ${NEXT[4]:-0} )); }
dst_rows() { dst_sql "SELECT COUNT(*) FROM \`$DST\`.t" 2>/dev/null || echo 0; }
wait_rows() {   # until the target has N rows
    local i c=0
    for i in $(seq 1 1200); do c=$(dst_rows); [ "${c:-0}" -ge "$1" ] && return 0; sleep 0.1; done
    fail "the target did not reach $1 rows (has $c)"
}
has_c() { dst_sql "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = '$DST' AND table_name = 't' AND column_name = 'c'"; }
unsynced() { api "tasks/$TASK/shard_ddl_locks" | jq -r '[.data[]? | .unsynced[]?] | length' 2>/dev/null; }

for s in a b; do
    src_sql "DROP DATABASE IF EXISTS \`$(db $s)\`; CREATE DATABASE \`$(db $s)\`;
             CREATE TABLE \`$(db $s)\`.t1 (id INT PRIMARY KEY, src VARCHAR(20), v INT);
             CREATE TABLE \`$(db $s)\`.t2 (id INT PRIMARY KEY, src VARCHAR(20), v INT)" || { fail "source setup"; exit 1; }
done
dst_sql "DROP DATABASE IF EXISTS \`$DST\`"
for n in 1 2 3 4; do rows "$n" 5; done

start m1 master
start w1 worker
start w2 worker
for s in a b; do
    src=sh$$-$s
    body='{"source_name":"'$src'","host":"'$SLUICE_SOURCE_HOST'","port":'$SLUICE_SOURCE_PORT',"user":"'$SLUICE_SOURCE_USER'","password":"'$SLUICE_SOURCE_PASSWORD'","enable":true}'
    check "source $s created" "$(call POST sources "$body")" 201
done
t='{"task":{"name":"'$TASK'","task_mode":"all","shard_mode":"pessimistic","meta_schema":"dm_meta",
 "target_config":{"host":"'$SLUICE_TARGET_HOST'","port":'$SLUICE_TARGET_PORT',"user":"'$SLUICE_TARGET_USER'","password":"'$SLUICE_TARGET_PASSWORD'"},
 "table_migrate_rule":[
  {"source":{"source_name":"'$SRC_A'","schema":"'$(db a)'","table":"t*"},"target":{"schema":"'$DST'","table":"t"}},
  {"source":{"source_name":"'$SRC_B'","schema":"'$(db b)'","table":"t*"},"target":{"schema":"'$DST'","table":"t"}}],
 "source_config":{"full_migrate_conf":{"data_dir":"'$WORK/dump'","export_threads":1,"import_threads":1},
  "source_conf":[{"source_name":"'$SRC_A'"},{"source_name":"'$SRC_B'"}]}}}'
check "task created" "$(call POST tasks "$t")" 200
check "task started" "$(call POST "tasks/$TASK/start" '{}')" 200
wait_rows "$(total)"
for n in 1 2 3 4; do rows "$n" 5; done
wait_rows "$(total)"
wa=$(api "tasks/$TASK/status" | jq -r ".data[] | select(.source_name==\"$SRC_A\") | .worker_name")
wb=$(api "tasks/$TASK/status" | jq -r ".data[] | select(.source_name==\"$SRC_B\") | .worker_name")
check "the two sources run in two worker processes" "$([ -n "$wa" ] && [ -n "$wb" ] && [ "$wa" != "$wb" ] && echo yes)" yes

# ---- the shards alter one after the other; the last one is on the other worker ----
ALTER="ADD COLUMN c INT NOT NULL DEFAULT 0"
src_sql "ALTER TABLE $(shard 1) $ALTER" || fail "alter shard 1"
rows 1 3; rows 2 3; rows 3 3; rows 4 3
for i in $(seq 1 300); do [ "$(unsynced)" = 3 ] && break; sleep 0.1; done
check "the lock waits for the three other shards" "$(unsynced)" 3
check "the target has no column c yet" "$(has_c)" 0
src_sql "ALTER TABLE $(shard 3) $ALTER" || fail "alter shard 3"
rows 3 3; rows 1 3
src_sql "ALTER TABLE $(shard 2) $ALTER" || fail "alter shard 2"
rows 2 3; rows 4 3
for i in $(seq 1 300); do [ "$(unsynced)" = 1 ] && break; sleep 0.1; done
check "one shard (on worker $wb) is still to come" "$(unsynced)" 1
check "the target still has no column c" "$(has_c)" 0
src_sql "ALTER TABLE $(shard 4) $ALTER" || fail "alter shard 4"
for n in 1 2 3 4; do rows "$n" 4; done
wait_rows "$(total)"
check "the target has column c once" "$(has_c)" 1
for i in $(seq 1 100); do [ "$(unsynced)" = 0 ] && break; sleep 0.1; done
check "no lock is left" "$(api "tasks/$TASK/shard_ddl_locks" | jq -r '.data | length')" 0
check "the held shards of worker $wa learnt it by themselves" \
    "$(grep -c "a lock it holds shards of was resolved elsewhere" "$WORK/$wa.log" | sed 's/^[1-9][0-9]*$/yes/')" yes
check "both subtasks are Running" "$(api "tasks/$TASK/status" | jq -r '[.data[].stage] | unique | join(",")')" Running

# ---- every row of every shard, row by row by key ----
want=$( (for n in 1 2 3 4; do src_sql "SELECT id, src, v, c FROM $(shard "$n")"; done) | sort -n | md5sum)
check "the target holds every shard's rows once" "$(dst_sql "SELECT id, src, v, c FROM \`$DST\`.t" | sort -n | md5sum)" "$want"
check "row count" "$(dst_rows)" "$(total)"

# ---- deleted with keep_meta while a lock holds a shard on each worker, created again ----
# The lock stays in etcd; the subtasks made again ask about their holds afresh, and the held shard
# of the worker that does not run the DDL learns by itself that it resolved (the old subtask's
# waits once made its poll look armed: it stayed held)
ALTER2="ADD COLUMN d INT NULL"
src_sql "ALTER TABLE $(shard 1) $ALTER2" || fail "alter shard 1"
rows 1 2
src_sql "ALTER TABLE $(shard 3) $ALTER2" || fail "alter shard 3"
rows 3 2
for i in $(seq 1 300); do [ "$(unsynced)" = 2 ] && break; sleep 0.1; done
check "the second lock waits for two shards" "$(unsynced)" 2
n1=$(grep -c "a lock it holds shards of was resolved elsewhere" "$WORK/$wa.log")
runs() { grep -c "/$2/incremental\] running" "$WORK/$1.log"; }
ra=$(runs "$wa" "$SRC_A") rb=$(runs "$wb" "$SRC_B")
check "deleted with keep_meta" "$(call DELETE "tasks/$TASK?force=true&keep_meta=true")" 204
check "created again" "$(call POST tasks "$t")" 200
check "started again" "$(call POST "tasks/$TASK/start" '{}')" 200
# each worker drops its subtask and makes a new one, whose sink asks about its holds at its start
for i in $(seq 1 300); do
    [ "$(runs "$wa" "$SRC_A")" -gt "$ra" ] && [ "$(runs "$wb" "$SRC_B")" -gt "$rb" ] && break
    sleep 0.1
done
check "both subtasks made again run" "$([ "$(runs "$wa" "$SRC_A")" -gt "$ra" ] && [ "$(runs "$wb" "$SRC_B")" -gt "$rb" ] && echo yes)" yes
check "the lock outlived the task" "$(unsynced)" 2
src_sql "ALTER TABLE $(shard 2) $ALTER2" || fail "alter shard 2"
rows 2 2
for i in $(seq 1 300); do [ "$(unsynced)" = 1 ] && break; sleep 0.1; done
check "one shard (on worker $wb) is still to come, again" "$(unsynced)" 1
src_sql "ALTER TABLE $(shard 4) $ALTER2" || fail "alter shard 4"
for n in 1 2 3 4; do rows "$n" 2; done
wait_rows "$(total)"
check "the held shard of worker $wa learnt it by itself again" \
    "$([ "$(grep -c "a lock it holds shards of was resolved elsewhere" "$WORK/$wa.log")" -gt "$n1" ] && echo yes)" yes
want=$( (for n in 1 2 3 4; do src_sql "SELECT id, src, v, c, d FROM $(shard "$n")"; done) | sort -n | md5sum)
check "every shard's rows once, after the task was made again" \
    "$(dst_sql "SELECT id, src, v, c, d FROM \`$DST\`.t" | sort -n | md5sum)" "$want"
check "both subtasks are Running at the end" "$(api "tasks/$TASK/status" | jq -r '[.data[].stage] | unique | join(",")')" Running

for n in m1 w1 w2; do kill -TERM "${PIDS[$n]}"; wait "${PIDS[$n]}"; check "$n stops cleanly" "$?" 0; unset "PIDS[$n]"; done
if grep -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$WORK"/*.log >/dev/null; then
    fail "sanitizer report in a member's log"
fi
echo "$CHECKS checks, $FAILS failures"
[ "$FAILS" = 0 ]
