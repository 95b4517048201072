#!/usr/bin/env bash
# test_optimistic.sh - optimistic shard DDL against the real servers: what an exploratory session
# found to lose the other shards' data or to pause for nothing (each case failed before):
# D1. a shard's MODIFY that narrows its column (TINYINT from INT) ran on the merged table at once
#     and clamped the other shard's values (also with strict_optimistic_shard_mode); one that
#     changes family (INT to VARCHAR) or nullability ran too: now narrower changes nothing and
#     the others pause with a conflict;
# D2. a DROP COLUMN written otherwise than one plain clause (two drops in one ALTER, IF EXISTS,
#     ALGORITHM=/LOCK=, ALTER ONLINE, ALTER IGNORE, mixed with an ADD) ran at the first shard and
#     destroyed the other shard's values: now every drop waits for every shard;
# D10. INT against INT NULL, int(11) NULL, AFTER id, and INT UNSIGNED against BIGINT paused as
#     conflicts ("neither type holds the other's values", also for another DEFAULT): now they
#     are the same column or a widening, and another DEFAULT says so;
# D8. a pending DROP listed by GET .../shard_ddl_locks could not be unlocked: now exec:false
#     releases it (the column stays on the target), exec:true is refused with the reason;
# D16. the group of a pending drop showed an empty first_location;
# ENUM. a shard appending ENUM members paused as a conflict: now the merged column takes the
#     longer list (DM's join), and a list in another order still pauses.
# The rows of both shards on the target are compared by value after each step.
. "$(dirname "$0")/../api/lib.sh"

SDBS="oo_a oo_b"
TDB=oom
clean() {
    local db
    for db in $SDBS; do src_sql "DROP DATABASE IF EXISTS $db"; done
    dst_sql "DROP DATABASE IF EXISTS $TDB; DROP DATABASE IF EXISTS oo_meta"
}
clean

start_server "$WORK/data"
api POST /sources "{\"source_name\":\"oo-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"

task() {   # STRICT(true|false)
    printf '{"task":{"name":"oo","task_mode":"all","shard_mode":"optimistic","strict_optimistic_shard_mode":%s,"meta_schema":"oo_meta","target_config":{"host":"%s","port":%s,"user":"%s","password":"%s"},"table_migrate_rule":[{"source":{"source_name":"oo-src","schema":"oo_*","table":"t"},"target":{"schema":"%s","table":"t"}}],"source_config":{"full_migrate_conf":{"data_dir":"%s"},"source_conf":[{"source_name":"oo-src"}]}}}' \
        "$1" "$SLUICE_TARGET_HOST" "$SLUICE_TARGET_PORT" "$SLUICE_TARGET_USER" "$SLUICE_TARGET_PASSWORD" "$TDB" "$WORK/dump"
}
# stage: sets ST to the subtask's stage (and BODY to the status)
stage() { api GET /tasks/oo/status; ST=$(printf '%s' "$BODY" | jq -r '.data[0].stage'); }
synced() {   # the subtask Running in Sync
    local i
    for i in $(seq 1 600); do
        api GET /tasks/oo/status
        [ "$(printf '%s' "$BODY" | jq -r '.data[0].stage + "/" + .data[0].unit')" = Running/Sync ] && return 0
        sleep 0.1
    done
    fail "task oo not Running in Sync: ${BODY:0:600}"
}
# rows TABLE-QUERY: the target's answer, one line per row, fields split by spaces
rows() { dst_sql "$1" 2>&1 | tr '\t' ' '; }
until_rows() {   # WHAT SQL WANT: wait (bounded) until the target answers WANT
    local i got
    for i in $(seq 1 150); do
        got=$(rows "$2")
        [ "$got" = "$3" ] && { ok; return 0; }
        sleep 0.1
    done
    fail "$1: '$2' gave
$got
want
$3"
}
col_type() { dst_sql "SELECT CONCAT(COLUMN_TYPE, ' ', IS_NULLABLE) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='$TDB' AND TABLE_NAME='t' AND COLUMN_NAME='$1'"; }
cols() { dst_sql "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='$TDB' AND TABLE_NAME='t'"; }
paused() {   # WHAT REGEX: the subtask pauses (bounded wait) with an error matching REGEX
    local i
    for i in $(seq 1 150); do stage; [ "$ST" = Paused ] && break; sleep 0.1; done
    if [ "$ST" != Paused ]; then
        fail "$1: the subtask is $ST, want Paused"
        return
    fi
    expect 200 "$1: the pause says why" ".data[0].error_msg|test(\"$2\")"
}
running() {   # WHAT: still Running, no error
    stage
    [ "$ST" = Running ] && ok || fail "$1: the subtask is $ST, not Running: ${BODY:0:600}"
}
# the source's binlog reaches the target: a marker row of shard oo_a lands
MARK=1000
flush() {
    MARK=$((MARK + 1))
    src_sql "INSERT INTO oo_a.t (id) VALUES ($MARK)"
    local i
    for i in $(seq 1 150); do
        [ "$(dst_sql "SELECT COUNT(*) FROM $TDB.t WHERE id = $MARK" 2>/dev/null)" = 1 ] && { dst_sql "DELETE FROM $TDB.t WHERE id = $MARK"; src_sql "DELETE FROM oo_a.t WHERE id = $MARK"; return 0; }
        sleep 0.1
    done
    fail "the marker row $MARK did not reach the target"
}
# reset STRICT COLUMNS: both shards afresh with (id, a, b, c COLUMNS...), one row each, and the
# task copying them into oom.t
reset() {
    local strict=$1 extra=${2:-} db
    api DELETE "/tasks/oo?force=true"
    clean
    src_sql "CREATE DATABASE oo_a; CREATE DATABASE oo_b;
             CREATE TABLE oo_a.t (id INT PRIMARY KEY, a INT, b INT, c INT$extra);
             CREATE TABLE oo_b.t LIKE oo_a.t;
             INSERT INTO oo_a.t (id, a, b, c) VALUES (1, 10, 20, 30);
             INSERT INTO oo_b.t (id, a, b, c) VALUES (2, 11, 21, 31)" || { fail "cannot prepare the source"; finish; }
    api POST /tasks "$(task "$strict")"
    expect 200 "create the task"
    api POST /tasks/oo/start '{}'
    expect 200 "start the task"
    synced
    until_rows "full copy" "SELECT id, a, b, c FROM $TDB.t ORDER BY id" "1 10 20 30
2 11 21 31"
}

