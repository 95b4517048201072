#!/usr/bin/env bash
# test_masked.sh - GET then PUT of a task or a source: the answer shows passwords as "******", and
# PUT back as it is, that stands for the stored password (the task starts and copies rows, no
# "Access denied"), by the API and by `sluice task get` + `sluice task update`; with another host,
# port or user, "******" is refused (400) instead of sending the stored password elsewhere.
. "$(dirname "$0")/lib.sh"
CLI=${SLUICE_CLI_BIN:?SLUICE_CLI_BIN is not set}

src_sql "DROP DATABASE IF EXISTS api_mask; CREATE DATABASE api_mask;
         CREATE TABLE api_mask.t (id INT PRIMARY KEY); INSERT INTO api_mask.t VALUES (1), (2);" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "DROP DATABASE IF EXISTS api_mask; DROP DATABASE IF EXISTS mask_meta" ||
    { echo "FAIL: cannot prepare the target" >&2; exit 1; }
start_server "$WORK/data"
api POST /sources "{\"source_name\":\"mask-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
api POST /tasks "{\"task\":{\"name\":\"mask-t\",\"task_mode\":\"all\",\"meta_schema\":\"mask_meta\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"mask-src\",\"schema\":\"api_mask\",\"table\":\"*\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump\"},\"source_conf\":[{\"source_name\":\"mask-src\"}]}}}"
expect 200 "task"

# the API: GET, PUT the same body back
api GET /tasks/mask-t
expect 200 "GET task" '.target_config.password == "******"'
printf '%s' "$BODY" >"$WORK/task.json"
api PUT /tasks/mask-t "@$WORK/task.json"
expect 200 "PUT the GET answer back"
api GET /sources/mask-src
expect 200 "GET source" '.password == "******"'
printf '%s' "$BODY" >"$WORK/source.json"
api PUT /sources/mask-src "@$WORK/source.json"
expect 200 "PUT the source's GET answer back (it connects to probe the source)"

api POST /tasks/mask-t/start '{}'
expect 200 "start after the round trips"
for _ in $(seq 1 300); do [ "$(dst_sql "SELECT COUNT(*) FROM api_mask.t" 2>/dev/null)" = 2 ] && break; sleep 0.1; done
[ "$(dst_sql "SELECT COUNT(*) FROM api_mask.t" 2>/dev/null)" = 2 ] && ok ||
    { api GET /tasks/mask-t/status; fail "the task did not copy the rows: ${BODY:0:600}"; }
api GET /tasks/mask-t/status
expect 200 "no Access denied" '.data[0].stage == "Running"' '(.data[0].error_msg // "") | test("1045|denied") | not'
api POST /tasks/mask-t/stop '{}'
expect 200 "stop"

# the CLI: sluice task get > f; sluice task update f
"$CLI" task get mask-t --server "http://127.0.0.1:$PORT" >"$WORK/cli.json" 2>"$WORK/cli.err" &&
    jq -e '.target_config.password == "******"' "$WORK/cli.json" >/dev/null && ok ||
    fail "sluice task get: $(cat "$WORK/cli.err")"
"$CLI" task update "$WORK/cli.json" --server "http://127.0.0.1:$PORT" >"$WORK/cli.out" 2>&1 && ok ||
    fail "sluice task update: $(cat "$WORK/cli.out")"
src_sql "INSERT INTO api_mask.t VALUES (3)"
api POST /tasks/mask-t/start '{}'
expect 200 "start after the CLI round trip"
for _ in $(seq 1 300); do [ "$(dst_sql "SELECT COUNT(*) FROM api_mask.t" 2>/dev/null)" = 3 ] && break; sleep 0.1; done
[ "$(dst_sql "SELECT COUNT(*) FROM api_mask.t" 2>/dev/null)" = 3 ] && ok ||
    { api GET /tasks/mask-t/status; fail "the task did not go on after the CLI round trip: ${BODY:0:600}"; }
api POST /tasks/mask-t/stop '{}'
expect 200 "stop"

# "******" with another target or user: refused, the stored password is not sent there
jq '.target_config.port = 1' "$WORK/task.json" >"$WORK/task-port.json"
api PUT /tasks/mask-t "@$WORK/task-port.json"
expect 400 "masked password with another port" "$ERRBODY" '.error_msg | test("target_config/password")'
jq '.target_config.user = "someone_else"' "$WORK/task.json" >"$WORK/task-user.json"
api PUT /tasks/mask-t "@$WORK/task-user.json"
expect 400 "masked password with another user" "$ERRBODY" '.error_msg | test("user differs")'
jq '.host = "192.0.2.1"' "$WORK/source.json" >"$WORK/source-host.json"
api PUT /sources/mask-src "@$WORK/source-host.json"
expect 400 "source: masked password with another host" "$ERRBODY" '.error_msg | test("/source/password")'
# a new password is taken as given
jq ".target_config.password = \"$SLUICE_TARGET_PASSWORD\"" "$WORK/task.json" >"$WORK/task-pw.json"
api PUT /tasks/mask-t "@$WORK/task-pw.json"
expect 200 "PUT with the password in clear"

# and after a restart (the password comes back sealed from the store) the round trip holds
stop_server
start_server "$WORK/data"
api GET /tasks/mask-t
printf '%s' "$BODY" >"$WORK/task2.json"
api PUT /tasks/mask-t "@$WORK/task2.json"
expect 200 "PUT back after a restart"
api POST /tasks/mask-t/start '{}'
expect 200 "start after a restart"
for _ in $(seq 1 300); do
    api GET /tasks/mask-t/status
    [ "$(printf '%s' "$BODY" | jq -r '.data[0].unit')" = Sync ] && break
    sleep 0.1
done
expect 200 "runs after the round trip past a restart" '.data[0].stage == "Running"' '.data[0].unit == "Sync"'
api POST /tasks/mask-t/stop '{}'
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS api_mask"
dst_sql "DROP DATABASE IF EXISTS api_mask; DROP DATABASE IF EXISTS mask_meta"
finish
