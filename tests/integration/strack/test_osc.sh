#!/usr/bin/env bash
# test_osc.sh - online schema change tools under a real sluice-server (issue 15,
# enhance_online_schema_change on, the default). A task_mode "all" task selects the whole schema
# ("*": the tools' tables match the rule too), then:
#  1. Debian's pt-online-schema-change alters osc_t.t (a column and an index) while a writer
#     inserts, updates and deletes rows of t: the target ends equal to the source (CHECKSUM and
#     row by row), holds none of the tool's tables, has the new structure, and its sink applied
#     exactly one DDL for the whole migration (the ALTER at the cut-over: an ALTER applied twice
#     would pause the task on a duplicate column).
#  2. A gh-ost migration given up (its ghost dropped): nothing of it reaches the target. Then
#     gh-ost's statement sequence, replayed as gh-ost's applier writes it (gh-ost is not packaged
#     for Debian): changelog table, ghost CREATE ... LIKE, two ALTERs of the ghost (the change and
#     AUTO_INCREMENT), row copy in chunks and the real table's changes applied to the ghost while
#     the application writes, the cut-over sentry, the atomic RENAME, the drops. The server is
#     killed (SIGKILL) after the ghost's ALTERs reached the checkpoint: the migration in flight is
#     restored from the target and the ALTER still reaches the real table at the cut-over. The
#     ghost's ALTERs run in a session with ANSI_QUOTES ("w"): the ALTER at the cut-over is run in
#     that mode too, also after the kill (the mode is kept with the migration).
#  3. With the option off and a schema-level rule, the tools' tables are ordinary tables: the
#     ghost, its row copy and the swap are replicated as they ran, and the target ends equal.
#  The source also holds a changelog table left by an earlier gh-ost run when the task's dump
#  takes its snapshot: the dump leaves it out, as it does any tool's table of a selected table.
. "$(dirname "$0")/../api/lib.sh"

