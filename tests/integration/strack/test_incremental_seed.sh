#!/usr/bin/env bash
# test_incremental_seed.sh - an incremental task started at a position before DDL that the source
# has already run: the tracker is seeded from the source as it is now (its newer structure), and
# with binlog_row_metadata=MINIMAL the table maps of the rows logged before each DDL carry no
# names, only the binlog types. Reordered columns (a VARCHAR moved between INTs) must not be
# decoded with the seeded structure (values in the wrong columns, the task Running): the task
# pauses saying the tracked structure does not match the rows at that position and how to repair
# it; a PUT of the structure as of the start position, and a start, then replicate every row.
. "$(dirname "$0")/../api/lib.sh"

DB=st_incr
TASK=incr-seed
OLD_META=$(src_sql "SELECT @@global.binlog_row_metadata")
restore_meta() { src_sql "SET GLOBAL binlog_row_metadata = $OLD_META" 2>/dev/null; }
trap 'restore_meta; cleanup' EXIT

CREATE="CREATE TABLE \`$DB\`.\`x\` (id INT PRIMARY KEY, a INT, b INT, c VARCHAR(10))"
src_sql "SET GLOBAL binlog_row_metadata = MINIMAL;
         DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`; $CREATE" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "SELECT CONCAT('DROP TABLE \`dm_meta\`.\`', table_name, '\`;') FROM information_schema.TABLES
         WHERE table_schema = 'dm_meta' AND table_name LIKE '$TASK\\_%'" | dst_sql "$(cat)" 2>/dev/null
dst_sql "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`; $CREATE" ||
    { echo "FAIL: cannot prepare the target" >&2; exit 1; }
read -r FILE POS _ < <(src_sql "SHOW MASTER STATUS")

# MINIMAL table maps from here on (a new session reads the global)
src_sql "INSERT INTO \`$DB\`.\`x\` VALUES (1, 10, 20, 'one');
         ALTER TABLE \`$DB\`.\`x\` MODIFY b INT AFTER id;
         INSERT INTO \`$DB\`.\`x\` (id, a, b, c) VALUES (2, 11, 21, 'two');
         ALTER TABLE \`$DB\`.\`x\` CHANGE c c VARCHAR(10) AFTER id;
         INSERT INTO \`$DB\`.\`x\` (id, a, b, c) VALUES (3, 12, 22, 'three')" ||
    fail "the source's changes failed"

start_server "$WORK/data"
SRC="\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true"
api POST /sources "{\"source_name\":\"incr-src\",$SRC}"
expect 201 "source"
api POST /tasks "{\"task\":{\"name\":\"$TASK\",\"task_mode\":\"incremental\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"incr-src\",\"schema\":\"$DB\",\"table\":\"x\"}}],\"source_config\":{\"source_conf\":[{\"source_name\":\"incr-src\",\"binlog_name\":\"$FILE\",\"binlog_pos\":$POS}]}}}"
expect 200 "task"
api POST /tasks/$TASK/start '{}'
expect 200 "start"
status() { api GET /tasks/$TASK/status; printf '%s' "$BODY" | jq -r ".data[0]${1:+.$1}"; }
rows() { "$1" "SELECT * FROM \`$DB\`.\`x\` ORDER BY id" 2>/dev/null | md5sum; }
# until the task pauses or the target equals the source (60 s at most)
settle() {
    local end=$((SECONDS + 60))
    while [ $SECONDS -lt $end ]; do
        [ "$(status stage)" = Paused ] && return
        [ "$(rows src_sql)" = "$(rows dst_sql)" ] && return
        sleep 0.2
    done
}

# 1. the first row's table map (INT, INT, INT, VARCHAR) against the seed (id, c VARCHAR, b, a)
settle
[ "$(status stage)" = Paused ] && ok ||
    fail "the task did not pause: $(status ''); target: $(dst_sql "SELECT * FROM \`$DB\`.\`x\` ORDER BY id" | tr '\n' ';')"
WHY=$(status error_msg)
case "$WHY" in
    *"does not match"*"$DB.x"*PUT*"/schemas/$DB/x"*|*"$DB.x"*"does not match"*PUT*"/schemas/$DB/x"*) ok ;;
    *) fail "the pause does not say the structure does not match and how to repair it: $WHY" ;;
esac
[ "$(dst_sql "SELECT COUNT(*) FROM \`$DB\`.\`x\`")" = 0 ] && ok ||
    fail "rows decoded with the seeded structure reached the target: $(dst_sql "SELECT * FROM \`$DB\`.\`x\` ORDER BY id" | tr '\n' ';')"
echo "  paused as expected: ${WHY:0:300}"

# 2. the repair the message names: the structure as of the start position, then a start
api PUT "/tasks/$TASK/sources/incr-src/schemas/$DB/x" \
    "{\"sql_content\":\"CREATE TABLE x (id INT PRIMARY KEY, a INT, b INT, c VARCHAR(10))\"}"
expect 200 "PUT the structure as of the start position"
api POST /tasks/$TASK/start '{}'
expect 200 "start after the PUT"
settle
[ "$(rows src_sql)" = "$(rows dst_sql)" ] && ok ||
    fail "the target differs: $(dst_sql "SELECT * FROM \`$DB\`.\`x\` ORDER BY id" 2>&1 | tr '\n' ';'); $(status error_msg)"
[ "$(status stage)" = Running ] && ok || fail "the task is not Running: $(status '')"

api POST /tasks/$TASK/stop '{}'
expect 200 "stop"
api DELETE /tasks/$TASK
expect 204 "delete"
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS \`$DB\`"
dst_sql "DROP DATABASE IF EXISTS \`$DB\`"
finish
