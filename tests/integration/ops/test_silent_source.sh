#!/usr/bin/env bash
# test_silent_source.sh - a source that goes silent (frozen: SIGSTOP, as a host that hangs or a
# network that drops packets without a reset) shows as such in the task's status. Before, the
# status kept saying Running, synced, 0 s behind for as long as the source was gone: the sink,
# with nothing to apply, said "caught up", and the reader, blocked on its read and then on its
# reconnects, said nothing. Now sync_status says for how long the source has been silent
# (source_silent_seconds), counts it as lag (seconds_behind_master, lag_known, and the metric
# sluice_replication_lag_seconds) and is not synced; all of it clears once the source is back.
. "$(dirname "$0")/../api/lib.sh"
: "${SLUICE_SANDBOX_DIR:?SLUICE_SANDBOX_DIR is not set (scripts/sandbox env)}"
SRC_PID=$(cat "$SLUICE_SANDBOX_DIR/source.pid")
cont_source() { kill -CONT "$SRC_PID" 2>/dev/null; }
trap 'cont_source; cleanup' EXIT

src_sql "DROP DATABASE IF EXISTS ops_ss; CREATE DATABASE ops_ss;
         CREATE TABLE ops_ss.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO ops_ss.t VALUES (1, 'a')" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "DROP DATABASE IF EXISTS ops_ss" || { echo "FAIL: cannot prepare the target" >&2; exit 1; }
start_server "$WORK/data"
api POST /sources "{\"source_name\":\"ss\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
api POST /tasks "{\"task\":{\"name\":\"ss\",\"task_mode\":\"all\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"ss\",\"schema\":\"ops_ss\",\"table\":\"*\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump\"},\"source_conf\":[{\"source_name\":\"ss\"}]}}}"
expect 200 "task"
api POST /tasks/ss/start '{}'
expect 200 "start"
sync() { api GET /tasks/ss/status; printf '%s' "$BODY" | jq -c '.data[0] | [.stage, .unit, .sync_status.synced, .sync_status.lag_known, (.sync_status.source_silent_seconds // -1), .sync_status.seconds_behind_master]'; }
for _ in $(seq 1 600); do [ "$(sync)" = '["Running","Sync",true,true,-1,0]' ] && break; sleep 0.1; done
[ "$(sync)" = '["Running","Sync",true,true,-1,0]' ] && ok || fail "not synced before the freeze: $(sync)"
src_sql "INSERT INTO ops_ss.t VALUES (2, 'b')"
for _ in $(seq 1 300); do [ "$(dst_sql "SELECT COUNT(*) FROM ops_ss.t")" = 2 ] && break; sleep 0.1; done
# the freeze comes after a heartbeat has said "caught up" (right after a row, the sink's own
# "not synced, lag growing" would show it by chance)
for _ in $(seq 1 600); do [ "$(sync)" = '["Running","Sync",true,true,-1,0]' ] && break; sleep 0.1; done

kill -STOP "$SRC_PID"
# the heartbeat comes every second: after three without one the source counts as silent
silent() { sync | jq -r 'if .[0]=="Running" and .[2]==false and .[3]==true and .[4]>=3 and .[5]>=.[4] then "yes" else "no" end'; }
for _ in $(seq 1 300); do [ "$(silent)" = yes ] && break; sleep 0.1; done
[ "$(silent)" = yes ] && ok || fail "a frozen source is not shown: $(sync)"
lag=$(curl -sS "http://127.0.0.1:$PORT/metrics" | grep -F 'sluice_replication_lag_seconds{task="ss",' | head -1 | awk '{print $NF}')
[ -n "$lag" ] && awk -v l="$lag" 'BEGIN { exit !(l >= 3) }' && ok || fail "the lag metric while the source is frozen: '$lag'"
kill -CONT "$SRC_PID"

src_sql "INSERT INTO ops_ss.t VALUES (3, 'c')"
for _ in $(seq 1 600); do [ "$(dst_sql "SELECT COUNT(*) FROM ops_ss.t")" = 3 ] && break; sleep 0.1; done
[ "$(dst_sql "SELECT COUNT(*) FROM ops_ss.t")" = 3 ] && ok || fail "no row after the source came back"
for _ in $(seq 1 600); do [ "$(sync)" = '["Running","Sync",true,true,-1,0]' ] && break; sleep 0.1; done
[ "$(sync)" = '["Running","Sync",true,true,-1,0]' ] && ok || fail "not synced after the source came back: $(sync)"

api DELETE "/tasks/ss?force=true"
expect 204 "delete"
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS ops_ss"
dst_sql "DROP DATABASE IF EXISTS ops_ss"
finish
