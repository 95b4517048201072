#!/usr/bin/env bash
# test_metrics_labels.sh - the HTTP metrics' label sets stay bounded whatever clients send: made-up
# methods and paths, with and without a token, cannot fill the table or push real traffic out of
# it. Methods are one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or "other"; routes are the
# API's own templates (each endpoint under its own name: .../verify, not .../{name}), "denied"
# or "unknown"; codes are real status codes.
. "$(dirname "$0")/../api/lib.sh"
command -v promtool >/dev/null || { echo "FAIL: promtool is needed (scripts/setup installs prometheus)" >&2; exit 1; }

# check_labels FILE WHAT: promtool passes, and every sample of sluice_http_requests_total has a
# method of the fixed set, a route of the templates or denied/unknown, and a code that is not 0.
check_labels() {
    local f=$1 what=$2
    if promtool check metrics <"$f" >"$WORK/promtool.out" 2>&1; then ok; else
        fail "$what: promtool check metrics: $(head -5 "$WORK/promtool.out")"; fi
    local bad
    bad=$(grep '^sluice_http_requests_total{' "$f" |
          grep -vE 'method="(GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS|other)"' | head -3)
    [ -z "$bad" ] && ok || fail "$what: a method outside the fixed set: $bad"
    bad=$(grep -E '^sluice_http_request' "$f" | grep -E 'route="(overflow|other)"|code="0"' | head -3)
    [ -z "$bad" ] && ok || fail "$what: overflow or code 0: $bad"
    bad=$(grep -E '^sluice_http_request' "$f" | sed -n 's/.*route="\([^"]*\)".*/\1/p' | sort -u |
          grep -vE '^(denied|unknown|/metrics|/console|/api/v1/.*)$' | head -3)
    [ -z "$bad" ] && ok || fail "$what: a route that is not a template: $bad"
    bad=$(grep -E '^sluice_http_request' "$f" | sed -n 's/.*route="\([^"]*\)".*/\1/p' | sort -u |
          grep -E 'x-[0-9]|J[0-9]' | head -3)
    [ -z "$bad" ] && ok || fail "$what: a made-up path or method became a label: $bad"
}
# count FILE LABELS: the value of the sluice_http_requests_total sample with exactly LABELS.
count() { grep -F "sluice_http_requests_total{$2} " "$1" | awk '{print $NF}'; }

# ---- open server: 260 made-up methods and 60 made-up paths, then real requests ----
start_server "$WORK/d1"
for i in $(seq 1 260); do curl -s -o /dev/null -X "J$i" "http://127.0.0.1:$PORT/x"; done
for i in $(seq 1 30); do
    curl -s -o /dev/null "$A/x-$i/y/z"
    curl -s -o /dev/null -X "Q$i" "$A/tasks/x-$i/sources/s/schemas/d"
done
api GET /tasks
expect 200 "list after the flood"
api GET /tasks/nosuch/status
expect 404 "status of a missing task"
api POST /tasks/nosuch/verify '{}'
api GET /sources/nosuch/relay
api GET /tasks/status
curl -sS -o "$WORK/m1" "http://127.0.0.1:$PORT/metrics" || fail "GET /metrics"
check_labels "$WORK/m1" "open server"
[ "$(count "$WORK/m1" 'route="/api/v1/tasks",method="GET",code="200"')" = 1 ] && ok ||
    fail "GET /tasks after the flood is not counted under its route: $(grep -F 'route="/api/v1/tasks"' "$WORK/m1")"
[ "$(count "$WORK/m1" 'route="/api/v1/tasks/{name}/status",method="GET",code="404"')" = 1 ] && ok ||
    fail "GET /tasks/{name}/status not counted: $(grep -F '/status"' "$WORK/m1")"
[ "$(count "$WORK/m1" 'route="/api/v1/tasks/{name}",method="GET",code="404"')" = 1 ] && ok ||
    fail "GET /tasks/status (a task named status) not counted as /tasks/{name}: $(grep -F 'tasks/' "$WORK/m1" | head)"
[ "$(count "$WORK/m1" 'route="/api/v1/tasks/{name}/sources/{name}/schemas/{name}",method="other",code="405"')" = 30 ] && ok ||
    fail "made-up methods on a known route: $(grep -F 'schemas/{name}"' "$WORK/m1" | head -5)"
grep -qF 'sluice_http_requests_total{route="/api/v1/tasks/{name}/verify",method="POST",code="' "$WORK/m1" && ok ||
    fail "verify is not labelled .../verify: $(grep -F 'verify' "$WORK/m1"; grep -F '{name}/{name}"' "$WORK/m1")"
[ "$(count "$WORK/m1" 'route="unknown",method="other",code="404"')" = 260 ] && ok ||
    fail "made-up methods and paths not counted as unknown/other: $(grep -F 'route="unknown"' "$WORK/m1" | head -5)"
[ "$(count "$WORK/m1" 'route="unknown",method="GET",code="404"')" = 31 ] && ok ||
    fail "made-up GET paths not counted as unknown: $(grep -F 'route="unknown"' "$WORK/m1" | head -5)"
stop_server
check_log

# ---- with a token: refused requests are route "denied", their methods from the fixed set ----
TOKEN=metrics-token-0123456789
printf '%s\n' "$TOKEN" >"$WORK/token"
chmod 600 "$WORK/token"
SERVER_EXTRA=(--auth-token-file "$WORK/token")
start_server "$WORK/d2" "$WORK/server2.log"
for i in $(seq 1 260); do curl -s -o /dev/null -X "J$i" "http://127.0.0.1:$PORT/x-$i"; done
curl -s -o /dev/null -X PATCH "$A/tasks"
CURL_EXTRA=(-H "Authorization: Bearer $TOKEN")
api GET /tasks
expect 200 "list with the token"
curl -sS "${CURL_EXTRA[@]}" -o "$WORK/m2" "http://127.0.0.1:$PORT/metrics" || fail "GET /metrics"
check_labels "$WORK/m2" "token server"
[ "$(count "$WORK/m2" 'route="denied",method="other",code="401"')" = 260 ] && ok ||
    fail "refused made-up methods: $(grep -F 'route="denied"' "$WORK/m2" | head -5)"
[ "$(count "$WORK/m2" 'route="denied",method="PATCH",code="401"')" = 1 ] && ok ||
    fail "refused PATCH: $(grep -F 'route="denied"' "$WORK/m2" | head -5)"
[ "$(count "$WORK/m2" 'route="/api/v1/tasks",method="GET",code="200"')" = 1 ] && ok ||
    fail "GET /tasks with the token: $(grep -F 'route="/api/v1/tasks"' "$WORK/m2")"
stop_server
check_log "$WORK/server2.log"
finish
