#!/usr/bin/env bash
# test_concurrent.sh - 64 clients at once create, read, list, update and delete their own
# sources and tasks; every answer must be the right one, and at the end nothing is left over
# and the server is healthy (and, under ASan, reports nothing).
. "$(dirname "$0")/lib.sh"

start_server "$WORK/data"
client() {
    local c=$1 code out="$WORK/out.$c"
    local src="{\"source_name\":\"c$c\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
    local task="{\"task\":{\"name\":\"task-c$c\",\"task_mode\":\"incremental\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"c$c\",\"schema\":\"db$c\",\"table\":\"*\"}}],\"source_config\":{\"source_conf\":[{\"source_name\":\"c$c\",\"binlog_name\":\"mysql-bin.000001\",\"binlog_pos\":4}]}}}"
    step() { # METHOD PATH WANT [BODY]
        code=$(curl -s -o "$out" -w '%{http_code}' -X "$1" ${4:+-d "$4"} "$A$2")
        [ "$code" = "$3" ] || { echo "client $c: $1 $2 -> $code (want $3): $(head -c 300 "$out")"; return 1; }
    }
    for round in 1 2; do
        step POST /sources 201 "$src" || return 1
        step POST /sources 409 "$src" || return 1
        step GET "/sources/c$c?with_status=true" 200 || return 1
        jq -e ".source_name==\"c$c\" and .password==\"******\"" "$out" >/dev/null || { echo "client $c: bad source"; return 1; }
        step POST /tasks 200 "$task" || return 1
        step POST /tasks 409 "$task" || return 1
        step GET /tasks 200 || return 1
        jq -e "[.data[].name]|index(\"task-c$c\")!=null" "$out" >/dev/null || { echo "client $c: task missing from the list"; return 1; }
        step GET "/tasks/task-c$c?with_status=true" 200 || return 1
        step GET "/tasks/task-c$c/status" 200 || return 1
        step PUT "/tasks/task-c$c" 200 "$task" || return 1
        step DELETE "/sources/c$c" 409 || return 1
        step DELETE "/tasks/task-c$c?keep_meta=true" 204 || return 1
        step GET "/tasks/task-c$c" 404 || return 1
        step DELETE "/sources/c$c" 204 || return 1
        step GET "/sources/c$c" 404 || return 1
    done
    echo ok >"$WORK/done.$c"
}
pids=()
for c in $(seq 1 "${CLIENTS:-64}"); do client "$c" >"$WORK/client.$c.log" 2>&1 & pids+=($!); done
wait "${pids[@]}"   # not a bare wait: the server is a child of this shell too
n=$(ls "$WORK"/done.* 2>/dev/null | wc -l)
if [ "$n" = "${CLIENTS:-64}" ]; then ok; else
    cat "$WORK"/client.*.log | grep -v '^$' | head -20 >&2
    fail "$n of ${CLIENTS:-64} clients got only right answers"
fi
api GET /sources
expect 200 "no source left" '.total==0'
api GET /tasks
expect 200 "no task left" '.total==0' '.data==[]'
api GET /cluster/masters
expect 200 "server healthy"
stop_server
check_log
finish
