#!/usr/bin/env bash
# test_verify.sh - verification of a running task inside sluice-server (POST/GET
# /api/v1/tasks/{name}/verify): a task_mode all replicates three tables (a composite key with
# NULLs and a spread of types, a string key with quotes, a table a writer keeps changing) while
# writers run on the source. A run under live writes reports nothing (rows in flight are
# re-checked until they settle); rows deleted, inserted and corrupted on the target on purpose are
# reported exactly, by kind and key, while the writers still run (each re-check of a differing
# chunk waits until the task's checkpoint GTID has passed the source's position); the run's repair SQL applied by
# hand makes a third run clean. Unknown task and a second start while one runs answer 404 and 409
# with DM's error body.
. "$(dirname "$0")/../api/lib.sh"

src_sql "DROP DATABASE IF EXISTS ops_v; CREATE DATABASE ops_v;
  CREATE TABLE ops_v.comp (region VARCHAR(8) NOT NULL, id INT NOT NULL, note TEXT NULL,
    price DECIMAL(12,3) NULL, at DATETIME(6) NULL, ratio DOUBLE NULL, b VARBINARY(16) NULL,
    j JSON NULL, PRIMARY KEY (region, id));
  INSERT INTO ops_v.comp SELECT ELT(1 + seq % 3, 'eu', 'us', 'ap'), seq,
    IF(seq % 7 = 0, NULL, CONCAT('note ', seq, ' é')), IF(seq % 7 = 0, NULL, seq * 1.125),
    IF(seq % 7 = 0, NULL, '2024-01-02 03:04:05.123456' + INTERVAL seq MINUTE),
    IF(seq % 7 = 0, NULL, seq / 3.0e0), IF(seq % 7 = 0, NULL, UNHEX(MD5(seq))),
    IF(seq % 7 = 0, NULL, JSON_OBJECT('n', seq)) FROM ops_v.seq_1_to_1500;
  CREATE TABLE ops_v.strk (k VARCHAR(40) NOT NULL PRIMARY KEY, v VARCHAR(40) NULL);
  INSERT INTO ops_v.strk SELECT CONCAT('key-', LPAD(seq, 4, '0'), IF(seq % 5 = 0, ' o''k', '')),
    IF(seq % 4 = 0, NULL, CONCAT('v', seq)) FROM ops_v.seq_1_to_600;
  CREATE TABLE ops_v.busy (id INT AUTO_INCREMENT PRIMARY KEY, n INT, s VARCHAR(40));
  INSERT INTO ops_v.busy (n, s) SELECT seq, CONCAT('s', seq) FROM ops_v.seq_1_to_1000;" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "DROP DATABASE IF EXISTS ops_v" || { echo "FAIL: cannot prepare the target" >&2; exit 1; }

start_server "$WORK/data"
api POST /sources "{\"source_name\":\"vfy-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
api POST /tasks "{\"task\":{\"name\":\"ops-v\",\"task_mode\":\"all\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"vfy-src\",\"schema\":\"ops_v\",\"table\":\"*\"}}],\"source_config\":{\"full_migrate_conf\":{\"data_dir\":\"$WORK/dump\"},\"source_conf\":[{\"source_name\":\"vfy-src\"}]},\"verify\":{\"threads\":2,\"chunk_rows\":100,\"chunks_per_second\":40,\"retries\":4,\"retry_delay_ms\":400,\"max_rows\":50}}}"
expect 200 "task with a verify option"
api POST /tasks "{\"task\":{\"name\":\"ops-bad\",\"task_mode\":\"all\",\"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,\"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},\"table_migrate_rule\":[{\"source\":{\"source_name\":\"vfy-src\",\"schema\":\"ops_v\",\"table\":\"*\"}}],\"source_config\":{\"source_conf\":[{\"source_name\":\"vfy-src\"}]},\"verify\":{\"chunk_rows\":0}}}"
expect 400 "a bad verify option" "$ERRBODY" '.error_msg | contains("/task/verify/chunk_rows")'

# bad inputs: unknown task, no run yet, a method the resource does not have
api POST /tasks/nope/verify '{}'
expect 404 "verify of an unknown task" "$ERRBODY"
api GET /tasks/nope/verify
expect 404 "status of an unknown task's verification" "$ERRBODY"
api GET /tasks/ops-v/verify
expect 200 "no run yet" '.state == "none"'
api DELETE /tasks/ops-v/verify
expect 405 "DELETE verify" "$ERRBODY"

api POST /tasks/ops-v/start '{}'
expect 200 "start"
unit() { api GET /tasks/ops-v/status; printf '%s' "$BODY" | jq -r '.data[0].unit'; }
for _ in $(seq 1 900); do [ "$(unit)" = Sync ] && break; sleep 0.1; done
[ "$(unit)" = Sync ] && ok || fail "the task did not reach Sync: $BODY"

# writers on the source for the rest of the test: single-row transactions on busy and on comp
# rows the damage below does not touch (ids above 1000)
STOPW=$WORK/stop-writers
writer() {
    local i=0
    while [ ! -e "$STOPW" ]; do
        i=$((i + 1))
        mariadb -h "$SLUICE_SOURCE_HOST" -P "$SLUICE_SOURCE_PORT" -u "$SLUICE_SOURCE_USER" \
            -p"$SLUICE_SOURCE_PASSWORD" -e "INSERT INTO ops_v.busy (n, s) VALUES ($i, 'w$1');
              UPDATE ops_v.busy SET n = n + 1, s = CONCAT('u', $i) WHERE id = 1 + ($i * 7) % 1000;
              DELETE FROM ops_v.busy WHERE id = 3 + ($i * 13) % 1000;
              UPDATE ops_v.comp SET price = price + 1, note = CONCAT('w', $i)
                WHERE id = 1001 + ($i * 11) % 500" 2>/dev/null
    done
}
writer a & W1=$!
writer b & W2=$!

