#!/usr/bin/env bash
# test_rename_out.sh - a tracked table renamed out of the selection, altered there, and renamed
# back, with a binlog_row_metadata=MINIMAL source. The tracker does not follow DDL on tables no
# rule selects, so it must stop tracking the table when it leaves (as a DROP would): a structure
# kept under the other name misses the ALTER (here two INT columns swapped, which no check of the
# table map can see) and, brought back by the RENAME, decoded the next row with a and b swapped
# while the task kept Running. Now the table arrives untracked: its row pauses the task naming the
# PUT, and a PUT of its structure and a start replicate the row with its values in place.
. "$(dirname "$0")/../api/lib.sh"

DB=st_ren
OUT=st_ren_out
TASK=ren-out
OLD_META=$(src_sql "SELECT @@global.binlog_row_metadata")
restore_meta() { src_sql "SET GLOBAL binlog_row_metadata = $OLD_META" 2>/dev/null; }
trap 'restore_meta; cleanup' EXIT

CREATE="CREATE TABLE \`$DB\`.\`r\` (id INT PRIMARY KEY, a INT, b INT, s VARCHAR(10))"
PREP="DROP DATABASE IF EXISTS \`$DB\`; DROP DATABASE IF EXISTS \`$OUT\`;
      CREATE DATABASE \`$DB\`; CREATE DATABASE \`$OUT\`; $CREATE"
src_sql "SET GLOBAL binlog_row_metadata = MINIMAL; $PREP" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "SELECT CONCAT('DROP TABLE \`dm_meta\`.\`', table_name, '\`;') FROM information_schema.TABLES
         WHERE table_schema = 'dm_meta' AND table_name LIKE '$TASK\\_%'" | dst_sql "$(cat)" 2>/dev/null
# the target has the other schema too, so that the sink can apply the RENAMEs (it does: the table
# goes to st_ren_out and comes back, without the ALTER no rule selects)
dst_sql "$PREP" || { echo "FAIL: cannot prepare the target" >&2; exit 1; }
read -r FILE POS _ < <(src_sql "SHOW MASTER STATUS")

start_server "$WORK/data"
SRC="\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true"
api POST /sources "{\"source_name\":\"ren-src\",$SRC}"
expect 201 "source"
api POST /tasks "{\"task\":{\"name\":\"$TASK\",\"task_mode\":\"incremental\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"ren-src\",\"schema\":\"$DB\",\"table\":\"*\"}}],\"source_config\":{\"source_conf\":[{\"source_name\":\"ren-src\",\"binlog_name\":\"$FILE\",\"binlog_pos\":$POS}]}}}"
expect 200 "task"
api POST /tasks/$TASK/start '{}'
expect 200 "start"
status() { api GET /tasks/$TASK/status; printf '%s' "$BODY" | jq -r ".data[0]${1:+.$1}"; }
rows() { "$1" "SELECT id, a, b, s FROM \`$DB\`.\`r\` ORDER BY id" 2>/dev/null | md5sum; }
target() { dst_sql "SELECT id, a, b, s FROM \`$DB\`.\`r\` ORDER BY id" 2>&1 | tr '\n' ';'; }
# until the task pauses or the target's rows equal the source's (60 s at most)
settle() {
    local end=$((SECONDS + 60))
    while [ $SECONDS -lt $end ]; do
        [ "$(status stage)" = Paused ] && return
        [ "$(rows src_sql)" = "$(rows dst_sql)" ] && return
        sleep 0.2
    done
}

# a row before: the task runs, its tracker seeded with (id, a, b, s)
src_sql "INSERT INTO \`$DB\`.\`r\` VALUES (1, 10, 20, 'x')"
settle
[ "$(rows src_sql)" = "$(rows dst_sql)" ] && ok || fail "the first row did not arrive: $(target); $(status error_msg)"

src_sql "RENAME TABLE \`$DB\`.\`r\` TO \`$OUT\`.\`r_out\`" || fail "the RENAME out failed"
# The sink applies it (moving the target's table to st_ren_out) and checkpoints past it: the PUT
# below acts at that checkpoint. (Before it, a start would read the RENAME out again and drop the
# structure given: the pause would repeat; see docs/tasks.md.)
read -r _ AFTER_OUT _ < <(src_sql "SHOW MASTER STATUS")
ckpt() {
    dst_sql "SELECT binlog_pos FROM \`dm_meta\`.\`${TASK}_syncer_checkpoint\` WHERE worker = 0" 2>/dev/null
}
end=$((SECONDS + 60))
until [ "$(ckpt)" -ge "$AFTER_OUT" ] 2>/dev/null || [ $SECONDS -ge $end ]; do sleep 0.2; done
[ -n "$(dst_sql "SHOW TABLES FROM \`$OUT\` LIKE 'r_out'")" ] && ok ||
    fail "the sink did not apply the RENAME out (checkpoint $(ckpt), want $AFTER_OUT)"
src_sql "ALTER TABLE \`$OUT\`.\`r_out\` MODIFY b INT AFTER id;
         RENAME TABLE \`$OUT\`.\`r_out\` TO \`$DB\`.\`r\`;
         INSERT INTO \`$DB\`.\`r\` (id, a, b, s) VALUES (2, 100, 200, 'y')" ||
    fail "the source's changes failed"
settle
# (the sink may not have applied the RENAME back yet: then the target has no such table)
[ -z "$(dst_sql "SELECT id FROM \`$DB\`.\`r\` WHERE id = 2 AND (a <> 100 OR b <> 200)" 2>/dev/null)" ] && ok ||
    fail "the row after the RENAME back was decoded with a stale structure: $(target)"
[ "$(status stage)" = Paused ] && ok || fail "the task did not pause: stage $(status stage), target $(target)"
WHY=$(status error_msg)
case "$WHY" in
    *"$DB.r"*PUT*"/schemas/$DB/r"*) ok ;;
    *) fail "the pause does not name the table and the PUT that repairs it: $WHY" ;;
esac
echo "  paused as expected: ${WHY:0:300}"

# the repair the message names: the structure the table has, then a start
api PUT "/tasks/$TASK/sources/ren-src/schemas/$DB/r" \
    "{\"sql_content\":\"CREATE TABLE r (id INT PRIMARY KEY, b INT, a INT, s VARCHAR(10))\"}"
expect 200 "PUT the structure"
api POST /tasks/$TASK/start '{}'
expect 200 "start after the PUT"
settle
[ "$(rows src_sql)" = "$(rows dst_sql)" ] && ok ||
    fail "the target differs after the PUT: $(target); $(status error_msg)"
[ "$(status stage)" = Running ] && ok || fail "the task is not Running: $(status error_msg)"
# the tracker keeps no structure for a name no rule selects
[ "$(dst_sql "SELECT COUNT(*) FROM \`dm_meta\`.\`${TASK}_schema_tracker\` WHERE schema_name = '$OUT'
              AND create_sql IS NOT NULL")" = 0 ] && ok || fail "a structure of $OUT is still tracked"

api POST /tasks/$TASK/stop '{}'
expect 200 "stop"
api DELETE /tasks/$TASK
expect 204 "delete"
stop_server
check_log
for d in "$DB" "$OUT"; do
    src_sql "DROP DATABASE IF EXISTS \`$d\`"
    dst_sql "DROP DATABASE IF EXISTS \`$d\`"
done
finish
