#!/usr/bin/env bash
# test_signal.sh - SIGTERM and SIGINT while the server is still starting (restoring a few hundred
# tasks) stop it cleanly: exit status 0, a "stopping" line, no sanitizer report, and a store that
# a later start restores completely. Before, the stop signals were blocked until startup had
# finished. Whether a signal lands during the restore or just after it, the checks are the same;
# the test says which happened.
. "$(dirname "$0")/lib.sh"

NTASKS=300
start_server "$WORK/data"
api POST /sources "{\"source_name\":\"sig-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
task_body() {
    printf '{"task":{"name":"sig-%s","task_mode":"all","target_config":{"host":"%s","port":%s,"user":"%s","password":"%s"},"table_migrate_rule":[{"source":{"source_name":"sig-src","schema":"sig_%s","table":"*"},"target":{"schema":"sig"}}],"source_config":{"source_conf":[{"source_name":"sig-src"}]}}}' \
        "$1" "$SLUICE_TARGET_HOST" "$SLUICE_TARGET_PORT" "$SLUICE_TARGET_USER" "$SLUICE_TARGET_PASSWORD" "$1"
}
export -f task_body
export A SLUICE_TARGET_HOST SLUICE_TARGET_PORT SLUICE_TARGET_USER SLUICE_TARGET_PASSWORD
seq 1 "$NTASKS" | xargs -P 4 -I{} bash -c \
    'curl -s -o /dev/null -w "%{http_code}\n" -X POST -d "$(task_body {})" "$A/tasks"' >"$WORK/codes"
[ "$(grep -c '^200$' "$WORK/codes")" = "$NTASKS" ] && ok || fail "not every task was created: $(sort "$WORK/codes" | uniq -c)"
stop_server
check_log

# signal_during_startup SIG: start, send SIG as soon as the plugins are loaded (the restore
# follows), and wait for the exit (bounded, so a hang fails instead of blocking the run).
signal_during_startup() {
    local sig=$1 log=$WORK/startup-$1.log i rc
    "$SERVER" --addr 127.0.0.1:0 --data-dir "$WORK/data" --plugin-dir "$PLUGINS" >"$log" 2>&1 &
    PID=$!
    for i in $(seq 1 3000); do
        grep -q 'plugins loaded' "$log" && break
        sleep 0.01
    done
    kill -"$sig" "$PID"
    for i in $(seq 1 600); do
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$PID" 2>/dev/null; then
        fail "SIG$sig during startup: the server still runs after 60 s"
        kill -KILL "$PID"
    fi
    wait "$PID"
    rc=$?
    PID=
    [ "$rc" = 0 ] && ok || fail "SIG$sig during startup: exit status $rc"
    grep -q "SIG$sig received.*: stopping" "$log" && grep -q "stopped" "$log" && ok ||
        { tail -5 "$log" >&2; fail "SIG$sig during startup: no clean stop in the log"; }
    check_log "$log"
    if grep -q "received during startup" "$log"; then
        echo "SIG$sig landed during the restore of $NTASKS tasks"
    else
        echo "SIG$sig landed after startup (the restore was faster than the signal)"
    fi
}
signal_during_startup TERM
signal_during_startup INT

# Nothing was lost by the interrupted starts.
start_server "$WORK/data"
api GET /tasks
expect 200 "tasks after interrupted starts" ".total == $NTASKS"
api GET /sources
expect 200 "sources after interrupted starts" '.total == 1'
stop_server
check_log
finish
