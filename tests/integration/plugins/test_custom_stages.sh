#!/usr/bin/env bash
# test_custom_stages.sh - custom stages run end to end (issue 19): a task_mode incremental task
# created over REST names an installed transform (passthrough, at after-route, counting the
# events of table t1 in "matched") and a custom sink (test-lines-sink, one line per row change).
# Under live writes on two source tables, every row change reaches the sink once, with the route's
# target names, and the task status "stages" and /metrics show both custom stages' counters. A
# task_mode all task runs the transform in both phases before the built-in loader and mysql-sink.
# A custom sink failing in start and a transform failing in process pause their subtask with the
# plugin's message; the server keeps serving.
. "$(dirname "$0")/../api/lib.sh"
CUSTOM=${SLUICE_TEST_CUSTOM_DIR:?SLUICE_TEST_CUSTOM_DIR is not set}
FAILP=${SLUICE_TEST_FAIL_PLUGIN:?SLUICE_TEST_FAIL_PLUGIN is not set}   # transform failing on its 3rd batch

# The server's plugin directory: the built-in plugins and the two custom ones, side by side as a
# user installs them.
mkdir -p "$WORK/plugins"
ln -s "$PLUGINS"/sluice-*.so "$CUSTOM"/sluice-*.so "$FAILP" "$WORK/plugins/"
PLUGINS="$WORK/plugins"

src_sql "DROP DATABASE IF EXISTS cs_s; CREATE DATABASE cs_s" || { echo "FAIL: cannot prepare the source" >&2; exit 1; }
src_sql "CREATE TABLE cs_s.t1 (id INT PRIMARY KEY, v VARCHAR(32)); CREATE TABLE cs_s.t2 (id INT PRIMARY KEY, v INT)" ||
    { echo "FAIL: cannot create the source tables" >&2; exit 1; }
# Start after the DDL: the stream holds only the writers' row changes (and their BEGIN/COMMIT).
read -r bfile bpos _ < <(src_sql "SHOW MASTER STATUS")

start_server "$WORK/data"
api POST /sources "{\"source_name\":\"cs-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
api POST /tasks "{\"task\":{\"name\":\"cs\",\"task_mode\":\"incremental\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"cs-src\",\"schema\":\"cs_s\",\"table\":\"*\"},\"target\":{\"schema\":\"cs_t\"}}],\"source_config\":{\"incr_migrate_conf\":{\"repl_batch\":10},\"source_conf\":[{\"source_name\":\"cs-src\",\"binlog_name\":\"$bfile\",\"binlog_pos\":$bpos}]},\"plugins\":[{\"name\":\"passthrough\",\"at\":\"after-route\",\"options\":{\"tables\":\"t1\"}}],\"sink\":{\"name\":\"test-lines-sink\",\"options\":{\"path\":\"$WORK/lines.txt\"}}}}"
expect 200 "task with a custom transform and a custom sink" '.plugins[0].name=="passthrough"' '.sink.name=="test-lines-sink"'
api POST /tasks/cs/start '{}'
expect 200 "start"

# Live writers while the task runs: t1 gets 300 inserts, 100 updates and 50 deletes, t2 200
# inserts and 100 updates, in many small transactions from two clients at once.
( for i in $(seq 0 29); do
      src_sql "INSERT INTO cs_s.t1 SELECT seq, CONCAT('v', seq) FROM cs_s.seq_$((i * 10 + 1))_to_$((i * 10 + 10))" || exit 1
  done
  src_sql "UPDATE cs_s.t1 SET v = 'u' WHERE id <= 100; DELETE FROM cs_s.t1 WHERE id > 250" ) &
w1=$!
( for i in $(seq 0 19); do
      src_sql "INSERT INTO cs_s.t2 SELECT seq, seq FROM cs_s.seq_$((i * 10 + 1))_to_$((i * 10 + 10))" || exit 1
  done
  src_sql "UPDATE cs_s.t2 SET v = v + 1 WHERE id > 100" ) &
w2=$!
wait "$w1" && wait "$w2" && ok || fail "a writer failed"
want=750   # 300 + 100 + 50 on t1, 200 + 100 on t2

