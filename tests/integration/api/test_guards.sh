#!/usr/bin/env bash
# test_guards.sh - what an operator's mistake must not do, found by trying them:
# - start with remove_meta drops the checkpoints of every source of the task (they share its
#   tables in the meta schema): with a source_name_list naming some of them it is refused (it
#   used to drop the others' checkpoints under them, and a restart then began at the binlog's
#   end, losing rows); on a task_mode all that had reached its incremental phase it dumps again
#   (it used to go on at the binlog's end without the rows written while it was stopped);
# - a second sluice-server on a data dir in use, or on an address in use, stops before it
#   restores anything (it used to start the first one's tasks beside it);
# - a task may not be named like the fixed paths under /tasks (templates, converters);
# - "%00" in a path does not cut the name short (DELETE /sources/a%00b deleted source a), nor
#   does "%2F" split it;
# - unknown fields of a source and of a start or stop request are refused, not dropped;
# - a long URI gets the JSON error body while it fits the connection's memory, and past that
#   libmicrohttpd's own 414 (its HTML page cannot be replaced), after which the server goes on;
# - a malformed body is refused where the endpoint reads none (it started a verify run, and
#   disabled a source);
# - a source whose password changes under a running task pauses it with errno 1045 (fatal), where
#   the reader used to retry every 5 s for ever with the task shown Running;
# - a POST from another site's web page (Origin) or to a Host that is not loopback is refused
#   (it created a source);
# - GET /sources and GET /tasks list in name order, before a restart as after it (they listed in
#   creation order until the server restarted, then in name order);
# - unlocking a shard DDL lock the task does not have is DM's 38019 (lock not found), not 49005,
#   the code of an etcd without quorum, which it shared;
# - POST and PUT of a task with three independent mistakes report all three in one 400, as
#   `sluice check-task` does (they reported the unknown source alone), at paths into the body as
#   it was sent (a bare task got paths under /task), error_code the first one's.
. "$(dirname "$0")/lib.sh"

S=gd_one T=gd_two
for db in $S $T; do
    src_sql "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db;
             CREATE TABLE $db.t (id INT PRIMARY KEY, v VARCHAR(20));
             INSERT INTO $db.t SELECT seq, 'full' FROM $db.seq_1_to_300" ||
        { echo "FAIL: cannot prepare the source" >&2; exit 1; }
    dst_sql "DROP DATABASE IF EXISTS $db" || { echo "FAIL: cannot reach the target" >&2; exit 1; }
done

start_server "$WORK/data"
srcdef() {   # NAME [EXTRA-JSON-FIELDS]
    printf '{"source_name":"%s","host":"%s","port":%s,"user":"%s","password":"%s","enable":true%s}' \
        "$1" "$SLUICE_SOURCE_HOST" "$SLUICE_SOURCE_PORT" "$SLUICE_SOURCE_USER" "$SLUICE_SOURCE_PASSWORD" "${2:-}"
}

# ---- unknown fields of a source: refused, nothing created or changed -----------------------------
api POST /sources "$(srcdef gd-a ',"enabel_gtid":false')"
expect 400 "misspelled enable_gtid" '.error_msg|test("/source/enabel_gtid: unknown field")' '.error_code>0'
api POST /sources "{\"source\":$(srcdef gd-a ',"purge":{"intervall":5}')}"
expect 400 "misspelled purge.interval" '.error_msg|test("/source/purge/intervall: unknown field")'
api POST /sources "{\"source\":$(srcdef gd-a),\"worker\":\"w1\"}"
expect 400 "unknown field beside source" '.error_msg|test("/worker: unknown field")'
api GET /sources/gd-a
expect 404 "nothing created"
api POST /sources "$(srcdef gd-a)"
expect 201 "source a"
api POST /sources "{\"source\":$(srcdef gd-b),\"worker_name\":\"\"}"
expect 201 "source b (DM's wrapped form)"
api PUT /sources/gd-a '{"source":{"pasword":"x"}}'
expect 400 "misspelled password on PUT" '.error_msg|test("/source/pasword: unknown field")'
api GET "/sources/gd-a?with_status=true"
expect 200 "source a as GET shows it"
api PUT /sources/gd-a "{\"source\":$(printf '%s' "$BODY" | jq -c '.password = env.SLUICE_SOURCE_PASSWORD')}"
expect 200 "a GET sent back as a PUT (with task_name_list and status_list) is accepted"

