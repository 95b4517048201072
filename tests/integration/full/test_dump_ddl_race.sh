#!/usr/bin/env bash
# test_dump_ddl_race.sh - a DDL between the dump reading a table's structure and taking its
# snapshot (SLUICE_DUMP_FAILPOINT=before-snapshot:MS holds the dump there) must not load rows of
# one structure into a table of another: the dump fails with a transient error (errno 1412) and
# dumps nothing; run again, the target equals the source, structure and rows.
set -uo pipefail
RUN=${SLUICE_FULL_RUN_BIN:?SLUICE_FULL_RUN_BIN is not set}
for v in SLUICE_SOURCE_HOST SLUICE_SOURCE_PORT SLUICE_SOURCE_USER SLUICE_SOURCE_PASSWORD \
         SLUICE_TARGET_HOST SLUICE_TARGET_PORT SLUICE_TARGET_USER SLUICE_TARGET_PASSWORD; do
    [ -n "${!v:-}" ] || { echo "FAIL: $v is not set (eval \"\$(scripts/sandbox env)\")" >&2; exit 1; }
done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-dump-race.XXXXXX")
DB=drace_db META=drace_meta TASK=drace SRC=dr-src
FAILS=0 CHECKS=0
S=(--no-defaults -h"$SLUICE_SOURCE_HOST" -P"$SLUICE_SOURCE_PORT" -u"$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD" -N -B)
T=(--no-defaults -h"$SLUICE_TARGET_HOST" -P"$SLUICE_TARGET_PORT" -u"$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD" -N -B)
src() { mariadb "${S[@]}" -e "$1"; }
dst() { mariadb "${T[@]}" -e "$1"; }
cleanup() {
    src "DROP DATABASE IF EXISTS \`$DB\`" 2>/dev/null
    dst "DROP DATABASE IF EXISTS \`$DB\`; DROP DATABASE IF EXISTS \`$META\`" 2>/dev/null
    if [ "$FAILS" = 0 ]; then rm -rf "$WORK"; else echo "(kept $WORK)"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
check() { CHECKS=$((CHECKS + 1)); if [ "$2" != "$3" ]; then fail "$1: got '$2', want '$3'"; fi; }
load() {   # one full run (dump + load): its exit code in RC, its output in $WORK/out
    "$RUN" --task "$TASK" --source "$SRC" --data-dir "$WORK/dump" --meta-schema "$META" \
        --import-threads 2 --chunk-rows 2000 \
        --rules '[{"schema":"'$DB'","table":"*","target_schema":"","target_table":"","filters":[]}]' \
        >"$WORK/out" 2>&1
    RC=$?
}
cols() { mariadb "$@" -N -B -e "SELECT GROUP_CONCAT(CONCAT(column_name, ' ', column_type) ORDER BY ordinal_position)
                                 FROM information_schema.columns WHERE table_schema = '$DB' AND table_name = 't'"; }

src "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`;
     CREATE TABLE \`$DB\`.t (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL);
     USE \`$DB\`; INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_10000" || { fail "source setup"; exit 1; }
dst "DROP DATABASE IF EXISTS \`$DB\`; DROP DATABASE IF EXISTS \`$META\`"

# the dump reads t's structure, waits; meanwhile t gains a column (and rows that fill it)
SLUICE_DUMP_FAILPOINT=before-snapshot:3000 load & RUNNER=$!
sleep 1
src "ALTER TABLE \`$DB\`.t ADD COLUMN w INT NOT NULL DEFAULT 7 AFTER id; UPDATE \`$DB\`.t SET w = id % 5" ||
    fail "the DDL on the source"
wait "$RUNNER"; RC=$?
check "the dump that raced a DDL stops (paused)" "$(grep -c '"stage":"Paused"' "$WORK/out")" 1
check "saying why, as a transient error" \
    "$(grep -c 'changed its structure between the dump reading it and taking its snapshot.*errno 1412' "$WORK/out" | sed 's/^[1-9][0-9]*$/yes/')" yes
check "no row reached the target" "$(dst "SELECT COUNT(*) FROM \`$DB\`.t" 2>/dev/null || echo 0)" 0

load
check "run again, the full copy succeeds" "$RC" 0
[ "$RC" = 0 ] || tail -20 "$WORK/out" >&2
check "the target has the source's structure" "$(cols "${T[@]}")" "$(cols "${S[@]}")"
check "and its rows" "$(dst "CHECKSUM TABLE \`$DB\`.t" | cut -f2)" "$(src "CHECKSUM TABLE \`$DB\`.t" | cut -f2)"
echo "$CHECKS checks, $FAILS failures"
[ "$FAILS" = 0 ]