for _ in $(seq 1 600); do
    [ "$(wc -l <"$WORK/lines.txt" 2>/dev/null || echo 0)" -ge "$want" ] && break
    sleep 0.1
done
n=$(wc -l <"$WORK/lines.txt" 2>/dev/null || echo 0)
[ "$n" = "$want" ] && ok || fail "the sink got $n row changes, want $want"
count() { grep -c -P "^$1\t$2\t$3\$" "$WORK/lines.txt"; }
for c in "insert cs_s.t1 cs_t.t1 300" "update cs_s.t1 cs_t.t1 100" "delete cs_s.t1 cs_t.t1 50" \
         "insert cs_s.t2 cs_t.t2 200" "update cs_s.t2 cs_t.t2 100"; do
    set -- $c
    got=$(count "$1" "$2" "$3")
    [ "$got" = "$4" ] && ok || fail "$1 on $2 routed to $3: $got lines, want $4"
done
# nothing went to the target: the custom sink replaced mysql-sink
[ -z "$(dst_sql "SHOW DATABASES LIKE 'cs_t'")" ] && ok || fail "cs_t exists on the target"

api GET /tasks/cs/status
expect 200 "status shows the custom stages" \
    '.data[0].stage=="Running"' \
    '[.data[0].stages[].id]==["reader","filter","route","plugin0","sink"]' \
    '.data[0].stages[] | select(.id=="plugin0") | .plugin=="passthrough" and .metrics.matched==450 and .metrics.passed>=750' \
    '.data[0].stages[] | select(.id=="sink") | .plugin=="test-lines-sink" and .metrics.rows==750'

curl -sS -o "$WORK/metrics" "http://127.0.0.1:$PORT/metrics"
grep -qF 'sluice_stage_matched_total{task="cs",source="cs-src",stage="plugin0",plugin="passthrough"} 450' "$WORK/metrics" &&
    ok || fail "/metrics: no matched=450 for plugin0: $(grep -F plugin0 "$WORK/metrics" | head -5)"
grep -qF 'sluice_stage_rows_total{task="cs",source="cs-src",stage="sink",plugin="test-lines-sink"} 750' "$WORK/metrics" &&
    ok || fail "/metrics: no rows=750 for the custom sink: $(grep -F test-lines-sink "$WORK/metrics" | head -5)"

# The same transform in both phases of a task_mode all task with the built-in sinks: the full
# copy passes through it (as chunks) and the target gets every row; in Sync it counts the row
# changes of t2 written after the copy.
dst_sql "DROP DATABASE IF EXISTS cs_all" || fail "cannot prepare the target"
api POST /tasks "{\"task\":{\"name\":\"cs-all\",\"task_mode\":\"all\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"cs-src\",\"schema\":\"cs_s\",\"table\":\"*\"},\"target\":{\"schema\":\"cs_all\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump\"},\"incr_migrate_conf\":{\"repl_batch\":10},\"source_conf\":[{\"source_name\":\"cs-src\"}]},\"plugins\":[{\"name\":\"passthrough\",\"at\":\"before-sink\",\"options\":{\"tables\":\"t2\"}}]}}"
expect 200 "task_mode all with a custom transform in both phases"
api POST /tasks/cs-all/start '{}'
expect 200 "start cs-all"
for _ in $(seq 1 600); do
    api GET /tasks/cs-all/status
    [ "$(printf '%s' "$BODY" | jq -r '.data[0].unit')" = Sync ] && break
    sleep 0.1
done
expect 200 "cs-all syncing" '.data[0].unit=="Sync"' '.data[0].stage=="Running"'
[ "$(dst_sql "SELECT COUNT(*) FROM cs_all.t1")" = 250 ] && ok || fail "cs_all.t1 does not hold the 250 rows"
[ "$(dst_sql "SELECT COUNT(*) FROM cs_all.t2")" = 200 ] && ok || fail "cs_all.t2 does not hold the 200 rows"
src_sql "INSERT INTO cs_s.t2 SELECT seq, 0 FROM cs_s.seq_1001_to_1010; UPDATE cs_s.t1 SET v = 'late' WHERE id = 1" || fail "late writes"
for _ in $(seq 1 600); do
    [ "$(dst_sql "SELECT COUNT(*) FROM cs_all.t2")" = 210 ] && [ "$(dst_sql "SELECT v FROM cs_all.t1 WHERE id = 1")" = late ] && break
    sleep 0.1
