#!/usr/bin/env bash
# test_seeds.sh - replays every curl example of the seed documents (shared/seeds, names adjusted
# to the sandbox source) against a real sluice-server, checking status codes and body fields,
# plus at least one error case per endpoint; then restarts the server and finds everything again.
. "$(dirname "$0")/lib.sh"

SQL() { mariadb --no-defaults -h"$SLUICE_SOURCE_HOST" -P"$SLUICE_SOURCE_PORT" -u"$SLUICE_SOURCE_USER" \
        -p"$SLUICE_SOURCE_PASSWORD" -N -e "$1"; }
TSQL() { mariadb --no-defaults -h"$SLUICE_TARGET_HOST" -P"$SLUICE_TARGET_PORT" -u"$SLUICE_TARGET_USER" \
        -p"$SLUICE_TARGET_PASSWORD" -N -e "$1"; }
SQL "CREATE DATABASE IF NOT EXISTS db1; CREATE TABLE IF NOT EXISTS db1.table1 (id INT PRIMARY KEY);
     CREATE TABLE IF NOT EXISTS db1.tb1 (id INT PRIMARY KEY, v VARCHAR(20));
     CREATE OR REPLACE VIEW db1.v1 AS SELECT 1 AS x;" || { echo "FAIL: cannot prepare the source" >&2; exit 1; }

# ---- configuration: a DM-master style file; an unknown key is refused with its line number --------
printf '# sluice\naddr = "127.0.0.1:0"\nopenapi = true\nbogus-key = 1\n' >"$WORK/bad.toml"
if "$SERVER" --config "$WORK/bad.toml" --data-dir "$WORK/cfg" 2>"$WORK/cfg.err"; then
    fail "a config file with an unknown key was accepted"
else
    grep -q "bad.toml:4: unknown key 'bogus-key'" "$WORK/cfg.err" && ok || fail "config error: $(cat "$WORK/cfg.err")"
fi
"$SERVER" --help | grep -q -- "--data-dir" && ok || fail "--help"
printf 'addr = "127.0.0.1:0"\nopenapi = false\nlog-level = "debug"\n' >"$WORK/off.toml"
"$SERVER" --config "$WORK/off.toml" --data-dir "$WORK/off" --plugin-dir "$PLUGINS" >"$WORK/off.log" 2>&1 &
OFFPID=$!
for _ in $(seq 1 100); do grep -q "serving" "$WORK/off.log" && break; sleep 0.1; done
OFFPORT=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/off.log" | head -1)
CODE=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$OFFPORT/api/v1/cluster/masters")
[ "$CODE" = 404 ] && ok || fail "openapi = false still serves the API ($CODE)"
kill -TERM "$OFFPID"; wait "$OFFPID" || fail "server with openapi = false did not stop cleanly"

start_server "$WORK/data"

# ---- cluster -----------------------------------------------------------------------------
api GET /cluster/masters
expect 200 "GET masters" '.total==1' '.data[0].name=="master1"' '.data[0].alive==true' '.data[0].leader==true' '.data[0].addr|length>0'
api DELETE /cluster/masters/master1
expect 409 "DELETE the only master" "$ERRBODY"
api DELETE /cluster/masters/nope
expect 404 "DELETE unknown master" "$ERRBODY" '.error_code==38048'
api GET /cluster/workers
expect 200 "GET workers" '.total==1' '.data[0].name=="worker1"' '.data[0].bound_stage=="free"' '.data[0].bound_source_name==""'
api DELETE /cluster/workers/nope
expect 404 "DELETE unknown worker" '.error_code==46004'

# ---- sources -------------------------------------------------------------------------------
SRC='{ "source_name": "mysql-01", "host": "'$SLUICE_SOURCE_HOST'", "port": '$SLUICE_SOURCE_PORT', "user": "'$SLUICE_SOURCE_USER'", "password": "'$SLUICE_SOURCE_PASSWORD'", "enable": true, "enable_gtid": false, "security": { "ssl_ca_content": "", "ssl_cert_content": "", "ssl_key_content": "", "cert_allowed_cn": [ "string" ] }, "purge": { "interval": 3600, "expires": 0, "remain_space": 15 } }'
api POST /sources "$SRC"
expect 201 "POST source (seed)" '.source_name=="mysql-01"' '.password=="******"' '.flavor=="mariadb"' \
    '.enable==true' '.enable_gtid==false' '.purge.interval==3600' '.purge.remain_space==15' \
    '.security.cert_allowed_cn==["string"]' ".port==$SLUICE_SOURCE_PORT"
