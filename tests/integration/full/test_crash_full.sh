#!/usr/bin/env bash
# test_crash_full.sh - issue 12's crash test: a task_mode "full" task run by a real sluice-server,
# which is SIGKILLed at 20 random moments of its dump and load and started again each time (the
# server resumes the Running subtask by itself), against a target whose InnoDB buffer pool is
# 256 MiB. Then: the target MariaDB stayed up (its Uptime covers the whole test), the task
# finishes, every table equals the source (CHECKSUM TABLE and row counts), and no chunk was loaded
# twice: the task runs with on_duplicate "error", so a second load of any row fails the task, and
# the load checkpoint holds each chunk once with row counts that add up to the source's rows.
# On a machine that copies faster than 20 kills land, the copy runs again (a new round) until all
# 20 kills were made, and every round is checked.
#
# Small data (4 tables of 80,000 rows of about 500 bytes, 3 chunks of 16 MiB each), so the whole
# test takes a minute or two. Needs SLUICE_SERVER_BIN, SLUICE_PLUGIN_DIR and the sandbox env.
#
# SLUICE_CRASH_STREAM=1 (ctest full_crash_stream): the task streams its chunks to the loader
# (full_migrate_conf.stream): every kill is followed by a dump from a new snapshot and a load redone
# from scratch (the stale-load rules), and no chunk file is ever written.
. "$(dirname "$0")/../api/lib.sh"

STREAM=${SLUICE_CRASH_STREAM:-0}
DB=fcrash_src$([ "$STREAM" = 1 ] && echo _s)
TASK=fcrash$([ "$STREAM" = 1 ] && echo _s)
KILLS=${SLUICE_CRASH_KILLS:-20}
STREAM_CONF=$([ "$STREAM" = 1 ] && echo ',"stream":true')
S=(--no-defaults -h"$SLUICE_SOURCE_HOST" -P"$SLUICE_SOURCE_PORT" -u"$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD" -N -B)
T=(--no-defaults -h"$SLUICE_TARGET_HOST" -P"$SLUICE_TARGET_PORT" -u"$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD" -N -B)
src() { mariadb "${S[@]}" "$@"; }
dst() { mariadb "${T[@]}" "$@"; }

# The target's buffer pool goes down to 256 MiB for the test (resized online) and back after.
POOL_BEFORE=$(dst -e "SELECT @@GLOBAL.innodb_buffer_pool_size") || { fail "target unreachable"; finish; }
restore_pool() { dst -e "SET GLOBAL innodb_buffer_pool_size = $POOL_BEFORE" 2>/dev/null; cleanup; }
trap restore_pool EXIT
dst -e "SET GLOBAL innodb_buffer_pool_size = 268435456"
for _ in $(seq 1 100); do
    [ "$(dst -e "SELECT @@GLOBAL.innodb_buffer_pool_size")" = 268435456 ] && break
    sleep 0.1
done
[ "$(dst -e "SELECT @@GLOBAL.innodb_buffer_pool_size")" = 268435456 ] && ok || fail "the target's buffer pool did not shrink to 256 MiB"

