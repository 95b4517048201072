#!/usr/bin/env bash
# test_full_sink.sh - a custom sink in the full phase (issue 19): a sink whose caps take dump
# chunks (test-chunks-sink) takes the loader's place in task_mode full over REST: it gets every
# chunk of the selected tables (their row counts add up to the source's) and the task finishes
# with nothing loaded into the target. In task_mode all, that sink keeps no checkpoint, so after
# the full phase the subtask pauses saying it cannot start at the snapshot position (never from a
# guess). The shipped jsonl-sink does not take chunks: refused at /task/sink in task_mode full,
# naming the plugin; task_mode dump refuses any sink.
. "$(dirname "$0")/../api/lib.sh"
CUSTOM=${SLUICE_TEST_CUSTOM_DIR:?SLUICE_TEST_CUSTOM_DIR is not set}
mkdir -p "$WORK/plugins"
ln -s "$PLUGINS"/sluice-*.so "$CUSTOM"/sluice-test-chunks-sink.so "$WORK/plugins/"
PLUGINS="$WORK/plugins"

src_sql "DROP DATABASE IF EXISTS fs_s; CREATE DATABASE fs_s;
         CREATE TABLE fs_s.t1 (id INT PRIMARY KEY, v VARCHAR(32));
         CREATE TABLE fs_s.t2 (v INT);
         INSERT INTO fs_s.t1 SELECT seq, CONCAT('v', seq) FROM fs_s.seq_1_to_2500;
         INSERT INTO fs_s.t2 SELECT seq FROM fs_s.seq_1_to_700" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "DROP DATABASE IF EXISTS fs_s" || { echo "FAIL: cannot prepare the target" >&2; exit 1; }
start_server "$WORK/data"
api POST /sources "{\"source_name\":\"fs-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"

# task NAME MODE EXTRA: POST a task of fs_s.* with chunks of 1000 rows in its own data_dir.
task() {
    api POST /tasks "{\"task\":{\"name\":\"$1\",\"task_mode\":\"$2\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"fs-src\",\"schema\":\"fs_s\",\"table\":\"*\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump-$1\"},\"source_conf\":[{\"source_name\":\"fs-src\"}]}$3}}"
}
# wait_stage TASK STAGE: poll the status until the subtask is in STAGE (at most 60 s).
wait_stage() {
    for _ in $(seq 1 600); do
        api GET "/tasks/$1/status"
        [ "$(printf '%s' "$BODY" | jq -r '.data[0].stage')" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

task bad full ",\"sink\":{\"name\":\"jsonl-sink\",\"options\":{\"dir\":\"$WORK/out\"}}"
expect 400 "jsonl-sink refused in task_mode full" "$ERRBODY" \
    '[.errors[] | select(.path=="/task/sink" and (.msg | contains("sink jsonl-sink does not take dump chunks")))] | length == 1'
task bad dump ",\"sink\":{\"name\":\"test-chunks-sink\",\"options\":{\"path\":\"$WORK/x\"}}"
expect 400 "any sink refused in task_mode dump" "$ERRBODY" \
    '[.errors[] | select(.path=="/task/sink" and (.msg | contains("has no sink")))] | length == 1'

task fs-full full ",\"sink\":{\"name\":\"test-chunks-sink\",\"options\":{\"path\":\"$WORK/full.txt\"}}"
expect 200 "task_mode full with a sink that takes chunks"
api POST /tasks/fs-full/start '{}'
expect 200 "start fs-full"
wait_stage fs-full Finished && ok || fail "fs-full did not finish: $BODY"
sum() { awk -F'\t' -v t="$2" '$1=="chunk" && $2==t {n+=$3} END {print n+0}' "$1"; }
[ "$(sum "$WORK/full.txt" fs_s.t1)" = 2500 ] && ok || fail "t1's chunks hold $(sum "$WORK/full.txt" fs_s.t1) rows, want 2500"
[ "$(sum "$WORK/full.txt" fs_s.t2)" = 700 ] && ok || fail "t2's chunks hold $(sum "$WORK/full.txt" fs_s.t2) rows, want 700"
api GET /tasks/fs-full/status
expect 200 "the full pipeline ends with the custom sink, no loader" \
    '[.data[0].stages[].id]==["dump","route","sink"]' \
    '.data[0].stages[] | select(.id=="sink") | .plugin=="test-chunks-sink"'
[ "$(dst_sql "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'fs_s'")" = 0 ] &&
    ok || fail "the loader ran: fs_s exists in the target"

task fs-all all ",\"sink\":{\"name\":\"test-chunks-sink\",\"options\":{\"path\":\"$WORK/all.txt\"}}"
expect 200 "task_mode all with a sink that takes chunks"
api POST /tasks/fs-all/start '{}'
expect 200 "start fs-all"
wait_stage fs-all Paused && ok || fail "fs-all did not pause after its full phase: $BODY"
expect 200 "paused: no snapshot position from the sink" \
    '.data[0].error_msg | contains("stage sink (test-chunks-sink): no checkpoint after the full phase")'
[ "$(sum "$WORK/all.txt" fs_s.t1)" = 2500 ] && ok || fail "fs-all: t1's chunks hold $(sum "$WORK/all.txt" fs_s.t1) rows"
grep -qv '^chunk' "$WORK/all.txt" && fail "fs-all: row changes reached the sink without a start position" || ok

api GET /sources
expect 200 "the server still serves" '.total == 1'
stop_server
check_log
finish