api POST /sources "$SRC"
expect 409 "POST source twice" "$ERRBODY" '.error_code==46007'
api POST /sources '{"source_name":"down","host":"127.0.0.1","port":1,"user":"root","password":"x"}'
expect 400 "POST unreachable source" "$ERRBODY" '.error_msg|test("connect")'
api POST /sources '{"source_name":"badpw","host":"'$SLUICE_SOURCE_HOST'","port":'$SLUICE_SOURCE_PORT',"user":"root","password":"wrong"}'
expect 400 "POST source with a wrong password: the server's own message" '.error_msg|test("Access denied")'
api POST /sources '{"source_name":"x","host":"h","port":"3306","user":"u"}'
expect 400 "POST source with a string port" '.error_msg|test("/source/port")'
api POST /sources '{"source_name":"x","port":3306,"user":"u"}'
expect 400 "POST source without host" '.error_msg|test("/source/host")'
api POST /sources '{"source_name": "x",}'
expect 400 "POST source malformed JSON" '.error_msg|test("line 1, column")'
head -c 9000000 /dev/zero | tr '\0' ' ' >"$WORK/big.json"
api POST /sources "@$WORK/big.json"
expect 413 "POST source over the body limit" "$ERRBODY"

api GET "/sources/mysql-01?with_status=true"
expect 200 "GET source (seed)" '.source_name=="mysql-01"' '.password=="******"' '.flavor=="mariadb"' \
    '.task_name_list==[]' '.status_list[0].source_name=="mysql-01"' '.status_list[0].worker_name=="worker1"' \
    '.relay_config|type=="object"' '.purge.expires==0'
api GET /sources/nope
expect 404 "GET unknown source" '.error_code==46008'

PUTSRC='{ "source": { "source_name": "mysql-01", "host": "'$SLUICE_SOURCE_HOST'", "port": '$SLUICE_SOURCE_PORT', "user": "'$SLUICE_SOURCE_USER'", "password": "'$SLUICE_SOURCE_PASSWORD'", "enable_gtid": false, "enable": false, "flavor": "mysql", "task_name_list": [ "task1" ], "security": { "ssl_ca_content": "", "ssl_cert_content": "", "ssl_key_content": "", "cert_allowed_cn": [ "string" ] }, "purge": { "interval": 3600, "expires": 0, "remain_space": 15 }, "relay_config": { "enable_relay": true, "relay_binlog_name": "mysql-bin.000002", "relay_binlog_gtid": "e9a1fc22-ec08-11e9-b2ac-0242ac110003:1-7849", "relay_dir": "./relay_log" } } }'
api PUT /sources/mysql-01 "$PUTSRC"
expect 200 "PUT source (seed)" '.source_name=="mysql-01"' '.enable==false' '.password=="******"' '.flavor=="mariadb"'
api PUT /sources/nope "$PUTSRC"
expect 400 "PUT source whose body names another source" "$ERRBODY"
api PUT /sources/nope '{"source":{"host":"h"}}'
expect 404 "PUT unknown source" '.error_code==46008'

api POST /sources/mysql-01/enable
expect 200 "enable source (seed)"
api GET /sources/mysql-01
expect 200 "enabled" '.enable==true'
api POST /sources/mysql-01/disable
expect 200 "disable source (seed)"
api GET /sources/mysql-01
expect 200 "disabled" '.enable==false'
api POST /sources/nope/enable
expect 404 "enable unknown source" '.error_code==46008'
api POST /sources/nope/disable
expect 404 "disable unknown source" '.error_code==46008'
api GET /sources/mysql-01/enable
expect 405 "GET on enable" "$ERRBODY"
api POST /sources/mysql-01/enable
expect 200 "enable again"

api GET "/sources?with_status=true"
expect 200 "GET source list (seed)" '.total==1' '.data[0].password=="******"' '.data[0].source_name=="mysql-01"' '.data[0].status_list|length==1'
api GET "/sources?with_status=maybe"
expect 400 "GET source list with a bad boolean" "$ERRBODY"

