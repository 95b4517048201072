#!/usr/bin/env bash
# test_source_writes.sh - writes on the source that row replication cannot apply exactly stop the
# task with a clear error instead of being dropped or guessed, found by trying them:
# - rows written by a session in binlog_format STATEMENT (UPDATE, LOAD DATA) on a selected table
#   were dropped in silence, the task shown Running; now the task pauses, and a binlog_filter_rule
#   ignore_sql takes the statement out once the operator has dealt with it. The same statement on
#   a table the task does not select goes by;
# - a row logged with a partial image (binlog_row_image MINIMAL in the writing session) had its
#   missing columns written as NULL; now the task pauses;
# - an XA ROLLBACK of a branch applied at its XA PREPARE left its rows on the target in silence;
#   now the task pauses, naming the xid, and goes on after the operator's repair, also when the
#   server was killed between the prepare and the rollback (the run that applied it is gone); a branch
#   prepared before the dump's snapshot and committed after it was lost (neither the snapshot
#   nor the binlog after it has its rows); now the dump waits for prepared branches to end;
# - a DELETE of one key and an INSERT of a key its collation holds equal ('é', 'E'), far apart in
#   one transaction, went to two parallel branches, and the insert could run first: a duplicate
#   key paused the task; now the group is applied again in source order, as for a lock conflict;
# - CREATE/ALTER/DROP SEQUENCE were dropped as unknown statements (the next NEXTVAL then paused
#   the task: the table did not exist on the target);
# - an ALTER of a system-versioned table (run on the source with system_versioning_alter_history
#   KEEP) paused the task on the target's refusal; now it is applied.
. "$(dirname "$0")/lib.sh"

D=sw_one O=sw_other
src_sql "DROP DATABASE IF EXISTS $D; DROP DATABASE IF EXISTS $O; CREATE DATABASE $D; CREATE DATABASE $O;
         CREATE TABLE $D.t (id INT PRIMARY KEY, v VARCHAR(20), w INT DEFAULT 7);
         INSERT INTO $D.t (id, v) SELECT seq, 'full' FROM $D.seq_1_to_300;
         CREATE TABLE $D.vt (id INT PRIMARY KEY, v VARCHAR(20)) WITH SYSTEM VERSIONING;
         INSERT INTO $D.vt VALUES (1, 'a');
         CREATE TABLE $O.t (id INT PRIMARY KEY, v VARCHAR(20))" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "DROP DATABASE IF EXISTS $D; DROP DATABASE IF EXISTS $O" || { echo "FAIL: cannot reach the target" >&2; exit 1; }

start_server "$WORK/data"
api POST /sources "{\"source_name\":\"sw\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
task() {   # IGNORE-SQL-JSON-ARRAY
    printf '{"task":{"name":"sw","task_mode":"all","target_config":{"host":"%s","port":%s,"user":"%s","password":"%s"},"binlog_filter_rule":{"skip":{"ignore_sql":%s}},"table_migrate_rule":[{"source":{"source_name":"sw","schema":"%s","table":"*"},"binlog_filter_rule":["skip"]}],"source_config":{"full_migrate_conf":{"data_dir":"%s"},"source_conf":[{"source_name":"sw"}]}}}' \
        "$SLUICE_TARGET_HOST" "$SLUICE_TARGET_PORT" "$SLUICE_TARGET_USER" "$SLUICE_TARGET_PASSWORD" "$1" "$D" "$WORK/dump"
}
api POST /tasks "$(task '["^nothing"]')"
expect 200 "task"
api POST /tasks/sw/start '{}'
expect 200 "start"

stage_is() {   # STAGE: wait for it, leaving the status in BODY
    local i
    for i in $(seq 1 600); do
        api GET /tasks/sw/status
        [ "$(printf '%s' "$BODY" | jq -r '.data[0].stage')" = "$1" ] && return 0
        sleep 0.1
    done
    fail "task sw is not $1: ${BODY:0:800}"
    return 1
}
q() { dst_sql "$1" 2>/dev/null; }
wait_for() {   # WHAT SQL WANT
    local i
    for i in $(seq 1 600); do [ "$(q "$2")" = "$3" ] && { ok; return 0; }; sleep 0.1; done
    fail "$1: '$(q "$2")', want '$3'"
}
wait_for "full copy" "SELECT COUNT(*) FROM $D.t" 300
stage_is Running

