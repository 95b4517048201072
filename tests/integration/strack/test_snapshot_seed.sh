#!/usr/bin/env bash
# test_snapshot_seed.sh - the schema tracker of a task_mode "all" task starts from the structures
# of the dump's snapshot, not from the source as it is when the incremental phase starts
# (issue 15). The source logs binlog_row_metadata=MINIMAL, so rows are decoded with the tracked
# structures. The load is held back (a session on the target keeps the table locked) while the
# source, after the snapshot, writes a row of the old shape, renames a column and adds one, and
# writes a row of the new shape; then the load goes on. A tracker seeded from the source at that
# moment would decode the first row with the new structure (and pause on the column count);
# seeded from the snapshot, both rows arrive and the target ends equal.
. "$(dirname "$0")/../api/lib.sh"

DB=st_seed
TASK=seed-task
OLD_META=$(src_sql "SELECT @@global.binlog_row_metadata")
restore_meta() { src_sql "SET GLOBAL binlog_row_metadata = $OLD_META" 2>/dev/null; }
LOCKER=
stop_locker() { [ -n "$LOCKER" ] && kill "$LOCKER" 2>/dev/null; wait "$LOCKER" 2>/dev/null; LOCKER=; }
trap 'stop_locker; restore_meta; cleanup' EXIT

src_sql "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`;
         CREATE TABLE \`$DB\`.\`t\` (id INT PRIMARY KEY, a INT, b VARCHAR(20));
         INSERT INTO \`$DB\`.\`t\` VALUES (1, 10, 'one'), (2, 20, 'two'), (3, 30, 'three');
         SET GLOBAL binlog_row_metadata = MINIMAL" || { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "SELECT CONCAT('DROP TABLE \`dm_meta\`.\`', table_name, '\`;') FROM information_schema.TABLES
         WHERE table_schema = 'dm_meta' AND table_name LIKE '$TASK\\_%'" | dst_sql "$(cat)" 2>/dev/null
# the target's table exists and is locked by another session: the load waits for it
dst_sql "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`;
         CREATE TABLE \`$DB\`.\`t\` (id INT PRIMARY KEY, a INT, b VARCHAR(20))" ||
    { echo "FAIL: cannot prepare the target" >&2; exit 1; }
mariadb -h "$SLUICE_TARGET_HOST" -P "$SLUICE_TARGET_PORT" -u "$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD" \
    -e "LOCK TABLES \`$DB\`.\`t\` WRITE; SELECT SLEEP(3600)" >/dev/null 2>&1 &
LOCKER=$!
for _ in $(seq 1 300); do
    [ "$(dst_sql "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP(3600)%'")" = 1 ] && break
    sleep 0.1
done

start_server "$WORK/data"
SRC="\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true"
api POST /sources "{\"source_name\":\"seed-src\",$SRC}"
expect 201 "source"
api POST /tasks "{\"task\":{\"name\":\"$TASK\",\"task_mode\":\"all\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"seed-src\",\"schema\":\"$DB\",\"table\":\"t\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump\"},\"source_conf\":[{\"source_name\":\"seed-src\"}]}}}"
expect 200 "task"
api POST /tasks/$TASK/start '{}'
expect 200 "start"
status() { api GET /tasks/$TASK/status; printf '%s' "$BODY" | jq -r ".data[0]${1:+.$1}"; }
# the snapshot is taken once the load waits for the locked table (its statements come from it)
waiting() {
    dst_sql "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for %lock'"
}
for _ in $(seq 1 600); do [ "$(waiting)" -gt 0 ] && break; sleep 0.1; done
[ "$(waiting)" -gt 0 ] && ok || fail "the load never waited for the locked table: $(status '')"
[ "$(status unit)" != Sync ] && ok || fail "the task reached Sync while its load was held"

# after the snapshot, before the incremental phase starts
src_sql "INSERT INTO \`$DB\`.\`t\` VALUES (4, 40, 'old shape');
         ALTER TABLE \`$DB\`.\`t\` CHANGE a a2 INT, ADD COLUMN c INT NOT NULL DEFAULT 7;
         INSERT INTO \`$DB\`.\`t\` VALUES (5, 50, 'new shape', 8);
         UPDATE \`$DB\`.\`t\` SET a2 = 11, c = 9 WHERE id = 1" || fail "the source's changes failed"
stop_locker

rows() { "$1" "SELECT * FROM \`$DB\`.\`t\` ORDER BY id" 2>/dev/null | md5sum; }
columns() {
    "$1" "SELECT GROUP_CONCAT(COLUMN_NAME, ' ', COLUMN_TYPE ORDER BY ORDINAL_POSITION)
          FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '$DB' AND TABLE_NAME = 't'"
}
for _ in $(seq 1 1200); do
    [ "$(rows src_sql)" = "$(rows dst_sql)" ] && break
    [ "$(status stage)" = Paused ] && break      # e.g. a row decoded with the wrong structure
    sleep 0.1
done
[ "$(rows src_sql)" = "$(rows dst_sql)" ] && ok ||
    fail "the target differs: $(dst_sql "SELECT * FROM \`$DB\`.\`t\` ORDER BY id" 2>&1 | tr '\n' ';'); $(status error_msg)"
[ "$(src_sql "CHECKSUM TABLE \`$DB\`.\`t\` EXTENDED" | awk '{print $2}')" = \
  "$(dst_sql "CHECKSUM TABLE \`$DB\`.\`t\` EXTENDED" | awk '{print $2}')" ] && ok || fail "CHECKSUM differs"
[ "$(columns dst_sql)" = "$(columns src_sql)" ] && ok || fail "columns: target '$(columns dst_sql)', source '$(columns src_sql)'"
[ "$(status stage)" = Running ] && ok || fail "the task is not Running: $(status '')"
grep -q "restored as of .*(the dump's snapshot)" "$WORK/server.log" && ok ||
    fail "the tracker did not start from the dump's snapshot: $(grep 'schema tracker' "$WORK/server.log")"

api POST /tasks/$TASK/stop '{}'
expect 200 "stop"
api DELETE /tasks/$TASK
expect 204 "delete"
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS \`$DB\`"
dst_sql "DROP DATABASE IF EXISTS \`$DB\`"
finish