# wait for the end of a run; prints nothing, leaves the status in BODY
wait_run() {
    for _ in $(seq 1 1200); do
        api GET /tasks/ops-v/verify
        [ "$(printf '%s' "$BODY" | jq -r .state)" != running ] && return
        sleep 0.1
    done
    fail "the verification did not end in 120 s: ${BODY:0:400}"
}

# 1. under live writes, on an intact target: clean
api POST /tasks/ops-v/verify '{}'
expect 202 "verify starts" '.state == "running"'
api POST /tasks/ops-v/verify '{}'
expect 409 "a second start while one runs" "$ERRBODY" '.error_msg | contains("running")'
wait_run
expect 200 "clean run" '.state == "finished"' '.rows == []' \
    '.result.missing == 0 and .result.extra == 0 and .result.different == 0' \
    '.progress.tables == 3 and .progress.tables_done == 3' '.result.equal == 3' \
    '[.tables[].target] | sort == ["ops_v.busy", "ops_v.comp", "ops_v.strk"]' \
    '.progress.rows >= 3100'

# 2. damage on the target, writers still running: exactly these rows, nothing else
dst_sql "DELETE FROM ops_v.comp WHERE region = 'us' AND id = 1;
         DELETE FROM ops_v.comp WHERE region = 'ap' AND id = 14;
         UPDATE ops_v.comp SET note = NULL WHERE region = 'eu' AND id = 600;
         UPDATE ops_v.comp SET j = JSON_OBJECT('n', -1), at = NULL WHERE region = 'ap' AND id = 998;
         INSERT INTO ops_v.comp (region, id, note) VALUES ('zz', 5, 'extra');
         UPDATE ops_v.strk SET v = 'corrupt' WHERE k = 'key-0010 o''k';
         DELETE FROM ops_v.strk WHERE k = 'key-0444';
         INSERT INTO ops_v.strk VALUES ('key-0010 o''k2', NULL);" || fail "damage the target"
api POST /tasks/ops-v/verify '{}'
expect 202 "verify starts again"
wait_run
want=$(cat <<'W'
different ops_v.comp `region`='ap',`id`='998' at,j
different ops_v.comp `region`='eu',`id`='600' note
different ops_v.strk `k`='key-0010 o\'k' v
extra ops_v.comp `region`='zz',`id`='5' 
extra ops_v.strk `k`='key-0010 o\'k2' 
missing ops_v.comp `region`='ap',`id`='14' 
missing ops_v.comp `region`='us',`id`='1' 
missing ops_v.strk `k`='key-0444' 
W
)
got=$(printf '%s' "$BODY" | jq -r '.rows[] | "\(.kind) \(.table) \(.key) \(.columns // "")"' | sort)
[ "$got" = "$want" ] && ok || fail "differing rows: got
$got
want
$want"
expect 200 "damaged run" '.state == "finished"' \
    '.result.missing == 3 and .result.extra == 2 and .result.different == 3' \
    '[.tables[] | select(.target == "ops_v.busy")][0].state == "equal"' \
    '[.tables[] | select(.target == "ops_v.comp")][0] | .state == "differs" and .missing == 2' \
    '.rows_truncated == false' '(.repair_sql | type) == "string"' \
    '.rechecks.after_checkpoint > 0 and .rechecks.checkpoint_unknown == 0'
printf '%s' "$BODY" | jq -c '{progress, rechecks}'

# 3. the repair SQL, applied by hand, makes the next run clean (writers still running)
repair=$(printf '%s' "$BODY" | jq -r .repair_sql)
[ "$(grep -c . "$repair")" = 8 ] && ok || fail "repair SQL has $(grep -c . "$repair") statements, want 8"
dst_sql "$(cat "$repair")" && ok || fail "applying $repair"
api POST /tasks/ops-v/verify '{}'
expect 202 "verify after the repair"
wait_run
expect 200 "repaired run" '.state == "finished"' '.rows == []' \
    '.result.missing == 0 and .result.extra == 0 and .result.different == 0'

touch "$STOPW"
wait "$W1" "$W2"
# the target caught up with the writers: the same rows on both sides
same() {
    [ "$(src_sql "CHECKSUM TABLE ops_v.busy, ops_v.comp, ops_v.strk EXTENDED" | awk '{print $2}' | tr '\n' ' ')" = \
      "$(dst_sql "CHECKSUM TABLE ops_v.busy, ops_v.comp, ops_v.strk EXTENDED" | awk '{print $2}' | tr '\n' ' ')" ]
}
for _ in $(seq 1 300); do same && break; sleep 0.1; done
same && ok || fail "target differs from source after the repair"

# a run stopped by deleting the task ends cleanly (no leak, no crash)
api POST /tasks/ops-v/stop '{}'
api POST /tasks/ops-v/verify '{}'
expect 202 "verify before delete"
api DELETE /tasks/ops-v
expect 204 "delete while verifying"
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS ops_v"
dst_sql "DROP DATABASE IF EXISTS ops_v"
finish