# ---- a statement on a table the task does not select goes by ------------------------------------
src_sql "SET SESSION binlog_format = STATEMENT; INSERT INTO $O.t VALUES (1, 'stmt'); UPDATE $O.t SET v = 'x'"
src_sql "INSERT INTO $D.t (id, v) VALUES (1001, 'row')"
wait_for "a row after a statement on an unselected table" "SELECT v FROM $D.t WHERE id = 1001" row
stage_is Running && ok

# ---- ALTER of a system-versioned table -----------------------------------------------------------
src_sql "SET SESSION system_versioning_alter_history = KEEP; ALTER TABLE $D.vt ADD COLUMN n INT DEFAULT 5;
         INSERT INTO $D.vt (id, v) VALUES (2, 'b')"
wait_for "a row after the ALTER of a versioned table" "SELECT CONCAT(v, n) FROM $D.vt WHERE id = 2" b5
stage_is Running && ok

# ---- rows written as a statement on a selected table: paused, then dropped by ignore_sql ---------
src_sql "SET SESSION binlog_format = STATEMENT; UPDATE $D.t SET v = 'stmt' WHERE id BETWEEN 1 AND 10"
stage_is Paused && expect 200 "paused on the statement" \
    '.data[0].error_msg|test("wrote rows with a statement")' '.data[0].error_msg|test("UPDATE")'
[ "$(q "SELECT COUNT(*) FROM $D.t WHERE v = 'stmt'")" = 0 ] && ok || fail "the statement ran on the target"
api POST /tasks/sw/stop '{}'
expect 200 "stop"
stage_is Stopped
dst_sql "UPDATE $D.t SET v = 'stmt' WHERE id BETWEEN 1 AND 10"     # the operator's repair
api PUT /tasks/sw "$(task '["^UPDATE sw_one\\.t SET v = .stmt."]')"
expect 200 "the statement added to ignore_sql"
api POST /tasks/sw/start '{}'
expect 200 "start again"
src_sql "INSERT INTO $D.t (id, v) VALUES (1002, 'row')"
wait_for "a row after the dropped statement" "SELECT v FROM $D.t WHERE id = 1002" row
stage_is Running && ok

# ---- LOAD DATA as a statement ---------------------------------------------------------------------
printf '2001\tloaded\n2002\tloaded\n' >"$WORK/rows.tsv"
mariadb --local-infile=1 -h "$SLUICE_SOURCE_HOST" -P "$SLUICE_SOURCE_PORT" -u "$SLUICE_SOURCE_USER" \
    -p"$SLUICE_SOURCE_PASSWORD" -e "SET SESSION binlog_format = STATEMENT;
    LOAD DATA LOCAL INFILE '$WORK/rows.tsv' INTO TABLE $D.t (id, v)" || fail "LOAD DATA on the source"
stage_is Paused && expect 200 "paused on LOAD DATA" '.data[0].error_msg|test("wrote rows with a statement")' \
    '.data[0].error_msg|test("LOAD DATA")'
api POST /tasks/sw/stop '{}'
expect 200 "stop"
stage_is Stopped
dst_sql "INSERT INTO $D.t (id, v) VALUES (2001, 'loaded'), (2002, 'loaded')"
api PUT /tasks/sw "$(task '["^UPDATE sw_one\\.t SET v = .stmt.", "^LOAD DATA"]')"
expect 200 "LOAD DATA added to ignore_sql"
api POST /tasks/sw/start '{}'
expect 200 "start again"
src_sql "INSERT INTO $D.t (id, v) VALUES (1003, 'row')"
wait_for "a row after the dropped LOAD DATA" "SELECT v FROM $D.t WHERE id = 1003" row

# ---- keys equal under their collation, in two branches of one parallel group ------------------
src_sql "CREATE TABLE $D.ci (id VARCHAR(10) COLLATE utf8mb4_general_ci PRIMARY KEY, v INT);
         CREATE TABLE $D.filler (id INT PRIMARY KEY, v INT); INSERT INTO $D.ci VALUES ('é', 1)"
