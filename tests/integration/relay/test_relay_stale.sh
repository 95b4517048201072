#!/usr/bin/env bash
# test_relay_stale.sh - a relay directory that the source's PURGE left behind, in a real
# sluice-server over real HTTP: a relay whose continue point (the last file of relay.index) the
# source no longer has sets its files aside in <dir>/stale and starts again at the oldest file its
# tasks still need that the source has (or the source's oldest), instead of stopping Paused on
# errno 1236 for good.
#   1. relay disabled and enabled again: a task that read the relay went on from the source
#      while the relay was off and was caught up before the source purged everything but its
#      newest file; the relay enabled again runs, starts at that file, and the task started
#      again reads it (binlog_type local) and ends with every row of the source. A second task,
#      stopped while the relay ran, whose checkpoint the source purged, pauses with the source's
#      errno 1236 naming its position - it does not skip to the relay's new start.
#   2. the same with the source keeping two files and the task's checkpoint in the newer: the
#      relay starts again at the task's file, not at the source's oldest, and this set-aside
#      replaces the first one in <dir>/stale.
#   3. the server down while the source writes, rotates and purges: the relay runs again after
#      the restart, at the source's oldest file (the relays start before the tasks are read),
#      and the task whose checkpoint went with the purge pauses with errno 1236 too.
. "$(dirname "$0")/../api/lib.sh"