api GET /sources/mysql-01/status
expect 200 "GET source status (seed)" '.total==1' '.data[0].source_name=="mysql-01"' '.data[0].worker_name=="worker1"'
api GET /sources/nope/status
expect 404 "status of unknown source" '.error_code==46008'

api POST /sources/mysql-01/relay/enable '{ "worker_name_list": [ "worker-1" ], "relay_binlog_name": "mysql-bin.000002", "relay_binlog_gtid": "e9a1fc22-ec08-11e9-b2ac-0242ac110003:1-7849", "relay_dir": "./relay_log" }'
expect 400 "relay enable (seed): the seed's worker-1 is not this server's worker" "$ERRBODY" '.error_code==46004' '.error_msg|test("worker-1")'
api POST /sources/mysql-01/relay/disable '{ "worker_name_list": [ "worker-1" ] }'
expect 400 "relay disable (seed): unknown worker" "$ERRBODY" '.error_code==46004'
api POST /sources/mysql-01/relay/purge '{ "relay_binlog_name": "mysql-bin.000002", "relay_dir": "string" }'
# the seed's source enables its relay from mysql-bin.000002: the relay holds that file when the
# sandbox source still has it (nothing before it to purge: 200), and says it does not otherwise
if [ "$CODE" = 200 ]; then ok; else expect 400 "relay purge (seed)" "$ERRBODY" '.error_msg|test("mysql-bin.000002")'; fi
api POST /sources/mysql-01/relay/purge '{ "relay_binlog_name": "mysql-bin.999999" }'
expect 400 "relay purge to a file the relay does not hold" "$ERRBODY" '.error_msg|test("mysql-bin.999999")'
# The seed's source turns its relay on from mysql-bin.000002, which a fresh sandbox source does not
# have yet: a task of it would wait for a relay that cannot start there (relay_api covers tasks
# on a relay). This test's task reads the source: the relay goes off, as an operator would do.
api POST /sources/mysql-01/relay/disable '{ "worker_name_list": [ "worker1" ] }'
expect 200 "relay disable"
api GET /sources/mysql-01
expect 200 "relay off" '.relay_config.enable_relay==false'
api POST /sources/nope/relay/enable '{}'
expect 404 "relay enable of an unknown source" "$ERRBODY" '.error_code==46008'
api POST /sources/mysql-01/relay/enable '{"relay_binlog_nam": "x"}'
expect 400 "relay enable with an unknown field" "$ERRBODY" '.error_msg|test("relay_binlog_nam")'
api POST /sources/mysql-01/relay/purge '{}'
expect 400 "relay purge without a file" "$ERRBODY" '.error_msg|test("relay_binlog_name")'
api POST /sources/mysql-01/transfer '{ "worker_name": "worker-1" }'
expect 501 "transfer (seed)" "$ERRBODY" '.error_msg|test("worker")'
api GET /sources/mysql-01/relay/enable
expect 405 "GET relay enable" "$ERRBODY"

api GET /sources/mysql-01/schemas
expect 200 "source schemas (seed)" 'index("db1")!=null' 'index("mysql")==null'
api GET /sources/nope/schemas
expect 404 "schemas of unknown source" '.error_code==46008'
api GET /sources/mysql-01/schemas/db1
expect 200 "source tables (seed)" 'index("table1")!=null' 'index("v1")==null'
api GET /sources/mysql-01/schemas/no_such_db
expect 404 "tables of unknown schema" "$ERRBODY"

api GET /cluster/workers
expect 200 "worker now bound" '.data[0].bound_stage=="bound"' '.data[0].bound_source_name=="mysql-01"'
api DELETE /cluster/workers/worker1
expect 409 "DELETE a bound worker" '.error_code==46005'

