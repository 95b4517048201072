#!/usr/bin/env bash
# test_jsonl_sink.sh - the jsonl-sink (issue 19) as a change-data-capture tool: a task_mode
# incremental task writes the row changes of live writers as JSON lines while sluice-server is
# killed with SIGKILL several times. Afterwards the lines up to the checkpoint, replayed into a
# fresh target schema by jsonl_replay.py, make tables equal to the source's (CHECKSUM TABLE and
# row by row): the shared type matrix (tests/data/type_matrix.sql) and a small one written by
# the writers, a keyed table with updates and deletes, and a keyless append-only table on which
# any repeated line would show as a duplicate row and any lost line as a missing one.
. "$(dirname "$0")/../api/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
S=js_s T=js_t R=js_r
OUT="$WORK/out"

src_sql "DROP DATABASE IF EXISTS $S; CREATE DATABASE $S DEFAULT CHARACTER SET utf8mb4" || { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "DROP DATABASE IF EXISTS $R; DROP DATABASE IF EXISTS $T; CREATE DATABASE $R DEFAULT CHARACTER SET utf8mb4" ||
    { echo "FAIL: cannot prepare the target" >&2; exit 1; }
# The type matrix: every value type at its edges (decimals at full precision, binary with NUL
# bytes, latin1 and 4-byte UTF-8 text, negative TIME, zero dates, 64-bit unsigned, BIT(64)).
src_sql "CREATE TABLE $S.m (id INT PRIMARY KEY, ti TINYINT, us SMALLINT UNSIGNED, mi MEDIUMINT,
  bi BIGINT, ub BIGINT UNSIGNED, f FLOAT, d DOUBLE, dc DECIMAL(65,30), dz DECIMAL(10,4),
  dt DATE, tm TIME(6), dtm DATETIME(6), ts TIMESTAMP(3) NULL, y YEAR, c CHAR(4),
  vc VARCHAR(64) CHARACTER SET utf8mb4, l1 VARCHAR(32) CHARACTER SET latin1, tx TEXT,
  bn BINARY(4), vb VARBINARY(16), bl BLOB, j JSON, bt BIT(64), b3 BIT(3),
  e ENUM('a','b','ç'), st SET('x','y','z'), g GEOMETRY)
  DEFAULT CHARSET=utf8mb4" || { echo "FAIL: type matrix table" >&2; exit 1; }
src_sql "CREATE TABLE $S.u (id INT PRIMARY KEY, v VARCHAR(32), n BIGINT)" || exit 1
src_sql "CREATE TABLE $S.k (w INT, i INT, v VARCHAR(16))" || exit 1   # keyless, insert only
for t in m u k; do
    # the replay target: the same structure under another schema (the sink's DDL lines are not
    # what is checked here)
    ddl=$(src_sql "SHOW CREATE TABLE $S.$t" | cut -f2-)
    dst_sql "USE $R; ${ddl//\\n/ }" || { echo "FAIL: cannot create $R.$t" >&2; exit 1; }
done
# The shared type matrix (tests/data/type_matrix.sql): its tables now, its rows in the stream.
MATRIX=$(cd "$HERE/../../data" && pwd)/type_matrix.sql
matrix() {   # matrix SCHEMA -v|-E: the tables (-v) or the rows (-E) of the file, in SCHEMA
    sed "s/@S@/$1/g" "$MATRIX" | if [ "$2" = -v ]; then grep -v '^\(INSERT\|DROP DATABASE\|CREATE DATABASE\|--\)'
    else grep '^\(SET\|INSERT\)'; fi |
        mariadb --default-character-set=utf8mb4 -h "$SLUICE_SOURCE_HOST" -P "$SLUICE_SOURCE_PORT" \
            -u "$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD"
}
matrix "$S" -v ||
    { echo "FAIL: the type matrix's tables on the source" >&2; exit 1; }
for t in ints misc l1; do
    ddl=$(src_sql "SHOW CREATE TABLE $S.$t" | cut -f2-)
    dst_sql "USE $R; ${ddl//\\n/ }" || { echo "FAIL: cannot create $R.$t" >&2; exit 1; }
done
read -r bfile bpos _ < <(src_sql "SHOW MASTER STATUS")
matrix "$S" -E ||
    { echo "FAIL: the type matrix's rows on the source" >&2; exit 1; }
src_sql "SET NAMES utf8mb4; SET SESSION sql_mode = '', time_zone = '+00:00';
  UPDATE $S.misc SET dec1 = -dec1, f = f / 2, d = -d, b64 = b64 >> 3, dt = '2024-02-29',
    t6 = '12:00:00.5', ts6 = '2001-02-03 04:05:06.789012', y = 1999, vc = CONCAT(vc, '😀'),
    l1 = 'ÿ', bl = x'00', j = '{\"a\": 1}', e = 'c d', s = 'y', p = POINT(3, 4) WHERE id = 1;
  UPDATE $S.misc SET id = 5 WHERE id = 2; DELETE FROM $S.ints WHERE id = 4;
  INSERT INTO $S.l1 VALUES (3, x'e9', 'à')" || { echo "FAIL: type matrix updates" >&2; exit 1; }

