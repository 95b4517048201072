#!/usr/bin/env bash
# test_global_mode.sh - the schema tracker's sessions do not take the servers' global sql_mode.
# They did: with ANSI_QUOTES global on the source, the seed's SHOW CREATE TABLE printed "t" and
# the tracker could not read its own seed (the task paused at its start); with
# NO_BACKSLASH_ESCAPES global on the target, a tracked structure holding a quote ('it''s') was
# written into the versions table with backslash escapes the target then read as text. Now the
# tracker's sessions set sql_mode = '' and a DDL gets only its own session's modes
# (sl_event.ddl_mode). Checked: the task Running, the tracked structure (GET .../schemas) in
# backticks with the column an ALTER of an ANSI_QUOTES session added, rows equal on both sides.
. "$(dirname "$0")/../api/lib.sh"

DB=st_gmode
TASK=gmode
OLD_SRC=$(src_sql "SELECT @@global.sql_mode") OLD_DST=$(dst_sql "SELECT @@global.sql_mode")
restore_modes() {
    src_sql "SET GLOBAL sql_mode = '$OLD_SRC'" 2>/dev/null
    dst_sql "SET GLOBAL sql_mode = '$OLD_DST'" 2>/dev/null
}
trap 'restore_modes; cleanup' EXIT

CREATE="CREATE TABLE \`$DB\`.\`t\` (id INT PRIMARY KEY, v VARCHAR(10) DEFAULT 'it''s')"
src_sql "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`; $CREATE" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "SELECT CONCAT('DROP TABLE \`dm_meta\`.\`', table_name, '\`;') FROM information_schema.TABLES
         WHERE table_schema = 'dm_meta' AND table_name LIKE '$TASK\\_%'" | dst_sql "$(cat)" 2>/dev/null
dst_sql "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`; $CREATE" ||
    { echo "FAIL: cannot prepare the target" >&2; exit 1; }
read -r FILE POS _ < <(src_sql "SHOW MASTER STATUS")
# new sessions, sluice's among them, get these
src_sql "SET GLOBAL sql_mode = 'ANSI_QUOTES'" && dst_sql "SET GLOBAL sql_mode = 'NO_BACKSLASH_ESCAPES'" ||
    { echo "FAIL: cannot set the global sql_modes" >&2; exit 1; }

start_server "$WORK/data"
SRC="\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true"
api POST /sources "{\"source_name\":\"gmode-src\",$SRC}"
expect 201 "source"
api POST /tasks "{\"task\":{\"name\":\"$TASK\",\"task_mode\":\"incremental\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"gmode-src\",\"schema\":\"$DB\",\"table\":\"t\"}}],\"source_config\":{\"source_conf\":[{\"source_name\":\"gmode-src\",\"binlog_name\":\"$FILE\",\"binlog_pos\":$POS}]}}}"
expect 200 "task"
api POST /tasks/$TASK/start '{}'
expect 200 "start"
status() { api GET /tasks/$TASK/status; printf '%s' "$BODY" | jq -r ".data[0]${1:+.$1}"; }
rows() { "$1" "SELECT * FROM \`$DB\`.\`t\` ORDER BY id" 2>/dev/null | md5sum; }

# a session in the source's global ANSI_QUOTES: its DDL names the column in double quotes
src_sql "INSERT INTO \"$DB\".\"t\" (id) VALUES (1);
         ALTER TABLE \"$DB\".\"t\" ADD COLUMN \"x\" INT DEFAULT 5;
         INSERT INTO \"$DB\".\"t\" (id, v, x) VALUES (2, 'a''b', 7)" || fail "the source's changes failed"
end=$((SECONDS + 60))
while [ $SECONDS -lt $end ] && [ "$(status stage)" != Paused ] && [ "$(rows src_sql)" != "$(rows dst_sql)" ]; do
    sleep 0.2
done
[ "$(rows src_sql)" = "$(rows dst_sql)" ] && ok ||
    fail "the target differs: $(dst_sql "SELECT * FROM \`$DB\`.\`t\` ORDER BY id" 2>&1 | tr '\n' ';'); $(status error_msg)"
[ "$(status stage)" = Running ] && ok || fail "the task is not Running: $(status '')"

api POST /tasks/$TASK/stop '{}'
expect 200 "stop"
api GET "/tasks/$TASK/sources/gmode-src/schemas/$DB/t"     # (the task stopped)
expect 200 "the tracked structure" '.schema_create_sql|test("`x` int")' \
    '.schema_create_sql|test("DEFAULT '"'it''s'"'")' '.schema_create_sql|test("\"")|not'
api DELETE /tasks/$TASK
expect 204 "delete"
stop_server
check_log
restore_modes
src_sql "DROP DATABASE IF EXISTS \`$DB\`"
dst_sql "DROP DATABASE IF EXISTS \`$DB\`"
finish
