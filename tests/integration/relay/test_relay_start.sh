#!/usr/bin/env bash
# test_relay_start.sh - where a source's relay starts, and what its tasks do when it cannot serve
# them (issue 14), in a real sluice-server over real HTTP:
#   - a relay_binlog_name the source does not have: relay_status shows the error, and a task of
#     the source is unaffected: it reads the source instead ("binlog_type": "remote") and the
#     target ends equal to the source;
#   - the relay enabled with no start while that task is stopped starts at the task's checkpoint
#     file, and the task started again reads the relay from its checkpoint, and goes on from the
#     source when the relay says it failed (relay.error);
#   - relay_binlog_gtid alone starts the relay in the file that holds the transactions after
#     that GTID set; a GTID set the source's binlogs have gone past is an error in relay_status;
#   - a relay that cannot open its directory (a file in it is not a binlog) is an error in
#     relay_status, and the source's task reads the source;
#   - the relay's start waits once for a target that does not answer, not once per task on it.
. "$(dirname "$0")/../api/lib.sh"

DB=rl_start
src_sql "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`;
         CREATE TABLE \`$DB\`.\`t\` (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40));
         INSERT INTO \`$DB\`.\`t\` (v) SELECT CONCAT('row ', seq) FROM \`$DB\`.seq_1_to_200" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
drop_ckpt() {
    dst_sql "SELECT CONCAT('DROP TABLE \`dm_meta\`.\`', table_name, '\`;') FROM information_schema.TABLES
             WHERE table_schema = 'dm_meta' AND (table_name LIKE 'rs-task\\_%' OR table_name LIKE 'rs-task2\\_%')" |
        dst_sql "$(cat)" 2>/dev/null
    dst_sql "DROP DATABASE IF EXISTS \`$DB\`; DROP DATABASE IF EXISTS \`${DB}2\`"
}
drop_ckpt || { echo "FAIL: cannot prepare the target" >&2; exit 1; }
start_server "$WORK/data"
SRC="\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true"
relay() { api GET "/sources/$1/status"; printf '%s' "$BODY" | jq -r ".data[0].relay_status${2:+.$2}"; }
status() { api GET /tasks/rs-task/status; printf '%s' "$BODY" | jq -r ".data[0]${1:+.$1}"; }
same() {
    [ "$(src_sql "CHECKSUM TABLE \`$DB\`.\`t\` EXTENDED" | awk '{print $2}')" = \
      "$(dst_sql "CHECKSUM TABLE \`$DB\`.\`t\` EXTENDED" 2>/dev/null | awk '{print $2}')" ]
}

# 1. A start file the source does not have (MariaDB numbers its binlogs from 000001).
api POST /sources "{\"source_name\":\"rs-src\",$SRC,\"relay_config\":{\"enable_relay\":true,\"relay_binlog_name\":\"mysql-bin.000000\",\"relay_dir\":\"./relay_a\"}}"
expect 201 "source with a relay start the source does not have"
for _ in $(seq 1 300); do [ "$(relay rs-src stage)" = Paused ] && break; sleep 0.1; done
api GET /sources/rs-src/status
expect 200 "the relay's error in relay_status" '.data[0].relay_status.stage=="Paused"' \
    '.data[0].relay_status.error_msg|test("no longer has mysql-bin.000000")'
api POST /tasks "{\"task\":{\"name\":\"rs-task\",\"task_mode\":\"all\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"rs-src\",\"schema\":\"$DB\",\"table\":\"*\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump\"},\"source_conf\":[{\"source_name\":\"rs-src\"}]}}}"
expect 200 "task"
api POST /tasks/rs-task/start '{}'
expect 200 "start"
for _ in $(seq 1 600); do [ "$(status unit)" = Sync ] && break; sleep 0.1; done
src_sql "INSERT INTO \`$DB\`.\`t\` (v) VALUES ('relay in error')"
for _ in $(seq 1 300); do same && break; sleep 0.1; done
same && ok || fail "the task did not follow the source while its relay is in error: $(status '')"
[ "$(status stage)" = Running ] && ok || fail "the task is not Running: $(status '')"
[ "$(status sync_status.binlog_type)" = remote ] && ok ||
    fail "binlog_type $(status sync_status.binlog_type), want remote while the relay is in error"
grep -q "reading the source instead of the relay log" "$WORK/server.log" && ok ||
    fail "the server log does not say the task reads the source instead of the relay"

# 2. The task stopped, the source moves on by two files; the relay enabled again with no start
# (and a new directory) starts at the task's checkpoint file, and the task reads it.
for _ in $(seq 1 100); do [ -n "$(status sync_status.syncer_binlog | tr -d '()')" ] && break; sleep 0.1; done
api POST /tasks/rs-task/stop '{}'
expect 200 "stop"
CK=$(status sync_status.syncer_binlog | tr -d '(' | cut -d, -f1)
[ -n "$CK" ] && ok || fail "no checkpoint file in the stopped task's status: $(status '')"
for i in 1 2; do
    src_sql "INSERT INTO \`$DB\`.\`t\` (v) VALUES ('stopped $i'); FLUSH BINARY LOGS"
done
api POST /sources/rs-src/relay/disable '{}'
expect 200 "relay disabled"
api POST /sources/rs-src/relay/enable '{"relay_binlog_name":"","relay_dir":"./relay_b"}'
expect 200 "relay enabled with no start"
RB=$WORK/data/relay_b/rs-src
for _ in $(seq 1 300); do [ "$(relay rs-src relay_catch_up_master)" = true ] && break; sleep 0.1; done
[ "$(relay rs-src stage)" = Running ] && ok || fail "the relay does not run: $(relay rs-src '')"
[ "$(head -1 "$RB/relay.index" 2>/dev/null)" = "$CK" ] && ok ||
    fail "the relay starts at $(head -1 "$RB/relay.index" 2>/dev/null), want the task's checkpoint file $CK"
api POST /tasks/rs-task/start '{}'
expect 200 "start again"
src_sql "INSERT INTO \`$DB\`.\`t\` (v) VALUES ('relay from the checkpoint')"
for _ in $(seq 1 300); do same && break; sleep 0.1; done
same && ok || fail "the task did not catch up from the relay: $(status '')"
[ "$(status sync_status.binlog_type)" = local ] && ok ||
    fail "binlog_type $(status sync_status.binlog_type), want local"
# The relay failing while the task reads it (what relay.c writes when it stops on an error,
# written here by hand: the relay itself runs on): the task goes on from the source.
# (renamed into place whole, as relay.c does: the reader must not see it half written)
printf 'relay: simulated failure\n' >"$RB/relay.error.tmp" && mv "$RB/relay.error.tmp" "$RB/relay.error"
src_sql "INSERT INTO \`$DB\`.\`t\` (v) VALUES ('relay failed under the task')"
for _ in $(seq 1 300); do [ "$(status sync_status.binlog_type)" = remote ] && same && break; sleep 0.1; done
[ "$(status sync_status.binlog_type)" = remote ] && same && ok ||
    fail "the task did not go on from the source when its relay failed: $(status '')"
grep -q "instead of the relay log in $RB from .*simulated failure" "$WORK/server.log" && ok ||
    fail "the server log does not say why the task left the relay"
api POST /tasks/rs-task/stop '{}'
expect 200 "stop"

# 3. relay_binlog_gtid alone: the relay starts in the file after the one where that GTID set
# was reached (its GTID_LIST is that set: nothing before it is needed).
src_sql "INSERT INTO \`$DB\`.\`t\` (v) VALUES ('before the gtid')"
G=$(src_sql "SELECT @@GLOBAL.gtid_binlog_pos")
src_sql "FLUSH BINARY LOGS"
F2=$(src_sql "SHOW MASTER STATUS" | cut -f1)
src_sql "INSERT INTO \`$DB\`.\`t\` (v) VALUES ('after the gtid'); FLUSH BINARY LOGS"
api POST /sources "{\"source_name\":\"rs-gtid\",$SRC,\"relay_config\":{\"enable_relay\":true,\"relay_binlog_gtid\":\"$G\",\"relay_dir\":\"./relay_c\"}}"
expect 201 "source with relay_binlog_gtid"
RC=$WORK/data/relay_c/rs-gtid
for _ in $(seq 1 300); do [ "$(relay rs-gtid relay_catch_up_master)" = true ] && break; sleep 0.1; done
[ "$(relay rs-gtid stage)" = Running ] && ok || fail "the GTID-started relay does not run: $(relay rs-gtid '')"
[ "$(head -1 "$RC/relay.index" 2>/dev/null)" = "$F2" ] && ok ||
    fail "relay_binlog_gtid $G: the relay starts at $(head -1 "$RC/relay.index" 2>/dev/null), want $F2"
# (relay_catch_up_master compares with the source's position of up to 2 s ago: wait for the row)
# (grep -c reads it all: grep -q would cut mariadb-binlog's output, and pipefail sees its SIGPIPE)
holds() { [ "$(mariadb-binlog "$RC/$F2" 2>/dev/null | grep -c "after the gtid")" -gt 0 ]; }
for _ in $(seq 1 300); do holds && break; sleep 0.1; done
holds && ok ||
    fail "the relay's $F2 does not hold the transaction after $G"

# A GTID set before what the source still has: purge up to the current file, then ask for the
# first transaction of the domain.
CUR=$(src_sql "SHOW MASTER STATUS" | cut -f1)
for _ in $(seq 1 100); do
    src_sql "PURGE BINARY LOGS TO '$CUR'" 2>/dev/null
    [ "$(src_sql "SHOW BINARY LOGS" | head -1 | cut -f1)" = "$CUR" ] && break
    sleep 0.1
done
OLD=$(printf '%s' "$G" | cut -d, -f1 | awk -F- '{print $1 "-" $2 "-1"}')
api POST /sources "{\"source_name\":\"rs-gtid2\",$SRC,\"relay_config\":{\"enable_relay\":true,\"relay_binlog_gtid\":\"$OLD\",\"relay_dir\":\"./relay_c\"}}"
expect 201 "source with a relay_binlog_gtid the source's binlogs went past"
for _ in $(seq 1 300); do [ "$(relay rs-gtid2 stage)" = Paused ] && break; sleep 0.1; done
api GET /sources/rs-gtid2/status
expect 200 "the GTID start's error in relay_status" '.data[0].relay_status.stage=="Paused"' \
    ".data[0].relay_status.error_msg|test(\"after relay_binlog_gtid $OLD\")"

# 4. A relay directory the relay cannot open: its last file is not a binlog.
mkdir -p "$WORK/data/relay_d/rs-junk"
echo "mysql-bin.000001" >"$WORK/data/relay_d/rs-junk/relay.index"
echo "not a binlog" >"$WORK/data/relay_d/rs-junk/mysql-bin.000001"
api POST /sources "{\"source_name\":\"rs-junk\",$SRC,\"relay_config\":{\"enable_relay\":true,\"relay_dir\":\"./relay_d\"}}"
expect 201 "source whose relay directory holds no binlog"
api GET /sources/rs-junk/status
expect 200 "the relay's open error in relay_status" '.data[0].relay_status.stage=="Paused"' \
    '.data[0].relay_status.error_msg|test("is not a binlog file")'
api POST /tasks "{\"task\":{\"name\":\"rs-task2\",\"task_mode\":\"all\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"rs-junk\",\"schema\":\"$DB\",\"table\":\"*\"},\"target\":{\"schema\":\"${DB}2\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump2\"},\"source_conf\":[{\"source_name\":\"rs-junk\"}]}}}"
expect 200 "task of that source"
api POST /tasks/rs-task2/start '{}'
expect 200 "start"
same2() {
    [ "$(src_sql "CHECKSUM TABLE \`$DB\`.\`t\` EXTENDED" | awk '{print $2}')" = \
      "$(dst_sql "CHECKSUM TABLE \`${DB}2\`.\`t\` EXTENDED" 2>/dev/null | awk '{print $2}')" ]
}
status2() { api GET /tasks/rs-task2/status; printf '%s' "$BODY" | jq -r ".data[0]${1:+.$1}"; }
for _ in $(seq 1 600); do [ "$(status2 unit)" = Sync ] && break; sleep 0.1; done
src_sql "INSERT INTO \`$DB\`.\`t\` (v) VALUES ('no relay at all')"
for _ in $(seq 1 300); do same2 && break; sleep 0.1; done
same2 && ok || fail "the task of a source whose relay cannot open did not follow the source: $(status2 '')"
[ "$(status2 sync_status.binlog_type)" = remote ] && ok ||
    fail "binlog_type $(status2 sync_status.binlog_type), want remote: the relay is not running"
api POST /tasks/rs-task2/stop '{}'
api DELETE /tasks/rs-task2

# 5. Tasks whose target does not answer (a host that went away: it takes the connection and says
# nothing): the relay's start reads their checkpoints under the API's write lock, so it waits
# for that target once, not once per task.
cat >"$WORK/silent.py" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(64)
print(s.getsockname()[1], flush=True)
held = []
while True:
    held.append(s.accept()[0])
PY
python3 "$WORK/silent.py" >"$WORK/silent.port" &
SILENT_PID=$!
for _ in $(seq 1 100); do [ -s "$WORK/silent.port" ] && break; sleep 0.1; done
SP=$(cat "$WORK/silent.port")
[ -n "$SP" ] || fail "the silent listener did not start"
api POST /sources "{\"source_name\":\"rs-silent\",$SRC}"
expect 201 "source for tasks on a silent target"
for t in rs-s1 rs-s2 rs-s3; do
    api POST /tasks "{\"task\":{\"name\":\"$t\",\"task_mode\":\"all\",\"target_config\":{\"host\":\"127.0.0.1\",\"port\":$SP,\"user\":\"u\",\"password\":\"p\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"rs-silent\",\"schema\":\"$DB\",\"table\":\"*\"},\"target\":{\"schema\":\"$t\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump_$t\"},\"source_conf\":[{\"source_name\":\"rs-silent\"}]}}}"
    expect 200 "task $t on the silent target"
done
api POST /sources/rs-silent/relay/enable '{"relay_dir":"./relay_e"}'
expect 200 "relay enabled for a source whose tasks' target does not answer"
for _ in $(seq 1 300); do [ "$(relay rs-silent stage)" = Running ] && break; sleep 0.1; done
[ "$(relay rs-silent stage)" = Running ] && ok || fail "the relay does not run: $(relay rs-silent '')"
asked=$(grep -E "source rs-silent: the checkpoint of task rs-s[123] is not known \(127.0.0.1:$SP" "$WORK/server.log" | grep -vc "did not answer for another task")
skipped=$(grep -cE "source rs-silent: the checkpoint of task rs-s[123] is not known \(its target 127.0.0.1:$SP did not answer for another task\)" "$WORK/server.log")
[ "$asked" = 1 ] && [ "$skipped" = 2 ] && ok ||
    fail "the silent target was asked $asked times and passed over $skipped times, want 1 and 2: $(grep 'rs-silent' "$WORK/server.log" | head -5)"
kill "$SILENT_PID" 2>/dev/null; wait "$SILENT_PID" 2>/dev/null
for t in rs-s1 rs-s2 rs-s3; do api DELETE "/tasks/$t"; done

api DELETE /tasks/rs-task
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS \`$DB\`"
drop_ckpt
finish