# ---- D1: a narrowing MODIFY of one shard changes nothing on the target ---------------------------
for strict in false true; do
    reset $strict
    src_sql "UPDATE oo_b.t SET b = 300; ALTER TABLE oo_a.t MODIFY b TINYINT;
             INSERT INTO oo_b.t VALUES (3, 1, 1000, 1); INSERT INTO oo_a.t VALUES (4, 2, 100, 2)"
    if [ $strict = false ]; then
        until_rows "D1 TINYINT: every shard's values" "SELECT id, a, b, c FROM $TDB.t ORDER BY id" "1 10 20 30
2 11 300 31
3 1 1000 1
4 2 100 2"
        [ "$(col_type b)" = "int(11) YES" ] && ok || fail "D1 TINYINT: the merged column became $(col_type b)"
        running "D1 TINYINT"
    else
        # strict: a shard that narrows a column pauses, the target keeps its type and values
        paused "D1 TINYINT strict" "conflict.*narrow"
        [ "$(col_type b)" = "int(11) YES" ] && ok || fail "D1 TINYINT strict: the merged column became $(col_type b)"
        until_rows "D1 TINYINT strict: rows" "SELECT id, a, b, c FROM $TDB.t ORDER BY id" "1 10 20 30
2 11 300 31"
    fi
