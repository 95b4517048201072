#!/usr/bin/env bash
# test_security.sh - the API's optional access control over real HTTP(S): a bearer token
# (auth-token-file; 401 with DM's error body and WWW-Authenticate without it or with a wrong one;
# the CLI sends SLUICE_TOKEN), HTTPS with ssl-cert/ssl-key, client certificates signed by ssl-ca
# with a common name in cert-allowed-cn (403 otherwise; of a subject with several CNs, the last
# one, the name DM reads, is judged: the first one was), inconsistent settings refused at start
# with nothing written, and the warning for a non-loopback bind without protection.
. "$(dirname "$0")/../api/lib.sh"
CLI=${SLUICE_CLI_BIN:?SLUICE_CLI_BIN is not set}

# ---- a throwaway CA, a server certificate for 127.0.0.1 and two client certificates, and a
# client certificate of another CA (not trusted) ----
P=$WORK/pki
make_pki "$P" 127.0.0.1 ops-client stranger
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/rogue.key" -out "$P/rogue.pem" -days 2 \
    -subj "/CN=ops-client" >>"$P/pki.log" 2>&1 || { echo "FAIL: openssl" >&2; exit 1; }
# client certificates of the same CA whose subject has two CNs: DM (Go's Subject.CommonName)
# reads the last one, the most specific
multi_cn() {   # NAME SUBJECT
    (cd "$P" && openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" &&
        openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days 2) \
        >>"$P/pki.log" 2>&1 || { cat "$P/pki.log" >&2; echo "FAIL: openssl" >&2; exit 1; }
}
multi_cn last-allowed "/CN=stranger/O=sluice-test/CN=ops-client"
multi_cn first-allowed "/CN=ops-client/O=sluice-test/CN=stranger"
TOKEN=s3cret-token-0123456789
printf '%s\n' "$TOKEN" >"$WORK/token"
chmod 600 "$WORK/token"

# ---- bearer token over plain HTTP ----
SERVER_EXTRA=(--auth-token-file "$WORK/token")
start_server "$WORK/d1"
grep -q "with a bearer token" "$WORK/server.log" && ok || fail "the start line does not say a token is required"
api GET /tasks
expect 401 "no token" "$ERRBODY" '.error_code==49003' '.error_msg|test("Bearer")'
h=$(curl -s -D - -o /dev/null "$A/tasks" | tr -d '\r' | grep -i '^WWW-Authenticate:')
[ "$h" = 'WWW-Authenticate: Bearer realm="sluice"' ] && ok || fail "401 without WWW-Authenticate: '$h'"
CURL_EXTRA=(-H "Authorization: Bearer wrong-token-0123456789")
api GET /tasks
expect 401 "wrong token" "$ERRBODY" '.error_msg|test("not valid")'
CURL_EXTRA=(-H "Authorization: Bearer ${TOKEN}x")
api GET /tasks
expect 401 "token with one more character" "$ERRBODY"
# a refused request's body is never read or acted on
CURL_EXTRA=()
api POST /sources '{"source_name":"sneaky","host":"127.0.0.1","port":3306,"user":"root","password":"x"}'
expect 401 "POST without token"
CURL_EXTRA=(-H "Authorization: Bearer $TOKEN")
api GET /sources
expect 200 "right token" '.total==0'
api GET /metrics 2>/dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metrics")
[ "$code" = 401 ] && ok || fail "/metrics without token: HTTP $code, want 401"
# the CLI sends SLUICE_TOKEN
out=$(SLUICE_TOKEN=$TOKEN "$CLI" source list --server "http://127.0.0.1:$PORT" 2>&1) && ok ||
    fail "sluice source list with SLUICE_TOKEN: $out"
out=$("$CLI" source list --server "http://127.0.0.1:$PORT" 2>&1) && fail "the CLI without a token succeeded: $out" || ok
case $out in *Bearer*|*401*|*token*) ok ;; *) fail "the CLI's refusal does not say why: $out" ;; esac
grep -qF "$TOKEN" "$WORK/server.log" && fail "the token appears in the server log" || ok
stop_server
CURL_EXTRA=()

