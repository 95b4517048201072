#!/usr/bin/env bash
# test_metrics.sh - GET /metrics while a task_mode all task replicates on the sandbox: the text
# passes `promtool check metrics` (Debian's prometheus package), and it holds what an operator
# graphs: the subtask's stage, the finished dump and load, per-stage event counters and queue
# depths, the replication lag, the HTTP requests by route template, and the process's memory.
. "$(dirname "$0")/../api/lib.sh"
command -v promtool >/dev/null || { echo "FAIL: promtool is needed (scripts/setup installs prometheus)" >&2; exit 1; }

src_sql "DROP DATABASE IF EXISTS ops_m; CREATE DATABASE ops_m; CREATE TABLE ops_m.t (id INT PRIMARY KEY, v VARCHAR(32));
         INSERT INTO ops_m.t SELECT seq, CONCAT('row ', seq) FROM ops_m.seq_1_to_1000;" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "DROP DATABASE IF EXISTS ops_m" || { echo "FAIL: cannot prepare the target" >&2; exit 1; }
start_server "$WORK/data"
api POST /sources "{\"source_name\":\"ops-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
api POST /tasks "{\"task\":{\"name\":\"ops-m\",\"task_mode\":\"all\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"ops-src\",\"schema\":\"ops_m\",\"table\":\"*\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump\"},\"incr_migrate_conf\":{\"repl_batch\":10},\"source_conf\":[{\"source_name\":\"ops-src\"}]}}}"
expect 200 "task"
api POST /tasks/ops-m/start '{}'
expect 200 "start"
for _ in $(seq 1 600); do
    api GET /tasks/ops-m/status
    [ "$(printf '%s' "$BODY" | jq -r '.data[0].unit')" = Sync ] && break
    sleep 0.1
done
expect 200 "syncing" '.data[0].unit=="Sync"' '.data[0].stage=="Running"'
src_sql "INSERT INTO ops_m.t SELECT seq, 'new' FROM ops_m.seq_1001_to_1100" || fail "insert on the source"
for _ in $(seq 1 600); do
    [ "$(dst_sql "SELECT COUNT(*) FROM ops_m.t" 2>/dev/null)" = 1100 ] && break
    sleep 0.1
done
[ "$(dst_sql "SELECT COUNT(*) FROM ops_m.t")" = 1100 ] && ok || fail "the rows did not arrive"

curl -sS -o "$WORK/metrics" -w '%{content_type}' "http://127.0.0.1:$PORT/metrics" >"$WORK/ctype"
grep -q '^text/plain; version=0.0.4' "$WORK/ctype" && ok || fail "content type $(cat "$WORK/ctype")"
if promtool check metrics <"$WORK/metrics" >"$WORK/promtool.out" 2>&1; then ok; else
    fail "promtool check metrics: $(head -20 "$WORK/promtool.out")"; fi
# has NAME{LABELS} OP VALUE: a sample whose labels contain LABELS and whose value compares.
has() {
    local name=$1 labels=$2 op=$3 want=$4 v
    if [ -n "$labels" ]; then
        v=$(grep -F "$name{" "$WORK/metrics" | grep -F "$labels" | head -1 | awk '{print $NF}')
    else
        v=$(grep "^$name " "$WORK/metrics" | head -1 | awk '{print $NF}')
    fi
    if [ -z "$v" ]; then fail "no sample $name{...$labels...}"; return; fi
    awk -v v="$v" -v w="$want" -v op="$op" 'BEGIN { exit !((op == ">=" && v + 0 >= w + 0) || (op == "==" && v + 0 == w + 0)) }' &&
        ok || fail "$name{$labels} = $v, want $op $want"
}
L='task="ops-m",source="ops-src"'
has sluice_subtask_stage "$L,stage=\"Running\"" == 1
has sluice_subtask_stage "$L,stage=\"Paused\"" == 0
has sluice_dump_finished_rows "$L" == 1000
has sluice_dump_completed_tables "$L" == 1
has sluice_load_finished_bytes "$L" ">=" 1
has sluice_replication_lag_seconds "$L" ">=" 0
has sluice_stage_events_in_total "$L,stage=\"sink\",plugin=\"mysql-sink\"" ">=" 100
has sluice_stage_rows_applied_total "$L,stage=\"sink\",plugin=\"mysql-sink\"" ">=" 100
has sluice_stage_queue_batches "$L,stage=\"sink\"" ">=" 0
has sluice_subtask_errors_total "$L" == 0
has sluice_http_requests_total 'route="/api/v1/tasks/{name}/status",method="GET",code="200"' ">=" 1
has sluice_http_requests_total 'route="/api/v1/tasks",method="POST",code="200"' == 1
has sluice_http_request_duration_seconds_count 'route="/api/v1/tasks/{name}/start"' == 1
has process_resident_memory_bytes "" ">=" 1000000
has process_threads "" ">=" 4
# every metric the example Grafana dashboard graphs exists
for m in $(grep -o '\(sluice\|process\)_[a-z_]*' "${SLUICE_SOURCE_DIR:?}/examples/grafana/sluice.json" | sort -u); do
    base=${m%_bucket}
    grep -q "^# TYPE $base " "$WORK/metrics" && ok || fail "the dashboard graphs $m, which /metrics does not have"
done
# user-chosen names never become label values of the HTTP metrics
grep -q 'route="[^"]*ops-m' "$WORK/metrics" && fail "a task name leaked into a route label" || ok

api DELETE "/tasks/ops-m?force=true"
expect 204 "delete"
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS ops_m"
dst_sql "DROP DATABASE IF EXISTS ops_m"
finish