# Type matrix rows: edges, then NULLs, then updates that move every column, a delete.
src_sql "SET NAMES utf8mb4; SET time_zone = '+00:00'; INSERT INTO $S.m VALUES
 (1, -128, 65535, -8388608, -9223372036854775808, 18446744073709551615, 3.40282e38, -1.7976931348623157e308,
  '-99999999999999999999999999999999999.999999999999999999999999999999', 0.0001, '1000-01-01',
  '-838:59:59.000000', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999', 2155, 'ab',
  '日本語 😀 \"q\" \\\\ x', CONCAT('caf', _latin1 X'E9'), REPEAT('t', 300), X'00FF0001', X'000102', X'DEADBEEF00', '{\"k\": [1, 2.5, \"s\"]}',
  b'1111111111111111111111111111111111111111111111111111111111111111', b'101', 'ç', 'x,z',
  ST_GeomFromText('POINT(1.5 -2.25)')),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 127, 0, 8388607, 9223372036854775807, 0, 1.17549e-38, 2.2250738585072014e-308,
  '0.000000000000000000000000000001', -12.3400, '0000-00-00', '838:59:59.999999',
  '0000-00-00 00:00:00', '1970-01-01 00:00:01.000', 0, '', '', '', '', X'00000000', X'', X'',
  '[]', b'0', b'0', 'a', '', ST_GeomFromText('LINESTRING(0 0, 1 1)'))" ||
    { echo "FAIL: type matrix rows" >&2; exit 1; }

start_server "$WORK/data"
api POST /sources "{\"source_name\":\"js-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
api POST /tasks "{\"task\":{\"name\":\"js\",\"task_mode\":\"incremental\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"js-src\",\"schema\":\"$S\",\"table\":\"*\"},\"target\":{\"schema\":\"$T\"}}],\"source_config\":{\"source_conf\":[{\"source_name\":\"js-src\",\"binlog_name\":\"$bfile\",\"binlog_pos\":$bpos}]},\"sink\":{\"name\":\"jsonl-sink\",\"options\":{\"dir\":\"$OUT\",\"max_file_bytes\":65536,\"sync_bytes\":8192}}}}"
expect 200 "task with the jsonl-sink" '.sink.name=="jsonl-sink"'
api POST /tasks/js/start '{}'
expect 200 "start"
[ "$FAILS" = 0 ] || finish

# Writers: 3 clients, 200 transactions each; every transaction appends to the keyless table and
# changes the keyed one (insert, then updates and deletes of earlier rows) and, now and then,
# the matrix. Not timed: they run as fast as the source takes them.
writer() {
    local w=$1 i sql
    for i in $(seq 1 200); do
        sql="START TRANSACTION; INSERT INTO $S.k VALUES ($w, $i, 'w$w-$i'), ($w, $i, 'dup ok');"
        sql+="INSERT INTO $S.u VALUES ($((w * 1000 + i)), 'v$i', $i);"
        [ $((i % 3)) = 0 ] && sql+="UPDATE $S.u SET n = n * 2, v = CONCAT(v, '+') WHERE id = $((w * 1000 + i - 2));"
        [ $((i % 5)) = 0 ] && sql+="DELETE FROM $S.u WHERE id = $((w * 1000 + i - 4));"
        [ $((i % 50)) = 0 ] && sql+="SET time_zone = '+00:00'; UPDATE $S.m SET bi = bi DIV 2 + $w, dc = dc / 3, tm = '-01:02:03.5', ts = '2001-02-03 04:05:06.789', l1 = CONCAT(l1, _latin1 X'E9'), vb = X'00', bt = bt >> 1, e = 'b', st = 'y', g = ST_GeomFromText('POINT(3 4)') WHERE id = 1; UPDATE $S.m SET f = 0.1, d = 0.1, dz = $w.5, y = 1901, b3 = b'$((w % 2))1' WHERE id = 3; DELETE FROM $S.m WHERE id = $((w * 1000 + i - 50)); INSERT INTO $S.m (id, dt, vc) VALUES ($((w * 1000 + i)), '2024-02-29', 'w$w');"
        sql+="COMMIT"
        src_sql "$sql" || return 1
    done
}
for w in 1 2 3; do writer "$w" & eval "wp$w=\$!"; done