# ---- "%00" does not cut a name short ------------------------------------------------------------
api DELETE "/sources/gd-b%00zzz"
expect 404 "a NUL escape is part of the name"
api GET /sources/gd-b
expect 200 "source b still there"
api GET "/sources/gd-b%2Fstatus"
expect 404 "an escaped slash is part of the name" '.error_msg|test("gd-b%2Fstatus")'

# ---- long URIs: JSON while they fit the connection's 32 KiB; beyond it libmicrohttpd answers 414
# with its built-in HTML page, which it gives no way to replace (docs/tasks.md); the server goes on
long=$(head -c 20000 /dev/zero | tr '\0' a)
api GET "/tasks/$long"
expect 404 "a 20000-character task name: JSON error" "$ERRBODY" '.error_code==46018'
long=$(head -c 40000 /dev/zero | tr '\0' a)
api GET "/tasks/$long"
[ "$CODE" = 414 ] && ok || fail "a 40000-character URI: HTTP $CODE, want 414"
api GET /sources/gd-b
expect 200 "served after the long URI"

# ---- a malformed body is refused also where the endpoint reads none -----------------------------
api POST /sources/gd-b/disable 'garbage{'
expect 400 "malformed body of disable" '.error_msg|test("malformed JSON body")'
api GET /sources/gd-b
expect 200 "source b still enabled" '.enable==true'

# ---- reserved task names -------------------------------------------------------------------------
task() {   # NAME
    printf '{"task":{"name":"%s","task_mode":"all","target_config":{"host":"%s","port":%s,"user":"%s","password":"%s"},"table_migrate_rule":[{"source":{"source_name":"gd-a","schema":"%s","table":"*"}},{"source":{"source_name":"gd-b","schema":"%s","table":"*"}}],"source_config":{"full_migrate_conf":{"data_dir":"%s"},"source_conf":[{"source_name":"gd-a"},{"source_name":"gd-b"}]}}}' \
        "$1" "$SLUICE_TARGET_HOST" "$SLUICE_TARGET_PORT" "$SLUICE_TARGET_USER" "$SLUICE_TARGET_PASSWORD" "$S" "$T" "$WORK/dump"
}
for n in templates converters; do
    api POST /tasks "$(task $n)"
    expect 400 "task named $n" '.error_code==49105' '.error_msg|test("reserved")'
done
api GET /tasks
expect 200 "no task created" '.total==0'

# ---- start and stop requests: unknown or mistyped fields -----------------------------------------
api POST /tasks "$(task gd)"
expect 200 "task gd"
api POST /tasks/gd/start '{"remove_meta":"true"}'
expect 400 "remove_meta as a string" '.error_msg|test("/remove_meta: must be true or false")'
api POST /tasks/gd/start '{"bogus_field":1}'
expect 400 "unknown start field" '.error_msg|test("/bogus_field: unknown field")'
api POST /tasks/gd/stop '{"remove_meta":true}'
expect 400 "remove_meta is not a stop field" '.error_msg|test("/remove_meta: unknown field")'
api GET /tasks/gd/status
expect 200 "still not started" 'all(.data[]; .stage!="Running")'
api POST /tasks/gd/shard_ddl_locks/unlock '{"lock_id":"gd-`no`.`such`"}'
expect 404 "unlock of a lock the task does not have" "$ERRBODY" '.error_code==38019' \
    '.error_msg|test("no unresolved shard DDL lock")'

# ---- a task with three independent mistakes: every one reported, as check-task does --------------
CLI=${SLUICE_CLI_BIN:?SLUICE_CLI_BIN is not set}
jq -c '.task | .task_mode = "everything" | .on_duplicate = "skip"
       | .source_config.source_conf[1].source_name = "gd-nosuch"' <<<"$(task gd)" >"$WORK/bad3.json"
