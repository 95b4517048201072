#!/usr/bin/env bash
# test_oot_transform.sh - an out-of-tree transform in a real task (issue 19): the build is
# installed into a temporary prefix, examples/plugin-passthrough is built against that
# installation only (pkg-config sluice-plugin, as a plugin author does), and a task_mode
# incremental task runs it between route and mysql-sink while the type matrix
# (tests/data/type_matrix.sql: every column type at its limits) is created, written, updated
# and deleted on the source. The target then equals the source by CHECKSUM TABLE and row by row,
# and the transform's counters show that every row change went through it.
#   test_oot_transform.sh <build dir> <source dir>
. "$(dirname "$0")/../api/lib.sh"
BUILD=${1:?build dir} SRC=${2:?source dir}
S=oot_types

# The installed SDK and the example built against it alone.
cmake --install "$BUILD" --prefix "$WORK/prefix" >"$WORK/install.log" 2>&1 ||
    { cat "$WORK/install.log" >&2; echo "FAIL: cmake --install" >&2; exit 1; }
pc=$(find "$WORK/prefix" -name sluice-plugin.pc | head -n1)
[ -n "$pc" ] || { echo "FAIL: sluice-plugin.pc was not installed" >&2; exit 1; }
cp -r "$SRC/examples/plugin-passthrough" "$WORK/example"
PKG_CONFIG_PATH=$(dirname "$pc") env -u CFLAGS cmake -S "$WORK/example" -B "$WORK/example-build" \
    -DPKG_CONFIG_ARGN=--define-prefix >"$WORK/configure.log" 2>&1 &&
    cmake --build "$WORK/example-build" >"$WORK/build.log" 2>&1 ||
    { cat "$WORK/configure.log" "$WORK/build.log" >&2; echo "FAIL: building the example" >&2; exit 1; }
grep -q "$WORK/prefix/include" "$WORK/example-build/CMakeFiles/passthrough.dir/flags.make" &&
    ok || fail "the example was not compiled against the installed headers"
# The server's plugin directory: the installed built-ins and the example, as a user sets it up.
mkdir -p "$WORK/plugins"
ln -s "$(dirname "$(find "$WORK/prefix" -name sluice-route.so | head -n1)")"/sluice-*.so "$WORK/plugins/"
cp "$WORK/example-build/sluice-passthrough.so" "$WORK/plugins/"
PLUGINS="$WORK/plugins"

# a task of this name left by an earlier run on the same sandbox keeps its checkpoint in the
# target, which would resume the task from a binlog file the source may have purged since
src_sql "DROP DATABASE IF EXISTS $S" && dst_sql "DROP DATABASE IF EXISTS $S;
  CREATE DATABASE IF NOT EXISTS dm_meta; DROP TABLE IF EXISTS dm_meta.oot_syncer_checkpoint,
  dm_meta.oot_schema_tracker, dm_meta.oot_onlineddl" ||
    { echo "FAIL: cannot prepare the servers" >&2; exit 1; }
read -r bfile bpos _ < <(src_sql "SHOW MASTER STATUS")

start_server "$WORK/data"
api POST /sources "{\"source_name\":\"oot-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
api POST /tasks "{\"task\":{\"name\":\"oot\",\"task_mode\":\"incremental\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"oot-src\",\"schema\":\"$S\",\"table\":\"*\"}}],\"source_config\":{\"source_conf\":[{\"source_name\":\"oot-src\",\"binlog_name\":\"$bfile\",\"binlog_pos\":$bpos}]},\"plugins\":[{\"name\":\"passthrough\",\"at\":\"after-route\",\"options\":{\"tables\":\"*\"}}]}}"
expect 200 "task with the out-of-tree transform" '.plugins[0].name=="passthrough"'
api POST /tasks/oot/start '{}'
expect 200 "start"
[ "$FAILS" = 0 ] || finish

# The matrix is created and filled after the task's position: its DDL and every value reach the
# target as events through the transform. Then updates that move every column and deletes.
sed "s/@S@/$S/g" "$SRC/tests/data/type_matrix.sql" |
    mariadb --default-character-set=utf8mb4 -h "$SLUICE_SOURCE_HOST" -P "$SLUICE_SOURCE_PORT" \
        -u "$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD" ||
    { fail "type_matrix.sql failed on the source"; finish; }
src_sql "SET NAMES utf8mb4; SET SESSION sql_mode = '', time_zone = '+00:00';
  UPDATE $S.misc SET dec1 = -dec1, f = f / 2, d = -d, b64 = b64 >> 3, dt = '2024-02-29',
    t6 = '12:00:00.5', ts6 = '2001-02-03 04:05:06.789012', y = 1999, vc = CONCAT(vc, '😀'),
    l1 = 'ÿ', bl = x'00', j = '{\"a\": 1}', e = 'c d', s = 'y', p = POINT(3, 4) WHERE id = 1;
  UPDATE $S.misc SET id = 5 WHERE id = 2;
  DELETE FROM $S.ints WHERE id = 4;
  UPDATE $S.ints SET biu = biu - 1, bi = bi - 1 WHERE id = 2;
  INSERT INTO $S.l1 VALUES (3, x'e9', 'à')" || fail "the updates failed"

cols() {   # every column, the invisible one too, geometry as hex
    src_sql "SELECT GROUP_CONCAT(IF(DATA_TYPE IN ('geometry','point','linestring','polygon'),
      CONCAT('HEX(\`', COLUMN_NAME, '\`)'), CONCAT('\`', COLUMN_NAME, '\`')) ORDER BY ORDINAL_POSITION)
      FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '$S' AND TABLE_NAME = '$1'"
}
for t in ints misc l1; do
    q="SET NAMES utf8mb4; SET time_zone = '+00:00'; SELECT $(cols "$t") FROM \`$S\`.\`$t\` ORDER BY 1"
    same=0
    for _ in $(seq 1 600); do   # until the target has caught up (at most 60 s)
        a=$(src_sql "CHECKSUM TABLE $S.$t" | cut -f2)
        b=$(dst_sql "CHECKSUM TABLE $S.$t" 2>/dev/null | cut -f2)
        if [ -n "$a" ] && [ "$a" = "$b" ]; then same=1; break; fi
        sleep 0.1
    done
    [ "$same" = 1 ] && ok || fail "CHECKSUM TABLE $t: source $a, target $b"
    src_sql "$q" >"$WORK/src.$t"
    dst_sql "$q" >"$WORK/dst.$t"
    [ -s "$WORK/src.$t" ] && cmp -s "$WORK/src.$t" "$WORK/dst.$t" && ok ||
        fail "table $t differs row by row: $(diff "$WORK/src.$t" "$WORK/dst.$t" | head -6)"
done

# Every row change went through the transform: 4 + 4 + 2 inserted rows, 3 updates (one of
# them a key change), 1 delete, 1 more insert = 15 row events at least.
api GET /tasks/oot/status
expect 200 "status shows the out-of-tree stage" '.data[0].stage=="Running"' \
    '[.data[0].stages[].id]==["reader","filter","route","plugin0","sink"]' \
    '.data[0].stages[] | select(.id=="plugin0") | .plugin=="passthrough" and .metrics.matched >= 15'
api POST /tasks/oot/stop '{}'
expect 200 "stop"
api DELETE /tasks/oot
expect 204 "delete the task (and its checkpoint)"
stop_server
check_log
finish