# Source data: wide rows, a secondary index (built after the load), a composite-key table.
src -e "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`"
for t in 1 2 3; do
    src "$DB" -e "CREATE TABLE \`t$t\` (id INT NOT NULL PRIMARY KEY, k INT NOT NULL, c CHAR(240) NOT NULL,
                   pad VARCHAR(240) NOT NULL, KEY k_1 (k)) ENGINE=InnoDB;
                 INSERT INTO \`t$t\` SELECT seq, seq * 7919 % 80000, REPEAT(CHAR(65 + seq % 26), 240),
                   CONCAT(seq, '-', REPEAT('x', 190 + seq % 40)) FROM seq_1_to_80000" ||
        { fail "cannot fill the source"; finish; }
done
src "$DB" -e "CREATE TABLE \`t4\` (a INT NOT NULL, b VARCHAR(20) NOT NULL, v VARCHAR(480) NOT NULL,
               PRIMARY KEY (a, b), KEY v_1 (v(20))) ENGINE=InnoDB;
             INSERT INTO \`t4\` SELECT seq DIV 3, CONCAT('b', seq % 3), REPEAT(MD5(seq), 15)
               FROM seq_0_to_79999; ANALYZE TABLE \`t1\`, \`t2\`, \`t3\`, \`t4\`" >/dev/null ||
    { fail "cannot fill the source"; finish; }
dst -e "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE IF NOT EXISTS dm_meta;
        DROP TABLE IF EXISTS dm_meta.\`${TASK}_loader_checkpoint\`, dm_meta.\`${TASK}_syncer_checkpoint\`,
          dm_meta.\`${TASK}_loader_tables\`"
UPTIME0=$(dst -e "SHOW GLOBAL STATUS LIKE 'Uptime'" | cut -f2)
T0=$(date +%s)

start_server "$WORK/data"
api POST /sources "{\"source_name\":\"crash-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,
  \"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "create the source"
stage() { api GET "/tasks/$TASK/status"; printf '%s' "$BODY" | jq -r '.data[0].stage // "-"' 2>/dev/null; }
# Kill at random moments while the task is not Finished: a random delay of 0.1-0.8 s after each
# (re)start, which lands in the dump, in chunk loads, in the index builds and in the finish, as the
# log shows. A machine fast enough to finish the copy before all KILLS kills were made gets another
# round (task deleted, target emptied, task created and started again) until KILLS kills landed;
# every round is checked in full.
kills_round() {
    finished_early=0
    while [ "$kills" -lt "$KILLS" ]; do
        sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.1 + 0.7 * r / 32767 }')"
        st=$(stage)
        if [ "$st" = Finished ]; then finished_early=1; break; fi
        [ "$st" = Paused ] && { fail "the task paused before kill $((kills + 1)): $(printf '%s' "$BODY" | jq -c '.data[0].error_msg')"; return 1; }
        kill_server
        kills=$((kills + 1))
        echo "round $round kill $kills (stage $st, loaded chunks so far: $(dst -e "SELECT COUNT(*) FROM dm_meta.\`${TASK}_loader_checkpoint\` WHERE chunk_id <> ''" 2>/dev/null || echo 0))"
        start_server "$WORK/data"
    done
}
create_task() {
    api POST /tasks "{\"task\":{\"name\":\"$TASK\",\"task_mode\":\"full\",\"on_duplicate\":\"error\",\"meta_schema\":\"dm_meta\",
      \"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",
        \"password\":\"$SLUICE_TARGET_PASSWORD\"},
      \"table_migrate_rule\":[{\"source\":{\"source_name\":\"crash-src\",\"schema\":\"$DB\",\"table\":\"*\"}}],
      \"source_config\":{\"full_migrate_conf\":{\"export_threads\":2,\"import_threads\":4,\"data_dir\":\"$WORK/dump\"$STREAM_CONF},
        \"source_conf\":[{\"source_name\":\"crash-src\"}]}}}"
    expect 200 "create the task"
    api POST "/tasks/$TASK/start" '{}'
    expect 200 "start the task"
}

check_round() {
    # The last start runs to the end.
    st=-
    for _ in $(seq 1 1200); do
        st=$(stage)
        case "$st" in Finished|Paused|Stopped) break ;; esac
        sleep 0.25
    done
    [ "$st" = Finished ] && ok || fail "the task ended '$st': $(printf '%s' "$BODY" | jq -c '.data[0] | {stage, error_msg}')"

    # The target stayed up through the whole test.
    UPTIME1=$(dst -e "SHOW GLOBAL STATUS LIKE 'Uptime'" | cut -f2)
    T1=$(date +%s)
    if [ -n "$UPTIME1" ] && [ "$UPTIME1" -ge $((UPTIME0 + T1 - T0 - 2)) ]; then ok; else
        fail "the target restarted during the test (Uptime $UPTIME0 -> ${UPTIME1:-down} over $((T1 - T0)) s)"; fi

    # Equal tables.
    for t in t1 t2 t3 t4; do
        a=$(src -e "SELECT COUNT(*) FROM \`$DB\`.\`$t\`; CHECKSUM TABLE \`$DB\`.\`$t\` EXTENDED" | awk '{print $NF}' | tr '\n' ' ')
        b=$(dst -e "SELECT COUNT(*) FROM \`$DB\`.\`$t\`; CHECKSUM TABLE \`$DB\`.\`$t\` EXTENDED" | awk '{print $NF}' | tr '\n' ' ')
        [ "$a" = "$b" ] && ok || fail "table $t differs: source '$a' target '$b'"
    done
    # The target has the source's schema: the secondary indexes deferred during the load are back.
    for t in t1 t2 t3 t4; do
        a=$(src -e "SHOW CREATE TABLE \`$DB\`.\`$t\`" | cut -f2)
        b=$(dst -e "SHOW CREATE TABLE \`$DB\`.\`$t\`" | cut -f2)
        [ "$a" = "$b" ] && ok || fail "table $t has another definition: source '$a' target '$b'"
    done
    # Each chunk once in the checkpoint, its rows adding up to the source's (a chunk loaded twice
    # would have failed the task on a duplicate key, on_duplicate being "error").
    read -r nchunks ndistinct nrows < <(dst -e "SELECT COUNT(*), COUNT(DISTINCT chunk_id), SUM(row_count)
        FROM dm_meta.\`${TASK}_loader_checkpoint\` WHERE chunk_id <> ''")
    want_rows=$(src -e "SELECT (SELECT COUNT(*) FROM \`$DB\`.t1) + (SELECT COUNT(*) FROM \`$DB\`.t2) +
                               (SELECT COUNT(*) FROM \`$DB\`.t3) + (SELECT COUNT(*) FROM \`$DB\`.t4)")
    echo "checkpoint: $nchunks chunks ($ndistinct distinct), $nrows rows; source rows $want_rows"
    [ "$nchunks" = "$ndistinct" ] && [ "$nrows" = "$want_rows" ] && [ "$nchunks" -ge 8 ] && ok ||
        fail "checkpoint: $nchunks chunks, $ndistinct distinct, $nrows rows (want $want_rows, >= 8 chunks)"
    if grep -q "duplicate key loading chunk" "$WORK/server.log"; then fail "a chunk was loaded twice"; else ok; fi
    if [ "$STREAM" = 1 ]; then
        files=$(find "$WORK/dump" -name '*.tsv*' | wc -l)
        [ "$files" = 0 ] && ok || fail "a streaming task left $files chunk files in its data_dir"
        grep -q "streamed to the loader" "$WORK/server.log" && ok || fail "the dump did not say it streamed"
    fi
    grep -E "waiting for|transactions are gone|rolling back after" "$WORK/server.log" | head -5
}

kills=0 round=0
# At most 12 rounds: a 2-core CI machine lands about 3 kills in a round of this copy (its
# random delays are 0.1-0.8 s), so 20 kills take about 7 rounds; the cap only stops a machine
# that finishes before any kill from looping.
while [ "$kills" -lt "$KILLS" ] && [ "$round" -lt 12 ]; do
    round=$((round + 1))
    if [ "$round" -gt 1 ]; then
        api DELETE "/tasks/$TASK"
        expect 204 "delete the finished task of round $((round - 1))"
        dst -e "DROP DATABASE IF EXISTS \`$DB\`"
    fi
    create_task
    kills_round || break
    echo "round $round: SIGKILLs so far $kills (finished before the next kill: $finished_early)"
    check_round
done
[ "$kills" = "$KILLS" ] && ok || fail "only $kills of $KILLS kills landed in $round rounds"

api DELETE "/tasks/$TASK"
expect 204 "delete the task (drops its checkpoint tables)"
stop_server
check_log
src -e "DROP DATABASE IF EXISTS \`$DB\`"
dst -e "DROP DATABASE IF EXISTS \`$DB\`"
finish
