#!/usr/bin/env bash
# test_relay_source_crash.sh - the relay log past a source that crashed: a source killed with
# SIGKILL leaves its current binlog file without a closing ROTATE, and after its restart the
# dump goes on at (next file, 4) with an artificial ROTATE. The relay used to stop there for good
# ("asked for (f, end), the source starts at (next, 4)"), and a task then read the source
# instead, so a PURGE of the source's binlogs made the task fail (errno 1236). Now the relay
# ends its copy of the file with a ROTATE and goes on; a task reading the relay (binlog_type
# local) follows it, stopped across a PURGE of the source's binlogs, and the target equals the
# source. Found by an exploratory session.
. "$(dirname "$0")/../api/lib.sh"
SANDBOX=${SLUICE_SANDBOX_SCRIPT:?SLUICE_SANDBOX_SCRIPT is not set}

DB=rl_crash
src_sql "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`;
         CREATE TABLE \`$DB\`.t (id INT PRIMARY KEY, v VARCHAR(40));
         INSERT INTO \`$DB\`.t SELECT seq, 'before' FROM \`$DB\`.seq_1_to_100; FLUSH BINARY LOGS" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "DROP DATABASE IF EXISTS \`$DB\`" || { echo "FAIL: cannot reach the target" >&2; exit 1; }
FIRST=$(src_sql "SHOW MASTER STATUS" | cut -f1)
start_server "$WORK/data"
SRC="\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true"
api POST /sources "{\"source_name\":\"rc-src\",$SRC,\"relay_config\":{\"enable_relay\":true,\"relay_binlog_name\":\"$FIRST\",\"relay_dir\":\"./relay_log\"}}"
expect 201 "source with the relay"
api POST /tasks "{\"task\":{\"name\":\"rc-task\",\"task_mode\":\"all\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"rc-src\",\"schema\":\"$DB\",\"table\":\"*\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump\"},\"source_conf\":[{\"source_name\":\"rc-src\"}]}}}"
expect 200 "task"
api POST /tasks/rc-task/start '{}'
expect 200 "start"
status() { api GET /tasks/rc-task/status; printf '%s' "$BODY" | jq -r ".data[0]${1:+.$1}"; }
relay() { api GET /sources/rc-src/status; printf '%s' "$BODY" | jq -r ".data[0].relay_status${1:+.$1}"; }
same() {
    [ "$(src_sql "CHECKSUM TABLE \`$DB\`.t EXTENDED" 2>/dev/null | awk '{print $2}')" = \
      "$(dst_sql "CHECKSUM TABLE \`$DB\`.t EXTENDED" 2>/dev/null | awk '{print $2}')" ]
}
for _ in $(seq 1 600); do [ "$(status unit)" = Sync ] && [ "$(status sync_status.binlog_type)" = local ] && break; sleep 0.1; done
[ "$(status sync_status.binlog_type)" = local ] && ok || fail "the task does not read the relay: $(status sync_status)"

for round in 1 2; do
    src_sql "INSERT INTO \`$DB\`.t VALUES ($((1000 + round)), 'before kill $round')"
    crashed=$(src_sql "SHOW MASTER STATUS" | cut -f1)
    for _ in $(seq 1 300); do same && break; sleep 0.1; done
    "$SANDBOX" kill source >/dev/null 2>&1
    "$SANDBOX" start >/dev/null 2>&1 || { fail "round $round: the source did not start again"; break; }
    for _ in $(seq 1 100); do src_sql "SELECT 1" >/dev/null 2>&1 && break; sleep 0.2; done
    src_sql "INSERT INTO \`$DB\`.t VALUES ($((2000 + round)), 'after restart $round'); UPDATE \`$DB\`.t SET v = 'changed $round' WHERE id = $round"
    for _ in $(seq 1 600); do [ "$(relay stage)" = Running ] && [ "$(relay relay_catch_up_master)" = true ] && same && break; sleep 0.1; done
    [ "$(relay stage)" = Running ] && ok || fail "round $round: the relay stopped: $(relay '')"
    same && ok || fail "round $round: the target differs from the source after the source's restart"
    tail=$(mariadb-binlog "$WORK/data/relay_log/rc-src/$crashed" 2>/dev/null | grep -c 'Rotate to')
    [ "$tail" -ge 1 ] && ok || fail "round $round: the relay's $crashed does not end with a ROTATE"
    grep -q "$crashed ended without a ROTATE" "$WORK/server.log" && ok || fail "round $round: no log line for $crashed"
done
[ "$(status sync_status.binlog_type)" = local ] && ok || fail "the task left the relay: $(status sync_status)"

# stopped across a PURGE of everything the source had: the task goes on from the relay
api POST /tasks/rc-task/stop '{}'
expect 200 "stop"
src_sql "INSERT INTO \`$DB\`.t VALUES (3001, 'while stopped'); FLUSH BINARY LOGS"
for _ in $(seq 1 300); do [ "$(relay relay_catch_up_master)" = true ] && break; sleep 0.1; done
last=$(src_sql "SHOW MASTER STATUS" | cut -f1)
src_sql "PURGE BINARY LOGS TO '$last'"
api POST /tasks/rc-task/start '{}'
expect 200 "start after the purge"
for _ in $(seq 1 600); do same && break; sleep 0.1; done
same && ok || fail "the target differs after the purge: $(status '')"
[ "$(status stage)" = Running ] && ok || fail "the task is not Running after the purge: $(status '')"

api DELETE "/tasks/rc-task?force=true"
expect 204 "delete"
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS \`$DB\`"
dst_sql "DROP DATABASE IF EXISTS \`$DB\`"
finish
