#!/usr/bin/env bash
# bench/full.sh - full migration benchmark: sluice (mysql-dump -> route -> loader) against Debian's
# mydumper + myloader, mariadb-dump | mariadb, and the floor (SELECT INTO OUTFILE + LOAD DATA
# INFILE per table, in parallel), on sysbench tables in the sandbox (scripts/sandbox). Prints each
# time, each ratio to sluice, sluice's peak RSS, and checks the target's checksums after each run.
#
#   eval "$(scripts/sandbox env)"; bench/full.sh [--tables 8] [--rows 500000] [--threads 4]
#                                               [--chunk-rows 100000] [--no-prepare] [--only sluice]
#
# Until the REST server runs full tasks, sluice is driven by sluice-full-run (the in-process runner
# of tests/integration/full), built here in Release without sanitizers.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TABLES=8 ROWS=500000 THREADS=4 CHUNK=100000 PREPARE=1 ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
    --tables) TABLES=$2; shift 2 ;;
    --rows) ROWS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --chunk-rows) CHUNK=$2; shift 2 ;;
    --no-prepare) PREPARE=0; shift ;;
    --only) ONLY=$2; shift 2 ;;
    *) echo "usage: $0 [--tables N] [--rows N] [--threads N] [--chunk-rows N] [--no-prepare] [--only sluice|mydumper|mariadb-dump|floor]" >&2; exit 2 ;;
    esac
done
: "${SLUICE_SOURCE_HOST:?run eval \"\$(scripts/sandbox env)\" first}" "${SLUICE_TARGET_HOST:?}"
BUILD=${SLUICE_BENCH_BUILD:-$ROOT/build-full/bench-release}
WORK=${SLUICE_BENCH_DIR:-${SLUICE_SANDBOX_DIR:-/tmp}/bench-full}
DB=sbtest