jq -c '{task: .}' "$WORK/bad3.json" >"$WORK/bad3-wrapped.json"
api GET /sources
printf '%s' "$BODY" >"$WORK/sources.json"
"$CLI" check-task "$WORK/bad3.json" --sources "$WORK/sources.json" 2>"$WORK/check.txt" >/dev/null
grep -v -e ': 3 errors$' -e '^warning: ' "$WORK/check.txt" >"$WORK/check-lines.txt"
[ "$(wc -l <"$WORK/check-lines.txt")" = 3 ] && ok || fail "check-task does not find the 3 mistakes: $(cat "$WORK/check.txt")"
"$CLI" check-task "$WORK/bad3-wrapped.json" --sources "$WORK/sources.json" 2>&1 >/dev/null |
    grep -v -e ': 3 errors$' -e '^warning: ' >"$WORK/check-wrapped.txt"
PATHS='["/task_mode","/on_duplicate","/source_config/source_conf/1/source_name"]'
api POST /tasks "@$WORK/bad3.json"
expect 400 "POST of a bare task with 3 mistakes: all 3, at paths of the bare task" "$ERRBODY" \
    "[.errors[].path] == $PATHS" '[.errors[].code] == [49103, 49103, 46008]' '.error_code == 49103'
printf '%s\n' "$(printf '%s' "$BODY" | jq -r .error_msg)" | diff - "$WORK/check-lines.txt" >"$WORK/diff" && ok ||
    fail "POST's error_msg is not check-task's lines: $(cat "$WORK/diff")"
api POST /tasks "@$WORK/bad3-wrapped.json"
expect 400 "POST of a wrapped task with 3 mistakes: all 3, under /task" "$ERRBODY" \
    "[.errors[].path] == [$PATHS[] | \"/task\" + .]" '.error_code == 49103'
printf '%s\n' "$(printf '%s' "$BODY" | jq -r .error_msg)" | diff - "$WORK/check-wrapped.txt" >"$WORK/diff" && ok ||
    fail "POST's error_msg (wrapped) is not check-task's lines: $(cat "$WORK/diff")"
api POST /tasks/check "@$WORK/bad3.json"
expect 200 "POST /tasks/check finds the same 3" '.ok == false' "[.errors[].path] == $PATHS"
api PUT /tasks/gd "@$WORK/bad3.json"
expect 400 "PUT of the task with 3 mistakes: all 3" "$ERRBODY" "[.errors[].path] == $PATHS" '.error_code == 49103'
api GET /tasks/gd
expect 200 "the task is unchanged" '.task_mode == "all"' '.source_config.source_conf[1].source_name == "gd-b"'

rows() { dst_sql "SELECT COUNT(*) FROM $1.t" 2>/dev/null; }
wait_rows() {   # DB N
    local i
    for i in $(seq 1 600); do [ "$(rows "$1")" = "$2" ] && return 0; sleep 0.1; done
    fail "$1.t on the target has $(rows "$1") rows, want $2"
}
api POST /tasks/gd/start '{}'
expect 200 "start"
subtasks_synced gd 2
wait_rows $S 300
wait_rows $T 300

# ---- remove_meta for some sources only: refused, the others keep their checkpoints ---------------
api POST /tasks/gd/stop '{"source_name_list":["gd-a"]}'
expect 200 "stop source a"
cp_before=$(dst_sql "SELECT COUNT(*) FROM dm_meta.gd_syncer_checkpoint WHERE source_name='gd-b'")
api POST /tasks/gd/start '{"source_name_list":["gd-a"],"remove_meta":true}'
expect 400 "remove_meta for one source of two" '.error_msg|test("every source")'
api POST /tasks/gd/start '{"remove_meta":true}'
expect 409 "remove_meta while source b runs" '.error_msg|test("gd-b is running")'
cp_after=$(dst_sql "SELECT COUNT(*) FROM dm_meta.gd_syncer_checkpoint WHERE source_name='gd-b'")
[ "$cp_before" -gt 0 ] && [ "$cp_after" = "$cp_before" ] && ok ||
    fail "source b's checkpoint rows: $cp_before before, $cp_after after the refused starts"
