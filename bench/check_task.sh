#!/bin/sh
# check_task.sh [RULES] - generate a task with RULES (default 1000) table_migrate_rules spread
# over 4 sources (with filters, wildcards and regexes) and time `sluice check-task` on it.
# Goal: under 100 ms for 1,000 rules. Prints the best of 5 runs. Not part of the test run.
# Environment: SLUICE (the binary, default <repo>/build/bin/sluice), SLUICE_PLUGIN_DIR.
set -eu
rules=${1:-1000}
root=$(cd "$(dirname "$0")/.." && pwd)
sluice=${SLUICE:-$root/build/bin/sluice}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 - "$rules" > "$tmp/task.json" <<'PY'
import json, sys
n = int(sys.argv[1])
sources = ["mysql-%02d" % i for i in range(4)]
filters = {
    "no-dml": {"ignore_event": ["all dml"], "ignore_sql": []},
    "no-drop": {"ignore_event": ["drop table", "truncate table", "drop database"],
                "ignore_sql": ["^\\s*DROP\\s", "ALTER\\s+TABLE\\s+\\S+\\s+DROP\\s+COLUMN"]},
    "no-opt": {"ignore_sql": ["^OPTIMIZE", "^ANALYZE"]},
}
rules = []
for i in range(n):
    src = sources[i % len(sources)]
    kind = i % 4
    if kind == 0:
        s = {"source_name": src, "schema": "app_%d" % i, "table": "orders_*"}
        t = {"schema": "app", "table": "orders_%d" % i}
    elif kind == 1:
        s = {"source_name": src, "schema": "crm_%d" % i, "table": "~^(customer|contact)_[0-9]+$"}
        t = {"schema": "crm_all_%d" % i}
    elif kind == 2:
        s = {"source_name": src, "schema": "log_%d" % i, "table": ""}
        t = {"schema": "logs_%d" % i}
    else:
        s = {"source_name": src, "schema": "db_%d" % i, "table": "t_[0-9]?"}
        t = {}
    r = {"source": s, "binlog_filter_rule": [["no-dml", "no-drop", "no-opt"][i % 3]]}
    if t:
        r["target"] = t
    rules.append(r)
task = {
    "name": "bench", "task_mode": "all", "shard_mode": "pessimistic",
    "target_config": {"host": "127.0.0.1", "port": 4000, "user": "root", "password": "x"},
    "binlog_filter_rule": filters, "table_migrate_rule": rules,
    "source_config": {"source_conf": [{"source_name": s, "binlog_name": "mysql-bin.000001",
                                       "binlog_pos": 4} for s in sources]},
}
json.dump(task, sys.stdout, indent=2)
PY

"$sluice" check-task "$tmp/task.json" > /dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
best=""
for i in 1 2 3 4 5; do
    start=$(date +%s%N)
    "$sluice" check-task "$tmp/task.json" > /dev/null 2>&1
    end=$(date +%s%N)
    ms=$(( (end - start) / 1000000 ))
    if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; fi
done
echo "check-task, $rules rules ($(wc -c < "$tmp/task.json") bytes): best of 5 = ${best} ms (goal < 100 ms)"