# ---- tasks ---------------------------------------------------------------------------------
# The seed example verbatim, with its trailing comma, then fixed; sources and target adjusted.
cat >"$WORK/task.json" <<JSON
{
  "task": {
    "name": "task-1",
    "task_mode": "all",
    "shard_mode": "pessimistic",
    "meta_schema": "dm-meta",
    "enhance_online_schema_change": true,
    "on_duplicate": "overwrite",
    "target_config": {
      "host": "$SLUICE_TARGET_HOST",
      "port": $SLUICE_TARGET_PORT,
      "user": "$SLUICE_TARGET_USER",
      "password": "$SLUICE_TARGET_PASSWORD",
      "security": {
        "ssl_ca_content": "",
        "ssl_cert_content": "",
        "ssl_key_content": "",
        "cert_allowed_cn": [
          "string"
        ]
      }
    },
    "binlog_filter_rule": {
      "rule-1": {
        "ignore_event": [
          "all dml"
        ],
        "ignore_sql": [
          "^Drop"
        ]
      },
      "rule-2": {
        "ignore_event": [
          "all dml"
        ],
        "ignore_sql": [
          "^Drop"
        ]
      },
      "rule-3": {
        "ignore_event": [
          "all dml"
        ],
        "ignore_sql": [
          "^Drop"
        ]
      }
    },
    "table_migrate_rule": [
      {
        "source": {
          "source_name": "mysql-01",
          "schema": "db*",
          "table": "tb*"
        },
        "target": {
          "schema": "db1",
          "table": "tb1"
        },
        "binlog_filter_rule": [
          "rule-1",
          "rule-2",
          "rule-3",
        ]
      }
    ],
    "source_config": {
      "full_migrate_conf": {
        "export_threads": 4,
        "import_threads": 16,
        "data_dir": "$WORK/exported_data",
        "consistency": "auto"
      },
      "incr_migrate_conf": {
        "repl_threads": 16,
        "repl_batch": 100
      },
      "source_conf": [
        {
          "source_name": "mysql-01",
          "binlog_name": "mysql-bin.000001",
          "binlog_pos": 4
        }
      ]
    }
  }
}
JSON
LINE=$(( $(grep -n '"rule-3",$' "$WORK/task.json" | cut -d: -f1) + 1 ))
api POST /tasks "@$WORK/task.json"
expect 400 "POST task with the seed's trailing comma" ".error_msg|test(\"line $LINE, column\")"
sed 's/"rule-3",$/"rule-3"/' "$WORK/task.json" >"$WORK/task-ok.json"
api POST /tasks "@$WORK/task-ok.json"
expect 200 "POST task (seed)" '.name=="task-1"' '.task_mode=="all"' '.shard_mode=="pessimistic"' \
    '.meta_schema=="dm-meta"' '.target_config.password=="******"' '.table_migrate_rule[0].binlog_filter_rule==["rule-1","rule-2","rule-3"]' \
    '.source_config.source_conf[0].source_name=="mysql-01"' '.source_config.full_migrate_conf.export_threads==4' \
    '.check_result|startswith("task created with 1 warning: /task/target_config/security/cert_allowed_cn: cert_allowed_cn applies to TLS connections")'
api POST /tasks "@$WORK/task-ok.json"
expect 409 "POST task twice" '.error_code==46014'
sed -e 's/"task_mode": "all"/"task_mode": "sometimes"/' -e 's/"export_threads": 4/"export_threads": "four"/' "$WORK/task-ok.json" >"$WORK/task-bad.json"
api POST /tasks "@$WORK/task-bad.json"
expect 400 "POST task with two compile errors" '.error_msg|test("/task/task_mode")' '.error_msg|test("export_threads")' '.errors|length>=2'
sed -e 's/"name": "task-2"/"name": "task-x"/' -e 's/"source_name": "mysql-01"/"source_name": "ghost"/g' -e 's/"task-1"/"task-x"/' "$WORK/task-ok.json" >"$WORK/task-ghost.json"
api POST /tasks "@$WORK/task-ghost.json"
expect 400 "POST task on an unknown source" '.error_msg|test("ghost")'
# A task from the network may only name Lua script files under <data-dir>/lua, never any file
# the server can read.
jq '.task.name = "task-lua" | .task.lua_scripts = [{"tables": [{"source_name": "mysql-01", "schema": "*", "table": "*"}], "file": "/etc/hostname"}]' \
    "$WORK/task-ok.json" >"$WORK/task-lua.json"
api POST /tasks "@$WORK/task-lua.json"
expect 400 "POST task naming a script file outside the script directory" \
    '.error_msg|test("/task/lua_scripts/0/file")' '.error_msg|test("absolute paths are not accepted")'
api POST /tasks '{"task": 5}'
expect 400 "POST task that is not an object" "$ERRBODY"
# The compiler's warnings come back in DM's check_result (the body is still the task).
jq '.task.name = "task-warn" | .task.table_migrate_rule += [{"source": {"source_name": "mysql-02", "schema": "x", "table": "y"}}]' \
    "$WORK/task-ok.json" >"$WORK/task-warn.json"
