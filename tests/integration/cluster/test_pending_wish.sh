#!/usr/bin/env bash
# test_pending_wish.sh - an operator's stop made while no worker runs the source (issue 13,
# ROOT/meta/want): a master m1 and the only worker w2 running a task_mode all task under a live
# writer; w2 is killed with SIGKILL, the task is stopped on the API, w2 comes back and takes its
# source again. It must act on the stop before it starts anything: no pipeline of the task runs
# on w2 and no row reaches the target until the task is started again; then every row once.
set -uo pipefail
SERVER=${SLUICE_SERVER_BIN:?SLUICE_SERVER_BIN is not set}
PLUGINS=${SLUICE_PLUGIN_DIR:?SLUICE_PLUGIN_DIR is not set}
: "${SLUICE_ETCD_ENDPOINTS:?SLUICE_ETCD_ENDPOINTS is not set: eval \"\$(scripts/etcd env)\"}"
for v in SLUICE_SOURCE_HOST SLUICE_SOURCE_PORT SLUICE_SOURCE_USER SLUICE_SOURCE_PASSWORD \
         SLUICE_TARGET_HOST SLUICE_TARGET_PORT SLUICE_TARGET_USER SLUICE_TARGET_PASSWORD; do
    [ -n "${!v:-}" ] || { echo "FAIL: $v is not set (eval \"\$(scripts/sandbox env)\")" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "FAIL: jq is needed" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-wish-test.XXXXXX")
ROOT=/sluice-test-wish/$$
TTL=3
DB=clu_wish_$$ COPY=clu_wish_copy_$$ TASK=wish$$ SRC=wish$$-src
FAILS=0 CHECKS=0 WRITER=
declare -A PIDS PORTS
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
src_sql() { mariadb -h "$SLUICE_SOURCE_HOST" -P "$SLUICE_SOURCE_PORT" -u "$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD" -N -e "$1"; }
dst_sql() { mariadb -h "$SLUICE_TARGET_HOST" -P "$SLUICE_TARGET_PORT" -u "$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD" -N -e "$1"; }
cleanup() {
    touch "$WORK/stop"; [ -n "$WRITER" ] && kill "$WRITER" 2>/dev/null
    for n in "${!PIDS[@]}"; do kill -CONT "${PIDS[$n]}" 2>/dev/null; kill -KILL "${PIDS[$n]}" 2>/dev/null; done
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
api() { curl -s -m 60 "http://127.0.0.1:${PORTS[$1]}/api/v1/$2"; }
call() {
    curl -s -m 60 -o "$WORK/body" -w '%{http_code}' -X "$2" ${4:+-H 'Content-Type: application/json' -d "$4"} \
        "http://127.0.0.1:${PORTS[$1]}/api/v1/$3"
}
etcd_get() {   # KEY FIELD: a field of the key's etcd record (mod_revision, value, ...)
    curl -s -X POST "${SLUICE_ETCD_ENDPOINTS##*,}/v3/kv/range" \
        -d "{\"key\":\"$(printf '%s' "$1" | base64 -w0)\"}" | jq -r ".kvs[0].$2 // empty"
}
bound_to() { etcd_get "$ROOT/bound/$1" value | base64 -d 2>/dev/null | jq -r '.worker // empty' 2>/dev/null; }
rows() { dst_sql "SELECT COUNT(*) FROM \`$COPY\`.k" 2>/dev/null || echo 0; }
wait_rows() {   # MIN [SECONDS]: until the target's keyless table has more than MIN rows
    local i c=0
    for i in $(seq 1 $((${2:-120} * 10))); do c=$(rows); [ "${c:-0}" -gt "$1" ] && return 0; sleep 0.1; done
    fail "the target did not get past $1 rows (has $c)"
}
status() { api m1 "tasks/$TASK/status" | jq -r ".data[0].$1" 2>/dev/null; }
wait_status() {   # FIELD WANT
    local i v
    for i in $(seq 1 300); do v=$(status "$1"); [ "$v" = "$2" ] && return 0; sleep 0.1; done
    check "task status $1" "$v" "$2"
}
# wait_until DESC CMD WANT SECONDS
wait_until() {
    local i got
    for i in $(seq 1 $(($4 * 10))); do got=$(eval "$2"); [ "$got" = "$3" ] && break; sleep 0.1; done
    check "$1" "$got" "$3"
}

src_sql "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`;
         CREATE TABLE \`$DB\`.t (id INT PRIMARY KEY, v INT NOT NULL);
         CREATE TABLE \`$DB\`.k (n INT NOT NULL, note VARCHAR(20));
         INSERT INTO \`$DB\`.k VALUES (-1, 'before')" || { fail "source setup"; exit 1; }
start m1 master
start w2 worker
check "source created" "$(call m1 POST sources '{"source_name":"'$SRC'","host":"'$SLUICE_SOURCE_HOST'","port":'$SLUICE_SOURCE_PORT',"user":"'$SLUICE_SOURCE_USER'","password":"'$SLUICE_SOURCE_PASSWORD'","enable":true}')" 201
wait_until "the source is bound to w2" "bound_to $SRC" w2 30
check "task created" "$(call m1 POST tasks '{"task":{"name":"'$TASK'","task_mode":"all","target_config":{"host":"'$SLUICE_TARGET_HOST'","port":'$SLUICE_TARGET_PORT',"user":"'$SLUICE_TARGET_USER'","password":"'$SLUICE_TARGET_PASSWORD'"},"table_migrate_rule":[{"source":{"source_name":"'$SRC'","schema":"'$DB'","table":"*"},"target":{"schema":"'$COPY'"}}],"source_config":{"full_migrate_conf":{"data_dir":"'$WORK/dump'","export_threads":1,"import_threads":1},"source_conf":[{"source_name":"'$SRC'"}]}}}')" 200
( i=0; while [ ! -e "$WORK/stop" ]; do
    i=$((i + 1))
    src_sql "INSERT INTO \`$DB\`.k VALUES ($i, 'row $i'); INSERT INTO \`$DB\`.t VALUES ($((i % 89)), $i) ON DUPLICATE KEY UPDATE v = v + $i" || exit 1
    sleep 0.02
  done ) & WRITER=$!
check "task started" "$(call m1 POST "tasks/$TASK/start" '{}')" 200
wait_rows 30
wait_status worker_name w2
epoch=$(etcd_get "$ROOT/bound/$SRC" mod_revision)

# ---- the stop while no worker runs the source ----
kill -KILL "${PIDS[w2]}"; wait "${PIDS[w2]}" 2>/dev/null; unset "PIDS[w2]"
check "task stopped while its worker is dead" "$(call m1 POST "tasks/$TASK/stop" '{}')" 200
# w2 comes back once its old lease is gone (its name is refused until then)
wait_until "w2's old lease is gone" "api m1 cluster/workers | jq -r '.data[] | select(.name == \"w2\") | .bound_stage'" offline $((TTL * 4))
at=$(rows)
mv "$WORK/w2.log" "$WORK/w2-first.log"
start w2 worker
wait_until "w2 acts on the stop" "grep -c 'task $TASK source $SRC: the operator asks it stopped' $WORK/w2.log" 1 10
check "the source is w2's again, at the same epoch" "$(bound_to "$SRC")/$(etcd_get "$ROOT/bound/$SRC" mod_revision)" "w2/$epoch"
wait_status stage Stopped
sleep 2
check "no pipeline of the stopped task ran on w2" \
    "$(grep -c "\[$TASK/$SRC/[a-z]*\] running" "$WORK/w2.log")" 0
check "no row reached the target" "$(rows)" "$at"

# ---- a start resumes it; every row once ----
check "task started again" "$(call m1 POST "tasks/$TASK/start" '{}')" 200
wait_status stage Running
wait_rows "$at" 60

touch "$WORK/stop"; wait "$WRITER"; check "the writer ran to the end" "$?" 0; WRITER=
want=$(src_sql "SELECT COUNT(*) FROM \`$DB\`.k")
for i in $(seq 1 1200); do [ "$(rows)" -ge "$want" ] && break; sleep 0.1; done
sleep 1
check "keyless rows: as many on the target" "$(rows)" "$want"
check "keyless rows: no duplicate" "$(dst_sql "SELECT COUNT(*) - COUNT(DISTINCT n) FROM \`$COPY\`.k")" 0
check "keyed table: the same checksum" "$(dst_sql "CHECKSUM TABLE \`$COPY\`.t" | cut -f2)" \
    "$(src_sql "CHECKSUM TABLE \`$DB\`.t" | cut -f2)"
for n in "${!PIDS[@]}"; do
    kill -TERM "${PIDS[$n]}"; wait "${PIDS[$n]}"; check "$n stops cleanly" "$?" 0; unset "PIDS[$n]"
done
if grep -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$WORK"/*.log >/dev/null; then
    fail "sanitizer report in a member's log"
fi
echo "$CHECKS checks, $FAILS failures"
[ "$FAILS" = 0 ]