api GET /tasks/gd/status
expect 200 "b still running, a still stopped" \
    '[.data[] | select(.source_name=="gd-b")][0].stage=="Running"' \
    '[.data[] | select(.source_name=="gd-a")][0].stage=="Stopped"'

# ---- remove_meta on the stopped task: both sources dump again, nothing written meanwhile lost ----
api POST /tasks/gd/stop '{}'
expect 200 "stop all"
src_sql "INSERT INTO $S.t VALUES (1001, 'while stopped'); UPDATE $S.t SET v = 'changed' WHERE id = 1;
         INSERT INTO $T.t VALUES (1001, 'while stopped'); UPDATE $T.t SET v = 'changed' WHERE id = 2"
api POST /tasks/gd/start '{"remove_meta":true}'
expect 200 "start with remove_meta"
subtasks_synced gd 2
wait_rows $S 301
wait_rows $T 301
got=$(dst_sql "SELECT (SELECT v FROM $S.t WHERE id = 1), (SELECT COUNT(*) FROM $S.t WHERE id = 1001),
                      (SELECT v FROM $T.t WHERE id = 2), (SELECT COUNT(*) FROM $T.t WHERE id = 1001)" | tr '\t' ' ')
[ "$got" = "changed 1 changed 1" ] && ok || fail "target after remove_meta: '$got', want 'changed 1 changed 1'"
[ "$(grep -c 'was never loaded into this target.*dumping again' "$WORK/server.log")" = 2 ] && ok ||
    fail "the two sources did not dump again: $(grep -c 'dumping again' "$WORK/server.log") 'dumping again' lines"
src_sql "INSERT INTO $S.t VALUES (1002, 'after')"
wait_rows $S 302

# ---- the source's password changes under a running task: paused with the error, not retried -----
src_sql "DROP USER IF EXISTS 'gd_pw'@'%'; CREATE USER 'gd_pw'@'%' IDENTIFIED BY 'pw-one';
         GRANT ALL ON *.* TO 'gd_pw'@'%'; DROP DATABASE IF EXISTS gd_pw; CREATE DATABASE gd_pw;
         CREATE TABLE gd_pw.t (id INT PRIMARY KEY); INSERT INTO gd_pw.t VALUES (1)"
api POST /sources "{\"source_name\":\"gd-pw\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"gd_pw\",\"password\":\"pw-one\",\"enable\":true}"
expect 201 "source with its own user"
api POST /tasks "$(task gdpw | jq -c '.task.table_migrate_rule = [{"source":{"source_name":"gd-pw","schema":"gd_pw","table":"*"}}] | .task.source_config.source_conf = [{"source_name":"gd-pw"}]')"
expect 200 "task gdpw"
api POST /tasks/gdpw/start '{}'
expect 200 "start gdpw"
for _ in $(seq 1 300); do api GET /tasks/gdpw/status; [ "$(printf '%s' "$BODY" | jq -r '.data[0].unit')" = Sync ] && break; sleep 0.1; done
wait_rows gd_pw 1
src_sql "ALTER USER 'gd_pw'@'%' IDENTIFIED BY 'pw-two'"
for id in $(src_sql "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'gd_pw'"); do src_sql "KILL $id" 2>/dev/null; done
src_sql "INSERT INTO gd_pw.t VALUES (2)"
for _ in $(seq 1 300); do api GET /tasks/gdpw/status; [ "$(printf '%s' "$BODY" | jq -r '.data[0].stage')" = Paused ] && break; sleep 0.1; done
expect 200 "a refused password pauses the task" '.data[0].stage=="Paused"' '.data[0].error_msg|test("errno 1045")' \
    '.data[0].auto_resume.error_class=="fatal"'
src_sql "ALTER USER 'gd_pw'@'%' IDENTIFIED BY 'pw-one'"
api POST /tasks/gdpw/start '{}'
expect 200 "start again with the password back"
wait_rows gd_pw 2
api DELETE "/tasks/gdpw?force=true"
expect 204 "delete gdpw"
src_sql "DROP USER IF EXISTS 'gd_pw'@'%'; DROP DATABASE IF EXISTS gd_pw"
dst_sql "DROP DATABASE IF EXISTS gd_pw"

# ---- a second server on the same data dir, or on the same address -------------------------------
out=$(timeout 60 "$SERVER" --addr 127.0.0.1:0 --data-dir "$WORK/data" --plugin-dir "$PLUGINS" 2>&1)
rc=$?
if [ "$rc" = 0 ] || [ "$rc" = 124 ]; then
    fail "a second server on the same data dir exited $rc: $out"
elif ! printf '%s' "$out" | grep -q "data dir $WORK/data is in use by another sluice-server with pid $PID"; then
    fail "second server on the same data dir: '$out'"
elif printf '%s' "$out" | grep -q 'restored'; then
    fail "the second server restored tasks: $out"
else
    ok
fi
mkdir -p "$WORK/other"
out=$(timeout 60 "$SERVER" --addr "127.0.0.1:$PORT" --data-dir "$WORK/other" --plugin-dir "$PLUGINS" 2>&1)
rc=$?
if [ "$rc" = 0 ] || [ "$rc" = 124 ] || ! printf '%s' "$out" | grep -q "cannot listen on 127.0.0.1:$PORT: Address already in use" ||
   printf '%s' "$out" | grep -q 'restored'; then
    fail "a second server on the same address (exit $rc): $out"
else
    ok
fi
src_sql "INSERT INTO $T.t VALUES (1002, 'after')"
wait_rows $T 302
api GET /tasks/gd/status
expect 200 "the first server's task runs on" 'all(.data[]; .stage=="Running")'
grep -q 'already connected' "$WORK/server.log" && fail "a second binlog reader displaced the first" || ok

# ---- a web page of another site, or one whose DNS name points here, is refused ----------------
code=$(curl -s -o "$WORK/xo.json" -w '%{http_code}' -X POST -H 'Content-Type: text/plain' \
       -H 'Origin: http://evil.example' --data "$(srcdef gd-evil)" "$A/sources")
[ "$code" = 403 ] && jq -e '.error_msg|test("another origin")' "$WORK/xo.json" >/dev/null && ok ||
    fail "a cross-origin POST: $code $(cat "$WORK/xo.json")"
api GET /sources/gd-evil
expect 404 "nothing created by the cross-origin POST"
code=$(curl -s -o "$WORK/xo.json" -w '%{http_code}' -H "Host: evil.example:$PORT" "$A/sources")
[ "$code" = 403 ] && jq -e '.error_msg|test("loopback")' "$WORK/xo.json" >/dev/null && ok ||
    fail "a rebound Host: $code $(cat "$WORK/xo.json")"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Origin: http://127.0.0.1:$PORT" "$A/sources")
[ "$code" = 200 ] && ok || fail "the server's own origin: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: localhost:$PORT" "$A/sources")
[ "$code" = 200 ] && ok || fail "Host localhost: $code"