api POST /tasks "@$WORK/task-warn.json"
expect 200 "POST task with a warning" '.name=="task-warn"' \
    '.check_result|startswith("task created with 2 warnings: ")' \
    '.check_result|contains("/task/table_migrate_rule/1/source/source_name: source mysql-02 is not in source_config.source_conf")' \
    '.check_result|contains("/task/target_config/security/cert_allowed_cn: ")'
api DELETE /tasks/task-warn
expect 204 "DELETE the task with a warning"

api GET "/tasks/task-1?with_status=true"
expect 200 "GET task (seed)" '.name=="task-1"' '.target_config.password=="******"' '.status_list|length==1' \
    '.status_list[0].stage=="Stopped"' '.status_list[0].worker_name=="worker1"'
api GET /tasks/nope
expect 404 "GET unknown task" '.error_code==46018'
# a name that is not UTF-8 once %-decoded: 404 with the error body (it answered 500 "out of memory")
api GET /tasks/%FFx%C3
expect 404 "GET task with a non-UTF-8 name" '.error_code==46018' '.error_msg|test("name \\?x\\? ")'

api GET /tasks
expect 200 "GET task list (seed)" '.total==1' '.data[0].name=="task-1"' '.data[0].target_config.password=="******"'
api GET "/tasks?stage=Stopped&with_status=true"
expect 200 "GET task list by stage" '.total==1' '.data[0].status_list[0].stage=="Stopped"'
api GET "/tasks?stage=Running"
expect 200 "GET task list by another stage" '.total==0'
api GET "/tasks?source_name_list=mysql-01"
expect 200 "GET task list by sources" '.total==1'
api GET "/tasks?source_name_list=other"
expect 200 "GET task list by other sources" '.total==0'
api GET "/tasks?stage=sleeping"
expect 400 "GET task list with a bad stage" "$ERRBODY"

# PUT: allowed while stopped
sed 's/"repl_batch": 100/"repl_batch": 200/' "$WORK/task-ok.json" >"$WORK/task-put.json"
api PUT /tasks/task-1 "@$WORK/task-put.json"
expect 200 "PUT task (seed) while stopped" '.name=="task-1"' '.source_config.incr_migrate_conf.repl_batch==200'
api PUT /tasks/nope "@$WORK/task-put.json"
expect 400 "PUT task with another name in the body" "$ERRBODY"
sed 's/"task-1"/"task-9"/' "$WORK/task-put.json" >"$WORK/task-9.json"
api PUT /tasks/task-9 "@$WORK/task-9.json"
expect 404 "PUT unknown task" '.error_code==46018'

api POST /sources/mysql-01/disable
api POST /tasks/task-1/start
expect 409 "start a task whose source is disabled" '.error_code==38058'
api POST /sources/mysql-01/enable
api POST /tasks/task-1/start
expect 200 "start task (seed)"
api POST /tasks/nope/start
expect 404 "start unknown task" '.error_code==46018'
api POST /tasks/task-1/start '{"start_time": "2021-10-21 00:01:00"}'
expect 400 "start with start_time on a task_mode all task" "$ERRBODY" '.error_msg|test("/start_time: applies to task_mode incremental")'
api POST /tasks/task-1/start '{"start_time": "2021-10-21 00:01:00", "safe_mode_time_duration": "ten"}'
expect 400 "start with a bad safe_mode_time_duration" "$ERRBODY" '.error_msg|test("/safe_mode_time_duration")'
api POST /tasks/task-1/start '{"source_name_list": ["ghost"]}'
expect 400 "start on a source not in the task" "$ERRBODY"

api GET "/tasks/task-1/status"
expect 200 "task status (seed fields)" '.total==1' '.data[0].name=="task-1"' '.data[0].source_name=="mysql-01"' \
    '.data[0].worker_name=="worker1"' '(.data[0].stage|IN("Running","Paused","Finished"))' '(.data[0].unit|IN("Dump","Load","Sync"))' \
    '.data[0]|has("unresolved_ddl_lock_id")' \
    '.data[0].load_status|has("finished_bytes") and has("total_bytes") and has("progress") and has("meta_binlog") and has("meta_binlog_gtid")' \
    '.data[0].sync_status|has("total_events") and has("total_tps") and has("recent_tps") and has("master_binlog") and has("master_binlog_gtid") and has("syncer_binlog") and has("syncer_binlog_gtid") and has("blocking_ddls") and has("unresolved_groups") and has("synced") and has("binlog_type") and has("seconds_behind_master")' \
    '.data[0].stages|length>=3' '.data[0].stages|all(has("id") and has("plugin") and (.metrics|type=="object") and (.status|type=="object"))' \
    '.data[0].stages|map(.plugin)|index("route")!=null'
