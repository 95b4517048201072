#!/usr/bin/env bash
# test_metrics_counters.sh - the subtask metrics tell the truth over a subtask's life in one
# process: sluice_sync_events_total never goes down across a stop and start; the lag grows while
# a subtask is Paused and the source moves on, and has no sample while it is not known (a task
# paused before its first event); a PUT of a task Paused and waiting for its automatic resume
# leaves it Stopped with its errors and resumes still counted.
. "$(dirname "$0")/../api/lib.sh"

src_sql "DROP DATABASE IF EXISTS ops_c; CREATE DATABASE ops_c; CREATE TABLE ops_c.t (id INT PRIMARY KEY, v VARCHAR(32));
         INSERT INTO ops_c.t SELECT seq, 'old' FROM ops_c.seq_1_to_10;" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "DROP DATABASE IF EXISTS ops_c" || { echo "FAIL: cannot prepare the target" >&2; exit 1; }
start_server "$WORK/data"

# sample NAME TASK: the value of NAME{task="TASK",...}, empty without a sample
sample() {
    curl -sS "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics" || fail "GET /metrics"
    grep -F "$1{task=\"$2\"," "$WORK/metrics" | grep -v 'stage="' | head -1 | awk '{print $NF}'
}
ge() { awk -v v="$1" -v w="$2" 'BEGIN { exit !(v != "" && v + 0 >= w + 0) }'; }
rows() { dst_sql "SELECT COUNT(*) FROM ops_c.t" 2>/dev/null; }
wait_rows() {
    for _ in $(seq 1 300); do [ "$(rows)" = "$1" ] && return 0; sleep 0.1; done
    fail "the target has $(rows) rows, want $1"
}
status() { api GET "/tasks/$1/status"; printf '%s' "$BODY" | jq -r ".data[0].$2"; }
wait_sync() {
    for _ in $(seq 1 600); do
        [ "$(status "$1" unit)" = Sync ] && [ "$(status "$1" stage)" = Running ] && return 0
        sleep 0.1
    done
    fail "$1 did not reach Sync: $BODY"
}

api POST /sources "{\"source_name\":\"c-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
task() {   # task NAME TARGET_PORT
    printf '{"task":{"name":"%s","task_mode":"all","target_config":{"host":"%s","port":%s,"user":"%s","password":"%s"},"table_migrate_rule":[{"source":{"source_name":"c-src","schema":"ops_c","table":"*"}}],"source_config":{"full_migrate_conf":{"data_dir":"%s"},"incr_migrate_conf":{"repl_batch":10},"source_conf":[{"source_name":"c-src"}]}}}' \
        "$1" "$SLUICE_TARGET_HOST" "$2" "$SLUICE_TARGET_USER" "$SLUICE_TARGET_PASSWORD" "$WORK/dump-$1"
}

# ---- 1. events across a stop and a start ----
api POST /tasks "$(task ops-c "$SLUICE_TARGET_PORT")"
expect 200 "task"
api POST /tasks/ops-c/start '{"remove_meta":true}'
expect 200 "start"
wait_sync ops-c
src_sql "INSERT INTO ops_c.t SELECT seq, 'new' FROM ops_c.seq_11_to_60" || fail "insert on the source"
wait_rows 60
e1=$(sample sluice_sync_events_total ops-c)
ge "$e1" 50 && ok || fail "events after 50 rows: '$e1'"
api POST /tasks/ops-c/stop '{}'
expect 200 "stop"
e2=$(sample sluice_sync_events_total ops-c)
ge "$e2" "$e1" && ok || fail "sluice_sync_events_total went down at the stop: $e1 -> '$e2'"
api POST /tasks/ops-c/start '{}'
expect 200 "start again"
wait_sync ops-c
e3=$(sample sluice_sync_events_total ops-c)
ge "$e3" "$e2" && ok || fail "sluice_sync_events_total went down at the start: $e2 -> '$e3'"
src_sql "INSERT INTO ops_c.t SELECT seq, 'new' FROM ops_c.seq_61_to_70" || fail "insert on the source"
wait_rows 70
e4=$(sample sluice_sync_events_total ops-c)
ge "$e4" $((e2 + 10)) && ok || fail "events of the second run not added: $e2 -> '$e4'"

