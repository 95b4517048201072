#!/usr/bin/env bash
# test_detect.sh - which tables are merged, as the shard DDL coordination must see it (found by an
# exploratory session; each case lost rows or hung before):
# A. a wildcard schema routed to one target schema, the table name kept (shop_*.orders -> shop):
#    a TRUNCATE of one shard emptied the merged table; now it pauses, rows intact;
# B. one shard per source, DM's usual layout (src1 b1.orders and src2 b2.orders -> bm.all):
#    each source's own rules show one shard, so an ADD COLUMN ran at once (and the second one
#    failed) and a TRUNCATE emptied the other source's rows; now the lock holds until both;
# C. a shard that keeps the target's name (c.orders -> c.orders beside c.orders_old -> c.orders):
#    its DDL was applied without joining the lock, which then never resolved.
# And a held source's sync_status.synced is false while the lock holds its rows (it said true).
. "$(dirname "$0")/../api/lib.sh"

DBS="sd_a_1 sd_a_2 sd_a sd_b1 sd_b2 sd_bm sd_c"
for db in $DBS; do src_sql "DROP DATABASE IF EXISTS $db"; dst_sql "DROP DATABASE IF EXISTS $db"; done
tbl="(id INT PRIMARY KEY, v VARCHAR(20))"
src_sql "CREATE DATABASE sd_a_1; CREATE DATABASE sd_a_2; CREATE DATABASE sd_b1; CREATE DATABASE sd_b2;
         CREATE DATABASE sd_c;
         CREATE TABLE sd_a_1.orders $tbl; CREATE TABLE sd_a_2.orders $tbl;
         CREATE TABLE sd_b1.orders $tbl; CREATE TABLE sd_b2.orders $tbl;
         CREATE TABLE sd_c.orders $tbl; CREATE TABLE sd_c.orders_old $tbl;
         INSERT INTO sd_a_1.orders VALUES (1,'a'),(2,'b'),(3,'c'); INSERT INTO sd_a_2.orders VALUES (101,'x'),(102,'y');
         INSERT INTO sd_b1.orders VALUES (1,'a'),(2,'b'),(3,'c'); INSERT INTO sd_b2.orders VALUES (101,'x'),(102,'y');
         INSERT INTO sd_c.orders VALUES (1,'a'),(2,'b'); INSERT INTO sd_c.orders_old VALUES (101,'x')" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }

start_server "$WORK/data"
for s in sd-1 sd-2; do
    api POST /sources "{\"source_name\":\"$s\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
    expect 201 "source $s"
done
task() {   # NAME RULES SOURCES
    printf '{"task":{"name":"%s","task_mode":"all","shard_mode":"pessimistic","target_config":{"host":"%s","port":%s,"user":"%s","password":"%s"},"table_migrate_rule":%s,"source_config":{"full_migrate_conf":{"data_dir":"%s"},"source_conf":%s}}}' \
        "$1" "$SLUICE_TARGET_HOST" "$SLUICE_TARGET_PORT" "$SLUICE_TARGET_USER" "$SLUICE_TARGET_PASSWORD" "$2" "$WORK/dump" "$3"
}
until_sql() {   # SQL WANT: wait until the target answers WANT
    local i got
    for i in $(seq 1 300); do
        got=$(dst_sql "$1" 2>/dev/null | tr '\t\n' '  ' | sed 's/ *$//')
        [ "$got" = "$2" ] && { ok; return 0; }
        sleep 0.1
    done
    fail "target: '$1' gave '$got', want '$2'"
}
lock_of() {   # TASK: the lock ids in its status, one line
    api GET "/tasks/$1/status"
    printf '%s' "$BODY" | jq -r '[.data[].unresolved_ddl_lock_id | select(. != "" and . != null)] | join(",")'
}
cols() { dst_sql "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='$1' AND TABLE_NAME='$2'"; }

# ---- A: sd_a_*.orders -> schema sd_a ------------------------------------------------------------
api POST /tasks "$(task sd-a '[{"source":{"source_name":"sd-1","schema":"sd_a_*","table":"orders"},"target":{"schema":"sd_a"}}]' '[{"source_name":"sd-1"}]')"
expect 200 "task A"
api POST /tasks/sd-a/start '{}'
expect 200 "start A"
subtasks_synced sd-a 1
until_sql "SELECT COUNT(*) FROM sd_a.orders" 5
src_sql "TRUNCATE TABLE sd_a_2.orders; INSERT INTO sd_a_1.orders VALUES (4,'d')"
for _ in $(seq 1 300); do api GET /tasks/sd-a/status; [ "$(printf '%s' "$BODY" | jq -r '.data[0].stage')" = Paused ] && break; sleep 0.1; done
expect 200 "A: the TRUNCATE of one shard pauses" '.data[0].stage=="Paused"' '.data[0].error_msg|test("TRUNCATE of one shard")'
[ "$(dst_sql "SELECT COUNT(*) FROM sd_a.orders")" = 5 ] && ok || fail "A: the merged table lost rows: $(dst_sql "SELECT COUNT(*) FROM sd_a.orders") left of 5"
api DELETE "/tasks/sd-a?force=true"
expect 204 "delete A"

