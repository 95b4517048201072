#!/usr/bin/env bash
# test_pending_wish.sh - an operator's stop made while no worker runs the source (issue 13,
# ROOT/meta/want): a master m1 and the only worker w2 running a task_mode all task under a live
# writer; w2 is killed with SIGKILL, the task is stopped on the API, w2 comes back and takes its
# source again. It must act on the stop before it starts anything: no pipeline of the task runs
# on w2 and no row reaches the target until the task is started again; then every row once.
NAME=wish PREFIX=wish
. "$(dirname "$0")/lib.sh"

src_sql "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`;
         CREATE TABLE \`$DB\`.t (id INT PRIMARY KEY, v INT NOT NULL);
         CREATE TABLE \`$DB\`.k (n INT NOT NULL, note VARCHAR(20));
         INSERT INTO \`$DB\`.k VALUES (-1, 'before')" || { fail "source setup"; exit 1; }
start m1 master
start w2 worker
check "source created" "$(call m1 POST sources '{"source_name":"'$SRC'","host":"'$SLUICE_SOURCE_HOST'","port":'$SLUICE_SOURCE_PORT',"user":"'$SLUICE_SOURCE_USER'","password":"'$SLUICE_SOURCE_PASSWORD'","enable":true}')" 201
wait_until "the source is bound to w2" "bound_to $SRC" w2 30
check "task created" "$(call m1 POST tasks '{"task":{"name":"'$TASK'","task_mode":"all","target_config":{"host":"'$SLUICE_TARGET_HOST'","port":'$SLUICE_TARGET_PORT',"user":"'$SLUICE_TARGET_USER'","password":"'$SLUICE_TARGET_PASSWORD'"},"table_migrate_rule":[{"source":{"source_name":"'$SRC'","schema":"'$DB'","table":"*"},"target":{"schema":"'$COPY'"}}],"source_config":{"full_migrate_conf":{"data_dir":"'$WORK/dump'","export_threads":1,"import_threads":1},"source_conf":[{"source_name":"'$SRC'"}]}}}')" 200
( i=0; while [ ! -e "$WORK/stop" ]; do
    i=$((i + 1))
    src_sql "INSERT INTO \`$DB\`.k VALUES ($i, 'row $i'); INSERT INTO \`$DB\`.t VALUES ($((i % 89)), $i) ON DUPLICATE KEY UPDATE v = v + $i" || exit 1
    sleep 0.02
  done ) & WRITER=$!
check "task started" "$(call m1 POST "tasks/$TASK/start" '{}')" 200
wait_rows 30
wait_status worker_name w2
epoch=$(etcd_get "$ROOT/bound/$SRC" mod_revision)

# ---- the stop while no worker runs the source ----
kill -KILL "${PIDS[w2]}"; wait "${PIDS[w2]}" 2>/dev/null; unset "PIDS[w2]"
check "task stopped while its worker is dead" "$(call m1 POST "tasks/$TASK/stop" '{}')" 200
# w2 comes back once its old lease is gone (its name is refused until then)
wait_until "w2's old lease is gone" "api m1 cluster/workers | jq -r '.data[] | select(.name == \"w2\") | .bound_stage'" offline $((TTL * 4))
at=$(rows)
mv "$WORK/w2.log" "$WORK/w2-first.log"
start w2 worker
wait_until "w2 acts on the stop" "grep -c 'task $TASK source $SRC: the operator asks it stopped' $WORK/w2.log" 1 10
check "the source is w2's again, at the same epoch" "$(bound_to "$SRC")/$(etcd_get "$ROOT/bound/$SRC" mod_revision)" "w2/$epoch"
wait_status stage Stopped
sleep 2
check "no pipeline of the stopped task ran on w2" \
    "$(grep -c "\[$TASK/$SRC/[a-z]*\] running" "$WORK/w2.log")" 0
check "no row reached the target" "$(rows)" "$at"

# ---- a start resumes it; every row once ----
check "task started again" "$(call m1 POST "tasks/$TASK/start" '{}')" 200
wait_status stage Running
wait_rows "$at" 60

check_copy
finish
