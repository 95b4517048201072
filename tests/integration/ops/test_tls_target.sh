#!/usr/bin/env bash
# test_tls_target.sh - DM's cert_allowed_cn on a task's target, enforced: the sandbox target is
# restarted offering TLS with a certificate whose subject has two common names, decoy-name and
# then sluice-target (the last one is the name DM reads); a full task whose target security names
# that CA and sluice-target copies its table; one that allows only another name, or only the
# first CN, pauses with the name in the error (fatal: no automatic resume); the target is then
# restarted as it was.
. "$(dirname "$0")/../api/lib.sh"
SANDBOX=${SLUICE_SOURCE_DIR:?SLUICE_SOURCE_DIR is not set}/scripts/sandbox
: "${SLUICE_SANDBOX_DIR:?SLUICE_SANDBOX_DIR is not set (scripts/sandbox env)}"
T=$WORK/tls
make_pki "$T" "decoy-name/CN=sluice-target"
restore() { "$SANDBOX" restart target >/dev/null 2>&1; }
trap 'restore; cleanup' EXIT
SLUICE_SANDBOX_TARGET_TLS_DIR=$T "$SANDBOX" restart target >"$WORK/restart.log" 2>&1 ||
    { cat "$WORK/restart.log" >&2; echo "FAIL: restart the target with TLS" >&2; exit 1; }
[ "$(dst_sql "SELECT @@have_ssl")" = YES ] && ok || fail "the target does not offer TLS"

src_sql "DROP DATABASE IF EXISTS ops_tls; CREATE DATABASE ops_tls; CREATE TABLE ops_tls.t (id INT PRIMARY KEY);
         INSERT INTO ops_tls.t SELECT seq FROM ops_tls.seq_1_to_100" || { echo "FAIL: source" >&2; exit 1; }
dst_sql "DROP DATABASE IF EXISTS ops_tls"
start_server "$WORK/data"
api POST /sources "{\"source_name\":\"tls-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"
task() {   # NAME CN
    jq -cn --arg n "$1" --arg cn "$2" --arg ca "$(cat "$T/ca.pem")" --arg h "$SLUICE_TARGET_HOST" \
        --argjson p "$SLUICE_TARGET_PORT" --arg u "$SLUICE_TARGET_USER" --arg pw "$SLUICE_TARGET_PASSWORD" \
        --arg dd "$WORK/dump" \
        '{task: {name: $n, task_mode: "full", target_config: {host: $h, port: $p, user: $u, password: $pw,
          security: {ssl_ca_content: $ca, cert_allowed_cn: [$cn]}},
          table_migrate_rule: [{source: {source_name: "tls-src", schema: "ops_tls", table: "*"}}],
          source_config: {full_migrate_conf: {data_dir: $dd}, source_conf: [{source_name: "tls-src"}]}}}'
}
stage_of() {   # TASK WANT: wait (bounded) for the stage
    for _ in $(seq 1 300); do
        api GET "/tasks/$1/status"
        [ "$(printf '%s' "$BODY" | jq -r '.data[0].stage')" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
api POST /tasks "$(task tls-ok sluice-target)"
expect 200 "task with the right common name" 'has("check_result")|not'
api POST /tasks/tls-ok/start '{}'
expect 200 "start"
stage_of tls-ok Finished && ok || fail "the task with the right name did not finish: $BODY"
[ "$(dst_sql "SELECT COUNT(*) FROM ops_tls.t")" = 100 ] && ok || fail "rows did not arrive over TLS"

for bad in someone-else decoy-name; do
    api POST /tasks "$(task "tls-$bad" "$bad")"
    expect 200 "task that allows only $bad"
    api POST "/tasks/tls-$bad/start" '{}'
    stage_of "tls-$bad" Paused && ok || fail "the task that allows only $bad did not pause: $BODY"
    api GET "/tasks/tls-$bad/status"
    expect 200 "the name is in the error ($bad allowed)" \
        '.data[0].error_msg|test("common name \"sluice-target\" is not in cert_allowed_cn")' \
        '.data[0].auto_resume.error_class=="fatal"'
done
for t in tls-ok tls-someone-else tls-decoy-name; do api DELETE "/tasks/$t?force=true"; expect 204 "delete $t"; done
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS ops_tls"
dst_sql "DROP DATABASE IF EXISTS ops_tls"
finish