lines() { cat "$OUT"/js.js-src.*.jsonl 2>/dev/null | wc -l; }
# Kill the server 3 times, each once the sink has written more since the last (re)start, and
# start it again on the same data dir: the task was Running, so the server starts it again, and
# the runtime puts the reader at the sink's checkpoint.
kills=0
for k in 1 2 3; do
    before=$(lines)
    for _ in $(seq 1 1200); do
        [ "$(lines)" -gt $((before + 100)) ] && break
        sleep 0.1
    done
    [ "$(lines)" -gt "$before" ] || { fail "kill $k: the sink wrote nothing since the last start"
                                   kill "$wp1" "$wp2" "$wp3" 2>/dev/null; finish; }
    kill_server
    kills=$((kills + 1))
    start_server "$WORK/data"
done
[ "$kills" = 3 ] && ok || fail "$kills kills instead of 3"
for w in 1 2 3; do eval "wait \$wp$w" || fail "writer $w failed"; done

# Wait until the checkpoint reaches the source's position after the last write.
read -r efile epos _ < <(src_sql "SHOW MASTER STATUS")
caught=0
for _ in $(seq 1 1800); do
    ck=$(cat "$OUT/js.js-src.checkpoint" 2>/dev/null)
    if [ "$(jq -r '.binlog_name' <<<"$ck" 2>/dev/null)" = "$efile" ] &&
       [ "$(jq -r '.binlog_pos' <<<"$ck" 2>/dev/null)" -ge "$epos" ] 2>/dev/null; then
        caught=1
        break
    fi
    sleep 0.1
done
[ "$caught" = 1 ] && ok || fail "the sink's checkpoint did not reach ($efile, $epos): $(cat "$OUT/js.js-src.checkpoint" 2>/dev/null)"
api GET /tasks/js/status
expect 200 "status after the kills" '.data[0].stage=="Running"' \
    '.data[0].stages[] | select(.id=="sink") | .plugin=="jsonl-sink" and .metrics.checkpoints > 0'
stop_server
check_log
grep -q "cut from" "$WORK/server.log" && echo "(a restart cut lines written after a checkpoint)"
nfiles=$(ls "$OUT"/js.js-src.*.jsonl | wc -l)
[ "$nfiles" -gt 1 ] && ok || fail "the sink did not rotate its files ($nfiles file)"

# Replay into the fresh schema and compare with the source.
export MARIADB_ARGS="-h $SLUICE_TARGET_HOST -P $SLUICE_TARGET_PORT -u $SLUICE_TARGET_USER -p$SLUICE_TARGET_PASSWORD"
python3 "$HERE/jsonl_replay.py" "$OUT" js js-src --schema "$R" >"$WORK/replay.sql" ||
    fail "jsonl_replay.py failed"
mariadb $MARIADB_ARGS "$R" <"$WORK/replay.sql" || fail "the replayed SQL failed"
for t in m u k ints misc l1; do
    a=$(src_sql "CHECKSUM TABLE $S.$t" | cut -f2)
    b=$(dst_sql "CHECKSUM TABLE $R.$t" | cut -f2)
    [ -n "$a" ] && [ "$a" = "$b" ] && ok || fail "CHECKSUM TABLE $t: source $a, replayed $b"
    cols=$(src_sql "SELECT GROUP_CONCAT(IF(DATA_TYPE IN ('geometry','point','linestring','polygon'), CONCAT('HEX(\`', COLUMN_NAME, '\`)'), CONCAT('\`', COLUMN_NAME, '\`')) ORDER BY ORDINAL_POSITION) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '$S' AND TABLE_NAME = '$t'")
    q="SET NAMES utf8mb4; SET time_zone = '+00:00'; SELECT $cols FROM %s.$t ORDER BY $cols"
    src_sql "$(printf "$q" "$S")" >"$WORK/src.$t"
    dst_sql "$(printf "$q" "$R")" >"$WORK/dst.$t"
    if [ -s "$WORK/src.$t" ] && cmp -s "$WORK/src.$t" "$WORK/dst.$t"; then ok; else
        fail "table $t differs row by row: $(diff "$WORK/src.$t" "$WORK/dst.$t" | head -5)"
    fi
done
n=$(dst_sql "SELECT COUNT(*) FROM $R.k")
[ "$n" = 1200 ] && ok || fail "the keyless table has $n rows after the replay, want 1200 (3 x 200 x 2)"
d=$(dst_sql "SELECT COUNT(*) FROM (SELECT w, i, v FROM $R.k GROUP BY w, i, v HAVING COUNT(*) > 1) x")
[ "$d" = 0 ] && ok || fail "$d rows of the keyless table were replayed twice"
# Nothing reached the target: the custom sink replaced mysql-sink.
[ -z "$(dst_sql "SHOW DATABASES LIKE '$T'")" ] && ok || fail "$T exists on the target"
finish
