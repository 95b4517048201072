#!/usr/bin/env bash
# bench/verify.sh - verification speed: `sluice verify` (chunks checksummed on the source and on
# the target, only checksums cross the network) beside Percona's pt-table-checksum (Debian's
# percona-toolkit; chunks checksummed on the source with the result written to percona.checksums,
# replicas not checked since the sandbox target is no replica: --recursion-method=none), on the
# same sysbench tables. Prints rows/s of each, their ratio and the load average before and after
# (the machine may be shared: read the ratio with it).
#
#   eval "$(scripts/sandbox env)"; bench/verify.sh [--tables 8] [--rows 500000] [--threads 2]
#       [--chunk-rows 10000] [--no-prepare]
#
# Preparing copies the source's sbtest to the target with mariadb-dump | mariadb (sysbench
# generates random rows, so both servers must hold one copy). sluice verify must then report 0
# differing rows, which the script checks.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TABLES=8 ROWS=500000 THREADS=2 CHUNK=10000 PREPARE=1
while [ $# -gt 0 ]; do
    case "$1" in
    --tables) TABLES=$2; shift 2 ;;
    --rows) ROWS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --chunk-rows) CHUNK=$2; shift 2 ;;
    --no-prepare) PREPARE=0; shift ;;
    *) echo "usage: $0 [--tables N] [--rows N] [--threads N] [--chunk-rows N] [--no-prepare]" >&2; exit 2 ;;
    esac
done
: "${SLUICE_SOURCE_HOST:?run eval \"\$(scripts/sandbox env)\" first}" "${SLUICE_TARGET_HOST:?}"
command -v pt-table-checksum >/dev/null || { echo "pt-table-checksum missing: apt-get install percona-toolkit" >&2; exit 2; }
BUILD=${SLUICE_BENCH_BUILD:-$ROOT/build-bench-verify}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-bench-verify.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
S=(--no-defaults -h"$SLUICE_SOURCE_HOST" -P"$SLUICE_SOURCE_PORT" -u"$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD")
T=(--no-defaults -h"$SLUICE_TARGET_HOST" -P"$SLUICE_TARGET_PORT" -u"$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD")
now() { date +%s.%N; }

echo "== building sluice (Release) in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSLUICE_ASAN=OFF >/dev/null
cmake --build "$BUILD" -j2 --target sluice sluice-mysql-dump sluice-route sluice-loader sluice-binlog-reader \
    sluice-event-filter sluice-mysql-sink sluice-lua-hook >/dev/null

if [ "$PREPARE" = 1 ]; then
    echo "== preparing $TABLES x $ROWS sysbench rows on the source, copying them to the target"
    mariadb "${S[@]}" -e 'DROP DATABASE IF EXISTS `sbtest`; CREATE DATABASE `sbtest`'
    sysbench oltp_read_only --db-driver=mysql --mysql-host="$SLUICE_SOURCE_HOST" --mysql-port="$SLUICE_SOURCE_PORT" \
        --mysql-user="$SLUICE_SOURCE_USER" --mysql-password="$SLUICE_SOURCE_PASSWORD" --mysql-db=sbtest \
        --tables="$TABLES" --table-size="$ROWS" --threads=2 prepare >/dev/null
    mariadb "${T[@]}" -e 'DROP DATABASE IF EXISTS `sbtest`'
    mariadb-dump "${S[@]}" --databases sbtest --single-transaction | mariadb "${T[@]}"
fi

cat > "$WORK/task.json" <<JSON
{"name": "bench-verify", "task_mode": "full",
 "target_config": {"host": "$SLUICE_TARGET_HOST", "port": $SLUICE_TARGET_PORT,
                   "user": "$SLUICE_TARGET_USER", "password": "$SLUICE_TARGET_PASSWORD"},
 "table_migrate_rule": [{"source": {"source_name": "src", "schema": "sbtest", "table": "sbtest*"}}],
 "source_config": {"source_conf": [{"source_name": "src"}]}}
JSON
cat > "$WORK/sources.json" <<JSON
{"source_name": "src", "host": "$SLUICE_SOURCE_HOST", "port": $SLUICE_SOURCE_PORT,
 "user": "$SLUICE_SOURCE_USER", "password": "$SLUICE_SOURCE_PASSWORD"}
JSON
TOTAL=$((TABLES * ROWS))
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

t0=$(now)
SLUICE_PLUGIN_DIR="$BUILD/lib/sluice/plugins" "$BUILD/bin/sluice" verify "$WORK/task.json" \
    --sources "$WORK/sources.json" --threads "$THREADS" --chunk-rows "$CHUNK" > "$WORK/sluice.out"
t1=$(now)
tail -1 "$WORK/sluice.out"
grep -q ' 0 missing, 0 extra, 0 different$' "$WORK/sluice.out" || { echo "sluice verify found differences" >&2; exit 1; }

mariadb "${S[@]}" -e 'DROP DATABASE IF EXISTS `percona`'
t2=$(now)
pt-table-checksum "h=$SLUICE_SOURCE_HOST,P=$SLUICE_SOURCE_PORT,u=$SLUICE_SOURCE_USER,p=$SLUICE_SOURCE_PASSWORD" \
    --databases sbtest --recursion-method=none --no-check-binlog-format --no-check-replication-filters \
    --replicate percona.checksums > "$WORK/pt.out" 2>&1 || true   # exit status is a bit mask of findings
t3=$(now)
tail -n "$((TABLES + 1))" "$WORK/pt.out"
mariadb "${S[@]}" -e 'DROP DATABASE IF EXISTS `percona`'

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v n="$TOTAL" -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v th="$THREADS" 'BEGIN {
    s = b - a; p = d - c;
    printf "sluice verify (source and target, %d threads): %.2f s, %.0f rows/s\n", th, s, n / s;
    printf "pt-table-checksum (source only):              %.2f s, %.0f rows/s\n", p, n / p;
    printf "ratio sluice/pt-table-checksum (rows/s):      %.2f\n", (n / s) / (n / p) }'