DB=osc_t
TASK=osc-task
command -v pt-online-schema-change >/dev/null || { echo "FAIL: pt-online-schema-change is needed (percona-toolkit)" >&2; exit 1; }
src_sql "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`;
         CREATE TABLE \`$DB\`.\`t\` (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40), n INT);
         INSERT INTO \`$DB\`.\`t\` (v, n) SELECT CONCAT('row ', seq), seq FROM \`$DB\`.seq_1_to_3000;
         CREATE TABLE \`$DB\`.\`g\` (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40), n INT);
         INSERT INTO \`$DB\`.\`g\` (v, n) SELECT CONCAT('g ', seq), seq FROM \`$DB\`.seq_1_to_1000;
         CREATE TABLE \`$DB\`.\`_g_ghc\` (id BIGINT PRIMARY KEY, hint VARCHAR(64), value VARCHAR(4096));
         INSERT INTO \`$DB\`.\`_g_ghc\` VALUES (2, 'state', 'left by an earlier gh-ost run')" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
drop_meta() {
    dst_sql "SELECT CONCAT('DROP TABLE \`dm_meta\`.\`', table_name, '\`;') FROM information_schema.TABLES
             WHERE table_schema = 'dm_meta' AND (table_name LIKE '$TASK\\_%' OR table_name LIKE '$TASK-off\\_%')" | dst_sql "$(cat)" 2>/dev/null
    dst_sql "DROP DATABASE IF EXISTS \`$DB\`; DROP DATABASE IF EXISTS \`${DB}_off\`"
}
drop_meta || { echo "FAIL: cannot prepare the target" >&2; exit 1; }
start_server "$WORK/data"

SRC="\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true"
api POST /sources "{\"source_name\":\"osc-src\",$SRC}"
expect 201 "source"
api POST /tasks "{\"task\":{\"name\":\"$TASK\",\"task_mode\":\"all\",\"enhance_online_schema_change\":true,\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"osc-src\",\"schema\":\"$DB\",\"table\":\"*\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump\"},\"source_conf\":[{\"source_name\":\"osc-src\"}]}}}"
expect 200 "task"
api POST /tasks/$TASK/start '{}'
expect 200 "start"
status() { api GET /tasks/$TASK/status; printf '%s' "$BODY" | jq -r ".data[0]${1:+.$1}"; }
for _ in $(seq 1 1200); do [ "$(status unit)" = Sync ] && break; sleep 0.1; done
[ "$(status unit)" = Sync ] && ok || fail "the task did not reach Sync: $(status '')"

# equal TABLE: the same CHECKSUM and the same rows, in key order, on both sides
rows() { "$1" "SELECT * FROM \`$DB\`.\`$2\` ORDER BY id" 2>/dev/null | md5sum; }
equal() {
    [ "$(src_sql "CHECKSUM TABLE \`$DB\`.\`$1\` EXTENDED" | awk '{print $2}')" = \
      "$(dst_sql "CHECKSUM TABLE \`$DB\`.\`$1\` EXTENDED" 2>/dev/null | awk '{print $2}')" ] &&
        [ "$(rows src_sql "$1")" = "$(rows dst_sql "$1")" ]
}
wait_equal() { for _ in $(seq 1 1200); do equal "$1" && return 0; sleep 0.1; done; return 1; }
columns() {
    "$1" "SELECT GROUP_CONCAT(COLUMN_NAME, ' ', COLUMN_TYPE, ' ', IS_NULLABLE, ' ', IFNULL(COLUMN_DEFAULT, '-')
          ORDER BY ORDINAL_POSITION) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '$DB' AND TABLE_NAME = '$2'"
}
indexes() {
    "$1" "SELECT GROUP_CONCAT(DISTINCT INDEX_NAME ORDER BY INDEX_NAME) FROM information_schema.STATISTICS
          WHERE TABLE_SCHEMA = '$DB' AND TABLE_NAME = '$2'"
}
tool_tables() {
    dst_sql "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '$DB' AND TABLE_NAME LIKE '\\_%'"
}
metric() {
    curl -sS "http://127.0.0.1:$PORT/metrics" |
        sed -n "s/^sluice_stage_$1_total{[^}]*task=\"$TASK\"[^}]*stage=\"sink\"[^}]*} \\([0-9]*\\).*/\\1/p" | head -1
}
wait_equal t && ok || fail "t differs after the load"
DDLS0=$(metric ddls_applied)   # the counter appears with the sink's first DDL
DDLS0=${DDLS0:-0}

# ---- 1. pt-online-schema-change under live writes -------------------------------------------
STOP=$WORK/writer.stop
writer() {   # one transaction a step: insert, update, delete of t (rows the copy may be copying)
    local i=0
    while [ ! -e "$STOP" ]; do
        i=$((i + 1))
        src_sql "INSERT INTO \`$DB\`.\`t\` (v, n) VALUES ('live $i', $i);
                 UPDATE \`$DB\`.\`t\` SET n = n + 1000, v = CONCAT(v, '+') WHERE id = $(( (i * 37) % 3000 + 1 ));
                 DELETE FROM \`$DB\`.\`t\` WHERE id = $(( (i * 53) % 3000 + 1 ))" || break
    done
    echo "$i" >"$WORK/writer.count"
}
writer &
WRITER=$!
DSN="h=$SLUICE_SOURCE_HOST,P=$SLUICE_SOURCE_PORT,u=$SLUICE_SOURCE_USER,D=$DB,t=t"
[ -n "$SLUICE_SOURCE_PASSWORD" ] && DSN="$DSN,p=$SLUICE_SOURCE_PASSWORD"
sleep 0.5   # a few writes before the tool starts (not a timing assumption: any number is fine)
pt-online-schema-change --alter "ADD COLUMN w INT NOT NULL DEFAULT 7, ADD INDEX n_idx (n)" \
    --execute --chunk-size 100 --recursion-method none --no-check-replication-filters \
    --set-vars lock_wait_timeout=60 "$DSN" >"$WORK/pt-osc.log" 2>&1
PTRC=$?
touch "$STOP"
wait "$WRITER"
[ "$PTRC" = 0 ] && ok || { cat "$WORK/pt-osc.log" >&2; fail "pt-online-schema-change exited with $PTRC"; }
grep -q "Successfully altered" "$WORK/pt-osc.log" && ok || fail "pt-osc did not alter the table: $(tail -5 "$WORK/pt-osc.log")"
[ "$(cat "$WORK/writer.count")" -ge 1 ] && ok || fail "the writer wrote nothing"
src_sql "INSERT INTO \`$DB\`.\`t\` (v, n, w) VALUES ('after pt-osc', 1, 42)"
wait_equal t && ok || fail "t differs after pt-osc: source $(src_sql "SELECT COUNT(*) FROM \`$DB\`.\`t\`") rows, target $(dst_sql "SELECT COUNT(*) FROM \`$DB\`.\`t\`" 2>&1); $(status error_msg)"
[ "$(columns dst_sql t)" = "$(columns src_sql t)" ] && ok || fail "t's columns: target '$(columns dst_sql t)', source '$(columns src_sql t)'"
[ "$(indexes dst_sql t)" = "$(indexes src_sql t)" ] && ok || fail "t's indexes: target '$(indexes dst_sql t)', source '$(indexes src_sql t)'"
[ "$(tool_tables)" = 0 ] && ok || fail "the tool's tables reached the target: $(dst_sql "SHOW TABLES FROM \`$DB\`" | tr '\n' ' ')"
[ "$(dst_sql "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '$DB'")" = 0 ] && ok ||
    fail "pt-osc's triggers reached the target"
DDLS1=$(metric ddls_applied)
[ "$((DDLS1 - DDLS0))" = 1 ] && ok || fail "the sink applied $((DDLS1 - DDLS0)) DDL(s) for the migration, want 1 (the ALTER at the cut-over)"
[ "$(status stage)" = Running ] && ok || fail "the task is not Running: $(status '')"

# ---- 2. gh-ost's sequence, with a SIGKILL while the migration is in flight -------------------
Q="\`$DB\`"
# first a migration given up (gh-ost killed, its ghost dropped by hand): nothing reaches g
src_sql "create /* gh-ost */ table $Q.\`_g_gho\` like $Q.\`g\`;
         alter /* gh-ost */ table $Q.\`_g_gho\` add column gone int;
         insert /* gh-ost $Q.\`g\` */ ignore into $Q.\`_g_gho\` (id, v, n) (select id, v, n from $Q.\`g\` where id <= 10);
         drop table $Q.\`_g_gho\`" || fail "the given-up migration could not run"
src_sql "drop /* gh-ost */ table if exists $Q.\`_g_ghc\`;
         drop /* gh-ost */ table if exists $Q.\`_g_gho\`;
         create /* gh-ost */ table $Q.\`_g_ghc\` (
             id bigint unsigned auto_increment,
             last_update timestamp not null DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
             hint varchar(64) charset ascii not null,
             value varchar(4096) charset ascii not null,
             primary key(id),
             unique key hint_uidx(hint)
         ) auto_increment=256 comment='gh-ost changelog';
         insert /* gh-ost */ into $Q.\`_g_ghc\` (id, hint, value) values (NULLIF(2, 0), 'state', 'GhostTableMigrated')
             on duplicate key update last_update=NOW(), value=VALUES(value);
         create /* gh-ost */ table $Q.\`_g_gho\` like $Q.\`g\`;
         SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',ANSI_QUOTES');
         alter /* gh-ost */ table $Q.\`_g_gho\` add column \"w\" int not null default 3, add key v_idx (\"v\");
         alter /* gh-ost */ table $Q.\`_g_gho\` AUTO_INCREMENT=1001" ||
    fail "the ghost table could not be prepared"
# the application writes g, and gh-ost applies each change to the ghost from the binlog
app() {   # app ID: one change of g and gh-ost's copy of it into the ghost
    local i=$1
    src_sql "INSERT INTO $Q.\`g\` (v, n) VALUES ('app $i', $i);
             replace /* gh-ost $Q.\`g\` */ into $Q.\`_g_gho\` (id, v, n) SELECT id, v, n FROM $Q.\`g\` WHERE id = LAST_INSERT_ID();
             UPDATE $Q.\`g\` SET n = n + 5000 WHERE id = $(( (i * 13) % 1000 + 1 ));
             update /* gh-ost $Q.\`g\` */ $Q.\`_g_gho\` SET n = n + 5000 WHERE id = $(( (i * 13) % 1000 + 1 ));
             DELETE FROM $Q.\`g\` WHERE id = $(( (i * 29) % 1000 + 1 ));
             delete /* gh-ost $Q.\`g\` */ from $Q.\`_g_gho\` WHERE id = $(( (i * 29) % 1000 + 1 ));
             insert /* gh-ost */ into $Q.\`_g_ghc\` (id, hint, value) values (NULLIF(1, 0), 'heartbeat', NOW(6))
                 on duplicate key update last_update=NOW(), value=VALUES(value)"
}
copy() {   # copy LO HI: one chunk of gh-ost's row copy
    src_sql "insert /* gh-ost $Q.\`g\` */ ignore into $Q.\`_g_gho\` (\`id\`, \`v\`, \`n\`)
             (select \`id\`, \`v\`, \`n\` from $Q.\`g\` force index (\`PRIMARY\`)
              where ((\`id\` > $1) and (\`id\` <= $2)) lock in share mode)"
}
step=0
for lo in 0 200 400; do
    step=$((step + 1)); app $step
    copy $lo $((lo + 200))
done
# the ghost's ALTERs are behind the checkpoint now: a kill here must not forget them
wait_equal g && ok || fail "g differs before the kill"
kill_server
start_server "$WORK/data"
for lo in 600 800 1000; do
    step=$((step + 1)); app $step
    copy $lo $((lo + 200))
done
[ "$(status stage)" = Running ] || { api POST /tasks/$TASK/start '{}'; expect 200 "start after the kill"; }
for _ in $(seq 1 600); do [ "$(status stage)" = Running ] && break; sleep 0.1; done
# the cut-over as gh-ost's atomic cut-over writes it to the binlog: the sentry, then the swap
src_sql "create /* gh-ost */ table $Q.\`_g_del\` (id int auto_increment primary key) engine=InnoDB comment='ghost-cut-over-sentry';
         drop /* gh-ost */ table if exists $Q.\`_g_del\`;
         rename /* gh-ost */ table $Q.\`g\` to $Q.\`_g_del\`, $Q.\`_g_gho\` to $Q.\`g\`;
         drop /* gh-ost */ table if exists $Q.\`_g_ghc\`;
         drop /* gh-ost */ table if exists $Q.\`_g_del\`;
         INSERT INTO $Q.\`g\` (v, n, w) VALUES ('after cut-over', 1, 9)" ||
    fail "the cut-over could not run"
wait_equal g && ok || fail "g differs after the cut-over: source $(src_sql "SELECT COUNT(*) FROM $Q.\`g\`") rows, target $(dst_sql "SELECT COUNT(*) FROM $Q.\`g\`" 2>&1); $(status error_msg)"
[ "$(columns dst_sql g)" = "$(columns src_sql g)" ] && ok || fail "g's columns: target '$(columns dst_sql g)', source '$(columns src_sql g)'"
[ "$(indexes dst_sql g)" = "$(indexes src_sql g)" ] && ok || fail "g's indexes: target '$(indexes dst_sql g)', source '$(indexes src_sql g)'"
[ "$(tool_tables)" = 0 ] && ok || fail "gh-ost's tables reached the target: $(dst_sql "SHOW TABLES FROM \`$DB\`" | tr '\n' ' ')"
wait_equal t && ok || fail "t differs at the end"
[ "$(status stage)" = Running ] && ok || fail "the task is not Running: $(status '')"

# the schema tracker followed both migrations (the endpoints answer while the task is stopped)
api POST /tasks/$TASK/stop '{}'
expect 200 "stop"
api GET /tasks/$TASK/sources/osc-src/schemas/$DB/g
expect 200 "tracked structure of g" '.schema_create_sql|test("`w` int")' '.schema_create_sql|test("v_idx")'
api GET /tasks/$TASK/sources/osc-src/schemas/$DB
expect 200 "tracked tables" '.|sort==["g","t"]'
# the latest version of each ghost table says "none in flight"
[ "$(dst_sql "SELECT COUNT(*) FROM \`dm_meta\`.\`${TASK}_onlineddl\` o WHERE ddls IS NOT NULL AND NOT EXISTS
              (SELECT 1 FROM \`dm_meta\`.\`${TASK}_onlineddl\` l WHERE l.ghost_table = o.ghost_table AND
               (l.binlog_name, l.binlog_pos) > (o.binlog_name, o.binlog_pos))")" = 0 ] && ok ||
    fail "a migration is still in flight in ${TASK}_onlineddl: $(dst_sql "SELECT * FROM \`dm_meta\`.\`${TASK}_onlineddl\`")"

# ---- 3. the option off: the tools' tables are ordinary tables (DM's behaviour) ----------------
# a schema-level rule selects them: the ghost table, its row copy and the swap are replicated as
# the source ran them, and the target ends equal
OFF=${DB}_off
src_sql "DROP DATABASE IF EXISTS \`$OFF\`; CREATE DATABASE \`$OFF\`;
         CREATE TABLE \`$OFF\`.\`h\` (id INT PRIMARY KEY, v INT); INSERT INTO \`$OFF\`.\`h\` VALUES (1, 1), (2, 2)"
api POST /tasks "{\"task\":{\"name\":\"$TASK-off\",\"task_mode\":\"all\",\"enhance_online_schema_change\":false,\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"osc-src\",\"schema\":\"$OFF\",\"table\":\"\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump-off\"},\"source_conf\":[{\"source_name\":\"osc-src\"}]}}}"
expect 200 "task with enhance_online_schema_change false"
api POST /tasks/$TASK-off/start '{}'
expect 200 "start the task with the option off"
off() { api GET /tasks/$TASK-off/status; printf '%s' "$BODY" | jq -r ".data[0]${1:+.$1}"; }
for _ in $(seq 1 600); do [ "$(off unit)" = Sync ] && break; sleep 0.1; done
src_sql "CREATE TABLE \`$OFF\`.\`_h_new\` LIKE \`$OFF\`.\`h\`; ALTER TABLE \`$OFF\`.\`_h_new\` ADD COLUMN w INT;
         INSERT INTO \`$OFF\`.\`_h_new\` (id, v) SELECT id, v FROM \`$OFF\`.\`h\`;
         RENAME TABLE \`$OFF\`.\`h\` TO \`$OFF\`.\`_h_old\`, \`$OFF\`.\`_h_new\` TO \`$OFF\`.\`h\`;
         DROP TABLE \`$OFF\`.\`_h_old\`; INSERT INTO \`$OFF\`.\`h\` VALUES (3, 3, 3)"
offrows() { "$1" "SELECT * FROM \`$OFF\`.\`h\` ORDER BY id" 2>/dev/null | md5sum; }
for _ in $(seq 1 600); do [ "$(offrows src_sql)" = "$(offrows dst_sql)" ] && break; sleep 0.1; done
[ "$(offrows src_sql)" = "$(offrows dst_sql)" ] && ok || fail "with the option off, h differs: $(off '')"
[ "$(dst_sql "SHOW TABLES FROM \`$OFF\`" | tr '\n' ' ')" = "h " ] && ok ||
    fail "with the option off, the target's tables: $(dst_sql "SHOW TABLES FROM \`$OFF\`" | tr '\n' ' ')"
api DELETE "/tasks/$TASK-off?force=true"
expect 204 "delete the task with the option off"
src_sql "DROP DATABASE IF EXISTS \`$OFF\`"

api DELETE /tasks/$TASK
expect 204 "delete"
[ "$(dst_sql "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'dm_meta' AND TABLE_NAME = '${TASK}_onlineddl'")" = 0 ] &&
    ok || fail "deleting the task left ${TASK}_onlineddl"
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS \`$DB\`"
drop_meta
finish
