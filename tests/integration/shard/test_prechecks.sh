#!/usr/bin/env bash
# test_prechecks.sh - what a shard merge refuses before it copies anything, and what its load
# never does (exploratory report 9, D4, D6(b), D15), through a real server and sandbox:
# A. three shards with overlapping AUTO_INCREMENT ids (two on one source, one on another) merged
#    into one table with the default on_duplicate (replace): the full load replaced rows of one
#    shard with another's and kept a fraction of them, silently. Now POST /tasks/check and
#    `sluice check-task --precheck` name the problem (DM's auto_increment_ID), a start is refused
#    with nothing loaded, and with the item in ignore_checking_items the load pauses at the
#    first shared key: every shard's rows are in the target entirely and unchanged, or not at
#    all. The id ranges overlap in part (1-300, 101-300, 201-450), so whichever shard loads
#    last, a replacing load leaves another in part. Both load paths: the bulk INSERT (A) and
#    LOAD DATA (a table with a TEXT column, A2).
# B. a table of one source table keeps on_duplicate replace: a row the target held is replaced.
# C. shards with other columns (D6(b)): schema_of_shard_tables refuses them (pessimistic), warns
#    of those optimistic mode joins, refuses those it cannot join, and can be ignored.
# D. two tasks routing into one target table (D15): check warns, a start beside the running one
#    is refused (409) naming both; once the first is stopped the second starts.
. "$(dirname "$0")/../api/lib.sh"
CLI=${SLUICE_CLI_BIN:?SLUICE_CLI_BIN is not set}

