#!/usr/bin/env bash
# test_locks.sh - pessimistic shard DDL locks through a real server and the sandbox servers, the
# defects an exploratory session found (each lost or changed rows, or hung, before):
# A. the same DDL in the words of three sessions (case, backquotes, a comment) is one DDL, not a
#    conflict that pauses;
# B. a DDL the target refused (Duplicate key name, an index that differs) is run again at the
#    next start and pauses again, until the target takes it; it was skipped as "already applied";
# C. a DROP TABLE of two shards and a table that is no shard: both shards leave the lock, which
#    resolves, and the other table is dropped on the target; only the first shard left before;
# D. a task deleted with keep_meta while a lock holds a shard, then created again: the lock is
#    still there, the DDL runs when the last shard comes, the held row lands whole; it was
#    forgotten, and the held 50-character value was cut to the old 10;
# E. a start with remove_meta forgets the task's locks with the shard tables of the target: a
#    stale lock made the next DDL a conflict;
# F. the unlock endpoint refuses unknown fields, a key given twice and an absurd lock_id, and
#    echoes no more than a few hundred bytes of an unknown one; it ran {"op": "skip"} as an exec;
# G. a server that lost its store (a new data dir) while the target kept a hold: the held shard
#    reads its DDL again and makes the lock anew; its lock was taken for resolved.
# Each case checks the exact rows of every shard on the target and the subtask's stage.
. "$(dirname "$0")/../api/lib.sh"

META=shlk_meta
CASES="shla shlb shlc shld shle shlf shlg"
cleanup_dbs() {
    local c
    for c in $CASES; do
        src_sql "DROP DATABASE IF EXISTS ${c}_a; DROP DATABASE IF EXISTS ${c}_b; DROP DATABASE IF EXISTS ${c}_c"
        dst_sql "DROP DATABASE IF EXISTS ${c}m"
    done
    dst_sql "DROP DATABASE IF EXISTS $META"
}
cleanup_dbs
start_server "$WORK/data"
LOG=$WORK/server.log
api POST /sources "{\"source_name\":\"shlk-1\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"

# Each case has its own task T and schemas: the shards ${T}_{a,b,c}.t merge into ${T}m.t, and
# ${T}_a.solo and ${T}_a.solo2 keep their names in ${T}m (tables that are no shard).
T= M= LOCK= SA= SB= SC= TASK=
task_json() {
    printf '{"task":{"name":"%s","task_mode":"all","shard_mode":"pessimistic","meta_schema":"%s","target_config":{"host":"%s","port":%s,"user":"%s","password":"%s"},"table_migrate_rule":[{"source":{"source_name":"shlk-1","schema":"%s_*","table":"t"},"target":{"schema":"%s","table":"t"}},{"source":{"source_name":"shlk-1","schema":"%s_a","table":"solo*"},"target":{"schema":"%s"}}],"source_config":{"full_migrate_conf":{"data_dir":"%s"},"source_conf":[{"source_name":"shlk-1"}]}}}' \
        "$T" "$META" "$SLUICE_TARGET_HOST" "$SLUICE_TARGET_PORT" "$SLUICE_TARGET_USER" "$SLUICE_TARGET_PASSWORD" "$T" "$M" "$T" "$M" "$WORK/dump"
}
case_start() {   # NAME: its shards and task, started and copied
    T=$1 M=${1}m LOCK="$1-\`${1}m\`.\`t\`"
    SA="shlk-1:\`${1}_a\`.\`t\`" SB="shlk-1:\`${1}_b\`.\`t\`" SC="shlk-1:\`${1}_c\`.\`t\`"
    TASK=$(task_json)
    src_sql "CREATE DATABASE ${T}_a; CREATE DATABASE ${T}_b; CREATE DATABASE ${T}_c;
             CREATE TABLE ${T}_a.t (id INT PRIMARY KEY, s VARCHAR(10)); CREATE TABLE ${T}_b.t LIKE ${T}_a.t;
             CREATE TABLE ${T}_c.t LIKE ${T}_a.t;
             CREATE TABLE ${T}_a.solo (id INT PRIMARY KEY, v INT); CREATE TABLE ${T}_a.solo2 LIKE ${T}_a.solo;
             INSERT INTO ${T}_a.t VALUES (1,'a'); INSERT INTO ${T}_b.t VALUES (2,'b'); INSERT INTO ${T}_c.t VALUES (3,'c');
             INSERT INTO ${T}_a.solo VALUES (1,1); INSERT INTO ${T}_a.solo2 VALUES (1,1)" ||
        { echo "FAIL: cannot prepare the source" >&2; exit 1; }
    api POST /tasks "$TASK"
    expect 200 "$T: create"
    api POST "/tasks/$T/start" '{}'
    expect 200 "$T: start"
    running "$T: first start"
    until_sql "SELECT id, s FROM $M.t ORDER BY id" "1 a 2 b 3 c" "$T: the full copy"
}
case_end() {
    api DELETE "/tasks/$T?force=true"
    expect 204 "$T: delete"
}