STAGE=$(printf '%s' "$BODY" | jq -r '.data[0].stage')
api GET "/tasks/task-1/status?stage=running"
expect 200 "task status ?stage=running (seed)" 'all(.data[]; .stage=="Running")'
api GET "/tasks/task-1/status?stage=$STAGE"
expect 200 "task status filtered by its own stage" '.total==1'
api GET /tasks/nope/status
expect 404 "status of unknown task" '.error_code==46018'
api GET "/tasks/task-1/status?stage=bogus"
expect 400 "status with a bad stage" "$ERRBODY"

api PUT /tasks/task-1 "@$WORK/task-put.json"
expect 409 "PUT a running task" '.error_code==46035'
api DELETE /tasks/task-1
expect 409 "DELETE a running task without force" "$ERRBODY"
api DELETE /sources/mysql-01
expect 409 "DELETE a source with tasks" '.error_code==46010'
api PUT /sources/mysql-01 "$PUTSRC"
expect 409 "PUT a source with a running task" "$ERRBODY"

api GET /tasks/task-1/sources/mysql-01/migrate_targets
expect 200 "migrate targets (seed)" '.total>=1' '.data|map(select(.source_schema=="db1" and .source_table=="tb1"))|length==1' \
    '.data|all(.target_schema=="db1" and .target_table=="tb1")' '.data|map(.source_table)|index("table1")==null'
api GET "/tasks/task-1/sources/mysql-01/migrate_targets?table_pattern=zz*"
expect 200 "migrate targets filtered" '.total==0'
api GET /tasks/task-1/sources/ghost/migrate_targets
expect 404 "migrate targets of a source not in the task" "$ERRBODY"
api GET /tasks/task-1/sources/mysql-01/schemas
expect 200 "task source schemas (seed)" '.==["db1"]'
api GET /tasks/nope/sources/mysql-01/schemas
expect 404 "task schemas of unknown task" '.error_code==46018'
api GET /tasks/task-1/sources/mysql-01/schemas/db1
expect 200 "task source tables (seed)" 'index("tb1")!=null' 'index("table1")==null'
api GET /tasks/task-1/sources/ghost/schemas/db1
expect 404 "task tables of unknown source" "$ERRBODY"
api GET /tasks/task-1/sources/mysql-01/schemas/db1/table1
expect 400 "GET table structure of a running subtask (DM: only when not running)" "$ERRBODY" '.error_code==49001' '.error_msg|test("Running but not paused")' 
api PUT /tasks/task-1/sources/mysql-01/schemas/db1/table1 '{ "sql_content": "CREATE TABLE `t1` ( `c1` int(11) DEFAULT NULL, `c2` int(11) DEFAULT NULL, `c3` int(11) DEFAULT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;", "flush": true, "sync": true }'
expect 400 "PUT table structure of a running subtask" "$ERRBODY" '.error_msg|test("Running but not paused")' 
api POST /tasks/task-1/sources/mysql-01/schemas/db1/table1 '{ "sql_content": "CREATE TABLE t1 (c1 int)" }'
expect 400 "POST table structure (seed's documented method) of a running subtask" "$ERRBODY" '.error_msg|test("Running but not paused")' 
api DELETE /tasks/task-1/sources/mysql-01/schemas/db1/table1
expect 400 "DELETE table structure of a running subtask" "$ERRBODY" '.error_msg|test("Running but not paused")' 

api POST /tasks/task-1/stop
expect 200 "stop task (seed)"
api POST /tasks/nope/stop
expect 404 "stop unknown task" '.error_code==46018'
api GET /tasks/task-1/status
expect 200 "stopped" '.data[0].stage=="Stopped"'

