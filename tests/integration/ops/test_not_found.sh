#!/usr/bin/env bash
# test_not_found.sh - UPDATE and DELETE rows that find no row on a drifted target (rows deleted
# there by hand) are counted, exactly, in sync_status.rows_not_found and the counter
# sluice_sync_rows_not_found_total, over every apply path: a compacted table (one UPDATE alone,
# an upsert of several rows, DELETE ... IN), a table with a second unique key (UPDATE by key,
# DELETE ... IN), a table without a key (LIMIT 1); an UPDATE that finds its row already as the
# source left it is found (it changes 0 rows but matches 1). The count survives a stop and a
# start, the first rows of each table are logged with their key (five per table), and the task
# stays Running: the rows themselves are handled as before.
# Values the target changes as it writes them (a column narrowed there by hand: the sink's
# statements warn) are counted the same way, in sync_status.target_warnings and the counter
# sluice_sync_target_warnings_total, and logged with their key; an ENUM's error value '' that the
# source stored (it warns on the target too, and is written as it was) is not counted; in safe
# mode an UPDATE's REPLACE counts too.
. "$(dirname "$0")/../api/lib.sh"
command -v promtool >/dev/null || { echo "FAIL: promtool is needed (scripts/setup installs prometheus)" >&2; exit 1; }

src_sql "DROP DATABASE IF EXISTS ops_nf; CREATE DATABASE ops_nf;
         CREATE TABLE ops_nf.t (id INT PRIMARY KEY, v INT);
         CREATE TABLE ops_nf.u (id INT PRIMARY KEY, e VARCHAR(32) NOT NULL UNIQUE, v INT);
         CREATE TABLE ops_nf.k (a INT, b INT);
         CREATE TABLE ops_nf.w (id INT PRIMARY KEY, s VARCHAR(20), e ENUM('a','b'));
         INSERT INTO ops_nf.t SELECT seq, seq FROM ops_nf.seq_1_to_20;
         INSERT INTO ops_nf.u SELECT seq, CONCAT('e', seq), seq FROM ops_nf.seq_1_to_20;
         INSERT INTO ops_nf.k SELECT seq, seq FROM ops_nf.seq_1_to_5;" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "DROP DATABASE IF EXISTS ops_nf" || { echo "FAIL: cannot prepare the target" >&2; exit 1; }
start_server "$WORK/data"

status() { api GET "/tasks/ops-nf/status"; printf '%s' "$BODY" | jq -r ".data[0].$1"; }
wait_sync() {
    for _ in $(seq 1 600); do
        [ "$(status unit)" = Sync ] && [ "$(status stage)" = Running ] && return 0
        sleep 0.1
    done
    fail "the task did not reach Sync: $BODY"
}
# caught_up: the sink applied, committed and counted everything the source has written (its
# applied position is the source's, and it says so: synced)
caught_up() {
    local want
    want=$(src_sql "SHOW MASTER STATUS" | awk '{printf "(%s, %s)", $1, $2}')
    for _ in $(seq 1 300); do
        api GET "/tasks/ops-nf/status"
        [ "$(printf '%s' "$BODY" | jq -r '.data[0].sync_status.synced')" = true ] &&
            [ "$(printf '%s' "$BODY" | jq -r '.data[0].sync_status.syncer_binlog')" = "$want" ] && return 0
        sleep 0.1
    done
    fail "the sink did not catch up with $want: ${BODY:0:600}"
}
# count_step FIELD WHAT SQL WANT: SQL on the source, then sync_status.FIELD must be exactly WANT;
# step: of rows_not_found, wstep: of target_warnings
count_step() {
    src_sql "$3" || fail "$2: on the source"
    caught_up
    local n
    n=$(status "sync_status.$1")
    [ "$n" = "$4" ] && ok || fail "$2: $1 is '$n', want $4"
}
step() { count_step rows_not_found "$@"; }
wstep() { count_step target_warnings "$@"; }
metric() {
    curl -sS "http://127.0.0.1:$PORT/metrics" >"$WORK/metrics" || fail "GET /metrics"
    grep -F "$1{task=\"ops-nf\",source=\"nf-src\"${2:-}}" "$WORK/metrics" | awk '{print $NF}'
}