done
for m in "VARCHAR(5)|type family" "INT NOT NULL|NULL"; do
    def=${m%%|*} why=${m#*|}
    reset false
    src_sql "UPDATE oo_b.t SET b = 123456; ALTER TABLE oo_a.t MODIFY b $def"
    paused "D1 MODIFY b $def" "conflict.*$why"
    [ "$(col_type b)" = "int(11) YES" ] && ok || fail "D1 MODIFY b $def: the merged column became $(col_type b)"
    until_rows "D1 MODIFY b $def: rows" "SELECT id, a, b, c FROM $TDB.t ORDER BY id" "1 10 20 30
2 11 123456 31"
done

# ---- ENUM: a shard that appends members widens the merged column (DM's join); another order pauses
reset false ", e ENUM('x','it''s') NOT NULL DEFAULT 'x'"
src_sql "UPDATE oo_b.t SET e = 'it''s'; ALTER TABLE oo_a.t MODIFY e ENUM('x','it''s','z') NOT NULL DEFAULT 'x';
         INSERT INTO oo_a.t VALUES (4, 2, 2, 2, 'z'); INSERT INTO oo_b.t VALUES (5, 3, 3, 3, 'it''s')"
until_rows "ENUM appended: every shard's values" "SELECT id, e FROM $TDB.t ORDER BY id" "1 x
2 it's
4 z
5 it's"
[ "$(col_type e)" = "enum('x','it''s','z') NO" ] && ok || fail "ENUM appended: the merged column is $(col_type e)"
running "ENUM appended"
src_sql "ALTER TABLE oo_b.t MODIFY e ENUM('it''s','x') NOT NULL DEFAULT 'x'"
paused "ENUM reordered" "conflict.*neither member list"
[ "$(col_type e)" = "enum('x','it''s','z') NO" ] && ok || fail "ENUM reordered: the merged column became $(col_type e)"

# ---- D2: every form of DROP COLUMN waits for every shard -----------------------------------------
reset false ", p INT, q INT, r INT, s INT, u INT, v INT, w INT, x INT"
src_sql "UPDATE oo_a.t SET p=1, q=2, r=3, s=4, u=5, v=6, w=7, x=8;
         UPDATE oo_b.t SET p=11, q=12, r=13, s=14, u=15, v=16, w=17, x=18"
src_sql "ALTER TABLE oo_a.t DROP COLUMN p, DROP COLUMN q;
         ALTER TABLE oo_a.t DROP COLUMN IF EXISTS r;
         ALTER TABLE oo_a.t DROP COLUMN s, ALGORITHM=INPLACE;
         ALTER TABLE oo_a.t DROP COLUMN u, LOCK=NONE;
         ALTER ONLINE TABLE oo_a.t DROP COLUMN v;
         ALTER IGNORE TABLE oo_a.t DROP COLUMN w;
         ALTER TABLE oo_a.t ADD COLUMN y INT, DROP COLUMN x"
flush
[ "$(cols)" = "id,a,b,c,p,q,r,s,u,v,w,x,y" ] && ok || fail "D2: columns after the first shard's drops: $(cols)"
running "D2 first shard"
# the other shard's values in the columns still land
src_sql "UPDATE oo_b.t SET p=21, q=22, r=23, s=24, u=25, v=26, w=27, x=28 WHERE id = 2;
         INSERT INTO oo_b.t (id, a, b, c, p, q, r, s, u, v, w, x) VALUES (5, 1, 2, 3, 31, 32, 33, 34, 35, 36, 37, 38);
         INSERT INTO oo_a.t (id, a, b, c, y) VALUES (6, 4, 5, 6, 9)"
until_rows "D2: the other shard's values" "SELECT id, a, b, c, p, q, r, s, u, v, w, x, y FROM $TDB.t ORDER BY id" "1 10 20 30 1 2 3 4 5 6 7 8 NULL
2 11 21 31 21 22 23 24 25 26 27 28 NULL
5 1 2 3 31 32 33 34 35 36 37 38 NULL
6 4 5 6 NULL NULL NULL NULL NULL NULL NULL NULL 9"
api GET /tasks/oo/shard_ddl_locks
expect 200 "D2: the drops wait for oo_b" '[.data[] | .unsynced[]] | unique == ["oo-src:`oo_b`.`t`"]' \
    '[.data[] | .ddl_list[]] | length == 8'
# D16: where the drop began
api GET /tasks/oo/status
expect 200 "D16: the group's first_location" '.data[0].sync_status.unresolved_groups | length == 8' \
    '[.data[0].sync_status.unresolved_groups[].first_location | test("^oo-src `oo_a`.`t` \\(.*, [0-9]+\\)$")] | all'
# the last shard drops them (several in one statement): the target loses them, rows intact
src_sql "ALTER TABLE oo_b.t ADD COLUMN y INT, DROP COLUMN p, DROP COLUMN q, DROP COLUMN r, DROP COLUMN s;
         ALTER TABLE oo_b.t DROP COLUMN u, DROP COLUMN v, DROP COLUMN w, DROP COLUMN x, ALGORITHM=COPY"
flush
until_rows "D2: columns after the last shard" "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='$TDB' AND TABLE_NAME='t'" "id,a,b,c,y"
until_rows "D2: rows after the last shard" "SELECT id, a, b, c, y FROM $TDB.t ORDER BY id" "1 10 20 30 NULL
2 11 21 31 NULL
5 1 2 3 NULL
6 4 5 6 9"
running "D2 last shard"
api GET /tasks/oo/shard_ddl_locks
expect 200 "D2: nothing waits" '.total == 0'

# ---- D10: the same column written otherwise is no conflict ---------------------------------------
reset false
src_sql "ALTER TABLE oo_a.t ADD COLUMN x1 INT, ADD COLUMN x2 INT, ADD COLUMN x3 INT AFTER id, ADD COLUMN x4 INT UNSIGNED;
         ALTER TABLE oo_b.t ADD COLUMN x1 INT NULL, ADD COLUMN x2 int(11) NULL, ADD COLUMN x3 INT, ADD COLUMN x4 BIGINT;
         INSERT INTO oo_a.t (id, x1, x2, x3, x4) VALUES (7, 1, 2, 3, 4000000000);
         INSERT INTO oo_b.t (id, x1, x2, x3, x4) VALUES (8, 1, 2, 3, -5)"
until_rows "D10: rows" "SELECT id, x1, x2, x3, x4 FROM $TDB.t ORDER BY id" "1 NULL NULL NULL NULL
2 NULL NULL NULL NULL
7 1 2 3 4000000000
8 1 2 3 -5"
running "D10"
[ "$(col_type x4)" = "bigint(20) YES" ] && ok || fail "D10: x4 (INT UNSIGNED and BIGINT) is $(col_type x4), want bigint"
# another DEFAULT: a conflict that says so
src_sql "ALTER TABLE oo_a.t ADD COLUMN x5 INT DEFAULT 1; ALTER TABLE oo_b.t ADD COLUMN x5 INT DEFAULT 2"
paused "D10 DEFAULT" "conflict.*DEFAULT"
printf '%s' "$BODY" | jq -e '.data[0].error_msg|test("neither type")|not' >/dev/null && ok ||
    fail "D10 DEFAULT: the reason names the types: $(printf '%s' "$BODY" | jq -r '.data[0].error_msg')"

# ---- D8: a pending optimistic DROP is unlocked by its listed id ----------------------------------
reset false
src_sql "ALTER TABLE oo_a.t DROP COLUMN c"
flush
api GET /tasks/oo/shard_ddl_locks
expect 200 "D8: the pending drop is listed" '.total == 1' '.data[0].id == "oo-`oom`.`t`"' '.data[0].unsynced == ["oo-src:`oo_b`.`t`"]'
api POST /tasks/oo/shard_ddl_locks/unlock '{"lock_id":"oo-`oom`.`t`","exec":true}'
expect 409 "D8: exec:true is refused" "$ERRBODY" '.error_msg|test("exec")'
api GET /tasks/oo/shard_ddl_locks
expect 200 "D8: still listed after the refusal" '.total == 1'
api POST /tasks/oo/shard_ddl_locks/unlock '{"lock_id":"oo-`oom`.`nope`","exec":false}'
expect 404 "D8: an unknown id" "$ERRBODY"
api POST /tasks/oo/shard_ddl_locks/unlock '{"lock_id":"oo-`oom`.`t`","exec":false}'
expect 200 "D8: exec:false releases the drop" '.result == "resolved"'
api GET /tasks/oo/shard_ddl_locks
expect 200 "D8: nothing listed after" '.total == 0'
api POST /tasks/oo/shard_ddl_locks/unlock '{"lock_id":"oo-`oom`.`t`","exec":false}'
expect 404 "D8: released once" "$ERRBODY"
# the column stays: the other shard's values in it keep landing, and its own drop runs nothing
src_sql "INSERT INTO oo_b.t VALUES (3, 1, 2, 3); ALTER TABLE oo_b.t DROP COLUMN c; INSERT INTO oo_b.t VALUES (5, 1, 2)"
flush
until_rows "D8: rows" "SELECT id, a, b, c FROM $TDB.t ORDER BY id" "1 10 20 30
2 11 21 31
3 1 2 3
5 1 2 NULL"
[ "$(cols)" = "id,a,b,c" ] && ok || fail "D8: columns: $(cols)"
running "D8"

api DELETE "/tasks/oo?force=true"
expect 204 "delete the task"
stop_server
check_log
clean
finish
