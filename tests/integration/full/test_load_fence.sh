#!/usr/bin/env bash
# test_load_fence.sh - the full phase is fenced like replication (issue 13): a loader run with
# fence_epoch E commits a chunk (its rows and its checkpoint row, one transaction) only while the
# target's dm_meta.sluice_fence row of its source holds E. A cluster worker that lost its source
# (a newer owner raised the row) loads no further chunk:
#   1. a loader whose epoch is below the row's fails at its start and loads nothing;
#   2. a loader whose chunk is under way when the row moves (it waits on a table lock the test
#      holds, the test raises the row, then releases the lock) fails that chunk's commit:
#      nothing of it is in the target, no chunk row is recorded;
#   3. the newer owner then loads every row once.
# Runs sluice-full-run (tests/integration/full/full_run.c) against the sandbox.
set -uo pipefail
RUN=${SLUICE_FULL_RUN_BIN:?SLUICE_FULL_RUN_BIN is not set}
for v in SLUICE_SOURCE_HOST SLUICE_SOURCE_PORT SLUICE_SOURCE_USER SLUICE_SOURCE_PASSWORD \
         SLUICE_TARGET_HOST SLUICE_TARGET_PORT SLUICE_TARGET_USER SLUICE_TARGET_PASSWORD; do
    [ -n "${!v:-}" ] || { echo "FAIL: $v is not set (eval \"\$(scripts/sandbox env)\")" >&2; exit 1; }
done
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-load-fence.XXXXXX")
DB=lfence_db META=lfence_meta TASK=lfence SRC=lf-src
FAILS=0 CHECKS=0 LOCKER=
S=(--no-defaults -h"$SLUICE_SOURCE_HOST" -P"$SLUICE_SOURCE_PORT" -u"$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD" -N -B)
T=(--no-defaults -h"$SLUICE_TARGET_HOST" -P"$SLUICE_TARGET_PORT" -u"$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD" -N -B)
src() { mariadb "${S[@]}" -e "$1"; }
dst() { mariadb "${T[@]}" -e "$1"; }
cleanup() {
    [ -n "$LOCKER" ] && kill "$LOCKER" 2>/dev/null
    if [ "$FAILS" = 0 ]; then rm -rf "$WORK"; else echo "(kept $WORK)"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
check() { CHECKS=$((CHECKS + 1)); if [ "$2" != "$3" ]; then fail "$1: got '$2', want '$3'"; fi; }
load() {   # EPOCH: one full run (dump + load), its exit code in RC and its output in $WORK/out
    "$RUN" --task "$TASK" --source "$SRC" --data-dir "$WORK/dump" --meta-schema "$META" \
        --import-threads 1 --chunk-rows 2000 --fence-epoch "$1" \
        --rules '[{"schema":"'$DB'","table":"*","target_schema":"","target_table":"","filters":[]}]' \
        >"$WORK/out" 2>&1
    RC=$?
    cp "$WORK/out" "$WORK/out.$1"
    return $RC
}
chunks() { dst "SELECT COUNT(*) FROM \`$META\`.\`${TASK}_loader_checkpoint\` WHERE chunk_id <> ''" 2>/dev/null || echo 0; }

src "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`;
     CREATE TABLE \`$DB\`.t (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL);
     USE \`$DB\`; INSERT INTO t SELECT seq, MD5(seq) FROM seq_1_to_20000" || { fail "source setup"; exit 1; }
dst "DROP DATABASE IF EXISTS \`$DB\`; DROP DATABASE IF EXISTS \`$META\`; CREATE DATABASE \`$META\`;
     CREATE TABLE \`$META\`.sluice_fence (source_name VARCHAR(128) NOT NULL PRIMARY KEY,
       epoch BIGINT NOT NULL, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP);
     INSERT INTO \`$META\`.sluice_fence (source_name, epoch) VALUES ('$SRC', 100)" ||
    { fail "target setup"; exit 1; }

# ---- 1. an older owner (epoch 50 < 100) loads nothing ----
load 50
check "an older owner's load fails" "$RC" 2
check "and says it is fenced" "$(grep -c 'fenced: source lf-src belongs to a newer owner' "$WORK/out" | head -1 | sed 's/^[1-9][0-9]*$/yes/')" yes
check "no row of it reached the target" "$(dst "SELECT COUNT(*) FROM \`$DB\`.t" 2>/dev/null || echo 0)" 0
check "no chunk of it is recorded" "$(chunks)" 0
check "the fence is not lowered" "$(dst "SELECT epoch FROM \`$META\`.sluice_fence WHERE source_name = '$SRC'")" 100

# ---- 2. the row moves while a chunk of the owner (epoch 100) is under way ----
dst "CREATE DATABASE \`$DB\`; CREATE TABLE \`$DB\`.t (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL)"
mariadb "${T[@]}" -e "LOCK TABLES \`$DB\`.t WRITE; SELECT SLEEP(600)" >/dev/null 2>&1 & LOCKER=$!
load 100 & RUNNER=$!
waiting=0
for _ in $(seq 1 600); do
    waiting=$(dst "SELECT COUNT(*) FROM information_schema.processlist
                   WHERE state LIKE 'Waiting for %lock%'")
    [ "$waiting" -gt 0 ] && break
    sleep 0.1
done
check "the owner's load waits on the table lock" "$waiting" 1
# a newer owner takes the source: its start raises the row (ckpt.c does the same)
dst "UPDATE \`$META\`.sluice_fence SET epoch = 200 WHERE source_name = '$SRC'"
locker_id=$(dst "SELECT id FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP(600)%'")
dst "KILL CONNECTION $locker_id"
wait "$LOCKER" 2>/dev/null; LOCKER=
wait "$RUNNER"; RC=$?
check "the deposed owner's load fails" "$RC" 2
check "its chunk commit was fenced" "$(grep -c 'fenced: source lf-src belongs to a newer owner.*was not loaded' "$WORK/out" | sed 's/^[1-9][0-9]*$/yes/')" yes
check "no row of the fenced chunk reached the target" "$(dst "SELECT COUNT(*) FROM \`$DB\`.t")" 0
check "no chunk is recorded" "$(chunks)" 0

# ---- 3. the newer owner loads every row once ----
load 200
check "the newer owner's load finishes" "$RC" 0
check "every row" "$(dst "SELECT COUNT(*), SUM(id) FROM \`$DB\`.t")" "$(src "SELECT COUNT(*), SUM(id) FROM \`$DB\`.t")"
check "the same checksum" "$(dst "CHECKSUM TABLE \`$DB\`.t" | cut -f2)" "$(src "CHECKSUM TABLE \`$DB\`.t" | cut -f2)"
check "each chunk recorded once, rows adding up" \
    "$(dst "SELECT SUM(row_count) FROM \`$META\`.\`${TASK}_loader_checkpoint\` WHERE chunk_id <> ''")" 20000

src "DROP DATABASE IF EXISTS \`$DB\`"
dst "DROP DATABASE IF EXISTS \`$DB\`; DROP DATABASE IF EXISTS \`$META\`"
echo "$CHECKS checks, $FAILS failures"
[ "$FAILS" = 0 ]
