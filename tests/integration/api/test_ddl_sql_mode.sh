#!/usr/bin/env bash
# test_ddl_sql_mode.sh - DDL that a source session ran under an sql_mode which changes how its text
# reads arrives on the target with the same meaning. Found by reading the sink: every DDL ran
# under the sink's own sql_mode, and sluice's own lexer (ddl.c) read it the default way:
# - ANSI_QUOTES: CREATE TABLE "q1" (...) was dropped by the filter (no table name found), and
#   the rows of q1 then paused the task;
# - NO_BACKSLASH_ESCAPES: DEFAULT 'a\' failed on the target, and a COMMENT holding a backslash
#   and a quote made the lexer read the rest as code: route rewrote a name inside the comment;
# - PIPES_AS_CONCAT: a generated column a || b became a logical OR on the target;
# - REAL_AS_FLOAT: a REAL column became DOUBLE on the target;
# - HIGH_NOT_PRECEDENCE: NOT a BETWEEN ... meant something else on the target;
# - IGNORE_SPACE: substring (a, 1, 2) in a generated column failed on the target;
# - ORACLE: VARCHAR2 and || failed or meant OR on the target.
# The binlog carries the session's sql_mode with each statement (Q_SQL_MODE_CODE); now the
# reader passes the modes that matter on (sl_event.ddl_mode) and the lexer, the schema tracker
# and the sink apply the statement under them. Compared on both servers: SHOW CREATE TABLE (the
# routed table under its target name), the generated columns' values, the rows, the task Running.
. "$(dirname "$0")/lib.sh"

S=sm_src T=sm_dst
src_sql "DROP DATABASE IF EXISTS $S; CREATE DATABASE $S;
         CREATE TABLE $S.seed (id INT PRIMARY KEY); INSERT INTO $S.seed VALUES (1)" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "DROP DATABASE IF EXISTS $T" || { echo "FAIL: cannot reach the target" >&2; exit 1; }

start_server "$WORK/data"
api POST /sources "{\"source_name\":\"sm\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
# nb is routed to another name (route rewrites its DDL: ddl.c's lexer decides which bytes);
# the other tables go to the target schema under their own names.
api POST /tasks "$(printf '{"task":{"name":"sm","task_mode":"all","target_config":{"host":"%s","port":%s,"user":"%s","password":"%s"},"table_migrate_rule":[{"source":{"source_name":"sm","schema":"%s","table":"nb"},"target":{"schema":"%s","table":"nb_routed"}},{"source":{"source_name":"sm","schema":"%s"},"target":{"schema":"%s"}}],"source_config":{"full_migrate_conf":{"data_dir":"%s"},"source_conf":[{"source_name":"sm"}]}}}' \
    "$SLUICE_TARGET_HOST" "$SLUICE_TARGET_PORT" "$SLUICE_TARGET_USER" "$SLUICE_TARGET_PASSWORD" "$S" "$T" "$S" "$T" "$WORK/dump")"
expect 200 "task"
api POST /tasks/sm/start '{"remove_meta":true}'     # nothing of an earlier run's checkpoint
expect 200 "start"
[ "$FAILS" = 0 ] || finish

q() { dst_sql "$1" 2>/dev/null; }
wait_for() {   # WHAT SQL WANT: poll the target (bounded)
    local i
    for i in $(seq 1 300); do [ "$(q "$2")" = "$3" ] && { ok; return 0; }; sleep 0.1; done
    fail "$1: '$(q "$2")', want '$3'"
}
stage() { api GET /tasks/sm/status; printf '%s' "$BODY" | jq -r '.data[0].stage'; }
wait_for "full copy" "SELECT COUNT(*) FROM $T.seed" 1

# in_mode MODE SQL: SQL in one source session with sql_mode MODE (default schema $S)
in_mode() {
    mariadb -h "$SLUICE_SOURCE_HOST" -P "$SLUICE_SOURCE_PORT" -u "$SLUICE_SOURCE_USER" \
        -p"$SLUICE_SOURCE_PASSWORD" -N "$S" -e "SET SESSION sql_mode = '$1'; $2" ||
        fail "on the source under $1: $2"
}

in_mode ANSI_QUOTES 'CREATE TABLE "q1" ("a" INT PRIMARY KEY, "b" VARCHAR(10) DEFAULT '"'x'"');
    ALTER TABLE "q1" ADD COLUMN "c" INT; INSERT INTO "q1" ("a", "c") VALUES (1, 10), (2, 20)'
# 'a\' is a whole string here; the comment holds a backslash, a doubled quote and words that
# read as a RENAME TO when the backslash escapes: route must not touch them
in_mode NO_BACKSLASH_ESCAPES "CREATE TABLE nb (id INT PRIMARY KEY, v VARCHAR(10) DEFAULT 'a\\',
    w VARCHAR(40) DEFAULT 'c:\\' COMMENT ' REFERENCES seed (id) ');
    ALTER TABLE nb ADD COLUMN z VARCHAR(10) DEFAULT 'b\\' COMMENT ' rename to nbz \\'' ';
    INSERT INTO nb (id) VALUES (1); INSERT INTO nb VALUES (2, 'q\\', 'r''s\\', 't')"