api POST /sources "{\"source_name\":\"nf-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
api POST /tasks "{\"task\":{\"name\":\"ops-nf\",\"task_mode\":\"all\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"nf-src\",\"schema\":\"ops_nf\",\"table\":\"*\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump\"},\"source_conf\":[{\"source_name\":\"nf-src\"}]}}}"
expect 200 "task"
api POST /tasks/ops-nf/start '{"remove_meta":true}'
expect 200 "start"
wait_sync
caught_up
[ "$(dst_sql "SELECT COUNT(*) FROM ops_nf.t")" = 20 ] && ok || fail "the full copy did not arrive"
[ "$(status sync_status.rows_not_found)" = 0 ] && ok || fail "rows_not_found before any drift: $(status sync_status.rows_not_found)"

# ---- the target drifts: rows deleted by hand, one row changed to what the source will write ----
dst_sql "DELETE FROM ops_nf.t WHERE id IN (3, 4, 5); UPDATE ops_nf.t SET v = 700 WHERE id = 7;
         DELETE FROM ops_nf.u WHERE id IN (3, 4); DELETE FROM ops_nf.k WHERE a = 2" || fail "drifting the target"

step "UPDATE of a missing row" "UPDATE ops_nf.t SET v = v + 1 WHERE id = 3" 1
step "UPDATE of a row the target has as the source leaves it" "UPDATE ops_nf.t SET v = 700 WHERE id = 7" 1
step "DELETE of a missing row" "DELETE FROM ops_nf.t WHERE id = 4" 2
step "upsert of five rows, one missing" "UPDATE ops_nf.t SET v = v + 100 WHERE id BETWEEN 5 AND 9" 3
step "DELETE of three rows, one missing" "DELETE FROM ops_nf.t WHERE id IN (3, 10, 11)" 4
step "UPDATEs by key, two of three missing" "UPDATE ops_nf.u SET v = v + 1 WHERE id IN (3, 4, 6)" 6
step "DELETE of two rows, one missing" "DELETE FROM ops_nf.u WHERE id IN (3, 6)" 7
step "UPDATE without a key" "UPDATE ops_nf.k SET b = b + 10 WHERE a = 2" 8
step "DELETE without a key" "DELETE FROM ops_nf.k WHERE a = 2" 9
# the rows are handled as before: a missing row is not written by an UPDATE, an upsert writes it
[ "$(dst_sql "SELECT COUNT(*) FROM ops_nf.t WHERE id = 3")" = 0 ] && ok || fail "row 3 came back on the target"
[ "$(dst_sql "SELECT v FROM ops_nf.t WHERE id = 5")" = 105 ] && ok || fail "the upsert did not write row 5: $(dst_sql "SELECT v FROM ops_nf.t WHERE id = 5")"
[ "$(dst_sql "SELECT v FROM ops_nf.t WHERE id = 7")" = 800 ] && ok || fail "row 7: $(dst_sql "SELECT v FROM ops_nf.t WHERE id = 7")"

dst_sql "DELETE FROM ops_nf.u WHERE id BETWEEN 10 AND 19" || fail "drifting the target again"
step "ten UPDATEs by key, all missing" "UPDATE ops_nf.u SET v = v + 1 WHERE id BETWEEN 10 AND 19" 19

[ "$(metric sluice_sync_rows_not_found_total)" = 19 ] && ok ||
    fail "sluice_sync_rows_not_found_total is '$(metric sluice_sync_rows_not_found_total)', want 19"
[ "$(metric sluice_stage_rows_not_found_total ',stage="sink",plugin="mysql-sink"')" = 19 ] && ok ||
    fail "sluice_stage_rows_not_found_total of the sink: '$(metric sluice_stage_rows_not_found_total ',stage="sink",plugin="mysql-sink"')', want 19"
