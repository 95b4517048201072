#!/usr/bin/env bash
# bench/lua.sh - cost of the lua-hook stage (issue 7), in two sections:
#
#  1. end to end, on the sandbox (scripts/sandbox): the incremental benchmark of
#     bench/incremental.sh (sysbench oltp_write_only transactions replayed from the binlog by an
#     incremental task of sluice-server: binlog-reader -> event-filter -> route -> [lua-hook] ->
#     mysql-sink) run three times over the same binlog into the same target state: with no hook,
#     with a keep-everything hook, and with examples/lua/mask_email.lua. Prints each catch-up time
#     and the overhead of each hook over no hook (goal: keep-everything under 15 %). Every run is
#     checked: CHECKSUM TABLE equal to the source (no hook, keep), every row the workload wrote
#     masked and the other columns equal to the source (mask).
#  2. in process: the same stage between a generator and a counting sink (no database), its own
#     cost per event (tests/unit/lua/test_hook_pipeline.c "bench"), and that cost as a share of one
#     row's time at section 1's no-hook rate (a figure the shared machine's noise does not blur).
#
#   eval "$(scripts/sandbox env)"; bench/lua.sh [--tables 4] [--table-size 20000] [--events 20000]
#       [--threads 4] [--repl-threads 16] [--repl-batch 100] [--rounds 1] [--micro 1000000]
#       [--only e2e|micro]
#
# The sysbench tables get one more column, `email` (DEFAULT 'user@example.com'), before the copy,
# so every row image of the workload carries an address for the masking script; the three runs
# move the same rows. With --rounds N the three runs repeat N times (interleaved) and the best
# time of each is kept. Builds sluice in Release, without sanitizers, into $BUILD
# (default build-bench-lua).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TABLES=4 SIZE=20000 EVENTS=20000 THREADS=4 RTHREADS=16 RBATCH=100 ROUNDS=1 MICRO=1000000 ONLY=""
while [ $# -gt 0 ]; do
    case "$1" in
    --tables) TABLES=$2; shift 2 ;;
    --table-size) SIZE=$2; shift 2 ;;
    --events) EVENTS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --repl-threads) RTHREADS=$2; shift 2 ;;
    --repl-batch) RBATCH=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --micro) MICRO=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    *) sed -n '17,19p' "$0" >&2; exit 2 ;;
    esac
done
BUILD=${BUILD:-$ROOT/build-bench-lua}
say() { printf '%s\n' "$*"; }
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

say "== building sluice (Release) in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSLUICE_ASAN=OFF -DSLUICE_TESTS=ON >/dev/null
targets=(test_lua_hook_pipeline)
want e2e && targets+=(sluice-server sluice-binlog-reader sluice-event-filter sluice-route sluice-lua-hook
                      sluice-mysql-sink sluice-mysql-dump sluice-loader)
cmake --build "$BUILD" -j2 --target "${targets[@]}" >/dev/null

