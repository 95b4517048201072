#!/usr/bin/env bash
# test_custom_errors.sh - every bad input of issue 19 against a real server with the installed
# plugins (the passthrough example and jsonl-sink): a task naming an unknown plugin, a plugin of
# the wrong kind at its place, two sinks, options its table refuses, a sink outside an
# incremental task are each refused at their JSON path; a sink that fails in start, and one whose
# checkpoint is damaged, leave the subtask Paused with the plugin's message while the server
# keeps serving. (A transform failing in process: test_custom_stages.sh.)
. "$(dirname "$0")/../api/lib.sh"
CUSTOM=${SLUICE_TEST_CUSTOM_DIR:?SLUICE_TEST_CUSTOM_DIR is not set}
mkdir -p "$WORK/plugins"
ln -s "$PLUGINS"/sluice-*.so "$CUSTOM"/sluice-passthrough.so "$WORK/plugins/"
PLUGINS="$WORK/plugins"

src_sql "DROP DATABASE IF EXISTS ce_s; CREATE DATABASE ce_s; CREATE TABLE ce_s.t (id INT PRIMARY KEY, v INT)" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
read -r bfile bpos _ < <(src_sql "SHOW MASTER STATUS")
start_server "$WORK/data"
api POST /sources "{\"source_name\":\"ce-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"

# task NAME MODE EXTRA: POST /tasks with EXTRA (",\"plugins\":..." / ",\"sink\":...") added.
task() {
    api POST /tasks "{\"task\":{\"name\":\"$1\",\"task_mode\":\"$2\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"ce-src\",\"schema\":\"ce_s\",\"table\":\"*\"}}],\"source_config\":{\"source_conf\":[{\"source_name\":\"ce-src\",\"binlog_name\":\"$bfile\",\"binlog_pos\":$bpos}]}$3}}"
}
# refused PATH TEXT MODE EXTRA: the task is refused with 400 and an error at PATH containing TEXT.
refused() {
    local path=$1 text=$2
    task bad "$3" "$4"
    expect 400 "$path: $text" "$ERRBODY" \
        "[.errors[] | select(.path==\"$path\" and (.msg | contains(\"$text\")))] | length == 1"
}
refused /task/plugins/0/name "plugin nope not found in $PLUGINS" incremental \
    ',"plugins":[{"name":"nope","at":"after-route"}]'
refused /task/sink/name "plugin nope not found in $PLUGINS" incremental ',"sink":{"name":"nope"}'
refused /task/plugins/0/name "a task has one sink" incremental \
    ',"plugins":[{"name":"jsonl-sink","at":"before-sink","options":{"dir":"/tmp/x"}}],"sink":{"name":"jsonl-sink","options":{"dir":"/tmp/y"}}'
refused /task/sink "" incremental \
    ',"sink":[{"name":"jsonl-sink","options":{"dir":"/tmp/x"}},{"name":"jsonl-sink","options":{"dir":"/tmp/y"}}]'
refused /task/sink/name "plugin passthrough is a transform" incremental ',"sink":{"name":"passthrough"}'
refused /task/sink/options/sync_byts 'did you mean \"sync_bytes\"' incremental ',"sink":{"name":"jsonl-sink","options":{"dir":"/tmp/x","sync_byts":10}}'
refused /task/sink/options "dir" incremental ',"sink":{"name":"jsonl-sink"}'
refused /task/sink/options/max_file_bytes "max_file_bytes" incremental \
    ',"sink":{"name":"jsonl-sink","options":{"dir":"/tmp/x","max_file_bytes":10}}'
refused /task/sink "incremental" all ',"sink":{"name":"jsonl-sink","options":{"dir":"/tmp/x"}}'
api GET /tasks
expect 200 "no refused task was stored" '[.data[] | select(.name=="bad")] | length == 0'

# A sink that fails in start: its directory cannot be made (a file is in the way).
: >"$WORK/not-a-dir"
task ce-start incremental ",\"sink\":{\"name\":\"jsonl-sink\",\"options\":{\"dir\":\"$WORK/not-a-dir/out\"}}"
expect 200 "task with a sink that cannot start"
api POST /tasks/ce-start/start '{}'
expect 400 "start refused with the plugin's message" \
    '.error_msg | contains("stage sink (jsonl-sink): jsonl-sink: cannot create")'
api GET /tasks/ce-start/status
expect 200 "Paused with the plugin's message" '.data[0].stage=="Paused"' \
    '.data[0].error_msg | contains("jsonl-sink: cannot create")'

# A transform that fails when its instance is made: the passthrough's pattern does not compile.
task ce-xform incremental ',"plugins":[{"name":"passthrough","at":"after-route","options":{"tables":"~("}}]'
expect 200 "task with a transform whose pattern is bad"
api POST /tasks/ce-xform/start '{}'
expect 400 "start refused with the transform's message" '.error_msg | contains("passthrough: option tables")'
api GET /tasks/ce-xform/status
expect 200 "Paused with the transform's message" '.data[0].stage=="Paused"' \
    '.data[0].error_msg | contains("passthrough: option tables")'

# A sink whose checkpoint is damaged: the runtime asks it where to resume (ctl checkpoint), it
# cannot tell, and the subtask pauses rather than start from a guess.
task ce-ckpt incremental ",\"sink\":{\"name\":\"jsonl-sink\",\"options\":{\"dir\":\"$WORK/out\"}}"
expect 200 "task with the jsonl-sink"
api POST /tasks/ce-ckpt/start '{}'
expect 200 "start"
src_sql "INSERT INTO ce_s.t VALUES (1, 1), (2, 2)" || fail "insert"
for _ in $(seq 1 300); do
    [ "$(jq -r '.binlog_name // empty' "$WORK/out/ce-ckpt.ce-src.checkpoint" 2>/dev/null)" != "" ] && break
    sleep 0.1
done
[ "$(cat "$WORK"/out/ce-ckpt.ce-src.*.jsonl | wc -l)" = 2 ] && ok || fail "the sink did not write 2 lines"
api POST /tasks/ce-ckpt/stop '{}'
expect 200 "stop"
echo '{"file_no": "one"}' >"$WORK/out/ce-ckpt.ce-src.checkpoint"
api POST /tasks/ce-ckpt/start '{}'
expect 400 "start refused: the checkpoint is damaged" '.error_msg | contains("is not one (file_no, offset)")'
api GET /tasks/ce-ckpt/status
expect 200 "Paused with the sink's message" '.data[0].stage=="Paused"' \
    '.data[0].error_msg | contains("ce-ckpt.ce-src.checkpoint")'

# The server keeps serving.
api GET /sources
expect 200 "the server still serves" '.total == 1'
stop_server
check_log
finish