wait_for "the collation table" "SELECT COUNT(*) FROM $D.ci" 1
txn() {   # FROM TO FIRST-FILLER-ID: delete key FROM, insert its equal TO, far apart in one group
    local sql="BEGIN;" i
    for i in $(seq "$3" $(($3 + 98))); do sql+="INSERT INTO $D.filler VALUES ($i, 0);"; done
    sql+="DELETE FROM $D.ci WHERE id = '$1';"
    for i in $(seq $(($3 + 99)) $(($3 + 218))); do sql+="INSERT INTO $D.filler VALUES ($i, 0);"; done
    sql+="INSERT INTO $D.ci VALUES ('$2', 2); COMMIT;"
    src_sql "$sql"
}
for k in 0 2 4; do          # which branch runs first is up to the threads: three chances
    txn é E $((k * 1000 + 1))
    txn E é $((k * 1000 + 1001))
done
src_sql "INSERT INTO $D.t (id, v) VALUES (1005, 'row')"
wait_for "a row after the collation groups" "SELECT v FROM $D.t WHERE id = 1005" row
stage_is Running && ok
[ "$(q "SELECT CONCAT(HEX(id), ':', v) FROM $D.ci")" = "C3A9:2" ] && ok ||
    fail "the collation table on the target: $(q "SELECT CONCAT(HEX(id), ':', v) FROM $D.ci")"
[ "$(q "SELECT COUNT(*) FROM $D.filler")" = 1314 ] && ok || fail "filler rows: $(q "SELECT COUNT(*) FROM $D.filler")"

# ---- sequences: CREATE, NEXTVAL, ALTER and DROP SEQUENCE are replicated ----------------------
src_sql "CREATE SEQUENCE $D.s2 START WITH 100 INCREMENT BY 5; SELECT NEXTVAL($D.s2); SELECT NEXTVAL($D.s2);
         CREATE SEQUENCE $D.s3; ALTER SEQUENCE $D.s2 RESTART WITH 500; SELECT NEXTVAL($D.s2)" >/dev/null
src_sql "DROP SEQUENCE $D.s3"
src_sql "INSERT INTO $D.t (id, v) VALUES (1006, 'row')"
wait_for "a row after the sequences" "SELECT v FROM $D.t WHERE id = 1006" row
stage_is Running && ok
seqrow="SELECT CONCAT_WS(',', next_not_cached_value, increment, cache_size) FROM $D.s2"
[ "$(q "$seqrow")" = "$(src_sql "$seqrow")" ] && ok ||
    fail "the sequence on the target: $(q "$seqrow"), on the source: $(src_sql "$seqrow")"
