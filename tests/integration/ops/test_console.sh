#!/usr/bin/env bash
# test_console.sh - the web console in a real headless browser (Debian's chromium through
# chromedriver, driven by console_browser.py): with a bearer token on the server, the page asks
# for it, shows sources and tasks, a paused task's error, the compiler's errors at their paths,
# a full task's progress advancing to the Sync unit, its DAG and its lag; stops and starts it
# from the page. Screenshots go to $SLUICE_CONSOLE_SHOTS (default: the build dir's
# console-shots/, set by ctest).
. "$(dirname "$0")/../api/lib.sh"
for b in chromium chromedriver python3; do
    command -v "$b" >/dev/null || { echo "FAIL: $b is needed (scripts/setup installs it)" >&2; exit 1; }
done
SHOTS=${SLUICE_CONSOLE_SHOTS:-$WORK/shots}
mkdir -p "$SHOTS"

# Enough rows, in small chunks on one connection each way, that the load is seen part-way.
ROWS=400000
src_sql "DROP DATABASE IF EXISTS con_s; CREATE DATABASE con_s;
         CREATE TABLE con_s.t (id INT PRIMARY KEY, v VARCHAR(100));
         INSERT INTO con_s.t SELECT seq, REPEAT(CHAR(65 + seq % 26), 60) FROM con_s.seq_1_to_$ROWS" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "DROP DATABASE IF EXISTS con_s; DROP DATABASE IF EXISTS dm_meta" ||
    { echo "FAIL: cannot prepare the target" >&2; exit 1; }

TOKEN=console-test-token-$RANDOM$RANDOM
printf '%s\n' "$TOKEN" > "$WORK/token"
SERVER_EXTRA=(--auth-token-file "$WORK/token")
CURL_EXTRA=(-H "Authorization: Bearer $TOKEN")
start_server "$WORK/data"
api POST /sources "{\"source_name\":\"con-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
task() {   # NAME TARGET_PORT
    printf '{"task":{"name":"%s","task_mode":"all","target_config":{"host":"%s","port":%s,"user":"%s","password":"%s"},"table_migrate_rule":[{"source":{"source_name":"con-src","schema":"con_s","table":"*"}}],"source_config":{"full_migrate_conf":{"data_dir":"%s","export_threads":1,"import_threads":1},"source_conf":[{"source_name":"con-src"}]}}}' \
        "$1" "$SLUICE_TARGET_HOST" "$2" "$SLUICE_TARGET_USER" "$SLUICE_TARGET_PASSWORD" "$WORK/dump-$1"
}
api POST /tasks "$(task con-full "$SLUICE_TARGET_PORT")"
expect 200 "full task"
# an incremental task from a binlog file the source does not have: it pauses with the error
api POST /tasks "{\"task\":{\"name\":\"con-bad\",\"task_mode\":\"incremental\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"con-src\",\"schema\":\"con_s\",\"table\":\"*\"}}],\"source_config\":{\"source_conf\":[{\"source_name\":\"con-src\",\"binlog_name\":\"no-such-bin.000001\",\"binlog_pos\":4}]}}}"
expect 200 "task from a missing binlog"
api POST /tasks/con-bad/start '{}'
expect 200 "start the task from a missing binlog"

if python3 "$(dirname "$0")/console_browser.py" "http://127.0.0.1:$PORT" "$TOKEN" con-full con-bad "$SHOTS"; then
    ok
else
    fail "the browser checks (above)"
fi
ls "$SHOTS"/console-1280x800.png "$SHOTS"/console-phone.png >/dev/null && ok || fail "screenshots missing in $SHOTS"

# The page moved real rows: the target has them all.
got=$(dst_sql "SELECT COUNT(*) FROM con_s.t")
[ "$got" = "$ROWS" ] && ok || fail "target has $got rows, want $ROWS"

api POST /tasks/con-full/stop '{}'
api POST /tasks/con-bad/stop '{}'
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS con_s"
dst_sql "DROP DATABASE IF EXISTS con_s"
echo "test_console: $CHECKS checks, $FAILS failures"
[ "$FAILS" = 0 ]
