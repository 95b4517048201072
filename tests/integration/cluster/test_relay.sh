#!/usr/bin/env bash
# test_relay.sh - a source's relay log in a cluster (issue 13) runs on the worker bound to the
# source, as DM runs it, against the shared etcd fixture and the sandbox: a master and two
# workers, one relay-enabled source replicated by a task_mode all task under a live writer.
# The bound worker writes the relay in its own data dir and the task reads it (binlog_type
# local); the source's status shows the relay and its worker from the leader. kill -9 of that
# worker: the source moves, the new worker starts its own relay at the task's checkpoint file
# and the task resumes from it. Then the tables are equal and every keyless row is there once.
set -uo pipefail
SERVER=${SLUICE_SERVER_BIN:?SLUICE_SERVER_BIN is not set}
PLUGINS=${SLUICE_PLUGIN_DIR:?SLUICE_PLUGIN_DIR is not set}
: "${SLUICE_ETCD_ENDPOINTS:?SLUICE_ETCD_ENDPOINTS is not set: eval \"\$(scripts/etcd env)\"}"
for v in SLUICE_SOURCE_HOST SLUICE_SOURCE_PORT SLUICE_SOURCE_USER SLUICE_SOURCE_PASSWORD \
         SLUICE_TARGET_HOST SLUICE_TARGET_PORT SLUICE_TARGET_USER SLUICE_TARGET_PASSWORD; do
    [ -n "${!v:-}" ] || { echo "FAIL: $v is not set (eval \"\$(scripts/sandbox env)\")" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "FAIL: jq is needed" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-crelay-test.XXXXXX")
ROOT=/sluice-test-crelay/$$
TTL=3
DB=clu_rl_$$ COPY=clu_rl_copy_$$ TASK=rl$$ SRC=rl$$-src
FAILS=0 CHECKS=0 WRITER=
declare -A PIDS PORTS
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
src_sql() { mariadb -h "$SLUICE_SOURCE_HOST" -P "$SLUICE_SOURCE_PORT" -u "$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD" -N -e "$1"; }
dst_sql() { mariadb -h "$SLUICE_TARGET_HOST" -P "$SLUICE_TARGET_PORT" -u "$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD" -N -e "$1"; }
cleanup() {
    touch "$WORK/stop"; [ -n "$WRITER" ] && kill "$WRITER" 2>/dev/null
    for n in "${!PIDS[@]}"; do kill -KILL "${PIDS[$n]}" 2>/dev/null; done
    src_sql "DROP DATABASE IF EXISTS \`$DB\`" 2>/dev/null
    dst_sql "DROP DATABASE IF EXISTS \`$COPY\`; DROP TABLE IF EXISTS dm_meta.\`${TASK}_syncer_checkpoint\`,
               dm_meta.\`${TASK}_loader_checkpoint\`, dm_meta.\`${TASK}_loader_tables\`;
             DELETE FROM dm_meta.sluice_fence WHERE source_name = '$SRC'" 2>/dev/null
    if [ "$FAILS" = 0 ]; then rm -rf "$WORK"; else echo "(kept $WORK)"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
check() { CHECKS=$((CHECKS + 1)); if [ "$2" != "$3" ]; then fail "$1: got '$2', want '$3'"; fi; }
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
api() { curl -s -m 60 "http://127.0.0.1:${PORTS[m1]}/api/v1/$1"; }
call() {
    curl -s -m 60 -o "$WORK/body" -w '%{http_code}' -X "$1" ${3:+-H 'Content-Type: application/json' -d "$3"} \
        "http://127.0.0.1:${PORTS[m1]}/api/v1/$2"
}
rows() { dst_sql "SELECT COUNT(*) FROM \`$COPY\`.k" 2>/dev/null || echo 0; }
wait_rows() {
    local i c=0
    for i in $(seq 1 1200); do c=$(rows); [ "${c:-0}" -gt "$1" ] && return 0; sleep 0.1; done
    fail "the target did not get past $1 rows (has $c)"
}
bound() { api cluster/workers | jq -r '.data[] | select(.bound_stage == "bound") | .name'; }
wait_field() {   # JQ WANT (on the task status)
    local i v
    for i in $(seq 1 300); do
        v=$(api "tasks/$TASK/status" | jq -r "$1" 2>/dev/null); [ "$v" = "$2" ] && return 0; sleep 0.1
    done
    check "task status $1" "$v" "$2"
}

src_sql "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`;
         CREATE TABLE \`$DB\`.t (id INT PRIMARY KEY, v INT NOT NULL);
         CREATE TABLE \`$DB\`.k (n INT NOT NULL, note VARCHAR(20));
         INSERT INTO \`$DB\`.k VALUES (-1, 'before')" || { fail "source setup"; exit 1; }
start m1 master
start w1 worker
start w2 worker
check "relay source created" "$(call POST sources '{"source_name":"'$SRC'","host":"'$SLUICE_SOURCE_HOST'","port":'$SLUICE_SOURCE_PORT',"user":"'$SLUICE_SOURCE_USER'","password":"'$SLUICE_SOURCE_PASSWORD'","enable":true,"relay_config":{"enable_relay":true}}')" 201
check "task created" "$(call POST tasks '{"task":{"name":"'$TASK'","task_mode":"all","target_config":{"host":"'$SLUICE_TARGET_HOST'","port":'$SLUICE_TARGET_PORT',"user":"'$SLUICE_TARGET_USER'","password":"'$SLUICE_TARGET_PASSWORD'"},"table_migrate_rule":[{"source":{"source_name":"'$SRC'","schema":"'$DB'","table":"*"},"target":{"schema":"'$COPY'"}}],"source_config":{"full_migrate_conf":{"data_dir":"'$WORK/dump'","export_threads":1,"import_threads":1},"source_conf":[{"source_name":"'$SRC'"}]}}}')" 200
( i=0; while [ ! -e "$WORK/stop" ]; do
    i=$((i + 1))
    src_sql "INSERT INTO \`$DB\`.k VALUES ($i, 'row $i'); INSERT INTO \`$DB\`.t VALUES ($((i % 89)), $i) ON DUPLICATE KEY UPDATE v = v + $i" || exit 1
    sleep 0.02
  done ) & WRITER=$!
check "task started" "$(call POST "tasks/$TASK/start" '{}')" 200
wait_rows 30
w=$(bound)
wait_field '.data[0].sync_status.binlog_type' local   # the task reads the relay
check "the relay is in the bound worker's data dir" "$(ls "$WORK/$w/relay_log/$SRC/relay.index" 2>/dev/null | wc -l)" 1
check "the master runs no relay" "$(ls "$WORK/m1/relay_log/$SRC/relay.index" 2>/dev/null | wc -l)" 0
check "the source's status names its worker" "$(api "sources/$SRC/status" | jq -r '.data[0].worker_name')" "$w"
check "and shows its relay running" "$(api "sources/$SRC/status" | jq -r '.data[0].relay_status.stage')" Running

# ---- kill -9 of the worker: the other one runs the relay and the task ----
other=w1; [ "$w" = w1 ] && other=w2
kill -KILL "${PIDS[$w]}"; wait "${PIDS[$w]}" 2>/dev/null; unset "PIDS[$w]"
at=$(rows)
wait_rows "$at"
check "the source moved" "$(bound)" "$other"
wait_field '.data[0].worker_name' "$other"
check "the new worker's relay" "$(ls "$WORK/$other/relay_log/$SRC/relay.index" 2>/dev/null | wc -l)" 1
wait_field '.data[0].sync_status.binlog_type' local   # the task reads it

touch "$WORK/stop"; wait "$WRITER"; check "the writer ran to the end" "$?" 0; WRITER=
want=$(src_sql "SELECT COUNT(*) FROM \`$DB\`.k")
for i in $(seq 1 1200); do [ "$(rows)" -ge "$want" ] && break; sleep 0.1; done
sleep 1
check "keyless rows: as many on the target" "$(rows)" "$want"
check "keyless rows: no duplicate" "$(dst_sql "SELECT COUNT(*) - COUNT(DISTINCT n) FROM \`$COPY\`.k")" 0
check "keyed table: the same checksum" "$(dst_sql "CHECKSUM TABLE \`$COPY\`.t" | cut -f2)" \
    "$(src_sql "CHECKSUM TABLE \`$DB\`.t" | cut -f2)"
check "keyless table: row by row" "$(dst_sql "SELECT n, note FROM \`$COPY\`.k ORDER BY n" | md5sum)" \
    "$(src_sql "SELECT n, note FROM \`$DB\`.k ORDER BY n" | md5sum)"
for n in "${!PIDS[@]}"; do
    kill -TERM "${PIDS[$n]}"; wait "${PIDS[$n]}"; check "$n stops cleanly" "$?" 0; unset "PIDS[$n]"
done
if grep -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$WORK"/*.log >/dev/null; then
    fail "sanitizer report in a member's log"
fi
echo "$CHECKS checks, $FAILS failures"
[ "$FAILS" = 0 ]