# ==== 1. end to end ===============================================================================
e2e() {
: "${SLUICE_SOURCE_HOST:?run eval \"\$(scripts/sandbox env)\" first}" "${SLUICE_TARGET_HOST:?}" "${SLUICE_SANDBOX_DIR:?}"
local WORK=${SLUICE_BENCH_DIR:-$SLUICE_SANDBOX_DIR/bench-lua}
local DB=sblua
S=(--no-defaults -h"$SLUICE_SOURCE_HOST" -P"$SLUICE_SOURCE_PORT" -u"$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD")
T=(--no-defaults -h"$SLUICE_TARGET_HOST" -P"$SLUICE_TARGET_PORT" -u"$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD")
src() { mariadb "${S[@]}" -N -B "$@"; }
dst() { mariadb "${T[@]}" -N -B "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
mkdir -p "$WORK"

SERVER_PID=""
trap '[ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true' EXIT
API=""
start_server() {
    rm -rf "$WORK/server-data"
    : >"$WORK/server.log"
    "$BUILD/bin/sluice-server" --addr 127.0.0.1:0 --data-dir "$WORK/server-data" \
        --plugin-dir "$BUILD/lib/sluice/plugins" >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    local i port=""
    for i in $(seq 1 100); do
        port=$(sed -n 's/.*serving the DM OpenAPI.*(port \([0-9]*\)).*/\1/p' "$WORK/server.log")
        [ -n "$port" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$port" ] || { say "sluice-server did not start" >&2; exit 1; }
    API="http://127.0.0.1:$port/api/v1"
    api POST /sources "{\"source_name\":\"bench\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,
        \"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}" >/dev/null
}
stop_server() { kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""; }
api() { # METHOD PATH [BODY]: prints the body, fails on a status >= 300
    local out code
    out=$(curl -sS -X "$1" -w '\n%{http_code}' "$API$2" ${3:+-d "$3"})
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    if [ "$code" -ge 300 ]; then say "$1 $2: HTTP $code: $out" >&2; exit 1; fi
    printf '%s' "$out"
}
scripts_json() { # none|keep|mask
    case "$1" in
    none) echo '[]' ;;
    keep) echo "[{\"tables\":[{\"schema\":\"$DB\",\"table\":\"\"}],\"source\":\"function on_row(ev) return true end\",\"on_row\":\"on_row\"}]" ;;
    mask) echo "[{\"tables\":[{\"schema\":\"$DB\",\"table\":\"\"}],\"file\":\"$ROOT/examples/lua/mask_email.lua\",\"on_row\":\"on_row\"}]" ;;
    esac
}
task_json() { # NAME HOOK
    cat <<JSON
{"task":{"name":"$1","task_mode":"incremental","meta_schema":"dm_meta","on_duplicate":"overwrite",
 "target_config":{"host":"$SLUICE_TARGET_HOST","port":$SLUICE_TARGET_PORT,"user":"$SLUICE_TARGET_USER",
                  "password":"$SLUICE_TARGET_PASSWORD"},
 "table_migrate_rule":[{"source":{"source_name":"bench","schema":"$DB","table":"*"}}],
 "source_config":{"incr_migrate_conf":{"repl_threads":$RTHREADS,"repl_batch":$RBATCH},
   "source_conf":[{"source_name":"bench","binlog_name":"$PRE_FILE","binlog_pos":$PRE_POS}]},
 "lua_scripts":$(scripts_json "$2")}}
JSON
}
task_stage() { api GET "/tasks/$1/status" | jq -r '.data[0].stage + " " + (.data[0].error_msg // "")'; }
TBL_LIST=""
tbls() { for t in $TBL_LIST; do printf '%s.%s,' "$DB" "$t"; done | sed 's/,$//'; }
checksums() { $1 -e "CHECKSUM TABLE $(tbls) EXTENDED" | awk '{printf "%s=%s ", $1, $2}'; }
# every column but email, row by row (one CRC sum per table)
crcs() { local t; for t in $TBL_LIST; do $1 -e "SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', id, k, c, pad))) FROM $DB.$t" | tr '\t' /; done | tr '\n' ' '; }
restore_target() {
    "$ROOT/scripts/sandbox" stop target
    rm -rf "$SLUICE_SANDBOX_DIR/target.data"
    cp -a "$WORK/seed" "$SLUICE_SANDBOX_DIR/target.data"
    "$ROOT/scripts/sandbox" start target >/dev/null
}

say "== preparing $TABLES x $SIZE sysbench rows (plus an email column) on the source, copying them to the target"
src -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
SB=(--db-driver=mysql --mysql-host="$SLUICE_SOURCE_HOST" --mysql-port="$SLUICE_SOURCE_PORT"
    --mysql-user="$SLUICE_SOURCE_USER" --mysql-password="$SLUICE_SOURCE_PASSWORD" --mysql-db=$DB
    --tables="$TABLES" --table-size="$SIZE")
sysbench oltp_write_only "${SB[@]}" --threads=2 prepare >/dev/null
TBL_LIST=$(src -e "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='$DB' ORDER BY 1")
for t in $TBL_LIST; do
    src -e "ALTER TABLE $DB.$t ADD COLUMN email VARCHAR(64) NOT NULL DEFAULT 'user@example.com'"
done
dst -e "DROP DATABASE IF EXISTS $DB; DROP DATABASE IF EXISTS dm_meta; CREATE DATABASE dm_meta"
mariadb-dump "${S[@]}" --single-transaction --databases $DB 2>/dev/null | mariadb "${T[@]}"
[ "$(checksums dst)" = "$(checksums src)" ] || { say "the copy differs from the source" >&2; exit 1; }
say "== seeding: clean copy of the target's data directory"
"$ROOT/scripts/sandbox" stop target
rm -rf "$WORK/seed"
cp -a "$SLUICE_SANDBOX_DIR/target.data" "$WORK/seed"
"$ROOT/scripts/sandbox" start target >/dev/null

src -e "FLUSH BINARY LOGS"
read -r PRE_FILE PRE_POS < <(src -e "SHOW MASTER STATUS" | awk '{print $1, $2}')
say "== workload: $EVENTS oltp_write_only transactions ($THREADS threads) from ($PRE_FILE, $PRE_POS)"
sysbench oltp_write_only "${SB[@]}" --threads="$THREADS" --events="$EVENTS" --time=0 --report-interval=0 run \
    >"$WORK/sysbench.log"
read -r END_FILE END_POS < <(src -e "SHOW MASTER STATUS" | awk '{print $1, $2}')
src -e "FLUSH BINARY LOGS"
ROWS=$((EVENTS * 4))
SRC_SUM=$(checksums src)
SRC_CRC=$(crcs src)
say "   end ($END_FILE, $END_POS); $ROWS row changes"