DBS="pc_a pc_b pc_c pcm pcu_a pcu_b pcum pc_one pco pcs_a pcs_b pcsm pci_a pci_b pcq_a pcq_b pcqm pce_a pce_b pcr_a pcr_b"
for db in $DBS; do src_sql "DROP DATABASE IF EXISTS $db"; dst_sql "DROP DATABASE IF EXISTS $db"; done
ai="(id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20) NOT NULL, n INT)"
src_sql "CREATE DATABASE pc_a; CREATE DATABASE pc_b; CREATE DATABASE pc_c;
         CREATE TABLE pc_a.t $ai; CREATE TABLE pc_b.t $ai AUTO_INCREMENT = 101;
         CREATE TABLE pc_c.t $ai AUTO_INCREMENT = 201; USE pc_a;
         INSERT INTO pc_a.t (v, n) SELECT CONCAT('a-', seq), seq FROM seq_1_to_300;
         INSERT INTO pc_b.t (v, n) SELECT CONCAT('b-', seq), seq * 2 FROM seq_1_to_200;
         INSERT INTO pc_c.t (v, n) SELECT CONCAT('c-', seq), seq * 3 FROM seq_1_to_250;
         CREATE DATABASE pcu_a; CREATE DATABASE pcu_b;
         CREATE TABLE pcu_a.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(20) NOT NULL, note TEXT);
         CREATE TABLE pcu_b.t LIKE pcu_a.t; ALTER TABLE pcu_b.t AUTO_INCREMENT = 51;
         INSERT INTO pcu_a.t (v, note) SELECT CONCAT('a-', seq), REPEAT('x', seq) FROM seq_1_to_120;
         INSERT INTO pcu_b.t (v, note) SELECT CONCAT('b-', seq), REPEAT('y', seq) FROM seq_1_to_80;
         CREATE DATABASE pc_one; CREATE TABLE pc_one.t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO pc_one.t VALUES (1, 'new'), (2, 'two');
         CREATE DATABASE pcs_a; CREATE DATABASE pcs_b; CREATE DATABASE pci_a; CREATE DATABASE pci_b;
         CREATE TABLE pcs_a.t (id INT PRIMARY KEY, v VARCHAR(20), w INT NULL);
         CREATE TABLE pcs_b.t (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO pcs_a.t VALUES (1, 'a', 1); INSERT INTO pcs_b.t VALUES (2, 'b');
         CREATE TABLE pci_a.t (id INT PRIMARY KEY, v INT); CREATE TABLE pci_b.t (id INT PRIMARY KEY, v VARCHAR(20));
         CREATE DATABASE pce_a; CREATE DATABASE pce_b; CREATE DATABASE pcr_a; CREATE DATABASE pcr_b;
         CREATE TABLE pce_a.t (id INT PRIMARY KEY, e ENUM('x','it''s'), m TEXT, d DATETIME);
         CREATE TABLE pce_b.t (id INT PRIMARY KEY, e ENUM('x','it''s','z'), m MEDIUMTEXT, d DATETIME(3));
         CREATE TABLE pcr_a.t (id INT PRIMARY KEY, e ENUM('x','y'));
         CREATE TABLE pcr_b.t (id INT PRIMARY KEY, e ENUM('y','x'));
         CREATE DATABASE pcq_a; CREATE DATABASE pcq_b;
         CREATE TABLE pcq_a.t (id INT PRIMARY KEY, v VARCHAR(20)); CREATE TABLE pcq_b.t LIKE pcq_a.t;
         INSERT INTO pcq_a.t VALUES (1, 'a'), (2, 'a'); INSERT INTO pcq_b.t VALUES (101, 'b')" ||
    { echo "FAIL: cannot prepare the source" >&2; exit 1; }
dst_sql "CREATE DATABASE pco; CREATE TABLE pco.t (id INT PRIMARY KEY, v VARCHAR(20)); INSERT INTO pco.t VALUES (1, 'old')"

start_server "$WORK/data"
srcdef() { printf '{"source_name":"%s","host":"%s","port":%s,"user":"%s","password":"%s","enable":true}' \
    "$1" "$SLUICE_SOURCE_HOST" "$SLUICE_SOURCE_PORT" "$SLUICE_SOURCE_USER" "$SLUICE_SOURCE_PASSWORD"; }
for s in pc-1 pc-2; do
    api POST /sources "$(srcdef $s)"
    expect 201 "source $s"
done
printf '[%s,%s]' "$(srcdef pc-1)" "$(srcdef pc-2)" >"$WORK/sources.json"
# task NAME RULES SOURCES [EXTRA]: a bare task (EXTRA: more top-level fields, with a leading comma)
task() {
    printf '{"name":"%s","task_mode":"all","target_config":{"host":"%s","port":%s,"user":"%s","password":"%s"},"table_migrate_rule":%s,"source_config":{"full_migrate_conf":{"data_dir":"%s"},"source_conf":%s}%s}' \
        "$1" "$SLUICE_TARGET_HOST" "$SLUICE_TARGET_PORT" "$SLUICE_TARGET_USER" "$SLUICE_TARGET_PASSWORD" "$2" "$WORK/dump" "$3" "${4:-}"
}
rule() { printf '{"source":{"source_name":"%s","schema":"%s","table":"t"},"target":{"schema":"%s","table":"t"}}' "$1" "$2" "$3"; }
stages() { api GET "/tasks/$1/status"; printf '%s' "$BODY" | jq -r '[.data[].stage] | sort | join(",")'; }
# settled TASK: wait until one subtask is Paused and none still loads (each Paused or in Sync)
settled() {
    local i
    for i in $(seq 1 600); do
        api GET "/tasks/$1/status"
        printf '%s' "$BODY" | jq -e '([.data[] | select(.stage=="Paused")] | length > 0) and
            all(.data[]; .stage=="Paused" or (.stage=="Running" and .unit=="Sync"))' >/dev/null && return 0
        sleep 0.1
    done
    return 1
}
# shard_rows SRC_SCHEMA TARGET PREFIX COLS: how many of the shard's rows the target holds, when it
# holds every one of them exactly as the source has them; "partial" otherwise
shard_rows() {
    local want got n
    want=$(src_sql "SELECT $4 FROM $1.t ORDER BY id")
    got=$(dst_sql "SELECT $4 FROM $2.t WHERE v LIKE '$3-%' ORDER BY id")
    n=$(printf '%s' "$got" | grep -c .)
    if [ "$n" = 0 ]; then echo 0; elif [ "$got" = "$want" ]; then echo "$n"; else echo partial; fi
}

# ---- A: overlapping AUTO_INCREMENT ids, the bulk path --------------------------------------------
RULES_A="[$(rule pc-1 'pc_[ab]' pcm),$(rule pc-2 pc_c pcm)]"
TASK_A=$(task pc-ai "$RULES_A" '[{"source_name":"pc-1"},{"source_name":"pc-2"}]' ',"shard_mode":"pessimistic"')
api POST /tasks/check "{\"task\":$TASK_A}"
expect 200 "A: check finds the AUTO_INCREMENT key" '.ok == false' \
    '[.errors[] | select(.code == 26005 and (.msg | test("auto_increment_ID")))] | length == 1' \
    '.errors[0].msg | test("`pcm`.`t`") and test("`id`") and test("PRIMARY") and test("ignore_checking_items")' \
    '.errors[0].msg | test("pc-1 `pc_a`.`t`") and test("pc-1 `pc_b`.`t`") and test("pc-2 `pc_c`.`t`")'
printf '%s' "$TASK_A" >"$WORK/a.json"
out=$("$CLI" check-task "$WORK/a.json" --sources "$WORK/sources.json" --precheck 2>&1); rc=$?
[ "$rc" = 1 ] && printf '%s' "$out" | grep -q 'precheck auto_increment_ID: target table `pcm`.`t`' && ok ||
    fail "A: check-task --precheck: exit $rc, want 1 naming auto_increment_ID: $out"
api POST /tasks "{\"task\":$TASK_A}"
expect 200 "A: create"
api POST /tasks/pc-ai/start '{}'
expect 400 "A: the start is refused" '.error_code == 26005' \
    '.error_msg | test("can not start task: pc-ai") and test("auto_increment_ID") and test("`pcm`.`t`")'
[ "$(stages pc-ai)" = "Stopped,Stopped" ] && ok || fail "A: after the refused start the subtasks are $(stages pc-ai)"
[ "$(dst_sql "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'pcm'")" = 0 ] && ok ||
    fail "A: the refused start created pcm on the target"
# with the item ignored: the load stops at the first key two shards share, replacing nothing
api PUT /tasks/pc-ai "{\"task\":$(task pc-ai "$RULES_A" '[{"source_name":"pc-1"},{"source_name":"pc-2"}]' ',"shard_mode":"pessimistic","ignore_checking_items":["auto_increment_ID"]')}"
expect 200 "A: update with ignore_checking_items"
api POST /tasks/check "{\"task\":$(task pc-ai "$RULES_A" '[{"source_name":"pc-1"},{"source_name":"pc-2"}]' ',"shard_mode":"pessimistic","ignore_checking_items":["auto_increment_ID"]')}"
expect 200 "A: the ignored item is not checked" '.ok == true' '[.warnings[] | select(.msg | test("ignore_checking_items"))] | length == 0'
api POST /tasks/pc-ai/start '{}'
expect 200 "A: start with auto_increment_ID ignored"
if settled pc-ai; then ok; else fail "A: no subtask paused on the shared keys: ${BODY:0:800}"; fi
expect 200 "A: the pause names the table and a shared key" \
    '[.data[] | select(.stage=="Paused")] | all(.error_msg | test("would replace [0-9]+ rows? already in `pcm`.`t`") and test("Duplicate entry .[0-9]+. for key .PRIMARY."))'
tot=0; full=0; none=0
for s in a b c; do
    n=$(shard_rows "pc_$s" pcm "$s" "id, v, n")
    case $n in
        partial) fail "A: shard pc_$s is in pcm.t in part, or changed: $(dst_sql "SELECT COUNT(*) FROM pcm.t WHERE v LIKE '$s-%'") rows" ;;
        0) none=$((none + 1)) ;;
        *) full=$((full + 1)); tot=$((tot + n)) ;;
    esac