# ---- HTTPS with client certificates ----
SERVER_EXTRA=(--ssl-cert "$P/server.pem" --ssl-key "$P/server.key" --ssl-ca "$P/ca.pem"
              --cert-allowed-cn "ops-client, other-client")
SCHEME=https
start_server "$WORK/d2"
grep -q "serving the DM OpenAPI on https://" "$WORK/server.log" && ok || fail "the start line does not say https"
CURL_EXTRA=(--cacert "$P/ca.pem")
api GET /tasks
expect 403 "no client certificate" "$ERRBODY" '.error_msg|test("client certificate is required")'
CURL_EXTRA=(--cacert "$P/ca.pem" --cert "$P/stranger.pem" --key "$P/stranger.key")
api GET /tasks
expect 403 "CN not allowed" "$ERRBODY" '.error_msg|test("stranger is not in cert-allowed-cn")'
CURL_EXTRA=(--cacert "$P/ca.pem" --cert "$P/rogue.pem" --key "$P/rogue.key")
api GET /tasks
expect 403 "certificate of another CA" "$ERRBODY" '.error_msg|test("not trusted")'
CURL_EXTRA=(--cacert "$P/ca.pem" --cert "$P/ops-client.pem" --key "$P/ops-client.key")
api GET /tasks
expect 200 "allowed client" '.total==0'
CURL_EXTRA=(--cacert "$P/ca.pem" --cert "$P/last-allowed.pem" --key "$P/last-allowed.key")
api GET /tasks
expect 200 "two CNs, the last one allowed" '.total==0'
CURL_EXTRA=(--cacert "$P/ca.pem" --cert "$P/first-allowed.pem" --key "$P/first-allowed.key")
api GET /tasks
expect 403 "two CNs, only the first one allowed" "$ERRBODY" '.error_msg|test("common name stranger is not in cert-allowed-cn")'
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/v1/tasks")
[ "$code" = 000 ] && ok || fail "plain HTTP to the HTTPS port answered $code"
stop_server
CURL_EXTRA=()
SCHEME=http

# ---- settings that do not fit: refused at start, nothing written ----
refused() {   # WHAT PATTERN FLAGS...
    local what=$1 pat=$2 rc
    shift 2
    "$SERVER" --addr 127.0.0.1:0 --data-dir "$WORK/never" --plugin-dir "$PLUGINS" "$@" >"$WORK/refused.log" 2>&1
    rc=$?
    if [ "$rc" = 0 ]; then fail "$what: started"; return; fi
    grep -q "$pat" "$WORK/refused.log" && ok || fail "$what: '$(cat "$WORK/refused.log")' does not say '$pat'"
    [ ! -e "$WORK/never" ] && ok || fail "$what: the data dir was created"
}
refused "ssl-ca without a certificate" "ssl-ca needs ssl-cert" --ssl-ca "$P/ca.pem"
refused "ssl-cert without key" "go together" --ssl-cert "$P/server.pem"
refused "cert-allowed-cn without ssl-ca" "cert-allowed-cn needs ssl-ca" --ssl-cert "$P/server.pem" \
    --ssl-key "$P/server.key" --cert-allowed-cn x
refused "a key that is not PEM" "not a PEM file" --ssl-cert "$P/server.pem" --ssl-key "$WORK/token"
refused "missing token file" "auth-token-file" --auth-token-file "$WORK/nope"
printf 'short\n' >"$WORK/short"
refused "short token" "at least 16" --auth-token-file "$WORK/short"

# ---- a non-loopback bind without a token or a client CA warns ----
"$SERVER" --addr 0.0.0.0:0 --data-dir "$WORK/d3" --plugin-dir "$PLUGINS" >"$WORK/open.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do grep -q 'serving the DM OpenAPI' "$WORK/open.log" && break; sleep 0.1; done
grep -q "WARN.*without auth-token-file or a client CA" "$WORK/open.log" && ok ||
    fail "no warning for 0.0.0.0 without protection: $(head -5 "$WORK/open.log")"
stop_server
check_log "$WORK/server.log"
finish