# ---- B: sd_b1.orders (sd-1) and sd_b2.orders (sd-2) -> sd_bm.orders_all --------------------------
api POST /tasks "$(task sd-b '[{"source":{"source_name":"sd-1","schema":"sd_b1","table":"orders"},"target":{"schema":"sd_bm","table":"orders_all"}},{"source":{"source_name":"sd-2","schema":"sd_b2","table":"orders"},"target":{"schema":"sd_bm","table":"orders_all"}}]' '[{"source_name":"sd-1"},{"source_name":"sd-2"}]')"
expect 200 "task B"
api POST /tasks/sd-b/start '{}'
expect 200 "start B"
subtasks_synced sd-b 2
until_sql "SELECT COUNT(*) FROM sd_bm.orders_all" 5
src_sql "ALTER TABLE sd_b1.orders ADD COLUMN note INT NULL; INSERT INTO sd_b1.orders VALUES (5,'e',5)"
for _ in $(seq 1 300); do [ -n "$(lock_of sd-b)" ] && break; sleep 0.1; done
[ -n "$(lock_of sd-b)" ] && ok || fail "B: no lock after the first shard's ADD COLUMN: ${BODY:0:600}"
[ "$(cols sd_bm orders_all)" = "id,v" ] && ok || fail "B: the ADD COLUMN ran before the second shard: $(cols sd_bm orders_all)"
# the held source has rows it has not applied: not synced, whatever its sink says
held_synced() { api GET /tasks/sd-b/status; printf '%s' "$BODY" | jq -r '[.data[] | select(.source_name=="sd-1")][0].sync_status.synced'; }
[ "$(held_synced)" = false ] && ok || fail "B: the held source says synced: ${BODY:0:600}"
src_sql "ALTER TABLE sd_b2.orders ADD COLUMN note INT NULL; INSERT INTO sd_b2.orders VALUES (105,'z',105)"
until_sql "SELECT COUNT(*), SUM(note) FROM sd_bm.orders_all" "7 110"
[ "$(cols sd_bm orders_all)" = "id,v,note" ] && ok || fail "B: columns after both shards: $(cols sd_bm orders_all)"
subtasks_synced sd-b 2
for _ in $(seq 1 100); do [ "$(held_synced)" = true ] && break; sleep 0.1; done
[ "$(held_synced)" = true ] && ok || fail "B: not synced after the lock resolved: ${BODY:0:600}"
[ -z "$(lock_of sd-b)" ] && ok || fail "B: the lock is still there: $(lock_of sd-b)"
src_sql "TRUNCATE TABLE sd_b2.orders"
for _ in $(seq 1 300); do api GET /tasks/sd-b/status; [ "$(printf '%s' "$BODY" | jq -r '[.data[] | select(.source_name=="sd-2")][0].stage')" = Paused ] && break; sleep 0.1; done
expect 200 "B: the TRUNCATE of one source's shard pauses it" '[.data[] | select(.source_name=="sd-2")][0].error_msg|test("TRUNCATE of one shard")'
[ "$(dst_sql "SELECT COUNT(*) FROM sd_bm.orders_all")" = 7 ] && ok || fail "B: the merged table lost rows"
api DELETE "/tasks/sd-b?force=true"
expect 204 "delete B"

# ---- C: sd_c.orders -> sd_c.orders (its own name) and sd_c.orders_old -> sd_c.orders -------------
api POST /tasks "$(task sd-c '[{"source":{"source_name":"sd-1","schema":"sd_c","table":"orders"},"target":{"schema":"sd_c","table":"orders"}},{"source":{"source_name":"sd-1","schema":"sd_c","table":"orders_old"},"target":{"schema":"sd_c","table":"orders"}}]' '[{"source_name":"sd-1"}]')"
expect 200 "task C"
api POST /tasks/sd-c/start '{}'
expect 200 "start C"
subtasks_synced sd-c 1
until_sql "SELECT COUNT(*) FROM sd_c.orders" 3
src_sql "ALTER TABLE sd_c.orders_old ADD COLUMN note INT NULL; INSERT INTO sd_c.orders_old VALUES (102,'y',2)"
for _ in $(seq 1 300); do [ -n "$(lock_of sd-c)" ] && break; sleep 0.1; done
[ -n "$(lock_of sd-c)" ] && ok || fail "C: no lock after orders_old's ADD COLUMN"
src_sql "ALTER TABLE sd_c.orders ADD COLUMN note INT NULL; INSERT INTO sd_c.orders VALUES (3,'c',3)"
until_sql "SELECT COUNT(*), SUM(note) FROM sd_c.orders" "5 5"
[ "$(cols sd_c orders)" = "id,v,note" ] && ok || fail "C: columns: $(cols sd_c orders)"
for _ in $(seq 1 100); do [ -z "$(lock_of sd-c)" ] && break; sleep 0.1; done
[ -z "$(lock_of sd-c)" ] && ok || fail "C: the lock did not resolve: $(lock_of sd-c)"
api DELETE "/tasks/sd-c?force=true"
expect 204 "delete C"

stop_server
check_log
for db in $DBS; do src_sql "DROP DATABASE IF EXISTS $db"; dst_sql "DROP DATABASE IF EXISTS $db"; done
finish
