#!/usr/bin/env bash
# test_verify.sh - `sluice verify` against the sandbox servers: tables with composite and string
# keys, NULLs and a spread of types, plus two source tables shard-merged into one target table,
# are copied to the target; rows are then deleted, inserted and corrupted on the target on
# purpose. verify must report exactly those rows (kind and key) and nothing else, exit 1, write
# repair SQL that, applied, makes a second run report nothing (exit 0). A table a filter rule
# touches is excluded with its reason.
set -uo pipefail
CLI=${SLUICE_CLI_BIN:?SLUICE_CLI_BIN is not set}
for v in SLUICE_SOURCE_HOST SLUICE_SOURCE_PORT SLUICE_SOURCE_USER SLUICE_SOURCE_PASSWORD \
         SLUICE_TARGET_HOST SLUICE_TARGET_PORT SLUICE_TARGET_USER SLUICE_TARGET_PASSWORD; do
    [ -n "${!v:-}" ] || { echo "FAIL: $v is not set (run: eval \"\$(scripts/sandbox env)\")" >&2; exit 1; }
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-verify-test.XXXXXX")
FAILS=0 CHECKS=0
trap '[ "$FAILS" = 0 ] && rm -rf "$WORK" || echo "(kept $WORK)"' EXIT
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { CHECKS=$((CHECKS + 1)); }
src() { mariadb -h"$SLUICE_SOURCE_HOST" -P"$SLUICE_SOURCE_PORT" -u"$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD" -N -B "$@"; }
tgt() { mariadb -h"$SLUICE_TARGET_HOST" -P"$SLUICE_TARGET_PORT" -u"$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD" -N -B "$@"; }

for db in vfy_a vfy_f vfy_m; do
    src -e "DROP DATABASE IF EXISTS \`$db\`"
    tgt -e "DROP DATABASE IF EXISTS \`$db\`"
done
tgt -e "DROP DATABASE IF EXISTS \`vfy_merged\`"
src <<'SQL'
CREATE DATABASE `vfy_a`;
CREATE TABLE `vfy_a`.`comp` (
  `region` VARCHAR(16) NOT NULL, `id` INT NOT NULL, `note` TEXT NULL, `price` DECIMAL(12,3),
  `at` DATETIME(6), `ts` TIMESTAMP(3) NULL, `ratio` DOUBLE, `blob` VARBINARY(32), `flag` BIT(5),
  `e` ENUM('x','y','z'), `j` JSON, `u` BIGINT UNSIGNED, PRIMARY KEY (`region`, `id`));
CREATE TABLE `vfy_a`.`strk` (`k` VARCHAR(40) NOT NULL PRIMARY KEY, `v` VARCHAR(100) NULL, `n` INT NULL);
CREATE DATABASE `vfy_m`;
CREATE TABLE `vfy_m`.`shard_1` (`id` INT NOT NULL PRIMARY KEY, `name` VARCHAR(20) NULL);
CREATE TABLE `vfy_m`.`shard_2` (`id` INT NOT NULL PRIMARY KEY, `name` VARCHAR(20) NULL);
CREATE DATABASE `vfy_f`;
CREATE TABLE `vfy_f`.`filtered` (`id` INT PRIMARY KEY);
INSERT INTO `vfy_f`.`filtered` VALUES (1);
SQL
# 1200 composite-key rows (several chunks of 100), every 7th with NULLs in every nullable column
src -D vfy_a -e "INSERT INTO \`vfy_a\`.\`comp\` SELECT ELT(1 + seq % 3, 'eu', 'us', 'ap'), seq,
  IF(seq % 7 = 0, NULL, CONCAT('note ', seq, ' é ✓')), IF(seq % 7 = 0, NULL, seq * 1.125),
  IF(seq % 7 = 0, NULL, '2024-01-02 03:04:05.123456' + INTERVAL seq MINUTE),
  IF(seq % 7 = 0, NULL, '2024-05-06 07:08:09.5' + INTERVAL seq SECOND),
  IF(seq % 7 = 0, NULL, seq / 3.0e0), IF(seq % 7 = 0, NULL, UNHEX(MD5(seq))),
  IF(seq % 7 = 0, NULL, seq % 32), IF(seq % 7 = 0, NULL, ELT(1 + seq % 3, 'x', 'y', 'z')),
  IF(seq % 7 = 0, NULL, JSON_OBJECT('n', seq)), IF(seq % 7 = 0, NULL, 18446744073709551615 - seq)
  FROM seq_1_to_1200"