stage() {   # the subtask's stage, unit and error
    api GET "/tasks/$T/status"
    printf '%s' "$BODY" | jq -r '.data[0] | "\(.stage) \(.unit) \(.error_msg // "")"'
}
running() {   # WHAT: the subtask Running in Sync within 60 s
    local i st
    for i in $(seq 1 600); do
        st=$(stage)
        case "$st" in "Running Sync"*) ok; return 0 ;; Paused*) break ;; esac
        sleep 0.1
    done
    fail "$1: not Running in Sync: $st"
}
paused() {   # PATTERN WHAT: the subtask Paused with an error matching PATTERN within 60 s
    local i st
    for i in $(seq 1 600); do
        st=$(stage)
        case "$st" in Paused*) break ;; esac
        sleep 0.1
    done
    if [[ "$st" == Paused* ]] && printf '%s' "$st" | grep -qE "$1"; then ok; else fail "$2: want Paused with /$1/: $st"; fi
}
until_sql() {   # SQL WANT WHAT: the target answers WANT within 60 s (and the subtask does not pause)
    local i got
    for i in $(seq 1 600); do
        got=$(dst_sql "$1" 2>/dev/null | tr '\t\n' '  ' | sed 's/ *$//')
        [ "$got" = "$2" ] && { ok; return 0; }
        [[ "$(stage)" == Paused* ]] && break
        sleep 0.1
    done
    fail "$3: '$1' gave '$got', want '$2' ($(stage))"
}
locks() {   # the task's unresolved locks: "id synced,... | unsynced,..." one line each
    api GET "/tasks/$T/shard_ddl_locks"
    printf '%s' "$BODY" | jq -r '.data[] | "\(.id) \(.synced | join(",")) | \(.unsynced | join(","))"'
}
until_locks() {   # WANT WHAT: the lock list equals WANT within 60 s
    local i got
    for i in $(seq 1 600); do
        got=$(locks)
        [ "$got" = "$1" ] && { ok; return 0; }
        sleep 0.1
    done
    fail "$2: locks '$got', want '$1' ($(stage))"
}
coltype() { dst_sql "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='$M' AND TABLE_NAME='$1' AND COLUMN_NAME='$2'"; }
merged() {   # COLUMNS: the shards' rows as the source has them (the target must equal it)
    src_sql "SELECT $1 FROM (SELECT * FROM ${T}_a.t UNION ALL SELECT * FROM ${T}_b.t UNION ALL SELECT * FROM ${T}_c.t) u ORDER BY id" |
        tr '\t\n' '  ' | sed 's/ *$//'
}