done
[ "$(dst_sql "SELECT COUNT(*) FROM cs_all.t2")" = 210 ] && ok || fail "the late t2 rows did not arrive"
api GET /tasks/cs-all/status
expect 200 "the incremental pipeline runs the custom stage before mysql-sink" \
    '[.data[0].stages[].id]==["reader","filter","route","plugin0","sink"]' \
    '.data[0].stages[] | select(.id=="plugin0") | .plugin=="passthrough" and .metrics.matched==10'
api DELETE "/tasks/cs-all?force=true"
expect 204 "delete cs-all"

# A custom stage that fails (the sink cannot open its file in start): the start request is refused
# with the plugin's own message, the subtask is Paused with it, and the other task keeps running.
api POST /tasks "{\"task\":{\"name\":\"cs-bad\",\"task_mode\":\"incremental\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"cs-src\",\"schema\":\"cs_s\",\"table\":\"*\"}}],\"source_config\":{\"source_conf\":[{\"source_name\":\"cs-src\",\"binlog_name\":\"$bfile\",\"binlog_pos\":$bpos}]},\"sink\":{\"name\":\"test-lines-sink\",\"options\":{\"path\":\"$WORK/no-such-dir/lines.txt\"}}}}"
expect 200 "task whose custom sink cannot start"
api POST /tasks/cs-bad/start '{}'
expect 400 "start refused with the plugin's message" '.error_msg | contains("stage sink (test-lines-sink): test-lines-sink: cannot open")'
api GET /tasks/cs-bad/status
expect 200 "the failed start leaves the subtask Paused with the plugin's message" '.data[0].stage=="Paused"' \
    '.data[0].error_msg | contains("test-lines-sink: cannot open")'
api GET /tasks/cs/status
expect 200 "the other task still runs" '.data[0].stage=="Running"'
api DELETE "/tasks/cs-bad?force=true"
expect 204 "delete the paused task"

# A custom transform that fails in process (on its third batch of the writers' changes): the
# subtask pauses with a message naming the stage and plugin; the server keeps serving.
api POST /tasks "{\"task\":{\"name\":\"cs-fail\",\"task_mode\":\"incremental\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"cs-src\",\"schema\":\"cs_s\",\"table\":\"*\"}}],\"source_config\":{\"incr_migrate_conf\":{\"repl_batch\":10},\"source_conf\":[{\"source_name\":\"cs-src\",\"binlog_name\":\"$bfile\",\"binlog_pos\":$bpos}]},\"plugins\":[{\"name\":\"test-fail-process\",\"at\":\"before-sink\"}],\"sink\":{\"name\":\"test-lines-sink\",\"options\":{\"path\":\"$WORK/fail.txt\"}}}}"
expect 200 "task with a transform that fails in process"
api POST /tasks/cs-fail/start '{}'
expect 200 "start cs-fail"
for _ in $(seq 1 300); do
    api GET /tasks/cs-fail/status
    [ "$(printf '%s' "$BODY" | jq -r '.data[0].stage')" = Paused ] && break
    sleep 0.1
done
expect 200 "a failing custom transform pauses its subtask with its message" '.data[0].stage=="Paused"' \
    '.data[0].error_msg | contains("plugin0 (test-fail-process)") and contains("Duplicate entry")'
api GET /tasks/cs/status
expect 200 "the first task still runs" '.data[0].stage=="Running"'
api DELETE "/tasks/cs-fail?force=true"
expect 204 "delete cs-fail"

api POST /tasks/cs/stop '{}'
expect 200 "stop"
api DELETE /tasks/cs
expect 204 "delete"
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS cs_s" || true
dst_sql "DROP DATABASE IF EXISTS cs_all" || true
finish