in_mode PIPES_AS_CONCAT "CREATE TABLE pc (id INT PRIMARY KEY, a VARCHAR(5), b VARCHAR(5),
    s VARCHAR(10) AS (a || b) STORED, v VARCHAR(10) AS (a || '-' || b) VIRTUAL);
    INSERT INTO pc (id, a, b) VALUES (1, 'ab', 'cd'), (2, 'x', NULL)"
in_mode REAL_AS_FLOAT "CREATE TABLE rf (id INT PRIMARY KEY, r REAL); INSERT INTO rf VALUES (1, 1.5)"
in_mode HIGH_NOT_PRECEDENCE "CREATE TABLE hn (id INT PRIMARY KEY, a INT, n INT AS (NOT a BETWEEN -1 AND 1) VIRTUAL);
    INSERT INTO hn (id, a) VALUES (1, 0), (2, 5)"
in_mode IGNORE_SPACE "CREATE TABLE isp (id INT PRIMARY KEY, a VARCHAR(10), p VARCHAR(10) AS (substring (a, 1, 2)) STORED);
    INSERT INTO isp (id, a) VALUES (1, 'hello')"
in_mode ORACLE "CREATE TABLE orc (id INT PRIMARY KEY, a VARCHAR2(10), c VARCHAR(20) AS (a || 'x') VIRTUAL);
    INSERT INTO orc (id, a) VALUES (1, 'o')"
src_sql "INSERT INTO $S.seed VALUES (2)"     # the last event: everything before it is applied

wait_for "the row after the DDL" "SELECT COUNT(*) FROM $T.seed" 2
st=$(stage)
[ "$st" = Running ] && ok || fail "task is $st, want Running: $(printf '%s' "$BODY" | jq -c '.data[0].subtask_status[0].sync' 2>/dev/null | head -c 600)"

# ---- the structures: SHOW CREATE TABLE equal on both servers (nb under its routed name) --------
show() {   # SIDE DB TABLE: the CREATE TABLE text without the table's name line
    local out
    if [ "$1" = src ]; then out=$(src_sql "SHOW CREATE TABLE \`$2\`.\`$3\`" 2>/dev/null)
    else out=$(q "SHOW CREATE TABLE \`$2\`.\`$3\`"); fi
    printf '%s' "$out" | cut -f2- | sed '1s/^[^(]*(//'
}
for t in q1 nb pc rf hn isp orc; do
    tt=$t
    [ "$t" = nb ] && tt=nb_routed
    a=$(show src "$S" "$t") b=$(show dst "$T" "$tt")
    if [ -n "$a" ] && [ "$a" = "$b" ]; then ok; else
        fail "SHOW CREATE TABLE $t: source: ${a:0:400} / target $tt: ${b:0:400}"; fi
done
[ "$(q "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '$T' AND TABLE_NAME = 'rf' AND COLUMN_NAME = 'r'")" = float ] &&
    ok || fail "REAL under REAL_AS_FLOAT is not FLOAT on the target"
[ "$(q "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$T' AND TABLE_NAME = 'nbz'")" = 0 ] &&
    ok || fail "a RENAME TO inside a comment renamed the table on the target"

# ---- the rows, generated columns included ----------------------------------------------------
rows() {   # TABLE [TARGET-TABLE]: every column of every row, in key order, on both sides
    local t=$1 tt=${2:-$1} a b
    a=$(src_sql "SELECT * FROM \`$S\`.\`$t\` ORDER BY 1" 2>/dev/null)
    b=$(q "SELECT * FROM \`$T\`.\`$tt\` ORDER BY 1")
    if [ -n "$a" ] && [ "$a" = "$b" ]; then ok; else fail "rows of $t: source: ${a:0:300} / target: ${b:0:300}"; fi
}
rows q1; rows nb nb_routed; rows pc; rows rf; rows hn; rows isp; rows orc
[ "$(q "SELECT GROUP_CONCAT(s, '/', v ORDER BY id) FROM $T.pc")" = "abcd/ab-cd" ] && ok ||
    fail "|| under PIPES_AS_CONCAT on the target: $(q "SELECT GROUP_CONCAT(CONCAT_WS('/', s, v) ORDER BY id) FROM $T.pc")"

st=$(stage)
[ "$st" = Running ] && ok || fail "task is $st at the end, want Running"
api DELETE "/tasks/sm?force=true"       # its checkpoint and tracker tables go with it
expect 204 "delete the task"
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS $S"
dst_sql "DROP DATABASE IF EXISTS $T"
finish