# ---- lists in name order, the same before and after a restart ----------------------------------
api POST /sources "$(srcdef gd-0)"
expect 201 "a source created last, named first"
api POST /tasks "$(task gc)"
expect 200 "a task created last, named first"
listed() {   # what GET /sources and GET /tasks list, in their order
    api GET /sources; printf '%s ' "$(printf '%s' "$BODY" | jq -c '[.data[].source_name]')"
    api GET /tasks; printf '%s' "$BODY" | jq -c '[.data[].name]'
}
want='["gd-0","gd-a","gd-b","gd-pw"] ["gc","gd"]'
got=$(listed)
[ "$got" = "$want" ] && ok || fail "lists before the restart: $got, want $want"
stop_server
start_server "$WORK/data"
got=$(listed)
[ "$got" = "$want" ] && ok || fail "lists after the restart: $got, want $want"
api DELETE /tasks/gc
expect 204 "delete gc"
subtasks_synced gd 2

api POST /tasks/gd/verify 'zz'
expect 400 "malformed body of verify" '.error_msg|test("malformed JSON body")'
api GET /tasks/gd/verify
expect 200 "no verify run started" '.state=="none"'
api DELETE "/tasks/gd?force=true"
expect 204 "delete"
stop_server
check_log
for db in $S $T; do src_sql "DROP DATABASE IF EXISTS $db"; dst_sql "DROP DATABASE IF EXISTS $db"; done
finish