done
[ "$(dst_sql "SELECT COUNT(*) FROM pcm.t")" = "$tot" ] && ok || fail "A: pcm.t holds rows of no shard"
[ "$full" -ge 1 ] && [ "$none" -ge 1 ] && ok || fail "A: $full shards loaded whole and $none not at all; want >= 1 of each"
api DELETE "/tasks/pc-ai?force=true"
expect 204 "A: delete"

# ---- A2: the same through LOAD DATA (a TEXT column), both shards on one source ------------------
TASK_A2=$(task pc-ai2 "[$(rule pc-1 'pcu_*' pcum)]" '[{"source_name":"pc-1"}]' ',"ignore_checking_items":["all"]')
api POST /tasks "{\"task\":$TASK_A2}"
expect 200 "A2: create"
api POST /tasks/pc-ai2/start '{}'
expect 200 "A2: start with every item ignored"
if settled pc-ai2; then ok; else fail "A2: the subtask did not pause: ${BODY:0:800}"; fi
expect 200 "A2: the pause names the table and a shared key" \
    '.data[0].error_msg | test("already in `pcum`.`t`") and test("Duplicate entry .[0-9]+. for key .PRIMARY.")'
na=$(shard_rows pcu_a pcum a "id, v, note"); nb=$(shard_rows pcu_b pcum b "id, v, note")
{ [ "$na" = 120 ] && [ "$nb" = 0 ]; } || { [ "$na" = 0 ] && [ "$nb" = 80 ]; } && ok ||
    fail "A2: want one shard whole and the other absent, got pcu_a $na, pcu_b $nb"
