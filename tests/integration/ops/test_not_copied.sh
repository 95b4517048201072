#!/usr/bin/env bash
# test_not_copied.sh - a task whose rules select views, triggers, routines, events and a
# system-versioned table is created with a check_result (49121) that names each of them as not
# copied (the server reads the source's information_schema), and only those its rules select.
. "$(dirname "$0")/../api/lib.sh"
src_sql "DROP DATABASE IF EXISTS ops_nc; DROP DATABASE IF EXISTS ops_nc_other;
         CREATE DATABASE ops_nc; CREATE DATABASE ops_nc_other;
         CREATE TABLE ops_nc.t (id INT PRIMARY KEY, v INT);
         CREATE TABLE ops_nc.audit (id INT);
         CREATE VIEW ops_nc.v AS SELECT id FROM ops_nc.t;
         CREATE TRIGGER ops_nc.t_ai AFTER INSERT ON ops_nc.t FOR EACH ROW INSERT INTO ops_nc.audit VALUES (NEW.id);
         CREATE PROCEDURE ops_nc.p() SELECT 1;
         CREATE EVENT ops_nc.e ON SCHEDULE EVERY 1 DAY DISABLE DO SELECT 1;
         CREATE TABLE ops_nc.hist (id INT PRIMARY KEY) WITH SYSTEM VERSIONING;
         CREATE VIEW ops_nc_other.w AS SELECT 1 AS one;" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
start_server "$WORK/data"
api POST /sources "{\"source_name\":\"nc-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
api POST /tasks "{\"task\":{\"name\":\"ops-nc\",\"task_mode\":\"full\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"nc-src\",\"schema\":\"ops_nc\",\"table\":\"*\"}}],\"source_config\":{\"source_conf\":[{\"source_name\":\"nc-src\"}]}}}"
expect 200 "task created with the objects it does not copy" \
    '.check_result|test("5 selected objects are not copied")' \
    '.check_result|test("view ops_nc\\.v")' '.check_result|test("trigger ops_nc\\.t_ai")' \
    '.check_result|test("routine ops_nc\\.p")' '.check_result|test("event ops_nc\\.e")' \
    '.check_result|test("history of versioned table ops_nc\\.hist")' \
    '(.check_result|test("ops_nc_other"))|not'
api GET /tasks/ops-nc
expect 200 "the stored task has no check_result" '.check_result==null'
api DELETE "/tasks/ops-nc?force=true"
expect 204 "delete"
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS ops_nc; DROP DATABASE IF EXISTS ops_nc_other"
finish