declare -A BEST
FAILED=0
run_one() { # HOOK ROUND
    local hook=$1 name="bench-lua-$1-$2"
    restore_target
    start_server
    api POST /tasks "$(task_json "$name" "$hook")" >/dev/null
    local t0 t1 f p n=0
    t0=$(now)
    api POST "/tasks/$name/start" '{}' >/dev/null
    local CK="SELECT CONCAT(binlog_name, ' ', binlog_pos) FROM dm_meta.\`${name}_syncer_checkpoint\` WHERE worker = 0"
    while :; do
        read -r f p < <(dst -e "$CK" 2>/dev/null || echo "- 0") || true
        if [ -n "${f:-}" ] && [ "$f" != - ] && { [[ "$f" > "$END_FILE" ]] || { [ "$f" = "$END_FILE" ] && [ "$p" -ge "$END_POS" ]; }; }; then
            break
        fi
        if [ $((++n % 20)) = 0 ]; then
            local st; st=$(task_stage "$name")
            case "$st" in Paused*|Stopped*) say "task $name: $st" >&2; exit 1 ;; esac
        fi
        sleep 0.1
    done
    t1=$(now)
    local secs; secs=$(elapsed "$t0" "$t1")
    api POST "/tasks/$name/stop" '{}' >/dev/null
    stop_server
    local check
    if [ "$hook" = mask ]; then
        local masked bad
        masked=$(dst -e "SELECT SUM(n) FROM ($(for t in $TBL_LIST; do printf 'SELECT COUNT(*) n FROM %s.%s WHERE email = %s UNION ALL ' "$DB" "$t" "'u****@example.com'"; done | sed 's/ UNION ALL $//')) x")
        bad=$(dst -e "SELECT SUM(n) FROM ($(for t in $TBL_LIST; do printf 'SELECT COUNT(*) n FROM %s.%s WHERE email NOT IN (%s) UNION ALL ' "$DB" "$t" "'u****@example.com', 'user@example.com'"; done | sed 's/ UNION ALL $//')) x")
        if [ "$(crcs dst)" = "$SRC_CRC" ] && [ "${masked:-0}" -gt 0 ] && [ "${bad:-1}" = 0 ]; then
            check="other columns equal to the source, $masked rows masked"
        else check="MISMATCH (masked $masked, other emails $bad)"; FAILED=1; fi
    else
        if [ "$(checksums dst)" = "$SRC_SUM" ]; then check="checksums equal to the source"
        else check="CHECKSUM MISMATCH"; FAILED=1; fi
    fi
    say "   $(printf '%-5s' "$hook") round $2: $(printf '%7.2f' "$secs") s  $(awk -v r=$ROWS -v t="$secs" 'BEGIN{printf "%7.0f", r/t}') rows/s   $check"
    if [ -z "${BEST[$hook]:-}" ] || awk -v a="$secs" -v b="${BEST[$hook]}" 'BEGIN{exit !(a < b)}'; then BEST[$hook]=$secs; fi
}
say "== catch-up from ($PRE_FILE, $PRE_POS) to the end: no hook, keep-everything hook, mask_email.lua (repl_threads=$RTHREADS repl_batch=$RBATCH)"
for r in $(seq 1 "$ROUNDS"); do
    for h in none keep mask; do run_one "$h" "$r"; done
done
say "== summary (best of $ROUNDS): $EVENTS transactions, $ROWS row changes"
for h in none keep mask; do
    line=$(printf "   %-5s %7.2f s %8.0f rows/s" "$h" "${BEST[$h]}" "$(awk -v r=$ROWS -v t="${BEST[$h]}" 'BEGIN{print r/t}')")
    [ "$h" != none ] && line+=$(awk -v a="${BEST[$h]}" -v b="${BEST[none]}" 'BEGIN{printf "   overhead %+.1f %%", (a - b) * 100 / b}')
    say "$line"
done
NONE_RPS=$(awk -v r=$ROWS -v t="${BEST[none]}" 'BEGIN{printf "%.0f", r/t}')
say "   goal: keep-everything under 15 %: $(awk -v a="${BEST[keep]}" -v b="${BEST[none]}" 'BEGIN{print ((a - b) * 100 / b < 15) ? "met" : "NOT met"}')"
return $FAILED
}

# ==== 2. in process ===============================================================================
micro() {
    say "== in process: generator -> [lua-hook] -> counting sink, $MICRO events (no database)"
    # the reference rate: this run's no-hook end-to-end rate, else $REF_EPS, else DM's figure
    local ref=${REF_EPS:-${NONE_RPS:-30000}}
    "$BUILD/bin/test_lua_hook_pipeline" bench "$MICRO" 2>/dev/null | sed 's/^/   /' | tee "${TMPDIR:-/tmp}/bench-lua-micro.$$" 
    # the hook's cost per event as a share of one event's time at DM's end-to-end rate
    awk -v ref="$ref" '
      /per event/ { for (i = 1; i <= NF; i++) if ($i == "+" || $i ~ /^\+[0-9]/) us = substr($i, 2) + 0;
                    name = $0; sub(/^ +/, "", name); sub(/ +[0-9.]+ s .*/, "", name);
                    printf "   the hook'"'"'s own cost at %d rows/s end to end: %-26s +%.1f%%\n", ref, name, us * 100 / (1e6 / ref) }' \
        "${TMPDIR:-/tmp}/bench-lua-micro.$$"
    rm -f "${TMPDIR:-/tmp}/bench-lua-micro.$$"
}

rc=0
if want e2e; then e2e || rc=$?; fi
if want micro; then micro; fi
exit $rc