[ "$(q "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$D' AND TABLE_NAME = 's3'")" = 0 ] && ok ||
    fail "the dropped sequence is still on the target"

# ---- XA: a committed branch arrives; a rolled-back one applied at its prepare stops the task ---
src_sql "XA START 'sw1'; INSERT INTO $D.t (id, v) VALUES (3001, 'xa'); XA END 'sw1'; XA PREPARE 'sw1'; XA COMMIT 'sw1'"
wait_for "a committed XA branch" "SELECT v FROM $D.t WHERE id = 3001" xa
src_sql "XA START 'sw2'; INSERT INTO $D.t (id, v) VALUES (3002, 'xa'); XA END 'sw2'; XA PREPARE 'sw2'"
wait_for "a prepared XA branch is applied at its prepare" "SELECT v FROM $D.t WHERE id = 3002" xa
# XID XID_HEX ID NEXT_ID WHEN: the rollback of branch XID (which wrote row ID) pauses the task;
# the operator deletes the row on the target and resumes; row NEXT_ID then arrives
rollback_pauses() {
    src_sql "XA ROLLBACK '$1'"
    stage_is Paused && expect 200 "paused on the rollback of a branch applied $5" \
        ".data[0].error_msg|test(\"XA ROLLBACK X.$2.\")" '.data[0].error_msg|test("holds rows the source does not")'
    dst_sql "DELETE FROM $D.t WHERE id = $3"     # the operator's repair
    api POST /tasks/sw/start '{}'
    expect 200 "resume after the repair ($1)"
    src_sql "INSERT INTO $D.t (id, v) VALUES ($4, 'row')"
    wait_for "a row after the rollback of $1" "SELECT v FROM $D.t WHERE id = $4" row
    stage_is Running && ok
}
rollback_pauses sw2 7377 3002 1004 "in this run"
[ "$(q "SELECT COUNT(*) FROM $D.t WHERE id = 3002")" = 0 ] && ok || fail "the rolled-back row came back"

# ---- the same across a SIGKILL of the server: what was applied at a prepare outlives the run -----
src_sql "XA START 'sw3'; INSERT INTO $D.t (id, v) VALUES (3003, 'xa'); XA END 'sw3'; XA PREPARE 'sw3'"
src_sql "XA START 'sw4'; INSERT INTO $D.t (id, v) VALUES (3004, 'xa'); XA END 'sw4'; XA PREPARE 'sw4'"
wait_for "two branches prepared before the kill" "SELECT COUNT(*) FROM $D.t WHERE id IN (3003, 3004)" 2
kill_server
start_server "$WORK/data"
stage_is Running && ok
src_sql "XA COMMIT 'sw4'; INSERT INTO $D.t (id, v) VALUES (1005, 'row')"
wait_for "a commit after the restart goes by" "SELECT v FROM $D.t WHERE id = 1005" row
stage_is Running && ok
rollback_pauses sw3 737733 3003 1006 "before the restart"
[ "$(q "SELECT GROUP_CONCAT(id ORDER BY id) FROM $D.t WHERE id > 3000")" = 3001,3004 ] && ok ||
    fail "XA rows on the target: $(q "SELECT GROUP_CONCAT(id ORDER BY id) FROM $D.t WHERE id > 3000"), want 3001,3004"

# ---- a partial row image: paused, the row's other columns not overwritten -------------------------
src_sql "SET SESSION binlog_row_image = MINIMAL; UPDATE $D.t SET v = 'minimal' WHERE id = 20"
stage_is Paused && expect 200 "paused on a partial row image" '.data[0].error_msg|test("partial row image")' \
    '.data[0].error_msg|test("sw_one.t")'
[ "$(q "SELECT CONCAT(v, w) FROM $D.t WHERE id = 20")" = full7 ] && ok ||
    fail "row 20 on the target: '$(q "SELECT CONCAT_WS(',', v, w) FROM $D.t WHERE id = 20")', want full,7"
[ "$(q "SELECT COUNT(*) FROM $D.t WHERE w IS NULL")" = 0 ] && ok || fail "NULLs written for missing columns"

# ---- an XA branch prepared before the snapshot and committed after it: the dump waits for it ------
src_sql "DROP DATABASE IF EXISTS sw_x; CREATE DATABASE sw_x; CREATE TABLE sw_x.t (id INT PRIMARY KEY, v INT);
         INSERT INTO sw_x.t VALUES (1, 1)"
dst_sql "DROP DATABASE IF EXISTS sw_x"
src_sql "XA START 'swp'; INSERT INTO sw_x.t VALUES (2, 2); UPDATE sw_x.t SET v = 100 WHERE id = 1;
         XA END 'swp'; XA PREPARE 'swp'"
api POST /tasks "$(task '["^nothing"]' | jq -c --arg d "$WORK/dumpx" '.task.name = "swx" |
    .task.table_migrate_rule[0].source.schema = "sw_x" | .task.source_config.full_migrate_conf.data_dir = $d')"
expect 200 "task swx"
api POST /tasks/swx/start '{}'
expect 200 "start swx"
for _ in $(seq 1 300); do grep -q "prepared XA transaction(s) on the source" "$WORK/server.log" && break; sleep 0.1; done
grep -q "prepared XA transaction(s) on the source (first: 'swp')" "$WORK/server.log" && ok ||
    fail "the dump did not wait for the prepared XA branch"
src_sql "XA COMMIT 'swp'"
wait_for "the XA branch committed after the snapshot" "SELECT GROUP_CONCAT(id, ':', v ORDER BY id) FROM sw_x.t" "1:100,2:2"
api DELETE "/tasks/swx?force=true"
expect 204 "delete swx"
src_sql "DROP DATABASE IF EXISTS sw_x"
dst_sql "DROP DATABASE IF EXISTS sw_x"

api DELETE "/tasks/sw?force=true"
expect 204 "delete"
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS $D; DROP DATABASE IF EXISTS $O"
dst_sql "DROP DATABASE IF EXISTS $D; DROP DATABASE IF EXISTS $O"
finish