# ---- 2. lag while Paused with the source moving on: a row the target already has pauses it ----
dst_sql "INSERT INTO ops_c.t VALUES (71, 'in the way')" || fail "insert on the target"
src_sql "INSERT INTO ops_c.t VALUES (71, 'dup')" || fail "insert on the source"
for _ in $(seq 1 300); do [ "$(status ops-c stage)" = Paused ] && break; sleep 0.1; done
[ "$(status ops-c stage)" = Paused ] && ok || fail "the duplicate did not pause the task: $BODY"
src_sql "INSERT INTO ops_c.t VALUES (72, 'after')" || fail "insert on the source"
sleep 5
lag=$(sample sluice_replication_lag_seconds ops-c)
ge "$lag" 4 && ok || fail "lag while Paused for 5 s with the source moving on: '$lag', want >= 4"
e5=$(sample sluice_sync_events_total ops-c)
ge "$e5" "$e4" && ok || fail "sluice_sync_events_total went down at the pause: $e4 -> '$e5'"

# ---- 3. a task paused before its first event: its target (a socat relay to the sandbox's) goes
# away right after the start's checks ----
command -v socat >/dev/null || { echo "FAIL: socat is needed" >&2; exit 1; }
PORT_RELAY=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
socat "TCP-LISTEN:$PORT_RELAY,bind=127.0.0.1,reuseaddr,fork" "TCP:$SLUICE_TARGET_HOST:$SLUICE_TARGET_PORT" &
RELAY=$!
trap 'kill $RELAY 2>/dev/null; cleanup' EXIT
for _ in $(seq 1 50); do mariadb -h 127.0.0.1 -P "$PORT_RELAY" -u "$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD" -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
api POST /tasks "$(task ops-d "$PORT_RELAY")"
expect 200 "task through the relay"
api POST /tasks/ops-d/start '{"remove_meta":true}'
expect 200 "start ops-d"
kill "$RELAY"
wait "$RELAY" 2>/dev/null
# transient: it resumes by itself after 2 s, fails again, and waits 4 s for the next
for _ in $(seq 1 200); do
    [ "$(status ops-d auto_resume.resumes)" -ge 1 ] 2>/dev/null && [ "$(status ops-d stage)" = Paused ] &&
        [ "$(status ops-d auto_resume.errors)" -ge 2 ] 2>/dev/null && break
    sleep 0.1
done
api GET /tasks/ops-d/status
expect 200 "paused, waiting for a resume" '.data[0].stage=="Paused"' '.data[0].auto_resume.error_class=="transient"' \
    '.data[0].auto_resume.resumes>=1' '.data[0].auto_resume.errors>=2' '.data[0].auto_resume.next_retry_at!=""'
errs=$(printf '%s' "$BODY" | jq '.data[0].auto_resume.errors')
res=$(printf '%s' "$BODY" | jq '.data[0].auto_resume.resumes')
[ -z "$(sample sluice_replication_lag_seconds ops-d)" ] && ok ||
    fail "a lag sample for a task that never had an event: $(grep -F 'lag_seconds{task="ops-d"' "$WORK/metrics")"
m_errs=$(sample sluice_subtask_errors_total ops-d)
ge "$m_errs" "$errs" && ok || fail "sluice_subtask_errors_total '$m_errs', want >= $errs"
api PUT /tasks/ops-d "$(task ops-d "$PORT_RELAY")"
expect 200 "PUT of the paused task"
api GET /tasks/ops-d/status
expect 200 "after the PUT" '.data[0].stage=="Stopped"' '.data[0].auto_resume.next_retry_at==""' \
    ".data[0].auto_resume.errors>=$errs" ".data[0].auto_resume.resumes>=$res"
ge "$(sample sluice_subtask_errors_total ops-d)" "$m_errs" && ok ||
    fail "sluice_subtask_errors_total went down at the PUT: $m_errs -> $(grep -F 'errors_total{task="ops-d"' "$WORK/metrics")"
ge "$(sample sluice_subtask_resumes_total ops-d)" "$res" && ok ||
    fail "sluice_subtask_resumes_total went down at the PUT: $res -> $(grep -F 'resumes_total{task="ops-d"' "$WORK/metrics")"
sleep 3
[ "$(status ops-d stage)" = Stopped ] && ok || fail "the PUT task resumed by itself: $BODY"

api POST /tasks/ops-c/stop '{}'
stop_server
check_log
finish
