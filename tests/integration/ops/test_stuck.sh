#!/usr/bin/env bash
# test_stuck.sh - one task whose pipeline is stuck does not freeze the server: task stk-a writes
# to the sandbox target, which is frozen (SIGSTOP: its sink blocks in a query that never gets an
# answer, where no stop flag is looked at). Its stop is asked; meanwhile GET /tasks, GET /sources,
# the other task's status (stk-b, whose target is the source server) and that task's own stop all
# answer at once, the stuck task's status says "stopping", a start of it is refused, and SIGTERM
# ends the server within a bounded time. Before the fix the stop held the API-wide lock while it
# waited for the stuck stage: every other request and SIGTERM waited for ever.
. "$(dirname "$0")/../api/lib.sh"
: "${SLUICE_SANDBOX_DIR:?SLUICE_SANDBOX_DIR is not set (scripts/sandbox env)}"
DST_PID=$(cat "$SLUICE_SANDBOX_DIR/target.pid")
cont_target() { kill -CONT "$DST_PID" 2>/dev/null; }
trap 'cont_target; cleanup' EXIT
CURL_EXTRA=(-m 5)   # "promptly": a request that blocks fails the check instead of the test hanging

src_sql "DROP DATABASE IF EXISTS ops_sa; CREATE DATABASE ops_sa;
         CREATE TABLE ops_sa.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO ops_sa.t VALUES (1, 'a');
         DROP DATABASE IF EXISTS ops_sb; CREATE DATABASE ops_sb;
         CREATE TABLE ops_sb.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO ops_sb.t VALUES (1, 'b');
         DROP DATABASE IF EXISTS ops_sb_copy; DROP DATABASE IF EXISTS stk_meta;" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "DROP DATABASE IF EXISTS ops_sa; DROP DATABASE IF EXISTS stk_meta" || { echo "FAIL: cannot prepare the target" >&2; exit 1; }
start_server "$WORK/data"
api POST /sources "{\"source_name\":\"stk-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
task() {   # NAME SCHEMA TARGET_PORT EXTRA_RULE_TARGET
    printf '{"task":{"name":"%s","task_mode":"all","meta_schema":"stk_meta","target_config":{"host":"%s","port":%s,"user":"%s","password":"%s"},"table_migrate_rule":[{"source":{"source_name":"stk-src","schema":"%s","table":"*"}%s}],"source_config":{"full_migrate_conf":{"data_dir":"%s"},"incr_migrate_conf":{"repl_batch":1,"repl_threads":1},"source_conf":[{"source_name":"stk-src"}]}}}' \
        "$1" "$SLUICE_TARGET_HOST" "$3" "$SLUICE_TARGET_USER" "$SLUICE_TARGET_PASSWORD" "$2" "$4" "$WORK/dump-$1"
}
api POST /tasks "$(task stk-a ops_sa "$SLUICE_TARGET_PORT" "")"
expect 200 "task stk-a"
# stk-b copies ops_sb into ops_sb_copy on the source server itself: it keeps working while the
# target is frozen
api POST /tasks "$(task stk-b ops_sb "$SLUICE_SOURCE_PORT" ',"target":{"schema":"ops_sb_copy"}')"
expect 200 "task stk-b"
for t in stk-a stk-b; do
    api POST /tasks/$t/start '{}'
    expect 200 "start $t"
done
unit() { api GET /tasks/$1/status; printf '%s' "$BODY" | jq -r '.data[0].unit + "/" + .data[0].stage'; }
for t in stk-a stk-b; do
    for _ in $(seq 1 600); do [ "$(unit $t)" = Sync/Running ] && break; sleep 0.1; done
    [ "$(unit $t)" = Sync/Running ] && ok || fail "$t did not reach Sync: $BODY"
done