# ---- restart: everything comes back ---------------------------------------------------------
api POST /tasks/task-1/start
expect 200 "start again before the restart"
stop_server
check_log
start_server "$WORK/data"
api GET /sources/mysql-01
expect 200 "source after restart" '.source_name=="mysql-01"' '.enable==true' '.password=="******"'
api GET "/tasks/task-1?with_status=true"
expect 200 "task after restart" '.source_config.incr_migrate_conf.repl_batch==200' '(.status_list[0].stage|IN("Running","Paused","Finished"))'
# kill -9 while the task runs: it is Running again after the restart
api POST /tasks/task-1/stop
api POST /tasks/task-1/start
expect 200 "start before kill -9"
api GET /tasks/task-1/status
BEFORE=$(printf '%s' "$BODY" | jq -r '.data[0].stage')
RUNS=$(grep -c "task-1/mysql-01/[a-z]*\] running" "$WORK/server.log")
kill_server
start_server "$WORK/data"
sleep 1
api GET /tasks/task-1/status
AFTER=$(printf '%s' "$BODY" | jq -r '.data[0].stage')
if [ "$BEFORE" = Running ]; then
    [ "$(grep -c "task-1/mysql-01/[a-z]*\] running" "$WORK/server.log")" -gt "$RUNS" ] && ok ||
        fail "the Running task was not started again after kill -9"
    [ "$AFTER" != Stopped ] && ok || fail "stage after kill -9 is $AFTER"
else
    [ "$AFTER" = "$BEFORE" ] && ok || fail "stage $BEFORE before kill -9, $AFTER after"
fi

# the source's password still works after the restart (decrypted from the store)
api GET /sources/mysql-01/schemas
expect 200 "source password decrypted after restart" 'index("db1")!=null'
if grep -q "$SLUICE_SOURCE_PASSWORD\"" "$WORK/data/meta.db" "$WORK/data/meta.db-wal" 2>/dev/null; then
    fail "a password is stored in clear"
else
    ok
fi
[ "$(stat -c %a "$WORK/data/secret.key")" = 600 ] && ok || fail "secret.key is not mode 0600"

# ---- deletes ----------------------------------------------------------------------------------
api DELETE /tasks/nope
expect 404 "DELETE unknown task" '.error_code==46018'
# the task's meta tables in the target (the loader ran) and its dump files: gone with the task
META_TABLES="SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'dm-meta' AND TABLE_NAME IN ('task-1_loader_checkpoint', 'task-1_syncer_checkpoint', 'task-1_loader_tables')"
[ "$(TSQL "$META_TABLES")" = 3 ] && ok || fail "task-1's meta tables before DELETE: $(TSQL "$META_TABLES")"
[ -d "$WORK/exported_data/task-1/mysql-01" ] && ok || fail "no dump directory before DELETE"
api DELETE "/tasks/task-1?force=true"
expect 204 "DELETE task (seed, forced while running)"
[ "$(TSQL "$META_TABLES")" = 0 ] && ok || fail "task-1's meta tables after DELETE: $(TSQL "$META_TABLES")"
[ ! -e "$WORK/exported_data/task-1" ] && ok || fail "the dump directory is still there after DELETE: $(ls -la "$WORK/exported_data")"
[ -z "$(ls -A "$WORK/exported_data")" ] && ok || fail "left in the data_dir: $(ls -A "$WORK/exported_data")"
api GET /tasks/task-1
expect 404 "task gone" '.error_code==46018'
api POST /tasks "@$WORK/task-ok.json"
expect 200 "create it again"
api DELETE "/sources/mysql-01?force=true"
expect 204 "DELETE source (seed, force removes its tasks)"
api GET /tasks
expect 200 "its task went with it" '.total==0'
api DELETE /sources/mysql-01
expect 404 "DELETE unknown source" '.error_code==46008'

# ---- docs and unknown paths -------------------------------------------------------------------
CODE=$(curl -sS -o "$WORK/docs.html" -w '%{http_code}' "$A/docs")
[ "$CODE" = 200 ] && grep -q "/api/v1/tasks/{task-name}/status" "$WORK/docs.html" && ok || fail "GET /docs"
api GET /dm.json
expect 200 "GET dm.json" '.openapi=="3.0.0"' '.paths|has("/api/v1/sources")' '.paths|has("/api/v1/tasks/{task-name}/start")'
api GET /nothing/here
expect 404 "unknown path" "$ERRBODY"
CODE=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")
[ "$CODE" = 404 ] && ok || fail "GET / answered $CODE"
api PATCH /tasks
expect 405 "PATCH /tasks" "$ERRBODY"

stop_server
check_log
finish