api DELETE "/tasks/pc-ai2?force=true"
expect 204 "A2: delete"

# ---- B: one source table into a table that holds a row of its key: replaced, as documented ------
api POST /tasks "{\"task\":$(task pc-one "[$(rule pc-1 pc_one pco)]" '[{"source_name":"pc-1"}]')}"
expect 200 "B: create"
api POST /tasks/pc-one/start '{}'
expect 200 "B: start"
subtasks_synced pc-one 1 && ok
[ "$(dst_sql "SELECT GROUP_CONCAT(id, v ORDER BY id) FROM pco.t")" = "1new,2two" ] && ok ||
    fail "B: pco.t is $(dst_sql "SELECT GROUP_CONCAT(id, v ORDER BY id) FROM pco.t")"
api DELETE "/tasks/pc-one?force=true"
expect 204 "B: delete"

# ---- C: shards with other columns ----------------------------------------------------------------
RULES_C="[$(rule pc-1 'pcs_*' pcsm)]"
api POST /tasks/check "{\"task\":$(task pc-s "$RULES_C" '[{"source_name":"pc-1"}]' ',"shard_mode":"pessimistic"')}"
expect 200 "C: check finds the shards' columns differ" '.ok == false' \
    '[.errors[] | select(.code == 26005 and (.msg | test("schema_of_shard_tables")))] | length == 1' \
    '.errors[0].msg | test("`pcsm`.`t`") and test("`w`") and test("pcs_a") and test("pcs_b")'
api POST /tasks "{\"task\":$(task pc-s "$RULES_C" '[{"source_name":"pc-1"}]' ',"shard_mode":"pessimistic"')}"
expect 200 "C: create"
api POST /tasks/pc-s/start '{}'
expect 400 "C: the start is refused" '.error_code == 26005' '.error_msg | test("schema_of_shard_tables")'
[ "$(stages pc-s)" = "Stopped" ] && ok || fail "C: after the refused start the subtask is $(stages pc-s)"
[ "$(dst_sql "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'pcsm'")" = 0 ] && ok ||
    fail "C: the refused start created pcsm on the target"
api DELETE "/tasks/pc-s?force=true"
expect 204 "C: delete"
api POST /tasks/check "{\"task\":$(task pc-s "$RULES_C" '[{"source_name":"pc-1"}]' ',"shard_mode":"optimistic"')}"
expect 200 "C: optimistic mode joins a missing column: a warning" '.ok == true' \
    '[.warnings[] | select(.code == 26005 and (.msg | test("schema_of_shard_tables") and test("joined columns")))] | length == 1'
api POST /tasks/check "{\"task\":$(task pc-i "[$(rule pc-1 'pci_*' pcsm)]" '[{"source_name":"pc-1"}]' ',"shard_mode":"optimistic"')}"
expect 200 "C: optimistic mode cannot join INT and VARCHAR" '.ok == false' \
    '[.errors[] | select(.msg | test("schema_of_shard_tables") and test("do not join") and test("`v`"))] | length == 1'
api POST /tasks/check "{\"task\":$(task pc-e "[$(rule pc-1 'pce_*' pcsm)]" '[{"source_name":"pc-1"}]' ',"shard_mode":"optimistic"')}"
expect 200 "C: optimistic mode joins an ENUM extended, TEXT and MEDIUMTEXT, DATETIME and DATETIME(3)" \
    '.ok == true' '[.warnings[] | select(.msg | test("schema_of_shard_tables") and test("joined columns"))] | length == 1'
