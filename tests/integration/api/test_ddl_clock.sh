#!/usr/bin/env bash
# test_ddl_clock.sh - a DDL whose column DEFAULT reads the clock (NOW(), CURRENT_TIMESTAMP, an
# expression of them) fills the existing rows on the target with the values the source wrote,
# not with the time the sink applied it: the task is stopped while the source runs the ALTERs,
# the source's clock moves at least 2 s past them, and after the start the new columns are
# compared row by row. The checkpoint row written after the DDL has the target's own time.
. "$(dirname "$0")/lib.sh"

src_sql "DROP DATABASE IF EXISTS ddlc; CREATE DATABASE ddlc; CREATE TABLE ddlc.t (id INT PRIMARY KEY, v VARCHAR(16));
         INSERT INTO ddlc.t SELECT seq, CONCAT('row ', seq) FROM ddlc.seq_1_to_20;" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "DROP DATABASE IF EXISTS ddlc; DROP DATABASE IF EXISTS ddlc_meta" ||
    { echo "FAIL: cannot prepare the target" >&2; exit 1; }
start_server "$WORK/data"

status() { api GET "/tasks/ddl-clock/status"; printf '%s' "$BODY" | jq -r ".data[0].$1"; }
wait_sync() {
    for _ in $(seq 1 600); do
        [ "$(status unit)" = Sync ] && [ "$(status stage)" = Running ] && return 0
        sleep 0.1
    done
    fail "the task did not reach Sync: $BODY"
}
# the new columns as both sides show them, in UTC
COLS="SET time_zone = '+00:00'; SELECT id, c_dt, c_ts, c_ex, c_ux, c_d FROM ddlc.t ORDER BY id"

api POST /sources "{\"source_name\":\"clock-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
api POST /tasks "{\"task\":{\"name\":\"ddl-clock\",\"task_mode\":\"all\",\"meta_schema\":\"ddlc_meta\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"clock-src\",\"schema\":\"ddlc\",\"table\":\"*\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump\"},\"source_conf\":[{\"source_name\":\"clock-src\"}]}}}"
expect 200 "task"
api POST /tasks/ddl-clock/start '{"remove_meta":true}'
expect 200 "start"
wait_sync
for _ in $(seq 1 300); do [ "$(dst_sql "SELECT COUNT(*) FROM ddlc.t" 2>/dev/null)" = 20 ] && break; sleep 0.1; done
[ "$(dst_sql "SELECT COUNT(*) FROM ddlc.t")" = 20 ] && ok || fail "the full copy did not arrive"

# ---- the DDLs run on the source while the task is stopped ----
api POST /tasks/ddl-clock/stop '{}'
expect 200 "stop"
for _ in $(seq 1 300); do [ "$(status stage)" = Stopped ] && break; sleep 0.1; done
[ "$(status stage)" = Stopped ] && ok || fail "the task did not stop: $BODY"
src_sql "SET time_zone = '+00:00';
         INSERT INTO ddlc.t VALUES (21, 'before the DDLs');
         ALTER TABLE ddlc.t ADD COLUMN c_dt DATETIME NOT NULL DEFAULT NOW();
         ALTER TABLE ddlc.t ADD COLUMN c_ts TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP;
         ALTER TABLE ddlc.t ADD COLUMN c_ex DATETIME DEFAULT (NOW() + INTERVAL 1 DAY);
         ALTER TABLE ddlc.t ADD COLUMN c_ux BIGINT DEFAULT (UNIX_TIMESTAMP()), ADD COLUMN c_d DATE DEFAULT (CURDATE())" ||
    fail "the DDLs on the source"
ddl_time=$(src_sql "SELECT MAX(c_ux) FROM ddlc.t")
[ -n "$ddl_time" ] && [ "$ddl_time" != NULL ] && ok || fail "no DDL time on the source: '$ddl_time'"
# the source's clock (the one the DDLs read) moves at least 2 s past the last of them
for _ in $(seq 1 100); do
    [ "$(src_sql "SELECT UNIX_TIMESTAMP() >= $ddl_time + 2")" = 1 ] && break
    sleep 0.1
done
[ "$(src_sql "SELECT UNIX_TIMESTAMP() >= $ddl_time + 2")" = 1 ] && ok || fail "the source's clock did not move on"
resumed=$(dst_sql "SELECT UNIX_TIMESTAMP()")

# ---- started again: the target applies the DDLs now, with the source's time ----
api POST /tasks/ddl-clock/start '{}'
expect 200 "start again"
wait_sync
for _ in $(seq 1 300); do
    [ "$(dst_sql "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'ddlc' AND TABLE_NAME = 't' AND COLUMN_NAME = 'c_d'" 2>/dev/null)" = 1 ] &&
        [ "$(status 'sync_status.synced')" = true ] && break
    sleep 0.1
done
[ "$(status 'sync_status.synced')" = true ] && ok || fail "the task did not catch up: $BODY"
src_sql "$COLS" >"$WORK/src.cols" || fail "reading the source's columns"
dst_sql "$COLS" >"$WORK/dst.cols" || fail "reading the target's columns"
[ "$(wc -l <"$WORK/src.cols")" = 21 ] && ok || fail "the source shows $(wc -l <"$WORK/src.cols") rows, want 21"
if diff "$WORK/src.cols" "$WORK/dst.cols" >"$WORK/cols.diff"; then ok; else
    fail "the DDLs' default values differ between the source (<) and the target (>): $(head -6 "$WORK/cols.diff")"
fi
# every column on its own, so a failure says which kind of default went wrong
for c in c_dt c_ts c_ex c_ux c_d; do
    q="SET time_zone = '+00:00'; SELECT GROUP_CONCAT(id, '=', IFNULL($c, 'NULL') ORDER BY id) FROM ddlc.t"
    [ "$(src_sql "$q")" = "$(dst_sql "$q")" ] && ok || fail "column $c differs: source $(src_sql "$q" | cut -c1-80), target $(dst_sql "$q" | cut -c1-80)"
done
# the checkpoint row written after the DDLs has the target's time, not the pinned one
ck=$(dst_sql "SELECT UNIX_TIMESTAMP(updated_at) FROM ddlc_meta.\`ddl-clock_syncer_checkpoint\` WHERE worker = 0")
[ -n "$ck" ] && [ "$ck" -ge "$resumed" ] && ok ||
    fail "the checkpoint's updated_at ($ck) is before the start ($resumed): the DDL's time stayed pinned"
[ "$(status stage)" = Running ] && ok || fail "the task is not Running: $BODY"

api POST /tasks/ddl-clock/stop '{}'
stop_server
check_log
finish