DB=rl_stale
src_sql "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`;
         CREATE TABLE \`$DB\`.\`t\` (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(40));
         INSERT INTO \`$DB\`.\`t\` (v) SELECT CONCAT('row ', seq) FROM \`$DB\`.seq_1_to_100" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
drop_ckpt() {
    dst_sql "SELECT CONCAT('DROP TABLE \`dm_meta\`.\`', table_name, '\`;') FROM information_schema.TABLES
             WHERE table_schema = 'dm_meta' AND (table_name LIKE 'st-task\\_%' OR table_name LIKE 'st-old\\_%')" |
        dst_sql "$(cat)" 2>/dev/null
    dst_sql "DROP DATABASE IF EXISTS \`$DB\`; DROP DATABASE IF EXISTS \`${DB}2\`"
}
drop_ckpt || { echo "FAIL: cannot prepare the target" >&2; exit 1; }
start_server "$WORK/data"
SRC="\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true"
TGT="\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\""
RD=$WORK/data/relay_log/st-src
relay() { api GET /sources/st-src/status; printf '%s' "$BODY" | jq -r ".data[0].relay_status${1:+.$1}"; }
status() { api GET "/tasks/$1/status"; printf '%s' "$BODY" | jq -r ".data[0]${2:+.$2}"; }
sum() { awk '{print $2}'; }
same() {   # same SCHEMA: the source's table and the target's copy in SCHEMA
    [ "$(src_sql "CHECKSUM TABLE \`$DB\`.\`t\` EXTENDED" | sum)" = \
      "$(dst_sql "CHECKSUM TABLE \`$1\`.\`t\` EXTENDED" 2>/dev/null | sum)" ]
}
ins() { src_sql "INSERT INTO \`$DB\`.\`t\` (v) VALUES ('$1')"; }
relay_settles() {   # wait until the relay is Paused or has caught up with the source
    local i
    for i in $(seq 1 300); do
        [ "$(relay stage)" = Paused ] || [ "$(relay relay_catch_up_master)" = true ] && return 0
        sleep 0.1
    done
}
purge_to_newest() {   # the source keeps its current file only
    local cur
    cur=$(src_sql "SHOW MASTER STATUS" | cut -f1)
    for _ in $(seq 1 100); do
        src_sql "PURGE BINARY LOGS TO '$cur'" 2>/dev/null
        [ "$(src_sql "SHOW BINARY LOGS" | head -1 | cut -f1)" = "$cur" ] && break
        sleep 0.1
    done
    [ "$(src_sql "SHOW BINARY LOGS" | wc -l)" = 1 ] && ok ||
        fail "the source kept more than $cur: $(src_sql "SHOW BINARY LOGS" | cut -f1 | tr '\n' ' ')"
    NEWEST=$cur
}
task() {   # task NAME TARGET_SCHEMA
    api POST /tasks "{\"task\":{\"name\":\"$1\",\"task_mode\":\"all\",\"target_config\":{$TGT},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"st-src\",\"schema\":\"$DB\",\"table\":\"*\"},\"target\":{\"schema\":\"$2\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump-$1\"},\"source_conf\":[{\"source_name\":\"st-src\"}]}}}"
    expect 200 "task $1"
    api POST "/tasks/$1/start" '{}'
    expect 200 "start $1"
    for _ in $(seq 1 600); do [ "$(status "$1" unit)" = Sync ] && break; sleep 0.1; done
}
caught_up() {   # caught_up TASK SCHEMA WANT_BINLOG_TYPE
    for _ in $(seq 1 300); do same "$2" && break; sleep 0.1; done
    same "$2" && ok || fail "task $1 did not catch up: $(status "$1" '')"
    [ "$(status "$1" sync_status.binlog_type)" = "$3" ] && ok ||
        fail "task $1: binlog_type $(status "$1" sync_status.binlog_type), want $3"
}
ckpt_file() { status "$1" sync_status.syncer_binlog | tr -d '(' | cut -d, -f1; }
paused_1236() {   # paused_1236 TASK CHECKPOINT_FILE
    for _ in $(seq 1 300); do [ "$(status "$1" stage)" = Paused ] && break; sleep 0.1; done
    api GET "/tasks/$1/status"
    expect 200 "task $1 whose checkpoint the source purged pauses on the source's errno 1236" \
        '.data[0].stage=="Paused"' '.data[0].error_msg|test("errno 1236")' \
        ".data[0].error_msg|test(\"from \\\\($2, \")" '.data[0].auto_resume.error_class=="fatal"'
}

api POST /sources "{\"source_name\":\"st-src\",$SRC,\"relay_config\":{\"enable_relay\":true,\"relay_dir\":\"./relay_log\"}}"
expect 201 "source with the relay enabled"
for _ in $(seq 1 300); do [ "$(relay relay_catch_up_master)" = true ] && break; sleep 0.1; done
task st-task "$DB"
task st-old "${DB}2"
ins "both tasks"
caught_up st-task "$DB" local
caught_up st-old "${DB}2" local

# st-old stops while the relay runs: its checkpoint stays in a file the source will purge.
api POST /tasks/st-old/stop '{}'
expect 200 "stop st-old"
OLDCK=$(ckpt_file st-old)
[ -n "$OLDCK" ] && ok || fail "no checkpoint file in st-old's status: $(status st-old '')"
for i in 1 2; do src_sql "FLUSH BINARY LOGS"; ins "relayed $i"; done
caught_up st-task "$DB" local

# 1. The relay off; st-task goes on from the source through three rotations, is caught up, and
# the source purges all but its newest file, then writes on while st-task is stopped.
api POST /tasks/st-task/stop '{}'
expect 200 "stop st-task"
api POST /sources/st-src/relay/disable '{}'
expect 200 "relay disabled"
LAST=$(tail -1 "$RD/relay.index")
api POST /tasks/st-task/start '{}'
expect 200 "st-task started from the source"
for i in 1 2 3; do ins "relay off $i"; src_sql "FLUSH BINARY LOGS"; done
ins "relay off, newest file"
caught_up st-task "$DB" remote
api POST /tasks/st-task/stop '{}'
expect 200 "stop st-task again"
purge_to_newest
[ "$(ckpt_file st-task)" = "$NEWEST" ] && ok ||
    fail "st-task's checkpoint is in $(ckpt_file st-task), want the source's only file $NEWEST"
for i in 1 2 3; do ins "after the purge $i"; done

api POST /sources/st-src/relay/enable '{}'
expect 200 "relay enabled again"
relay_settles
api GET /sources/st-src/status
expect 200 "the relay runs again past the purge" '.data[0].relay_status.stage=="Running"' \
    '.data[0].relay_status|has("error_msg")|not'
[ "$(head -1 "$RD/relay.index" 2>/dev/null)" = "$NEWEST" ] && ok ||
    fail "the relay starts again at $(head -1 "$RD/relay.index" 2>/dev/null), want $NEWEST"
[ -f "$RD/stale/$LAST" ] && [ -f "$RD/stale/relay.index" ] && [ ! -e "$RD/$LAST" ] && ok ||
    fail "the old relay files are not set aside in $RD/stale: $(ls "$RD" "$RD/stale" 2>&1 | tr '\n' ' ')"
grep -q "relay: $RD: the source no longer has $LAST.*set aside in $RD/stale.*starts again at ($NEWEST, 4)" \
    "$WORK/server.log" && ok || fail "the server log does not say the relay was set aside and where it restarts"
api POST /tasks/st-task/start '{}'
expect 200 "st-task started on the new relay"
ins "relay back"
caught_up st-task "$DB" local

api POST /tasks/st-old/start '{}'
expect 200 "start st-old"
paused_1236 st-old "$OLDCK"
same "${DB}2" && fail "st-old's target equals the source: it skipped what the source purged" || ok

api DELETE /tasks/st-old
expect 204 "st-old deleted"

# 2. Again, with the source keeping two files, st-task's checkpoint in the newer: the relay
# starts again at st-task's file, not at the source's older one, and the older set-aside relay
# makes way for this one.
api POST /tasks/st-task/stop '{}'
expect 200 "stop st-task"
api POST /sources/st-src/relay/disable '{}'
expect 200 "relay disabled again"
LAST2=$(tail -1 "$RD/relay.index")
api POST /tasks/st-task/start '{}'
expect 200 "st-task started from the source again"
src_sql "FLUSH BINARY LOGS"
KEEP=$(src_sql "SHOW MASTER STATUS" | cut -f1)
ins "relay off again"
src_sql "FLUSH BINARY LOGS"
ins "relay off again, newest file"
caught_up st-task "$DB" remote
api POST /tasks/st-task/stop '{}'
expect 200 "stop st-task"
for _ in $(seq 1 100); do
    src_sql "PURGE BINARY LOGS TO '$KEEP'" 2>/dev/null
    [ "$(src_sql "SHOW BINARY LOGS" | head -1 | cut -f1)" = "$KEEP" ] && break
    sleep 0.1
done
STCK=$(ckpt_file st-task)
[ "$(src_sql "SHOW BINARY LOGS" | cut -f1 | tr '\n' ' ')" = "$KEEP $STCK " ] && ok ||
    fail "the source has $(src_sql "SHOW BINARY LOGS" | cut -f1 | tr '\n' ' '), want $KEEP and st-task's $STCK"
ins "after the second purge"
api POST /sources/st-src/relay/enable '{}'
expect 200 "relay enabled again"
relay_settles
[ "$(relay stage)" = Running ] && ok || fail "the relay does not run: $(relay '')"
[ "$(head -1 "$RD/relay.index" 2>/dev/null)" = "$STCK" ] && ok ||
    fail "the relay starts again at $(head -1 "$RD/relay.index" 2>/dev/null), want st-task's $STCK"
[ -f "$RD/stale/$LAST2" ] && [ ! -e "$RD/stale/$LAST" ] && ok ||
    fail "$RD/stale does not hold the second set-aside alone: $(ls "$RD/stale" | tr '\n' ' ')"
api POST /tasks/st-task/start '{}'
expect 200 "st-task started on the relay"
ins "relay back again"
caught_up st-task "$DB" local

# 3. The server down for a while: the source writes, rotates and purges past everything the
# relay and st-task hold.
STCK=$(ckpt_file st-task)
stop_server
LAST=$(tail -1 "$RD/relay.index")
for i in 1 2 3; do ins "server down $i"; src_sql "FLUSH BINARY LOGS"; done
purge_to_newest
start_server "$WORK/data"
relay_settles
api GET /sources/st-src/status
expect 200 "the relay runs again after the server was down" '.data[0].relay_status.stage=="Running"' \
    '.data[0].relay_status|has("error_msg")|not'
[ "$(head -1 "$RD/relay.index" 2>/dev/null)" = "$NEWEST" ] && ok ||
    fail "after the restart the relay starts at $(head -1 "$RD/relay.index" 2>/dev/null), want $NEWEST"
[ -f "$RD/stale/$LAST" ] && ok || fail "$LAST is not set aside in $RD/stale"
[ "$(status st-task stage)" = Running ] || api POST /tasks/st-task/start '{}'
paused_1236 st-task "$STCK"

api POST /tasks/st-task/stop '{}'
api DELETE /tasks/st-task
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS \`$DB\`"
drop_ckpt
finish