# freeze the target, then give stk-a a row: its sink sends it and waits for an answer for ever
kill -STOP "$DST_PID"
src_sql "INSERT INTO ops_sa.t VALUES (2, 'stuck')"
sleep 2
t0=$(date +%s)
curl -sS -m 60 -o "$WORK/stop-a.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary '{"timeout_duration":"2s"}' "$A/tasks/stk-a/stop" >"$WORK/stop-a.code" 2>&1 &
STOP_A=$!
sleep 1   # the stop is under way

api GET '/tasks?with_status=true'
expect 200 "GET /tasks while stk-a is stuck" '.total == 2'
api GET /sources
expect 200 "GET /sources while stk-a is stuck" '.total == 1'
api GET /tasks/stk-b/status
expect 200 "stk-b's status while stk-a is stuck" '.data[0].stage == "Running"'
api GET /tasks/stk-a/status
expect 200 "stk-a's status while it is stopping" '.data[0].stage == "Stopped"' '.data[0].stopping == true'
api POST /tasks/stk-b/stop '{}'
expect 200 "stop stk-b while stk-a is stuck"
api GET /tasks/stk-b/status
expect 200 "stk-b stopped" '.data[0].stage == "Stopped"' '(.data[0].stopping // false) == false'
api POST /tasks/stk-b/start '{}'
expect 200 "start stk-b again while stk-a is stuck"
src_sql "INSERT INTO ops_sb.t VALUES (2, 'b2')"
for _ in $(seq 1 100); do [ "$(src_sql "SELECT COUNT(*) FROM ops_sb_copy.t")" = 2 ] && break; sleep 0.1; done
[ "$(src_sql "SELECT COUNT(*) FROM ops_sb_copy.t")" = 2 ] && ok || fail "stk-b does not replicate while stk-a is stuck"

# the stuck task's stop answers after its timeout_duration, and it cannot start beside the run
# that is still stopping
wait "$STOP_A"
t1=$(date +%s)
[ "$(cat "$WORK/stop-a.code")" = 200 ] && [ $((t1 - t0)) -le 10 ] && ok ||
    fail "stop of the stuck task: HTTP $(cat "$WORK/stop-a.code") after $((t1 - t0)) s"
api POST /tasks/stk-a/start '{}'
expect 400 "start of a task still stopping" '.error_msg | test("still stopping|not stopped")'
code=$(curl -sS -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metrics")
[ "$code" = 200 ] && ok || fail "GET /metrics while stk-a is stuck: HTTP $code"

# SIGTERM ends the server even with the stage still stuck
kill -TERM "$PID"
for _ in $(seq 1 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$PID" 2>/dev/null; then
    fail "the server is still running 30 s after SIGTERM"
    kill_server
else
    wait "$PID"
    rc=$?
    [ "$rc" = 0 ] && ok || fail "server exited with $rc after SIGTERM"
    PID=
    grep -q "exiting without it" "$WORK/server.log" && ok || fail "the stuck stage is not logged at exit"
    check_log
fi
cont_target

# the target answers again: a restarted server resumes stk-a (stored Stopped: start it) from its
# checkpoint
start_server "$WORK/data"
CURL_EXTRA=(-m 30)
api POST /tasks/stk-a/start '{}'
expect 200 "start stk-a once the target answers"
for _ in $(seq 1 300); do [ "$(dst_sql "SELECT COUNT(*) FROM ops_sa.t" 2>/dev/null)" = 2 ] && break; sleep 0.1; done
[ "$(dst_sql "SELECT COUNT(*) FROM ops_sa.t")" = 2 ] && ok || fail "stk-a did not catch up after the target came back"
for t in stk-a stk-b; do api POST /tasks/$t/stop '{}'; expect 200 "stop $t"; done
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS ops_sa; DROP DATABASE IF EXISTS ops_sb; DROP DATABASE IF EXISTS ops_sb_copy; DROP DATABASE IF EXISTS stk_meta"
dst_sql "DROP DATABASE IF EXISTS ops_sa; DROP DATABASE IF EXISTS stk_meta"
finish