if promtool check metrics <"$WORK/metrics" >"$WORK/promtool.out" 2>&1; then ok; else
    fail "promtool check metrics: $(head -20 "$WORK/promtool.out")"; fi
grep -q '^# TYPE sluice_sync_rows_not_found_total counter' "$WORK/metrics" && ok || fail "no TYPE line of the counter"

# ---- the target changes values: a column narrowed there by hand ----
dst_sql "ALTER TABLE ops_nf.w MODIFY s VARCHAR(5)" || fail "narrowing the target's column"
[ "$(status sync_status.target_warnings)" = 0 ] && ok || fail "target_warnings before any: $(status sync_status.target_warnings)"
wstep "an INSERT of a value the target cuts" "INSERT INTO ops_nf.w VALUES (100, 'abcdefghij', 'a')" 1
wstep "an INSERT of an ENUM's error value, stored by the source" \
    "SET SESSION sql_mode = ''; INSERT INTO ops_nf.w VALUES (101, 'ok', 'zzz')" 1
[ "$(dst_sql "SELECT CONCAT(s, '/', e, '/', e + 0) FROM ops_nf.w WHERE id = 101")" = "ok//0" ] && ok ||
    fail "row 101 on the target: $(dst_sql "SELECT CONCAT(s, '/', e, '/', e + 0) FROM ops_nf.w WHERE id = 101")"
wstep "an UPDATE the target cuts" "UPDATE ops_nf.w SET s = 'klmnopqrst' WHERE id = 101" 2
wstep "three rows in one transaction, two cut" \
    "INSERT INTO ops_nf.w VALUES (102, 'uvwxyzabc', 'b'), (103, 'fine', 'a'), (104, '123456789', 'b')" 4
wstep "a row that fits" "INSERT INTO ops_nf.w VALUES (105, 'short', 'a')" 4
[ "$(dst_sql "SELECT s FROM ops_nf.w WHERE id = 100")" = abcde ] && ok ||
    fail "row 100 on the target: $(dst_sql "SELECT s FROM ops_nf.w WHERE id = 100")"
[ "$(metric sluice_sync_target_warnings_total)" = 4 ] && ok ||
    fail "sluice_sync_target_warnings_total is '$(metric sluice_sync_target_warnings_total)', want 4"
[ "$(metric sluice_stage_target_warnings_total ',stage="sink",plugin="mysql-sink"')" = 4 ] && ok ||
    fail "sluice_stage_target_warnings_total of the sink: '$(metric sluice_stage_target_warnings_total ',stage="sink",plugin="mysql-sink"')', want 4"
grep -q '^# TYPE sluice_sync_target_warnings_total counter' "$WORK/metrics" && ok || fail "no TYPE line of the warnings counter"
[ "$(status sync_status.rows_not_found)" = 19 ] && ok || fail "rows_not_found moved with the warnings: $(status sync_status.rows_not_found)"

# ---- a stop and a start do not take the count back ----
api POST /tasks/ops-nf/stop '{}'
expect 200 "stop"
[ "$(status sync_status.rows_not_found)" = 19 ] && ok || fail "rows_not_found after the stop: $(status sync_status.rows_not_found)"
api POST /tasks/ops-nf/start '{}'
expect 200 "start again"
wait_sync
caught_up
[ "$(status sync_status.rows_not_found)" = 19 ] && ok || fail "rows_not_found after the start: $(status sync_status.rows_not_found)"
[ "$(status sync_status.target_warnings)" = 4 ] && ok || fail "target_warnings after the start: $(status sync_status.target_warnings)"
wstep "an INSERT the target cuts after the start" "INSERT INTO ops_nf.w VALUES (106, 'abcdefghij', 'a')" 5
[ "$(metric sluice_sync_target_warnings_total)" = 5 ] && ok ||
    fail "sluice_sync_target_warnings_total after the start is '$(metric sluice_sync_target_warnings_total)', want 5"