# ---- A: one DDL in three sessions' words -------------------------------------------------------
case_start shla
src_sql "ALTER TABLE ${T}_a.t ADD COLUMN w1 INT; INSERT INTO ${T}_a.t VALUES (11, 'a', 11)"
until_locks "$LOCK $SA | $SB,$SC" "A: the first shard's lock"
src_sql "USE ${T}_b; alter table t add column w1 int; INSERT INTO ${T}_b.t VALUES (12, 'b', 12)"
src_sql "ALTER TABLE \`${T}_c\`.\`t\` /* by hand */ ADD COLUMN \`W1\` INT; INSERT INTO ${T}_c.t VALUES (13, 'c', 13)"
until_sql "SELECT id, s, w1 FROM $M.t ORDER BY id" "1 a NULL 2 b NULL 3 c NULL 11 a 11 12 b 12 13 c 13" \
    "A: the DDL ran once every shard came"
until_locks "" "A: the lock resolved"
running "A: no conflict"
[ "$(grep -c "shard DDL conflict on ${T}m" "$LOG")" = 0 ] && ok ||
    fail "A: a conflict was logged: $(grep "shard DDL conflict on ${T}m" "$LOG" | head -1)"
case_end

# ---- B: a DDL the target refused runs again at the next start -------------------------------
case_start shlb
dst_sql "CREATE INDEX ia ON $M.solo2 (v)"
src_sql "ALTER TABLE ${T}_a.solo2 ADD INDEX ia (id, v); INSERT INTO ${T}_a.solo2 VALUES (10, 10)"
paused "Duplicate key name 'ia'" "B: the refused DDL"
ran() { grep -c "\[$T/.*applying DDL: .*Duplicate key name 'ia'" "$LOG"; }
n=$(ran)
api POST "/tasks/$T/start" '{}'
expect 200 "B: start after the refusal"
for _ in $(seq 1 600); do [ "$(ran)" -gt "$n" ] && break; sleep 0.1; done
[ "$(ran)" -gt "$n" ] && ok || fail "B: the start did not run the DDL again ($(grep "\[$T/.*already applied" "$LOG" | tail -1))"
paused "Duplicate key name 'ia'" "B: the start pauses again"
idx() { dst_sql "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA='$M' AND TABLE_NAME='solo2' AND INDEX_NAME='ia'"; }
[ "$(idx)" = v ] && ok || fail "B: the target's own index ia changed: $(idx)"
[ "$(dst_sql "SELECT COUNT(*) FROM $M.solo2 WHERE id = 10")" = 0 ] && ok || fail "B: a row after the refused DDL was applied"
# the operator makes room for it: the next start runs it, and what came after
dst_sql "DROP INDEX ia ON $M.solo2"
api POST "/tasks/$T/start" '{}'
expect 200 "B: start after the target was fixed"
running "B: after the fix"
until_sql "SELECT id, v FROM $M.solo2 ORDER BY id" "1 1 10 10" "B: the rows after the DDL"
[ "$(idx)" = id,v ] && ok || fail "B: index ia on the target is ($(idx)), want (id,v)"
case_end

# ---- C: a DROP TABLE of two shards and a table that is no shard -----------------------------
case_start shlc
src_sql "ALTER TABLE ${T}_a.t ADD COLUMN e INT; INSERT INTO ${T}_a.t VALUES (20, 'a', 20)"
until_locks "$LOCK $SA | $SB,$SC" "C: the lock of ADD COLUMN e"
src_sql "DROP TABLE ${T}_b.t, ${T}_a.solo, ${T}_c.t"
until_locks "" "C: both dropped shards left the lock"
until_sql "SELECT id, s, e FROM $M.t ORDER BY id" "1 a NULL 2 b NULL 3 c NULL 20 a 20" \
    "C: the DDL ran and the held row landed (the dropped shards' rows stay merged)"
until_sql "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='$M' AND TABLE_NAME='solo'" 0 \
    "C: the table that is no shard was dropped on the target"
running "C: after the DROP TABLE"
# the shards come back (a new shard's CREATE TABLE finds the merged table), and a DROP TABLE of
# the other table alone drops it too
src_sql "CREATE TABLE ${T}_b.t LIKE ${T}_a.t; CREATE TABLE ${T}_c.t LIKE ${T}_a.t;
         INSERT INTO ${T}_b.t VALUES (21, 'b', 21); INSERT INTO ${T}_c.t VALUES (22, 'c', 22);
         DROP TABLE ${T}_a.solo2"
until_sql "SELECT COUNT(*) FROM $M.t WHERE id IN (21, 22)" 2 "C: the shards created again replicate"
until_sql "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='$M' AND TABLE_NAME='solo2'" 0 \
    "C: a DROP TABLE of the other table alone dropped it on the target"
running "C: at the end"
case_end

# ---- D: delete with keep_meta while a lock holds a shard, create again ----------------------
case_start shld
src_sql "ALTER TABLE ${T}_a.t MODIFY s VARCHAR(100); INSERT INTO ${T}_a.t VALUES (30, REPEAT('x', 50))"
until_locks "$LOCK $SA | $SB,$SC" "D: the lock of MODIFY s"

api DELETE "/tasks/$T?force=true&keep_meta=true"
expect 204 "D: delete with keep_meta"
api POST /tasks "$TASK"
expect 200 "D: create again"
api POST "/tasks/$T/start" '{}'
expect 200 "D: start again"
running "D: the task created again"
until_locks "$LOCK $SA | $SB,$SC" "D: the lock outlived the task"
[ "$(coltype t s)" = "varchar(10)" ] && ok || fail "D: the DDL ran before the last shard came: s is $(coltype t s)"
[ "$(dst_sql "SELECT COUNT(*) FROM $M.t WHERE id = 30")" = 0 ] && ok ||
    fail "D: the held row landed before the DDL: $(dst_sql "SELECT id, s FROM $M.t WHERE id = 30")"
src_sql "ALTER TABLE ${T}_b.t MODIFY s VARCHAR(100); INSERT INTO ${T}_b.t VALUES (31, REPEAT('y', 60));
         ALTER TABLE ${T}_c.t MODIFY s VARCHAR(100); INSERT INTO ${T}_c.t VALUES (32, REPEAT('z', 70))"
until_sql "SELECT id, s FROM $M.t ORDER BY id" "$(merged 'id, s')" "D: every shard's rows, the held one whole"
until_locks "" "D: the lock resolved"
[ "$(coltype t s)" = "varchar(100)" ] && ok || fail "D: s is $(coltype t s) on the target"
running "D: after the lock"
case_end

# ---- E: start with remove_meta forgets the locks ---------------------------------------------
case_start shle
src_sql "ALTER TABLE ${T}_a.t ADD COLUMN f INT"
until_locks "$LOCK $SA | $SB,$SC" "E: the lock of ADD COLUMN f"
api POST "/tasks/$T/stop" '{}'
expect 200 "E: stop"
# starting over: the shards made alike by hand, the target emptied
src_sql "ALTER TABLE ${T}_b.t ADD COLUMN f INT; ALTER TABLE ${T}_c.t ADD COLUMN f INT"
dst_sql "DROP DATABASE $M"
api POST "/tasks/$T/start" '{"remove_meta":true}'
expect 200 "E: start with remove_meta"
running "E: started over"
until_locks "" "E: no lock after remove_meta"
src_sql "ALTER TABLE ${T}_a.t ADD COLUMN g INT; ALTER TABLE ${T}_b.t ADD COLUMN g INT; ALTER TABLE ${T}_c.t ADD COLUMN g INT;
         INSERT INTO ${T}_a.t VALUES (40, 'a', 40, 40); INSERT INTO ${T}_b.t VALUES (41, 'b', 41, 41)"
until_sql "SELECT id, s, f, g FROM $M.t ORDER BY id" "$(merged 'id, s, f, g')" "E: every shard's rows after the next DDL"
running "E: the next DDL is no conflict"
until_locks "" "E: its lock resolved"
case_end

# ---- F: the unlock endpoint takes what it knows only ------------------------------------------
case_start shlf
src_sql "ALTER TABLE ${T}_a.t MODIFY s VARCHAR(100); INSERT INTO ${T}_a.t VALUES (30, REPEAT('x', 50))"
until_locks "$LOCK $SA | $SB,$SC" "F: the lock of MODIFY s"
api POST "/tasks/$T/shard_ddl_locks/unlock" "{\"lock_id\":\"$LOCK\",\"op\":\"skip\"}"
expect 400 "F: an unknown field" "$ERRBODY" '.error_msg|test("/op: unknown field")'
api POST "/tasks/$T/shard_ddl_locks/unlock" "{\"lock_id\":\"nope\",\"lock_id\":\"$LOCK\"}"
expect 400 "F: lock_id given twice" "$ERRBODY" '.error_msg|test("duplicate")'
api POST "/tasks/$T/shard_ddl_locks/unlock" "{\"exec\":false,\"exec\":true,\"lock_id\":\"$LOCK\"}"
expect 400 "F: exec given twice" "$ERRBODY"
printf '{"lock_id":"%s"}' "$(head -c 100000 /dev/zero | tr '\0' x)" > "$WORK/big.json"
api POST "/tasks/$T/shard_ddl_locks/unlock" "@$WORK/big.json"
expect 400 "F: a 100 KB lock_id" "$ERRBODY" '(.error_msg|length) < 400'
api POST "/tasks/$T/shard_ddl_locks/unlock" "{\"lock_id\":\"$T-$(head -c 1000 /dev/zero | tr '\0' y)\"}"
expect 404 "F: an unknown lock id" "$ERRBODY" '(.error_msg|length) < 500'
until_locks "$LOCK $SA | $SB,$SC" "F: none of them touched the lock"
[ "$(dst_sql "SELECT COUNT(*) FROM $M.t WHERE id = 30")" = 0 ] && ok || fail "F: the held row landed"
case_end

# ---- G: the server lost its store (a new data dir), the target kept a hold ------------------
case_start shlg
src_sql "ALTER TABLE ${T}_a.t MODIFY s VARCHAR(100); INSERT INTO ${T}_a.t VALUES (50, REPEAT('x', 50))"
until_locks "$LOCK $SA | $SB,$SC" "G: the lock of MODIFY s"
stop_server
start_server "$WORK/data-new"
api POST /sources "{\"source_name\":\"shlk-1\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "G: the source on the new server"
api POST /tasks "$TASK"
expect 200 "G: the task on the new server"
api POST "/tasks/$T/start" '{}'
expect 200 "G: start on the new server"
running "G: the task on the new server"
# the held shard reads its DDL again and makes the lock anew; its row waits for it
until_locks "$LOCK $SA | $SB,$SC" "G: the held shard arrived again"
[ "$(dst_sql "SELECT COUNT(*) FROM $M.t WHERE id = 50")" = 0 ] && ok ||
    fail "G: the held row landed before the DDL: $(dst_sql "SELECT id, s FROM $M.t WHERE id = 50")"
src_sql "ALTER TABLE ${T}_b.t MODIFY s VARCHAR(100); ALTER TABLE ${T}_c.t MODIFY s VARCHAR(100);
         INSERT INTO ${T}_c.t VALUES (52, REPEAT('z', 70))"
until_sql "SELECT id, s FROM $M.t ORDER BY id" "$(merged 'id, s')" "G: every shard's rows, the held one whole"
until_locks "" "G: the lock resolved"
[ "$(coltype t s)" = "varchar(100)" ] && ok || fail "G: s is $(coltype t s) on the target"
running "G: after the lock"
case_end

stop_server
check_log
cleanup_dbs
finish
