#!/usr/bin/env bash
# test_tls_masked.sh - GET then PUT of a source or a task whose connection logs in with a client
# certificate: the answer shows each ssl_*_content as "******", and sent back as it is that stands
# for the stored PEM content (the source's probe and the task's copy still log in as an account
# that requires the certificate's subject); "" removes it, another value replaces it, and with
# another host, port or user "******" is refused. The sandbox target is restarted offering TLS
# (its server is both the source of the round trip and the task's target), then as it was.
. "$(dirname "$0")/../api/lib.sh"
SANDBOX=${SLUICE_SOURCE_DIR:?SLUICE_SOURCE_DIR is not set}/scripts/sandbox
: "${SLUICE_SANDBOX_DIR:?SLUICE_SANDBOX_DIR is not set (scripts/sandbox env)}"
T=$WORK/tls
make_pki "$T" sluice-target tls-client other-client
restore() {
    dst_sql "DROP USER IF EXISTS 'tls_x509'@'%'" >/dev/null 2>&1
    "$SANDBOX" restart target >/dev/null 2>&1
}
trap 'restore; cleanup' EXIT
SLUICE_SANDBOX_TARGET_TLS_DIR=$T "$SANDBOX" restart target >"$WORK/restart.log" 2>&1 ||
    { cat "$WORK/restart.log" >&2; echo "FAIL: restart the target with TLS" >&2; exit 1; }
[ "$(dst_sql "SELECT @@have_ssl")" = YES ] && ok || fail "the target does not offer TLS"
# an account that logs in only with the certificate of tls-client
dst_sql "DROP USER IF EXISTS 'tls_x509'@'%'; CREATE USER 'tls_x509'@'%' IDENTIFIED BY 'x509-pw'
         REQUIRE SUBJECT '/CN=tls-client'; GRANT ALL ON *.* TO 'tls_x509'@'%'" ||
    { echo "FAIL: cannot create the account on the target" >&2; exit 1; }
src_sql "DROP DATABASE IF EXISTS ops_tlsm; CREATE DATABASE ops_tlsm; CREATE TABLE ops_tlsm.t (id INT PRIMARY KEY);
         INSERT INTO ops_tlsm.t VALUES (1), (2), (3)" || { echo "FAIL: source" >&2; exit 1; }
dst_sql "DROP DATABASE IF EXISTS ops_tlsm; DROP DATABASE IF EXISTS tlsm_meta"
CA=$(cat "$T/ca.pem")
start_server "$WORK/data"

# ---- a source: the target's server as the certificate's account (the probe logs in) ----
jq -n --arg h "$SLUICE_TARGET_HOST" --argjson p "$SLUICE_TARGET_PORT" --arg ca "$CA" \
    --arg cert "$(cat "$T/tls-client.pem")" --arg key "$(cat "$T/tls-client.key")" \
    '{source_name: "tls-src", host: $h, port: $p, user: "tls_x509", password: "x509-pw",
      enable: false, security: {ssl_ca_content: $ca, ssl_cert_content: $cert,
      ssl_key_content: $key, cert_allowed_cn: ["sluice-target"]}}' >"$WORK/src.json"
api POST /sources "@$WORK/src.json"
expect 201 "source that logs in with a client certificate"
api GET /sources/tls-src
expect 200 "GET shows the TLS material masked" \
    '.security | .ssl_ca_content == "******" and .ssl_cert_content == "******" and .ssl_key_content == "******"' \
    '.security.cert_allowed_cn == ["sluice-target"]'
printf '%s' "$BODY" >"$WORK/src-get.json"
api PUT /sources/tls-src "@$WORK/src-get.json"
expect 200 "PUT the GET answer back: the probe logs in with the stored certificate"
# and past a restart (the key comes back sealed from the store)
stop_server
start_server "$WORK/data"
api GET /sources/tls-src
printf '%s' "$BODY" >"$WORK/src-get2.json"
api PUT /sources/tls-src "@$WORK/src-get2.json"
expect 200 "PUT the GET answer back after a restart"
# another value replaces the stored one: the certificate of other-client does not log in
jq --arg cert "$(cat "$T/other-client.pem")" --arg key "$(cat "$T/other-client.key")" \
    '.security.ssl_cert_content = $cert | .security.ssl_key_content = $key' "$WORK/src-get.json" >"$WORK/src-other.json"
api PUT /sources/tls-src "@$WORK/src-other.json"
expect 400 "another certificate is used (and refused by the account)" "$ERRBODY" '.error_msg|test("1045|denied")'
# "******" with another user: refused, the stored material is not sent to another account
jq --arg u "$SLUICE_TARGET_USER" --arg pw "$SLUICE_TARGET_PASSWORD" '.user = $u | .password = $pw' \
    "$WORK/src-get.json" >"$WORK/src-user.json"