dst_sql "DELETE FROM ops_nf.t WHERE id = 12" || fail "drifting the target after the start"
step "DELETE of a missing row after the start" "DELETE FROM ops_nf.t WHERE id = 12" 20
[ "$(metric sluice_sync_rows_not_found_total)" = 20 ] && ok ||
    fail "sluice_sync_rows_not_found_total after the start is '$(metric sluice_sync_rows_not_found_total)', want 20"
# a new run's sink starts its own count: the stage counter is that run's
[ "$(metric sluice_stage_rows_not_found_total ',stage="sink",plugin="mysql-sink"')" = 1 ] && ok ||
    fail "sluice_stage_rows_not_found_total of the second run: '$(metric sluice_stage_rows_not_found_total ',stage="sink",plugin="mysql-sink"')', want 1"
[ "$(status stage)" = Running ] && [ "$(status error_msg)" = null ] && ok || fail "the task is not Running without an error: $BODY"

# ---- safe mode writes an UPDATE as DELETE + REPLACE: the REPLACE's warnings count ----
api POST /tasks/ops-nf/stop '{}'
expect 200 "stop before safe mode"
api POST /tasks/ops-nf/start '{"safe_mode_time_duration":"1h"}'
expect 200 "start in safe mode"
wait_sync
caught_up
wstep "an UPDATE the target cuts, in safe mode" "UPDATE ops_nf.w SET s = 'vwxyz12345' WHERE id = 105" 6
[ "$(dst_sql "SELECT s FROM ops_nf.w WHERE id = 105")" = vwxyz ] && ok ||
    fail "row 105 on the target: $(dst_sql "SELECT s FROM ops_nf.w WHERE id = 105")"

# ---- the log names the table and the key, five times per table (and run) at most ----
W='a row change found no row on the target'
grep -F "$W" "$WORK/server.log" | grep -F '`ops_nf`.`t`' | grep -qF '(`id`=3)' && ok ||
    fail "no warning naming ops_nf.t and its key: $(grep -F "$W" "$WORK/server.log" | head -3)"
grep -F "$W" "$WORK/server.log" | grep -F '`ops_nf`.`k`' | grep -qF 'without a key' && ok ||
    fail "no warning for the table without a key: $(grep -F "$W" "$WORK/server.log" | head -3)"
nu=$(grep -F "$W" "$WORK/server.log" | grep -cF '`ops_nf`.`u`')
[ "$nu" = 5 ] && ok || fail "$nu warnings of ops_nf.u, want 5 (then a count)"
grep -F "$W" "$WORK/server.log" | grep -F '`ops_nf`.`t`' | grep -qF '1 of its 5 rows not found, keys among (`id`=5)' && ok ||
    fail "no warning of the upsert: $(grep -F "$W" "$WORK/server.log" | grep -F upsert | head -2)"
grep -q 'more row changes found no row on the target' "$WORK/server.log" && ok || fail "no summary of the rows not logged"
W='the target changed values it was given'
grep -F "$W" "$WORK/server.log" | grep -F '`ops_nf`.`w`: 1 warning on a statement of 1 row with (`id`=100)' -q && ok ||
    fail "no line naming ops_nf.w and row 100: $(grep -F "$W" "$WORK/server.log" | head -3)"
grep -F "$W" "$WORK/server.log" | grep -qF '`ops_nf`.`w`: 2 warnings on a statement of 3 rows, keys among (`id`=10' && ok ||
    fail "no line of the three rows: $(grep -F "$W" "$WORK/server.log" | head -4)"
grep -F "$W" "$WORK/server.log" | grep -qF '(`id`=101)' && ok || fail "no line of the UPDATE of row 101"
# rows 100, 101 (the UPDATE), 102-104, 106, 105 (safe mode): the ENUM's error value of row 101's
# INSERT is no line
nw=$(grep -F "$W" "$WORK/server.log" | grep -cF '`ops_nf`.`w`')
[ "$nw" = 5 ] && ok || fail "$nw lines of ops_nf.w, want 5: $(grep -F "$W" "$WORK/server.log")"

api POST /tasks/ops-nf/stop '{}'
stop_server
check_log
finish
