#!/usr/bin/env bash
# test_relay_api.sh - the relay log in a real sluice-server over real HTTP (issue 14): a source
# created with relay_config.enable_relay shows relay_status; bad relay_dir values are refused
# naming the field; a task_mode "all" task of that source reads the relay ("binlog_type":
# "local"); the task is stopped, the source writes, rotates and PURGEs its binlogs past the task's
# checkpoint once the relay holds them; the task is started again and catches up from the relay,
# the target ends equal to the source. A second task on the source reads the relay too, and the
# source shows one Binlog Dump thread (the relay's). Aged relay files are purged by the source's
# purge.expires, up to the task's checkpoint and no further.
. "$(dirname "$0")/../api/lib.sh"

DB=rl_api
src_sql "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`;
         CREATE TABLE \`$DB\`.\`t\` (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40), n INT);
         INSERT INTO \`$DB\`.\`t\` (v, n) SELECT CONCAT('row ', seq), seq FROM \`$DB\`.seq_1_to_1000;
         FLUSH BINARY LOGS" || { echo "FAIL: cannot prepare the source" >&2; exit 1; }
# no checkpoint of an earlier run of this task (its load would count as done)
drop_ckpt() {
    dst_sql "SELECT CONCAT('DROP TABLE \`dm_meta\`.\`', table_name, '\`;') FROM information_schema.TABLES
             WHERE table_schema = 'dm_meta' AND (table_name LIKE 'rl-task\\_%' OR table_name LIKE 'rl-task2\\_%')" |
        dst_sql "$(cat)" 2>/dev/null
    dst_sql "DROP DATABASE IF EXISTS \`$DB\`; DROP DATABASE IF EXISTS \`${DB}2\`"
}
drop_ckpt || { echo "FAIL: cannot prepare the target" >&2; exit 1; }
FIRST=$(src_sql "SHOW MASTER STATUS" | cut -f1)
start_server "$WORK/data"

SRC="\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true"
api POST /sources "{\"source_name\":\"rl-bad\",$SRC,\"relay_config\":{\"enable_relay\":true,\"relay_dir\":\"/etc/sluice-relay\"}}"
expect 400 "relay_dir outside the data dir" "$ERRBODY" '.error_msg|test("/source/relay_config/relay_dir")' '.error_msg|test("outside")'
api POST /sources "{\"source_name\":\"rl-bad\",$SRC,\"relay_config\":{\"enable_relay\":true,\"relay_dir\":\"./a/../../x\"}}"
expect 400 "relay_dir with .." "$ERRBODY" '.error_msg|test("/source/relay_config/relay_dir")'
mkdir -p "$WORK/data/ro" && chmod 555 "$WORK/data/ro"
if [ "$(id -u)" != 0 ]; then   # root writes anywhere
    api POST /sources "{\"source_name\":\"rl-bad\",$SRC,\"relay_config\":{\"enable_relay\":true,\"relay_dir\":\"./ro/x\"}}"
    expect 400 "relay_dir not writable" "$ERRBODY" '.error_msg|test("/source/relay_config/relay_dir")'
fi

api POST /sources "{\"source_name\":\"rl-src\",$SRC,\"purge\":{\"interval\":1,\"expires\":1,\"remain_space\":0},\"relay_config\":{\"enable_relay\":true,\"relay_binlog_name\":\"$FIRST\",\"relay_dir\":\"./relay_log\"}}"
expect 201 "source with the relay enabled"
relay() { api GET /sources/rl-src/status; printf '%s' "$BODY" | jq -r ".data[0].relay_status${1:+.$1}"; }
for _ in $(seq 1 300); do [ "$(relay relay_catch_up_master)" = true ] && break; sleep 0.1; done
api GET /sources/rl-src/status
expect 200 "relay_status" '.data[0].relay_status.stage=="Running"' '.data[0].relay_status.relay_dir=="./relay_log"' \
    '.data[0].relay_status.relay_catch_up_master==true' '.data[0].relay_status.master_binlog|test("mysql-bin")' \
    '(.data[0].relay_status.relay_binlog_gtid|length) > 0' '.data[0].relay_status|has("error_msg")|not'
[ -f "$WORK/data/relay_log/rl-src/$FIRST" ] && ok || fail "no relay file $WORK/data/relay_log/rl-src/$FIRST"
api GET "/sources?enable_relay=true"
expect 200 "list of relay-enabled sources" '.total==1' '.data[0].source_name=="rl-src"'

api POST /tasks "{\"task\":{\"name\":\"rl-task\",\"task_mode\":\"all\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"rl-src\",\"schema\":\"$DB\",\"table\":\"*\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump\"},\"source_conf\":[{\"source_name\":\"rl-src\"}]}}}"
expect 200 "task"
api POST /tasks/rl-task/start '{}'
expect 200 "start"
status() { api GET /tasks/rl-task/status; printf '%s' "$BODY" | jq -r ".data[0]${1:+.$1}"; }
for _ in $(seq 1 600); do [ "$(status unit)" = Sync ] && break; sleep 0.1; done
[ "$(status unit)" = Sync ] && ok || fail "the task did not reach Sync: $(status '')"
src_sql "INSERT INTO \`$DB\`.\`t\` (v, n) VALUES ('after load', 1)"
same() {
    [ "$(src_sql "CHECKSUM TABLE \`$DB\`.\`t\` EXTENDED" | awk '{print $2}')" = \
      "$(dst_sql "CHECKSUM TABLE \`$DB\`.\`t\` EXTENDED" 2>/dev/null | awk '{print $2}')" ]
}
for _ in $(seq 1 300); do same && break; sleep 0.1; done
same && ok || fail "the target differs from the source while syncing"
[ "$(status sync_status.binlog_type)" = local ] && ok || fail "the task does not read the relay: $(status sync_status)"
# A second task on the same source, into another schema: both read the relay, the source still
# serves one Binlog Dump (the relay's).
api POST /tasks "{\"task\":{\"name\":\"rl-task2\",\"task_mode\":\"all\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"rl-src\",\"schema\":\"$DB\",\"table\":\"*\"},\"target\":{\"schema\":\"${DB}2\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump2\"},\"source_conf\":[{\"source_name\":\"rl-src\"}]}}}"
expect 200 "second task"
api POST /tasks/rl-task2/start '{}'
expect 200 "start the second task"
src_sql "INSERT INTO \`$DB\`.\`t\` (v, n) VALUES ('two tasks', 1)"
same2() {
    [ "$(src_sql "CHECKSUM TABLE \`$DB\`.\`t\` EXTENDED" | awk '{print $2}')" = \
      "$(dst_sql "CHECKSUM TABLE \`${DB}2\`.\`t\` EXTENDED" 2>/dev/null | awk '{print $2}')" ]
}
for _ in $(seq 1 600); do same && same2 && break; sleep 0.1; done
same && same2 && ok || fail "the two tasks' targets differ from the source"
api GET /tasks/rl-task2/status
expect 200 "the second task reads the relay" '.data[0].sync_status.binlog_type=="local"'
dumps=$(src_sql "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
[ "$dumps" = 1 ] && ok || fail "$dumps Binlog Dump threads on the source, want 1 (the relay's)"
api POST /tasks/rl-task2/stop '{}'
api DELETE /tasks/rl-task2

# Stopped task, source writes, rotates and purges what the relay took.
api POST /tasks/rl-task/stop '{}'
expect 200 "stop"
for i in $(seq 1 50); do
    src_sql "INSERT INTO \`$DB\`.\`t\` (v, n) VALUES ('stopped $i', $i); UPDATE \`$DB\`.\`t\` SET n = n + 1 WHERE id = $i; DELETE FROM \`$DB\`.\`t\` WHERE id = $((i + 500))"
    [ $((i % 20)) = 0 ] && src_sql "FLUSH BINARY LOGS"
done
src_sql "FLUSH BINARY LOGS"
CUR=$(src_sql "SHOW MASTER STATUS" | cut -f1)
for _ in $(seq 1 300); do
    [ "$(relay relay_catch_up_master)" = true ] && [ "$(relay relay_binlog | tr -d '(' | cut -d, -f1)" = "$CUR" ] && break
    sleep 0.1
done
[ "$(relay relay_catch_up_master)" = true ] && ok || fail "the relay did not catch up: $(relay '')"
for _ in $(seq 1 100); do
    src_sql "PURGE BINARY LOGS TO '$CUR'"
    [ "$(src_sql "SHOW BINARY LOGS" | head -1 | cut -f1)" = "$CUR" ] && break
    sleep 0.1
done
[ "$(src_sql "SHOW BINARY LOGS" | head -1 | cut -f1)" = "$CUR" ] && ok || fail "the source kept binlogs before $CUR"

api POST /tasks/rl-task/start '{}'
expect 200 "start again"
src_sql "INSERT INTO \`$DB\`.\`t\` (v, n) VALUES ('after purge', 2)"
for _ in $(seq 1 600); do same && break; sleep 0.1; done
same && ok || fail "the task did not catch up from the relay: $(src_sql "SELECT COUNT(*) FROM \`$DB\`.\`t\`") vs $(dst_sql "SELECT COUNT(*) FROM \`$DB\`.\`t\`" 2>&1); $(status error_msg)"
[ "$(status stage)" = Running ] && ok || fail "the task is not Running: $(status '')"

# Automatic purge by age (purge.expires 1 h, checked every second): nothing went while the files
# were new; aged by two hours, the files before the task's checkpoint go, the rest stays.
RD=$WORK/data/relay_log/rl-src
[ -f "$RD/$FIRST" ] && ok || fail "$FIRST left the relay before it expired"
CKPT=$(status sync_status.syncer_binlog | tr -d '(' | cut -d, -f1)
[ -n "$CKPT" ] && [ "$CKPT" != "$FIRST" ] && ok || fail "the task's checkpoint file is '$CKPT'"
touch -d '2 hours ago' "$RD"/mysql-bin.*
for _ in $(seq 1 100); do [ -f "$RD/$FIRST" ] || break; sleep 0.1; done
[ ! -f "$RD/$FIRST" ] && ok || fail "the expired $FIRST was not purged"
[ -f "$RD/$CKPT" ] && ok || fail "the purge took $CKPT, which holds the task's checkpoint"
[ "$(head -1 "$RD/relay.index")" = "$CKPT" ] && ok || fail "relay.index starts at $(head -1 "$RD/relay.index"), want $CKPT"
src_sql "INSERT INTO \`$DB\`.\`t\` (v, n) VALUES ('after relay purge', 3)"
for _ in $(seq 1 300); do same && break; sleep 0.1; done
same && ok || fail "the task stopped following after the relay's purge"

# The relay endpoints. purge: a file the relay does not hold is a 400, up to the task's checkpoint
# file is fine; enable/disable wait for the source's tasks to stop.
api POST /sources/rl-src/relay/purge '{"relay_binlog_name":"mysql-bin.000000"}'
expect 400 "purge to a file the relay does not hold" "$ERRBODY" '.error_msg|test("holds no file")'
api POST /sources/rl-src/relay/purge '{"relay_binlog_name":"mysql-bin.999999"}'
expect 409 "purge past the task's checkpoint file" "$ERRBODY" ".error_msg|test(\"$CKPT is still needed\")"
api POST /sources/rl-src/relay/purge "{\"relay_binlog_name\":\"$CKPT\"}"
expect 200 "purge up to the task's checkpoint file"
[ -f "$RD/$CKPT" ] && ok || fail "the purge endpoint took $CKPT"
api POST /sources/rl-src/relay/disable '{"worker_name_list":["worker1"]}'
expect 409 "disable while the task runs" "$ERRBODY" '.error_msg|test("rl-task")'
api POST /tasks/rl-task/stop '{}'
expect 200 "stop before disabling the relay"
api POST /sources/rl-src/relay/disable '{"worker_name_list":["worker1"]}'
expect 200 "relay disabled"
api GET /sources/rl-src
expect 200 "relay_config after disable" '.relay_config.enable_relay==false'
api GET /sources/rl-src/status
expect 200 "no relay_status once disabled" '.data[0].relay_status==null'
# the task is compiled again: it reads from the source now, from its checkpoint
api POST /tasks/rl-task/start '{}'
expect 200 "start reading from the source"
src_sql "INSERT INTO \`$DB\`.\`t\` (v, n) VALUES ('relay disabled', 4)"
for _ in $(seq 1 300); do same && break; sleep 0.1; done
same && ok || fail "the task did not follow the source after the relay was disabled: $(status error_msg)"
[ "$(status sync_status.binlog_type)" = remote ] && ok || fail "binlog_type $(status sync_status.binlog_type), want remote"
api POST /tasks/rl-task/stop '{}'
expect 200 "stop before enabling the relay again"
api POST /sources/rl-src/relay/enable '{"worker_name_list":["worker1"],"relay_dir":"./relay_log"}'
expect 200 "relay enabled again"
api POST /tasks/rl-task/start '{}'
expect 200 "start reading from the relay again"
src_sql "INSERT INTO \`$DB\`.\`t\` (v, n) VALUES ('relay enabled again', 5)"
for _ in $(seq 1 300); do same && break; sleep 0.1; done
same && ok || fail "the task did not follow the relay enabled again: $(status error_msg) $(relay error_msg)"
[ "$(status sync_status.binlog_type)" = local ] && ok || fail "binlog_type $(status sync_status.binlog_type), want local"

api POST /tasks/rl-task/stop '{}'
api DELETE /tasks/rl-task
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS \`$DB\`"
drop_ckpt
finish
