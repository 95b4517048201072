#!/usr/bin/env bash
# test_relay_stale.sh - a relay-enabled source that comes back to a worker that ran its relay
# before, after the source purged the binlog that followed the relay left there: a master and
# two workers, a task_mode all task under a live writer. The source runs on w1 (its relay and the
# task reading it), is transferred to w2, the source rotates its binlog three times and, once the
# task reads the newest file, purges all the files before it, the last one w1's relay holds
# among them; then the source is transferred back to w1. w1's relay sets its old files aside in
# stale/ and starts again at the task's checkpoint file, instead of stopping on errno 1236 for
# good; the task reads it (binlog_type local) and every row is there once.
NAME=relaystale PREFIX=rls
. "$(dirname "$0")/lib.sh"
relay() { api m1 "sources/$SRC/status" | jq -r ".data[0].relay_status.$1" 2>/dev/null; }
ckpt_file() { status sync_status.syncer_binlog | tr -d '(' | cut -d, -f1; }

src_sql "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`;
         CREATE TABLE \`$DB\`.t (id INT PRIMARY KEY, v INT NOT NULL);
         CREATE TABLE \`$DB\`.k (n INT NOT NULL, note VARCHAR(20));
         INSERT INTO \`$DB\`.k VALUES (-1, 'before')" || { fail "source setup"; exit 1; }
start m1 master
start w1 worker
check "relay source created" "$(call m1 POST sources '{"source_name":"'$SRC'","host":"'$SLUICE_SOURCE_HOST'","port":'$SLUICE_SOURCE_PORT',"user":"'$SLUICE_SOURCE_USER'","password":"'$SLUICE_SOURCE_PASSWORD'","enable":true,"relay_config":{"enable_relay":true}}')" 201
wait_until "the source is bound to w1, the only worker" "bound_to $SRC" w1 30
start w2 worker
check "task created" "$(call m1 POST tasks '{"task":{"name":"'$TASK'","task_mode":"all","target_config":{"host":"'$SLUICE_TARGET_HOST'","port":'$SLUICE_TARGET_PORT',"user":"'$SLUICE_TARGET_USER'","password":"'$SLUICE_TARGET_PASSWORD'"},"table_migrate_rule":[{"source":{"source_name":"'$SRC'","schema":"'$DB'","table":"*"},"target":{"schema":"'$COPY'"}}],"source_config":{"full_migrate_conf":{"data_dir":"'$WORK/dump'","export_threads":1,"import_threads":1},"source_conf":[{"source_name":"'$SRC'"}]}}}')" 200
( i=0; while [ ! -e "$WORK/stop" ]; do
    i=$((i + 1))
    src_sql "INSERT INTO \`$DB\`.k VALUES ($i, 'row $i'); INSERT INTO \`$DB\`.t VALUES ($((i % 89)), $i) ON DUPLICATE KEY UPDATE v = v + $i" || exit 1
    sleep 0.02
  done ) & WRITER=$!
check "task started" "$(call m1 POST "tasks/$TASK/start" '{}')" 200
wait_rows 30
wait_status worker_name w1
wait_status sync_status.binlog_type local
R1=$WORK/w1/relay_log/$SRC

# ---- to w2; the source rotates and purges past what w1's relay holds ----
check "transfer to w2" "$(call m1 POST "sources/$SRC/transfer" '{"worker_name":"w2"}')" 200
wait_status worker_name w2
wait_status sync_status.binlog_type local
LAST=$(tail -1 "$R1/relay.index")
for _ in 1 2 3; do src_sql "FLUSH BINARY LOGS"; done
CUR=$(src_sql "SHOW MASTER STATUS" | cut -f1)
wait_until "the task reads the source's newest file" ckpt_file "$CUR" 60
for _ in $(seq 1 100); do
    src_sql "PURGE BINARY LOGS TO '$CUR'" 2>/dev/null
    [ "$(src_sql "SHOW BINARY LOGS" | head -1 | cut -f1)" = "$CUR" ] && break
    sleep 0.1
done
check "the source purged up to its newest file" "$(src_sql "SHOW BINARY LOGS" | head -1 | cut -f1)" "$CUR"
check "w1's relay ends in a file the source purged" "$(src_sql "SHOW BINARY LOGS" | cut -f1 | grep -c "^$LAST\$")" 0

# ---- back to w1: its relay starts again at the task's file, and the task reads it ----
at=$(rows)
check "transfer back to w1" "$(call m1 POST "sources/$SRC/transfer" '{"worker_name":"w1"}')" 200
wait_status worker_name w1
wait_until "w1's relay runs again" "relay stage" Running 30
wait_status sync_status.binlog_type local
wait_rows "$at" 60
check "w1's relay starts again at the task's checkpoint file" "$(head -1 "$R1/relay.index" 2>/dev/null)" "$CUR"
check "w1's old relay files are set aside" "$(ls "$R1/stale/$LAST" "$R1/stale/relay.index" 2>/dev/null | wc -l)" 2
check "w1 says so" "$(grep -c "the source no longer has $LAST.*set aside in $R1/stale, and it starts again at ($CUR, 4)" "$WORK/w1.log")" 1
check "w1's relay has no error" "$(relay error_msg)" null

check_copy
finish
