# lib.sh - shared helpers of the API integration tests (sourced): start/stop a real sluice-server
# on a free port with its own data dir, call it with curl, and check status codes and JSON fields
# with jq. Needs SLUICE_SOURCE_* and SLUICE_TARGET_* (scripts/sandbox env); fails without them.
set -uo pipefail

SERVER=${SLUICE_SERVER_BIN:?SLUICE_SERVER_BIN is not set}
PLUGINS=${SLUICE_PLUGIN_DIR:?SLUICE_PLUGIN_DIR is not set}
for v in SLUICE_SOURCE_HOST SLUICE_SOURCE_PORT SLUICE_SOURCE_USER SLUICE_SOURCE_PASSWORD \
         SLUICE_TARGET_HOST SLUICE_TARGET_PORT SLUICE_TARGET_USER SLUICE_TARGET_PASSWORD; do
    if [ -z "${!v:-}" ]; then
        echo "FAIL: $v is not set (run: eval \"\$(scripts/sandbox env)\")" >&2
        exit 1
    fi
done
command -v jq >/dev/null || { echo "FAIL: jq is needed" >&2; exit 1; }
command -v curl >/dev/null || { echo "FAIL: curl is needed" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-api-test.XXXXXX")
FAILS=0
CHECKS=0
PID=
PORT=
A=
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}

cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID" 2>/dev/null; fi
    if [ "$FAILS" = 0 ]; then rm -rf "$WORK"; else echo "(kept $WORK)"; fi
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { CHECKS=$((CHECKS + 1)); }

# start_server DATA_DIR [LOG]: starts on port 0 and reads the chosen port from the log. Extra
# flags come from the array SERVER_EXTRA; SCHEME (default http) makes the base URL.
SERVER_EXTRA=()
CURL_EXTRA=()
SCHEME=http
start_server() {
    local dir=$1 log=${2:-$WORK/server.log}
    local before
    before=$(grep -c 'serving the DM OpenAPI' "$log" 2>/dev/null)
    "$SERVER" --addr 127.0.0.1:0 --data-dir "$dir" --plugin-dir "$PLUGINS" "${SERVER_EXTRA[@]}" >>"$log" 2>&1 &
    PID=$!
    local i
    for i in $(seq 1 300); do
        if [ "$(grep -c 'serving the DM OpenAPI' "$log")" -gt "${before:-0}" ]; then
            PORT=$(sed -n 's/.*serving the DM OpenAPI.*(port \([0-9]*\)).*/\1/p' "$log" | tail -1)
            A="$SCHEME://127.0.0.1:$PORT/api/v1"
            return 0
        fi
        kill -0 "$PID" 2>/dev/null || { tail -20 "$log" >&2; echo "FAIL: server died" >&2; exit 1; }
        sleep 0.1
    done
    tail -20 "$log" >&2
    echo "FAIL: the server did not start serving within 30 s" >&2
    FAILS=$((FAILS + 1))
    exit 1
}

stop_server() {   # graceful: SIGTERM, then the log must hold no sanitizer report
    kill -TERM "$PID"
    wait "$PID" 2>/dev/null
    local rc=$?
    [ "$rc" = 0 ] || fail "server exited with $rc after SIGTERM"
    PID=
}

kill_server() {
    kill -KILL "$PID"
    wait "$PID" 2>/dev/null
    PID=
}

check_log() {
    local log=${1:-$WORK/server.log}
    if grep -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$log" >/dev/null; then
        grep -E -A30 "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$log" | head -60 >&2
        fail "sanitizer report in $log"
    else
        ok
    fi
}

# api METHOD PATH [BODY|@FILE]: sets CODE and BODY (curl gets the array CURL_EXTRA too).
api() {
    local m=$1 p=$2 d=${3:-}
    local out="$WORK/body.$$"
    if [ -n "$d" ]; then
        if [ "${d:0:1}" = @ ]; then
            CODE=$(curl -sS "${CURL_EXTRA[@]}" -o "$out" -w '%{http_code}' -X "$m" -H 'Content-Type: application/json' --data-binary "$d" "$A$p")
        else
            CODE=$(curl -sS "${CURL_EXTRA[@]}" -o "$out" -w '%{http_code}' -X "$m" -H 'Content-Type: application/json' --data-binary "$d" "$A$p")
        fi
    else
        CODE=$(curl -sS "${CURL_EXTRA[@]}" -o "$out" -w '%{http_code}' -X "$m" -H 'accept: application/json' "$A$p")
    fi
    BODY=$(cat "$out" 2>/dev/null)
    rm -f "$out"
}

# expect CODE DESCRIPTION [JQ-EXPRESSION that must be true]...
expect() {
    local want=$1 what=$2
    shift 2
    if [ "$CODE" != "$want" ]; then
        fail "$what: HTTP $CODE, want $want; body: ${BODY:0:400}"
        return
    fi
    local e
    for e in "$@"; do
        if ! printf '%s' "$BODY" | jq -e "$e" >/dev/null 2>&1; then
            fail "$what: '$e' is not true of: ${BODY:0:600}"
            return
        fi
    done
    ok
}

# subtasks_synced TASK N: wait (up to 60 s) until N subtasks of TASK are Running in Sync; else
# fail and return 1.
subtasks_synced() {
    local i
    for i in $(seq 1 600); do
        api GET "/tasks/$1/status"
        [ "$(printf '%s' "$BODY" | jq '[.data[] | select(.stage=="Running" and .unit=="Sync")] | length')" = "$2" ] && return 0
        sleep 0.1
    done
    fail "task $1: not $2 subtasks in Sync: ${BODY:0:600}"
    return 1
}

# An error body: {"error_msg": non-empty string, "error_code": number}.
ERRBODY='(.error_msg|type=="string" and length>0) and (.error_code|type=="number")'

# SQL on the sandbox servers (-N: no column names).
src_sql() { mariadb -h "$SLUICE_SOURCE_HOST" -P "$SLUICE_SOURCE_PORT" -u "$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD" -N -e "$1"; }
dst_sql() { mariadb -h "$SLUICE_TARGET_HOST" -P "$SLUICE_TARGET_PORT" -u "$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD" -N -e "$1"; }

# make_pki DIR SERVER_CN [CLIENT_CN...]: a throwaway CA (DIR/ca.pem), a server certificate for
# 127.0.0.1 with that common name (DIR/server.pem, DIR/server.key, readable by a server process;
# SERVER_CN "a/CN=b" gives a subject with two CNs), and one client certificate per CLIENT_CN
# (DIR/CN.pem, DIR/CN.key); exits the test on failure.
make_pki() {
    local dir=$1 scn=$2 cn
    shift 2
    command -v openssl >/dev/null || { echo "FAIL: openssl is needed (scripts/setup)" >&2; exit 1; }
    mkdir -p "$dir"
    (
        cd "$dir" || exit 1
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=sluice-test-ca"
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=$scn"
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext
        chmod 644 server.key
        for cn in "$@"; do
            openssl req -newkey rsa:2048 -nodes -keyout "$cn.key" -out "$cn.csr" -subj "/CN=$cn"
            openssl x509 -req -in "$cn.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$cn.pem" -days 2
        done
    ) >"$dir/pki.log" 2>&1 || { cat "$dir/pki.log" >&2; echo "FAIL: openssl" >&2; exit 1; }
}

finish() {
    if [ "$FAILS" = 0 ]; then
        echo "PASS: $CHECKS checks"
        exit 0
    fi
    echo "FAILED: $FAILS of $((CHECKS + FAILS)) checks" >&2
    exit 1
}