S=(--no-defaults -h"$SLUICE_SOURCE_HOST" -P"$SLUICE_SOURCE_PORT" -u"$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD")
T=(--no-defaults -h"$SLUICE_TARGET_HOST" -P"$SLUICE_TARGET_PORT" -u"$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD")
src() { mariadb "${S[@]}" -N -B "$@"; }
dst() { mariadb "${T[@]}" -N -B "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

echo "== building sluice (Release) in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSLUICE_ASAN=OFF -DSLUICE_TESTS=ON >/dev/null
cmake --build "$BUILD" -j2 --target sluice-full-run sluice-mysql-dump sluice-loader sluice-route >/dev/null
RUNNER="$BUILD/bin/sluice-full-run"

if [ "$PREPARE" = 1 ]; then
    have=$(src -e "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='$DB'" 2>/dev/null || echo 0)
    rows=$(src -e "SELECT IFNULL(MAX(id),0) FROM $DB.sbtest1" 2>/dev/null || echo 0)
    if [ "$have" != "$TABLES" ] || [ "$rows" != "$ROWS" ]; then
        echo "== preparing $TABLES x $ROWS sysbench rows on the source"
        src -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
        sysbench oltp_read_write --db-driver=mysql --mysql-host="$SLUICE_SOURCE_HOST" \
            --mysql-port="$SLUICE_SOURCE_PORT" --mysql-user="$SLUICE_SOURCE_USER" \
            --mysql-password="$SLUICE_SOURCE_PASSWORD" --mysql-db=$DB --tables="$TABLES" \
            --table-size="$ROWS" --threads=2 prepare >/dev/null
    fi
fi
TBL_LIST=$(src -e "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='$DB' ORDER BY 1")
checksums() { # $1 = src|dst
    local t out=""
    for t in $TBL_LIST; do out+="$t=$($1 -e "CHECKSUM TABLE $DB.$t EXTENDED" | awk '{print $2}') "; done
    echo "$out"
}
SRC_SUM=$(checksums src)
BYTES=$(src -e "SELECT SUM(DATA_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA='$DB'")
TOTAL_ROWS=$(src -e "SELECT SUM(TABLE_ROWS) FROM information_schema.TABLES WHERE TABLE_SCHEMA='$DB'")
echo "== data: $(echo "$TBL_LIST" | wc -w) tables, ~$TOTAL_ROWS rows, $((BYTES / 1048576)) MiB InnoDB data; threads $THREADS"

clean_target() {
    dst -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE IF NOT EXISTS dm_meta;
            DROP TABLE IF EXISTS dm_meta.\`bench-full_loader_checkpoint\`, dm_meta.\`bench-full_syncer_checkpoint\`"
    rm -rf "$WORK"
    mkdir -p "$WORK"
}
verify() { # $1 = name
    local got; got=$(checksums dst)
    if [ "$got" = "$SRC_SUM" ]; then echo "   $1: checksums match"; else
        echo "   $1: CHECKSUM MISMATCH"; echo "   source: $SRC_SUM"; echo "   target: $got"; FAILED=1; fi
}
declare -A TIME
FAILED=0
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

if want sluice; then
    echo "== (a) sluice full task (export_threads=$THREADS import_threads=$THREADS chunk_rows=$CHUNK)"
    clean_target
    RULES="[{\"schema\":\"$DB\",\"table\":\"\",\"target_schema\":\"\",\"target_table\":\"\",\"filters\":[]}]"
    t0=$(now)
    /usr/bin/time -f "%M" -o "$WORK/rss" "$RUNNER" --task bench-full --source bench --data-dir "$WORK/sluice" \
        --rules "$RULES" --export-threads "$THREADS" --import-threads "$THREADS" --chunk-rows "$CHUNK" \
        >"$WORK/sluice.status" 2>"$WORK/sluice.log" || { tail -5 "$WORK/sluice.log"; exit 1; }
    t1=$(now)
    TIME[sluice]=$(elapsed "$t0" "$t1")
    RSS_KB=$(cat "$WORK/rss")
    echo "   time ${TIME[sluice]} s, peak RSS $((RSS_KB / 1024)) MiB"
    grep -E "consistency|dump finished|load finished" "$WORK/sluice.log" | sed 's/^/   /'
    verify sluice
fi

if want mydumper; then
    echo "== (b) mydumper + myloader (-t $THREADS -r $CHUNK)"
    clean_target
    t0=$(now)
    mydumper -h "$SLUICE_SOURCE_HOST" -P "$SLUICE_SOURCE_PORT" -u "$SLUICE_SOURCE_USER" -p "$SLUICE_SOURCE_PASSWORD" \
        -B $DB -t "$THREADS" -r "$CHUNK" --trx-consistency-only -o "$WORK/mydumper" 2>"$WORK/mydumper.log"
    t1=$(now)
    myloader -h "$SLUICE_TARGET_HOST" -P "$SLUICE_TARGET_PORT" -u "$SLUICE_TARGET_USER" -p "$SLUICE_TARGET_PASSWORD" \
        -d "$WORK/mydumper" -t "$THREADS" -o 2>"$WORK/myloader.log"
    t2=$(now)
    TIME[mydumper]=$(elapsed "$t0" "$t2")
    echo "   time ${TIME[mydumper]} s (dump $(elapsed "$t0" "$t1") s, load $(elapsed "$t1" "$t2") s)"
    verify mydumper+myloader
fi

if want mariadb-dump; then
    echo "== (c) mariadb-dump --single-transaction | mariadb"
    clean_target
    t0=$(now)
    mariadb-dump "${S[@]}" --single-transaction --databases $DB | mariadb "${T[@]}"
    t1=$(now)
    TIME[mariadb-dump]=$(elapsed "$t0" "$t1")
    echo "   time ${TIME[mariadb-dump]} s"
    verify mariadb-dump
fi

if want floor; then
    echo "== (d) floor: SELECT INTO OUTFILE + LOAD DATA INFILE per table, $THREADS at a time"
    clean_target
    dst -e "CREATE DATABASE $DB"
    for t in $TBL_LIST; do
        src -e "SHOW CREATE TABLE $DB.$t" | cut -f2- | sed 's/\\n/\n/g' | dst $DB
    done
    t0=$(now)
    echo "$TBL_LIST" | xargs -P "$THREADS" -I{} mariadb "${S[@]}" -e \
        "SELECT * INTO OUTFILE '$WORK/{}.txt' CHARACTER SET binary FROM $DB.{}"
    t1=$(now)
    echo "$TBL_LIST" | xargs -P "$THREADS" -I{} mariadb "${T[@]}" -e \
        "SET foreign_key_checks=0; LOAD DATA INFILE '$WORK/{}.txt' INTO TABLE $DB.{} CHARACTER SET binary"
    t2=$(now)
    TIME[floor]=$(elapsed "$t0" "$t2")
    echo "   time ${TIME[floor]} s (outfile $(elapsed "$t0" "$t1") s, load $(elapsed "$t1" "$t2") s)"
    verify floor
fi

echo "== summary (ratio = sluice time / other time; goals: <= 0.8 vs mydumper+myloader, <= 1.5 vs floor)"
for k in sluice mydumper mariadb-dump floor; do
    [ -n "${TIME[$k]:-}" ] || continue
    if [ -n "${TIME[sluice]:-}" ] && [ "$k" != sluice ]; then
        printf "   %-14s %8.2f s   sluice/%s = %s\n" "$k" "${TIME[$k]}" "$k" \
            "$(awk -v a="${TIME[sluice]}" -v b="${TIME[$k]}" 'BEGIN { printf "%.2f", a / b }')"
    else
        printf "   %-14s %8.2f s\n" "$k" "${TIME[$k]}"
    fi
done
[ -n "${RSS_KB:-}" ] && echo "   sluice peak RSS: $((RSS_KB / 1024)) MiB (goal < 200 MiB)"
exit $FAILED