api POST /tasks/check "{\"task\":$(task pc-r "[$(rule pc-1 'pcr_*' pcsm)]" '[{"source_name":"pc-1"}]' ',"shard_mode":"optimistic"')}"
expect 200 "C: optimistic mode cannot join two orders of an ENUM's members" '.ok == false' \
    '[.errors[] | select(.msg | test("schema_of_shard_tables") and test("do not join") and test("`e`"))] | length == 1'
api POST /tasks/check "{\"task\":$(task pc-s "$RULES_C" '[{"source_name":"pc-1"}]' ',"shard_mode":"pessimistic","ignore_checking_items":["schema_of_shard_tables"]')}"
expect 200 "C: the ignored item is not checked" '.ok == true' '.errors == []'

# ---- D: two tasks, one target table --------------------------------------------------------------
TASK_QB=$(task pc-qb "[$(rule pc-2 pcq_b pcqm)]" '[{"source_name":"pc-2"}]')
api POST /tasks "{\"task\":$(task pc-qa "[$(rule pc-1 pcq_a pcqm)]" '[{"source_name":"pc-1"}]')}"
expect 200 "D: create qa"
api POST /tasks "{\"task\":$TASK_QB}"
expect 200 "D: create qb"
api POST /tasks/pc-qa/start '{}'
expect 200 "D: start qa"
subtasks_synced pc-qa 1 && ok
api POST /tasks/check "{\"task\":$TASK_QB}"
expect 200 "D: check warns of the other task" '.ok == true' \
    '[.warnings[] | select(.msg | test("task pc-qa \\(Running\\) writes `pcqm`.`t` too"))] | length == 1'
api POST /tasks/pc-qb/start '{}'
expect 409 "D: the start beside the running task is refused" '.error_code == 38058' \
    '.error_msg | test("can not start task: pc-qb") and test("task pc-qa") and test("`pcqm`.`t`")'
[ "$(stages pc-qb)" = "Stopped" ] && ok || fail "D: after the refused start qb is $(stages pc-qb)"
api POST /tasks/pc-qa/stop '{}'
expect 200 "D: stop qa"
api POST /tasks/pc-qb/start '{}'
expect 200 "D: qb starts once qa does not write"
subtasks_synced pc-qb 1 && ok
# two starts at once: each start's prechecks ran outside the lock and found the other task not
# writing, so both started; now the second runs them again and is refused
for round in 1 2 3; do
    api POST /tasks/pc-qb/stop '{}'
    expect 200 "D2 round $round: stop qb"
    pids=()
    for t in pc-qa pc-qb; do
        curl -sS -o "$WORK/start-$t" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
            --data-binary '{}' "$A/tasks/$t/start" > "$WORK/code-$t" &
        pids+=($!)
    done
    wait "${pids[@]}"       # not the server, which runs in the background too
    codes="$(cat "$WORK/code-pc-qa") $(cat "$WORK/code-pc-qb")"
    case "$codes" in
    "200 409") started=pc-qa refused=pc-qb ;;
    "409 200") started=pc-qb refused=pc-qa ;;
    *) fail "D2 round $round: two starts at once answered $codes, not one 200 and one 409: $(cat "$WORK/start-pc-qa") $(cat "$WORK/start-pc-qb")"; continue ;;
    esac
    jq -e '.error_code == 38058 and (.error_msg | test("task pc-q[ab]") and test("`pcqm`.`t`"))' \
        "$WORK/start-$refused" >/dev/null && ok || fail "D2 round $round: $refused's refusal: $(cat "$WORK/start-$refused")"
    [ "$(stages $refused)" = "Stopped" ] && ok || fail "D2 round $round: the refused $refused is $(stages $refused)"
    subtasks_synced $started 1 && ok
    api POST /tasks/$started/stop '{}'
    expect 200 "D2 round $round: stop $started"
    api POST /tasks/pc-qb/start '{}'
    expect 200 "D2 round $round: qb starts again"
    subtasks_synced pc-qb 1 && ok
done
for t in pc-qa pc-qb; do api DELETE "/tasks/$t?force=true"; expect 204 "D: delete $t"; done

stop_server
check_log
for db in $DBS; do src_sql "DROP DATABASE IF EXISTS $db"; dst_sql "DROP DATABASE IF EXISTS $db"; done
finish
