#!/usr/bin/env bash
# test_names.sh - names become directory names, SQL values and URL segments: a source name
# outside letters, digits, '-', '_' and '.' (at most 64, starting with a letter or digit) is
# answered 400 naming the rule, on create and in a task's source_conf, and nothing is created.
. "$(dirname "$0")/../api/lib.sh"
start_server "$WORK/data"
src() {
    jq -cn --arg n "$1" --arg h "$SLUICE_SOURCE_HOST" --argjson p "$SLUICE_SOURCE_PORT" \
        --arg u "$SLUICE_SOURCE_USER" --arg pw "$SLUICE_SOURCE_PASSWORD" \
        '{source_name:$n, host:$h, port:$p, user:$u, password:$pw, enable:false}'
}
long=$(printf 'a%.0s' $(seq 1 65))
for bad in "with space" 'back`tick' "qu'ote" "sl/ash" "naïve" "-leading" ".hidden" "$long" "a%00b"; do
    api POST /sources "$(src "$bad")"
    expect 400 "source name '$bad'" "$ERRBODY" '.error_msg|test("letters, digits")'
done
api POST /sources "$(src "")"
expect 400 "empty source name" "$ERRBODY" '.error_msg|test("source_name")'
api GET /sources
expect 200 "no source was created" '.total==0'
for good in mysql-01 a db_1.replica Z9 "$(printf 'b%.0s' $(seq 1 64))"; do
    api POST /sources "$(src "$good")"
    expect 201 "source name '$good'"
done
# a task naming an impossible source name: the compiler's rule, at its JSON path
api POST /tasks '{"task":{"name":"t1","task_mode":"full","target_config":{"host":"127.0.0.1","port":3306,"user":"root","password":""},"table_migrate_rule":[{"source":{"source_name":"bad name","schema":"db","table":"*"}}],"source_config":{"source_conf":[{"source_name":"bad name"}]}}}'
expect 400 "source_conf name with a space" "$ERRBODY" '.error_msg|test("source_conf/0/source_name")'
# task names: letters, digits, '-', '_'
api POST /tasks '{"task":{"name":"t.1","task_mode":"full","target_config":{"host":"127.0.0.1","port":3306,"user":"root","password":""},"table_migrate_rule":[{"source":{"source_name":"mysql-01","schema":"db","table":"*"}}],"source_config":{"source_conf":[{"source_name":"mysql-01"}]}}}'
expect 400 "task name with a dot" "$ERRBODY" '.error_msg|test("/task/name")'
stop_server
check_log
finish