src -D vfy_a -e "INSERT INTO \`vfy_a\`.\`strk\` SELECT CONCAT('key-', LPAD(seq, 5, '0'), IF(seq % 5 = 0, ' x''y', '')),
  IF(seq % 4 = 0, NULL, IF(seq % 4 = 1, '', CONCAT('v', seq))), IF(seq % 3 = 0, NULL, seq) FROM seq_1_to_450"
src -D vfy_a -e "INSERT INTO \`vfy_m\`.\`shard_1\` SELECT seq, CONCAT('one ', seq) FROM seq_1_to_300;
        INSERT INTO \`vfy_m\`.\`shard_2\` SELECT seq, CONCAT('two ', seq) FROM seq_301_to_520"
# the copy: a plain dump of the source, the two shards merged into one target table
mariadb-dump -h"$SLUICE_SOURCE_HOST" -P"$SLUICE_SOURCE_PORT" -u"$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD" \
    --skip-tz-utc --databases vfy_a vfy_f > "$WORK/dump.sql" || fail "dump"
tgt < "$WORK/dump.sql" || fail "load"
tgt -e "CREATE DATABASE \`vfy_merged\`; CREATE TABLE \`vfy_merged\`.\`all\` (\`id\` INT NOT NULL PRIMARY KEY, \`name\` VARCHAR(20) NULL)"
src -D vfy_a -e "SELECT id, name FROM \`vfy_m\`.\`shard_1\` UNION ALL SELECT id, name FROM \`vfy_m\`.\`shard_2\`" |
    sed 's/\tNULL$/\t\\N/' > "$WORK/merged.tsv"
tgt --local-infile=1 -e "LOAD DATA LOCAL INFILE '$WORK/merged.tsv' INTO TABLE \`vfy_merged\`.\`all\`"
# FLOAT values that differ past the 6 digits MariaDB prints for a FLOAT, and a 0x1f byte that
# moves from one column to the next: both were reported equal (the values are written on each
# side by the same SQL, as a dump through text would change the FLOATs)
for side in src tgt; do
    $side -e "CREATE TABLE \`vfy_a\`.\`flt\` (\`id\` INT PRIMARY KEY, \`f\` FLOAT, \`a\` VARCHAR(10), \`b\` VARCHAR(10));
        INSERT INTO \`vfy_a\`.\`flt\` SELECT seq, seq / 3.0e0, 'p', 'q' FROM vfy_a.seq_1_to_20"
done

cat > "$WORK/task.json" <<JSON
{"name": "vfy", "task_mode": "all",
 "target_config": {"host": "$SLUICE_TARGET_HOST", "port": $SLUICE_TARGET_PORT,
                   "user": "$SLUICE_TARGET_USER", "password": "$SLUICE_TARGET_PASSWORD"},
 "binlog_filter_rule": {"no-delete": {"ignore_event": ["delete"]}},
 "table_migrate_rule": [
   {"source": {"source_name": "s1", "schema": "vfy_a", "table": "*"}},
   {"source": {"source_name": "s1", "schema": "vfy_m", "table": "shard_*"},
    "target": {"schema": "vfy_merged", "table": "all"}},
   {"source": {"source_name": "s1", "schema": "vfy_f", "table": "*"}, "binlog_filter_rule": ["no-delete"]}],
 "source_config": {"source_conf": [{"source_name": "s1"}]}}
JSON
cat > "$WORK/sources.json" <<JSON
{"source_name": "s1", "host": "$SLUICE_SOURCE_HOST", "port": $SLUICE_SOURCE_PORT, "user": "$SLUICE_SOURCE_USER",
 "password": "$SLUICE_SOURCE_PASSWORD", "enable_gtid": true}
JSON
run() { "$CLI" verify "$WORK/task.json" --sources "$WORK/sources.json" --chunk-rows 100 --threads 2 "$@"; }

# a clean copy verifies clean
run > "$WORK/out0" 2>&1; rc=$?
[ $rc = 0 ] && ok || { fail "clean copy: exit $rc"; cat "$WORK/out0" >&2; }
grep -q '^verified 4 tables (1 excluded), 2190 source rows' "$WORK/out0" && ok || { fail "clean summary"; cat "$WORK/out0" >&2; }
grep -q '^excluded `vfy_f`.`filtered`: a binlog filter rule' "$WORK/out0" && ok || fail "filtered table not excluded with its reason"
grep -q '^shard merge: `vfy_merged`.`all` is compared with the union of 2 source tables' "$WORK/out0" && ok || fail "shard merge not named"

# damage the target on purpose
tgt <<'SQL'
DELETE FROM `vfy_a`.`comp` WHERE (`region`, `id`) IN (('us', 1), ('eu', 600));
INSERT INTO `vfy_a`.`comp` (`region`, `id`) VALUES ('zz', 5), ('eu', 100000);
UPDATE `vfy_a`.`comp` SET `note` = NULL WHERE `region` = 'ap' AND `id` = 2;
UPDATE `vfy_a`.`comp` SET `price` = `price` + 0.001, `j` = JSON_OBJECT('n', 0) WHERE `region` = 'eu' AND `id` = 1200;
UPDATE `vfy_a`.`comp` SET `blob` = X'00' WHERE `region` = 'eu' AND `id` = 3;
UPDATE `vfy_a`.`strk` SET `v` = NULL WHERE `k` = 'key-00001';
UPDATE `vfy_a`.`strk` SET `v` = '' WHERE `k` = 'key-00004';
DELETE FROM `vfy_a`.`strk` WHERE `k` = 'key-00010 x''y';
INSERT INTO `vfy_a`.`strk` VALUES ('key-00010', 'extra', NULL);
DELETE FROM `vfy_merged`.`all` WHERE `id` IN (10, 400);
UPDATE `vfy_merged`.`all` SET `name` = 'changed' WHERE `id` = 301;
DELETE FROM `vfy_f`.`filtered`;
SQL
src -e "UPDATE \`vfy_a\`.\`flt\` SET \`a\` = CONCAT('p', 0x1f, 'q'), \`b\` = 'r' WHERE \`id\` = 6"
tgt -e "UPDATE \`vfy_a\`.\`flt\` SET \`a\` = 'p', \`b\` = CONCAT('q', 0x1f, 'r') WHERE \`id\` = 6;
        UPDATE \`vfy_a\`.\`flt\` SET \`f\` = \`f\` + 0.000002 WHERE \`id\` = 5"
[ "$(tgt -e 'SELECT f FROM vfy_a.flt WHERE id = 5')" = "$(src -e 'SELECT f FROM vfy_a.flt WHERE id = 5')" ] && ok ||
    fail "the FLOAT damage shows in 6 digits, so it does not test what it should"
# a writer keeps changing the source while it runs, and a "replica" applies each change to the
# target 1.5 s later: with --retries the chunks it touches settle and are not reported
writer() {
    for i in $(seq 1 1000); do
        [ -e "$WORK/stop" ] && break
        src -e "INSERT INTO \`vfy_a\`.\`strk\` VALUES ('zkey-$i', 'w', $i)"
        (sleep 1.5; tgt -e "INSERT INTO \`vfy_a\`.\`strk\` VALUES ('zkey-$i', 'w', $i)") &
        sleep 0.3
    done
}
writer & WPID=$!
sleep 1
run --repair-sql "$WORK/repair.sql" --retries 6 --retry-delay-ms 1000 > "$WORK/out1" 2>&1; rc=$?
touch "$WORK/stop"; wait "$WPID"
sleep 2   # the last delayed applies land
[ "$(src -e 'SELECT COUNT(*) FROM `vfy_a`.`strk` WHERE `k` LIKE "zkey-%"')" -gt 0 ] && ok || fail "the writer wrote nothing"
[ $rc = 1 ] && ok || { fail "damaged target: exit $rc (want 1)"; cat "$WORK/out1" >&2; }
grep -E '^(missing|extra|different) ' "$WORK/out1" | sort > "$WORK/got"
sort > "$WORK/want" <<'EOF2'
missing `vfy_a`.`comp` key (`region`='us',`id`='1')
missing `vfy_a`.`comp` key (`region`='eu',`id`='600')
extra `vfy_a`.`comp` key (`region`='zz',`id`='5')
extra `vfy_a`.`comp` key (`region`='eu',`id`='100000')
different `vfy_a`.`comp` key (`region`='ap',`id`='2') columns note
different `vfy_a`.`comp` key (`region`='eu',`id`='1200') columns price,j
different `vfy_a`.`comp` key (`region`='eu',`id`='3') columns blob
different `vfy_a`.`strk` key (`k`='key-00001') columns v
different `vfy_a`.`strk` key (`k`='key-00004') columns v
missing `vfy_a`.`strk` key (`k`='key-00010 x\'y')
extra `vfy_a`.`strk` key (`k`='key-00010')
missing `vfy_merged`.`all` key (`id`='10')
missing `vfy_merged`.`all` key (`id`='400')
different `vfy_merged`.`all` key (`id`='301') columns name
different `vfy_a`.`flt` key (`id`='5') columns f
different `vfy_a`.`flt` key (`id`='6') columns a,b
EOF2
diff "$WORK/want" "$WORK/got" > "$WORK/diff" && ok || { fail "reported rows differ from the damage (want vs got):"; cat "$WORK/diff" >&2; }
grep -q ' 5 missing, 3 extra, 8 different$' "$WORK/out1" && ok || fail "summary counts: $(tail -1 "$WORK/out1")"
[ "$(tgt -e 'SELECT COUNT(*) FROM `vfy_a`.`comp`')" = 1200 ] && ok || fail "verify changed the target"

# the repair SQL, applied, makes a second run clean
[ "$(grep -c ';$' "$WORK/repair.sql")" = 16 ] && ok || fail "repair.sql has $(grep -c ';$' "$WORK/repair.sql") statements, want 16"
tgt < "$WORK/repair.sql" && ok || fail "repair.sql does not apply"
run > "$WORK/out2" 2>&1; rc=$?
[ $rc = 0 ] && ok || { fail "after repair: exit $rc"; cat "$WORK/out2" >&2; }
grep -q ' 0 missing, 0 extra, 0 different$' "$WORK/out2" && ok || fail "after repair: $(tail -1 "$WORK/out2")"

! grep -l 'runtime error\|Sanitizer' "$WORK"/out* && ok || fail "a sanitizer report in the output (build-test runs with ASan/UBSan)"
# bad input is a clear error, not a crash
"$CLI" verify "$WORK/task.json" > "$WORK/out3" 2>&1; [ $? = 2 ] && grep -q -- '--sources' "$WORK/out3" && ok || fail "no --sources"
run --threads 0 > "$WORK/out4" 2>&1; [ $? = 2 ] && grep -q 'threads' "$WORK/out4" && ok || fail "--threads 0"
# a source that cannot be reached: its address once came out mangled ("source: source: 1:1: ..."),
# the message formatted over itself
sed "s/\"port\": $SLUICE_SOURCE_PORT/\"port\": 1/" "$WORK/sources.json" > "$WORK/down.json"
"$CLI" verify "$WORK/task.json" --sources "$WORK/down.json" > "$WORK/out5" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "^sluice verify: source s1: $SLUICE_SOURCE_HOST:1: " "$WORK/out5" &&
    [ "$(grep -o 'source' "$WORK/out5" | wc -l)" = 1 ] && ok || fail "unreachable source: exit $rc: $(cat "$WORK/out5")"

if [ -z "${KEEP:-}" ]; then   # KEEP=1 leaves the databases for a look
    for db in vfy_a vfy_f vfy_m; do src -e "DROP DATABASE \`$db\`"; tgt -e "DROP DATABASE IF EXISTS \`$db\`"; done
    tgt -e "DROP DATABASE \`vfy_merged\`"
fi
if [ "$FAILS" = 0 ]; then echo "PASS: $CHECKS checks"; exit 0; fi
echo "FAILED: $FAILS of $((CHECKS + FAILS)) checks" >&2
exit 1