api PUT /sources/tls-src "@$WORK/src-user.json"
expect 400 "masked TLS material with another user" "$ERRBODY" \
    '.error_msg|test("/source/security/ssl_ca_content: .* only with the stored host, port and user \\(user differs\\)")'
# "" removes it: root logs in without a client certificate, with the CA given again
jq --arg ca "$CA" '.security.ssl_ca_content = $ca | .security.ssl_cert_content = "" | .security.ssl_key_content = ""' \
    "$WORK/src-user.json" >"$WORK/src-clear.json"
api PUT /sources/tls-src "@$WORK/src-clear.json"
expect 200 "PUT with the client certificate removed"
api GET /sources/tls-src
expect 200 "GET after the removal" \
    '.security | .ssl_ca_content == "******" and .ssl_cert_content == "" and .ssl_key_content == ""'
printf '%s' "$BODY" >"$WORK/src-get3.json"
jq '.security.ssl_key_content = "******"' "$WORK/src-get3.json" >"$WORK/src-none.json"
api PUT /sources/tls-src "@$WORK/src-none.json"
expect 400 "masked TLS material where none is stored" "$ERRBODY" '.error_msg|test("ssl_key_content: .*nothing is stored")'
api DELETE /sources/tls-src
expect 204 "delete the source"

# ---- a task whose target is the certificate's account ----
api POST /sources "{\"source_name\":\"plain-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source of the task"
jq -n --arg h "$SLUICE_TARGET_HOST" --argjson p "$SLUICE_TARGET_PORT" --arg ca "$CA" \
    --arg cert "$(cat "$T/tls-client.pem")" --arg key "$(cat "$T/tls-client.key")" --arg dd "$WORK/dump" \
    '{task: {name: "tls-t", task_mode: "full", meta_schema: "tlsm_meta",
      target_config: {host: $h, port: $p, user: "tls_x509", password: "x509-pw",
        security: {ssl_ca_content: $ca, ssl_cert_content: $cert, ssl_key_content: $key}},
      table_migrate_rule: [{source: {source_name: "plain-src", schema: "ops_tlsm", table: "*"}}],
      source_config: {full_migrate_conf: {data_dir: $dd}, source_conf: [{source_name: "plain-src"}]}}}' >"$WORK/task.json"
api POST /tasks "@$WORK/task.json"
expect 200 "task"
api GET /tasks/tls-t
expect 200 "GET task shows the TLS material masked" \
    '.target_config.security | .ssl_ca_content == "******" and .ssl_cert_content == "******" and .ssl_key_content == "******"'
printf '%s' "$BODY" >"$WORK/task-get.json"
api PUT /tasks/tls-t "@$WORK/task-get.json"
expect 200 "PUT the task's GET answer back"
api POST /tasks/tls-t/start '{}'
expect 200 "start"
for _ in $(seq 1 300); do
    api GET /tasks/tls-t/status
    case $(printf '%s' "$BODY" | jq -r '.data[0].stage') in Finished|Paused) break ;; esac
    sleep 0.1
done
expect 200 "the task logs in with the stored certificate and finishes" '.data[0].stage == "Finished"'
[ "$(dst_sql "SELECT COUNT(*) FROM ops_tlsm.t" 2>/dev/null)" = 3 ] && ok || fail "rows did not arrive over TLS"
jq '.target_config.port = 1' "$WORK/task-get.json" >"$WORK/task-port.json"
jq --arg pw x509-pw '.target_config.password = $pw' "$WORK/task-port.json" >"$WORK/task-port2.json"
api PUT /tasks/tls-t "@$WORK/task-port2.json"
expect 400 "task: masked TLS material with another port" "$ERRBODY" \
    '.error_msg|test("/target_config/security/ssl_ca_content: .*\\(port differs\\)")'
jq '.target_config.security.ssl_cert_content = "" | .target_config.security.ssl_key_content = ""' \
    "$WORK/task-get.json" >"$WORK/task-clear.json"
api PUT /tasks/tls-t "@$WORK/task-clear.json"
expect 200 "PUT the task with the client certificate removed"
api GET /tasks/tls-t
expect 200 "GET task after the removal" \
    '.target_config.security | .ssl_ca_content == "******" and .ssl_cert_content == "" and .ssl_key_content == ""'
api DELETE "/tasks/tls-t?force=true"
expect 204 "delete the task"
stop_server
check_log
src_sql "DROP DATABASE IF EXISTS ops_tlsm"
dst_sql "DROP DATABASE IF EXISTS ops_tlsm; DROP DATABASE IF EXISTS tlsm_meta"
finish
