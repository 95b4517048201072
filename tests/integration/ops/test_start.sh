#!/usr/bin/env bash
# test_start.sh - DM's start options on a task_mode incremental task: start_time starts the binlog
# at the first transaction that began at or after it (found by a binary search over several
# binlog files), not at the task's binlog_name; safe_mode_time_duration writes the rows of that
# window idempotently, so a start_time before rows the target already has replays them without
# a duplicate-key pause; bad values and misuse answer 400/409 and change nothing.
. "$(dirname "$0")/../api/lib.sh"
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }

DDL="CREATE TABLE ops_s.t (id INT PRIMARY KEY, v VARCHAR(20))"
src_sql "DROP DATABASE IF EXISTS ops_s; CREATE DATABASE ops_s; $DDL; FLUSH BINARY LOGS" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "DROP DATABASE IF EXISTS ops_s; CREATE DATABASE ops_s; $DDL" ||
    { echo "FAIL: cannot prepare the target" >&2; exit 1; }
first=$(src_sql "SHOW MASTER STATUS" | awk '{print $1}')
src_sql "INSERT INTO ops_s.t SELECT seq, 'a' FROM ops_s.seq_1_to_10"
sleep 2
T1=$(src_sql "SELECT UNIX_TIMESTAMP()")
sleep 1.2
src_sql "INSERT INTO ops_s.t SELECT seq, 'b' FROM ops_s.seq_11_to_20; FLUSH BINARY LOGS"
src_sql "INSERT INTO ops_s.t SELECT seq, 'c' FROM ops_s.seq_21_to_30; FLUSH BINARY LOGS"
src_sql "UPDATE ops_s.t SET v = 'c2' WHERE id = 25"

start_server "$WORK/data"
api POST /sources "{\"source_name\":\"st-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
task() {   # NAME MODE
    printf '{"task":{"name":"%s","task_mode":"%s","target_config":{"host":"%s","port":%s,"user":"%s","password":"%s"},"table_migrate_rule":[{"source":{"source_name":"st-src","schema":"ops_s","table":"*"}}],"source_config":{"full_migrate_conf":{"data_dir":"%s"},"source_conf":[{"source_name":"st-src","binlog_name":"%s","binlog_pos":4}]}}}' \
        "$1" "$2" "$SLUICE_TARGET_HOST" "$SLUICE_TARGET_PORT" "$SLUICE_TARGET_USER" "$SLUICE_TARGET_PASSWORD" "$WORK/dump" "$first"
}
api POST /tasks "$(task ops-s incremental)"
expect 200 "task"

# bad values: 400, nothing starts
api POST /tasks/ops-s/start '{"start_time":"yesterday"}'
expect 400 "start_time not a time" "$ERRBODY" '.error_msg|test("/start_time")'
api POST /tasks/ops-s/start '{"start_time":"2026-13-01 00:00:00"}'
expect 400 "start_time with month 13" "$ERRBODY" '.error_msg|test("/start_time")'
api POST /tasks/ops-s/start '{"safe_mode_time_duration":"10x"}'
expect 400 "bad duration" "$ERRBODY" '.error_msg|test("/safe_mode_time_duration")'
api POST /tasks/ops-s/stop '{"timeout_duration":"soon"}'
expect 400 "bad stop timeout" "$ERRBODY" '.error_msg|test("/timeout_duration")'
api GET /tasks/ops-s/status
expect 200 "still stopped" '.data[0].stage=="Stopped"'

# start_time: rows from T1 on (b, c and the update), not the a rows before it. Without an offset
# the time is the source's wall time (DM's legacy form): the same instant as T1.
local_t1=$(src_sql "SELECT FROM_UNIXTIME($T1)")
api POST /tasks/ops-s/start "{\"start_time\":\"$local_t1\"}"
expect 200 "start at start_time"
for _ in $(seq 1 300); do [ "$(dst_sql "SELECT COUNT(*) FROM ops_s.t")" = 20 ] && break; sleep 0.1; done
got=$(dst_sql "SELECT MIN(id), MAX(id), COUNT(*), SUM(v = 'c2') FROM ops_s.t" | tr '\t' ' ')
[ "$got" = "11 30 20 1" ] && ok || fail "target after start_time: '$got', want '11 30 20 1'"
grep -q "start_time $T1: the first transaction at or after it" "$WORK/server.log" && ok ||
    fail "the log does not say where start_time led"

# again with start_time after it ran: its checkpoint would win, so it needs remove_meta
api POST /tasks/ops-s/stop '{"timeout_duration":"15s"}'
expect 200 "stop"
api POST /tasks/ops-s/start "{\"start_time\":\"$(iso "$T1")\"}"
expect 409 "start_time over a checkpoint" "$ERRBODY" '.error_msg|test("remove_meta")'

# remove_meta + start_time: the b and c rows are on the target already; without safe mode the
# replayed INSERT is a duplicate (a data error: paused, fatal) ...
api POST /tasks/ops-s/start "{\"remove_meta\":true,\"start_time\":\"$(iso "$T1")\"}"
expect 200 "restart at start_time without safe mode"
for _ in $(seq 1 300); do api GET /tasks/ops-s/status; [ "$(printf '%s' "$BODY" | jq -r '.data[0].stage')" = Paused ] && break; sleep 0.1; done
expect 200 "duplicate rows pause" '.data[0].stage=="Paused"' '.data[0].error_msg|test("1062|Duplicate")' \
    '.data[0].auto_resume.error_class=="fatal"'
# ... with safe_mode_time_duration the window's rows are written idempotently
api POST /tasks/ops-s/start "{\"remove_meta\":true,\"start_time\":\"$(iso "$T1")\",\"safe_mode_time_duration\":\"1h\"}"
expect 200 "restart at start_time with safe mode"
src_sql "INSERT INTO ops_s.t VALUES (31, 'd')"
for _ in $(seq 1 300); do [ "$(dst_sql "SELECT COUNT(*) FROM ops_s.t")" = 21 ] && break; sleep 0.1; done
api GET /tasks/ops-s/status
expect 200 "running with safe mode" '.data[0].stage=="Running"'
got=$(dst_sql "SELECT MIN(id), MAX(id), COUNT(*), SUM(v = 'c2') FROM ops_s.t" | tr '\t' ' ')
[ "$got" = "11 31 21 1" ] && ok || fail "target after the safe-mode replay: '$got', want '11 31 21 1'"
grep -q "safe mode for rows committed on the source until" "$WORK/server.log" && ok || fail "no safe-mode log line"

# start_time is for incremental tasks
api POST /tasks "$(task ops-s-all all)"
expect 200 "all task"
api POST /tasks/ops-s-all/start "{\"start_time\":\"$(iso "$T1")\"}"
expect 400 "start_time on task_mode all" "$ERRBODY" '.error_msg|test("incremental")'

api DELETE "/tasks/ops-s?force=true"
expect 204 "delete"
api DELETE "/tasks/ops-s-all?force=true"
expect 204 "delete all task"
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS ops_s"
dst_sql "DROP DATABASE IF EXISTS ops_s"
finish
