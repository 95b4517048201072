#!/usr/bin/env bash
# test_release.sh - a leader killed in the middle of a transfer (issue 13, binding.h): the
# release request it wrote (ROOT/release/<source>) has nobody left to finish or remove it. Two
# masters (m1 leads), worker w2 running a task_mode all task of the source under a live writer,
# w4 free. w2 is paused (SIGSTOP) so that it acknowledges the request only after m1 is gone:
# the transfer to w4 is asked through m2, m1 is killed with SIGKILL while it waits, w2 runs
# again, stops the source and acknowledges a request that m1 will never complete. m2 takes
# over: it removes the orphaned request, the binding stays w2's at the same epoch, w2 runs the
# source again by itself, and a new transfer through m2 works. Then every row is there once.
NAME=release PREFIX=rel STATUS_VIA=m2
. "$(dirname "$0")/lib.sh"
release() { etcd_get "$ROOT/release/$SRC" value | base64 -d 2>/dev/null; }

src_sql "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`;
         CREATE TABLE \`$DB\`.t (id INT PRIMARY KEY, v INT NOT NULL);
         CREATE TABLE \`$DB\`.k (n INT NOT NULL, note VARCHAR(20));
         INSERT INTO \`$DB\`.k VALUES (-1, 'before')" || { fail "source setup"; exit 1; }
start m1 master
start m2 master
start w2 worker
check "m1 leads" "$(api m2 cluster/masters | jq -r '.data[] | select(.leader) | .name')" m1
check "source created" "$(call m2 POST sources '{"source_name":"'$SRC'","host":"'$SLUICE_SOURCE_HOST'","port":'$SLUICE_SOURCE_PORT',"user":"'$SLUICE_SOURCE_USER'","password":"'$SLUICE_SOURCE_PASSWORD'","enable":true}')" 201
wait_until "the source is bound to w2, the only worker" "bound_to $SRC" w2 30
start w4 worker
check "task created" "$(call m2 POST tasks '{"task":{"name":"'$TASK'","task_mode":"all","target_config":{"host":"'$SLUICE_TARGET_HOST'","port":'$SLUICE_TARGET_PORT',"user":"'$SLUICE_TARGET_USER'","password":"'$SLUICE_TARGET_PASSWORD'"},"table_migrate_rule":[{"source":{"source_name":"'$SRC'","schema":"'$DB'","table":"*"},"target":{"schema":"'$COPY'"}}],"source_config":{"full_migrate_conf":{"data_dir":"'$WORK/dump'","export_threads":1,"import_threads":1},"source_conf":[{"source_name":"'$SRC'"}]}}}')" 200
( i=0; while [ ! -e "$WORK/stop" ]; do
    i=$((i + 1))
    src_sql "INSERT INTO \`$DB\`.k VALUES ($i, 'row $i'); INSERT INTO \`$DB\`.t VALUES ($((i % 89)), $i) ON DUPLICATE KEY UPDATE v = v + $i" || exit 1
    sleep 0.02
  done ) & WRITER=$!
check "task started" "$(call m2 POST "tasks/$TASK/start" '{}')" 200
wait_rows 30
wait_status worker_name w2
epoch=$(etcd_get "$ROOT/bound/$SRC" mod_revision)

# ---- the transfer whose leader dies: w2 paused, so it answers only once m1 is gone ----
kill -STOP "${PIDS[w2]}"
curl -s -m 30 -o /dev/null -X POST -d '{"worker_name":"w4"}' \
    "http://127.0.0.1:${PORTS[m2]}/api/v1/sources/$SRC/transfer" & XFER=$!
wait_until "m1 asked w2 to release the source" "release | jq -r .worker" w2 10
kill -KILL "${PIDS[m1]}"; wait "${PIDS[m1]}" 2>/dev/null; unset "PIDS[m1]"
kill -CONT "${PIDS[w2]}"
wait "$XFER" 2>/dev/null
wait_until "w2 stopped the source for the dead leader's transfer" \
    "grep -c 'worker w2 stops task $TASK source $SRC: the source is being transferred' $WORK/w2.log" 1 10
wait_until "m2 takes over" "api m2 cluster/masters | jq -r '.data[] | select(.leader) | .name'" m2 $((TTL * 4))

# ---- the new leader clears the orphaned request; w2 runs the source again by itself ----
wait_until "the orphaned release request is removed" "release" "" $((TTL * 3))
check "the source stays bound to w2" "$(bound_to "$SRC")" w2
check "at the same epoch (the transfer did not happen)" "$(etcd_get "$ROOT/bound/$SRC" mod_revision)" "$epoch"
wait_until "w2 runs the source again" "grep -c 'worker w2 runs task $TASK source $SRC' $WORK/w2.log" 2 $((TTL * 3))
wait_status worker_name w2
wait_status stage Running
at=$(rows)
wait_rows "$at" 30

# ---- and a transfer through the new leader works ----
at=$(rows)
check "transfer to w4 through m2" "$(call m2 POST "sources/$SRC/transfer" '{"worker_name":"w4"}')" 200
check "the source is bound to w4" "$(bound_to "$SRC")" w4
check "no release request is left" "$(release)" ""
wait_status worker_name w4
wait_rows "$at" 60

check_copy
finish
