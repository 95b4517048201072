#!/usr/bin/env bash
# bench/incremental.sh - incremental catch-up benchmark: sluice (binlog-reader -> event-filter ->
# route -> mysql-sink, run by sluice-server over REST) against a native MariaDB replica with one
# SQL thread and with 4 optimistic parallel threads, all draining the same pre-generated binlog of
# sysbench oltp_write_only transactions into the same pre-workload data, and the same sluice task
# reading through the source's relay log (issue 14) beside it. Also prints the binlog decoder's
# rate alone (no network, no sink). Checks every table's CHECKSUM TABLE after each run.
#
#   eval "$(scripts/sandbox env)"; bench/incremental.sh [--tables 8] [--table-size 100000]
#       [--events 100000] [--threads 8] [--rand-type uniform] [--repl-threads 16]
#       [--repl-batch 100] [--copy sluice|dump] [--only sluice,relay,native,native4] [--perf] [--reuse]
#       [--no-build] [--repeat 1]
#
# --repeat N runs (a), (a'), (b) and (c) N times, interleaved, and compares the medians (the machine's
# other load shifts single runs by 20 % and more).
#
# --reuse skips steps 1-3 and drains the binlog of the previous run again: the target is put back
# to the seed (its data directory replaced by the seed's copy) first. For profiling iterations.
#
# Protocol (like MariaDB's own parallel-replication measurements, perf-notes section 6):
#  1. sysbench prepares --tables x --table-size rows on the sandbox source; they are copied to the
#     sandbox target (a sluice full task, or mariadb-dump with --copy dump);
#  2. the target's data directory is copied (clean shutdown) as the seed of the native replica;
#  3. with sluice stopped, sysbench runs --events oltp_write_only transactions on the source
#     (each: UPDATE k, UPDATE c, DELETE + INSERT of one id = 4 row changes), from a fresh binlog;
#  4. (a) sluice: an incremental task from the pre-workload position; the time from the start
#     request until its checkpoint (dm_meta) reaches the end position;
#     (a') the same with the source's relay enabled from the pre-workload file as the server
#     starts: the relay fetches the binlog while the task reads it from the relay, so the time
#     includes the relay's writing (the goal: at most 10 % over (a));
#     (b) a third mariadbd (port $SLUICE_REPLICA_PORT, default 13368, in the bench's own directory)
#     started from the seed with the target's exact settings, CHANGE MASTER TO the same position,
#     slave_parallel_threads=0: the time from START SLAVE until MASTER_POS_WAIT returns;
#     (c) the same with slave_parallel_threads=4, slave_parallel_mode=optimistic.
# Every server has innodb_flush_log_at_trx_commit=2 and no binlog on the target side (the
# sandbox's settings). --perf records the server with `perf record -g` during (a) and prints the
# top of the profile.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TABLES=8 SIZE=100000 EVENTS=100000 THREADS=8 RAND=uniform RTHREADS=16 RBATCH=100 COPY=sluice ONLY="" PERF=0 REUSE=0 BUILD_IT=1 REPEAT=1
while [ $# -gt 0 ]; do
    case "$1" in
    --tables) TABLES=$2; shift 2 ;;
    --table-size) SIZE=$2; shift 2 ;;
    --events) EVENTS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --rand-type) RAND=$2; shift 2 ;;
    --repl-threads) RTHREADS=$2; shift 2 ;;
    --repl-batch) RBATCH=$2; shift 2 ;;
    --copy) COPY=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --perf) PERF=1; shift ;;
    --reuse) REUSE=1; shift ;;
    --no-build) BUILD_IT=0; shift ;;
    --repeat) REPEAT=$2; shift 2 ;;
    *) sed -n '9,20p' "$0" >&2; exit 2 ;;
    esac
done
: "${SLUICE_SOURCE_HOST:?run eval \"\$(scripts/sandbox env)\" first}" "${SLUICE_TARGET_HOST:?}" "${SLUICE_SANDBOX_DIR:?}"
BUILD=${SLUICE_BENCH_BUILD:-$ROOT/build-bench-incremental}
WORK=${SLUICE_BENCH_DIR:-$SLUICE_SANDBOX_DIR/bench-incremental}
RPORT=${SLUICE_REPLICA_PORT:-13368}
POOL=${SLUICE_SANDBOX_BUFFER_POOL:-512M}
DB=sbtest
FULL_TASK=bench-incr-full INCR_TASK=bench-incr

S=(--no-defaults -h"$SLUICE_SOURCE_HOST" -P"$SLUICE_SOURCE_PORT" -u"$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD")
T=(--no-defaults -h"$SLUICE_TARGET_HOST" -P"$SLUICE_TARGET_PORT" -u"$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD")
R=(--no-defaults -h127.0.0.1 -P"$RPORT" -u"$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD")
src() { mariadb "${S[@]}" -N -B "$@"; }
dst() { mariadb "${T[@]}" -N -B "$@"; }
rep() { mariadb "${R[@]}" -N -B "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
say() { printf '%s\n' "$*"; }

SERVER_PID="" REPLICA_PID="" PERF_PID=""
cleanup() {
    [ -n "$PERF_PID" ] && kill -INT "$PERF_PID" 2>/dev/null || true
    [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null || true
    [ -n "$REPLICA_PID" ] && kill -TERM "$REPLICA_PID" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT

if [ "$BUILD_IT" = 1 ]; then
    say "== building sluice (Release) in $BUILD"
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSLUICE_ASAN=OFF -DSLUICE_TESTS=OFF >/dev/null
    cmake --build "$BUILD" -j2 --target sluice-server sluice-binlog-reader sluice-event-filter sluice-route \
        sluice-mysql-sink sluice-mysql-dump sluice-loader sluice-bench-binlog-decode >/dev/null
fi
mkdir -p "$WORK"

# ---- sluice-server and its REST API -------------------------------------------------------------
API=""
start_server() { # [EXTRA_SOURCE_FIELDS]
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
        \"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true${1:-}}" >/dev/null
}
stop_server() {
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
}
api() { # METHOD PATH [BODY]: prints the body, fails on a status >= 300
    local out code
    out=$(curl -sS -X "$1" -w '\n%{http_code}' "$API$2" ${3:+-d "$3"})
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    if [ "$code" -ge 300 ]; then say "$1 $2: HTTP $code: $out" >&2; exit 1; fi
    printf '%s' "$out"
}
task_json() { # NAME MODE [SOURCE_CONF_EXTRA]
    cat <<JSON
{"task":{"name":"$1","task_mode":"$2","meta_schema":"dm_meta","on_duplicate":"overwrite",
 "target_config":{"host":"$SLUICE_TARGET_HOST","port":$SLUICE_TARGET_PORT,"user":"$SLUICE_TARGET_USER",
                  "password":"$SLUICE_TARGET_PASSWORD"},
 "table_migrate_rule":[{"source":{"source_name":"bench","schema":"$DB","table":"*"}}],
 "source_config":{"full_migrate_conf":{"export_threads":4,"import_threads":4,"data_dir":"$WORK/dump"},
   "incr_migrate_conf":{"repl_threads":$RTHREADS,"repl_batch":$RBATCH},
   "source_conf":[{"source_name":"bench"${3:-}}]}}}
JSON
}
task_stage() { api GET "/tasks/$1/status" | jq -r '.data[0].stage + " " + (.data[0].error_msg // "")'; }

# ---- checksums -----------------------------------------------------------------------------------
TBL_LIST=""
checksums() { # src|dst|rep
    $1 -e "CHECKSUM TABLE $(for t in $TBL_LIST; do printf '%s.%s,' "$DB" "$t"; done | sed 's/,$//') EXTENDED" |
        awk '{printf "%s=%s ", $1, $2}'
}
FAILED=0
verify() { # NAME src|dst|rep
    local got; got=$(checksums "$2")
    if [ "$got" = "$SRC_SUM" ]; then say "   $1: checksums of $(echo "$TBL_LIST" | wc -w) tables match the source"
    else say "   $1: CHECKSUM MISMATCH"; say "   source: $SRC_SUM"; say "   target: $got"; FAILED=1; fi
}

# CPU seconds (user + system) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"; }
TARGET_PID() { cat "$SLUICE_SANDBOX_DIR/target.pid"; }

if [ "$REUSE" = 1 ]; then
    [ -f "$WORK/state" ] || { say "--reuse: no previous run in $WORK" >&2; exit 1; }
    . "$WORK/state"
    say "== reusing the workload of the previous run: ($PRE_FILE, $PRE_POS) .. ($END_FILE, $END_POS), $EVENTS transactions"
else
# ---- 1. data and the full copy -------------------------------------------------------------------
say "== preparing $TABLES x $SIZE sysbench rows on the source"
src -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE $DB"
SB=(--db-driver=mysql --mysql-host="$SLUICE_SOURCE_HOST" --mysql-port="$SLUICE_SOURCE_PORT"
    --mysql-user="$SLUICE_SOURCE_USER" --mysql-password="$SLUICE_SOURCE_PASSWORD" --mysql-db=$DB
    --tables="$TABLES" --table-size="$SIZE")
sysbench oltp_write_only "${SB[@]}" --threads=2 prepare >/dev/null
TBL_LIST=$(src -e "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='$DB' ORDER BY 1")

dst -e "DROP DATABASE IF EXISTS $DB; CREATE DATABASE IF NOT EXISTS dm_meta;
        DROP TABLE IF EXISTS dm_meta.\`${FULL_TASK}_loader_checkpoint\`, dm_meta.\`${FULL_TASK}_syncer_checkpoint\`,
                             dm_meta.\`${INCR_TASK}_syncer_checkpoint\`"
rm -rf "$WORK/dump"
if [ "$COPY" = sluice ]; then
    say "== full copy to the target (sluice task_mode full)"
    start_server
    api POST /tasks "$(task_json $FULL_TASK full)" >/dev/null
    t0=$(now)
    api POST "/tasks/$FULL_TASK/start" '{}' >/dev/null
    while :; do
        st=$(task_stage $FULL_TASK)
        case "$st" in Finished*) break ;; Paused*|Stopped*) say "full task: $st" >&2; exit 1 ;; esac
        sleep 0.2
    done
    say "   $(elapsed "$t0" "$(now)") s"
    stop_server
else
    say "== full copy to the target (mariadb-dump)"
    mariadb-dump "${S[@]}" --single-transaction --databases $DB | mariadb "${T[@]}"
fi
SRC_SUM=$(checksums src)
verify "full copy" dst

say "== seeding the native replica: clean copy of the target's data directory"
"$ROOT/scripts/sandbox" stop target
rm -rf "$WORK/seed"
cp -a "$SLUICE_SANDBOX_DIR/target.data" "$WORK/seed"
"$ROOT/scripts/sandbox" start target >/dev/null

# ---- 2. the workload, with sluice stopped --------------------------------------------------------
src -e "FLUSH BINARY LOGS"
read -r PRE_FILE PRE_POS < <(src -e "SHOW MASTER STATUS" | awk '{print $1, $2}')
say "== workload: $EVENTS oltp_write_only transactions ($THREADS threads, --rand-type=$RAND) from ($PRE_FILE, $PRE_POS)"
t0=$(now)
sysbench oltp_write_only "${SB[@]}" --threads="$THREADS" --rand-type="$RAND" --events="$EVENTS" --time=0 \
    --report-interval=0 run >"$WORK/sysbench.log"
SRC_TIME=$(elapsed "$t0" "$(now)")
read -r END_FILE END_POS < <(src -e "SHOW MASTER STATUS" | awk '{print $1, $2}')
src -e "FLUSH BINARY LOGS"
ROWS=$((EVENTS * 4))
BINLOG_FILES=$(src -e "SHOW BINARY LOGS" | awk -v a="$PRE_FILE" -v b="$END_FILE" '$1 >= a && $1 <= b {print $1}')
BINLOG_BYTES=0
for f in $BINLOG_FILES; do BINLOG_BYTES=$((BINLOG_BYTES + $(stat -c %s "$SLUICE_SANDBOX_DIR/source.data/$f"))); done
say "   source: $SRC_TIME s ($(awk -v n="$EVENTS" -v t="$SRC_TIME" 'BEGIN{printf "%.0f", n/t}') txn/s); end ($END_FILE, $END_POS); binlog $((BINLOG_BYTES / 1048576)) MiB; $ROWS row changes"
SRC_SUM=$(checksums src)

# ---- 3. the decoder alone ------------------------------------------------------------------------
say "== binlog decode alone (sluice-bench-binlog-decode, 3 rounds over the workload's binlog)"
DECODE=$("$BUILD/bin/sluice-bench-binlog-decode" -n 3 $(for f in $BINLOG_FILES; do echo "$SLUICE_SANDBOX_DIR/source.data/$f"; done))
say "   $DECODE"
declare -p PRE_FILE PRE_POS END_FILE END_POS EVENTS ROWS BINLOG_BYTES TBL_LIST SRC_SUM DECODE TABLES SIZE RAND \
    | sed 's/^declare -- //' >"$WORK/state"
fi

restore_target() { # the target's data directory back to the seed (pre-workload data)
    "$ROOT/scripts/sandbox" stop target
    rm -rf "$SLUICE_SANDBOX_DIR/target.data"
    cp -a "$WORK/seed" "$SLUICE_SANDBOX_DIR/target.data"
    "$ROOT/scripts/sandbox" start target >/dev/null
}

declare -A TIME TIMES
want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }
TARGET_AT_SEED=$((1 - REUSE))   # the target holds the pre-workload data (no restore needed)

# ---- 4a. sluice --------------------------------------------------------------------------------
run_sluice() { # [relay]: through the source's relay log
    local name=${1:-sluice}
    say "== ($([ "$name" = relay ] && echo "a'" || echo a)) sluice incremental task (repl_threads=$RTHREADS repl_batch=$RBATCH) from ($PRE_FILE, $PRE_POS)$([ "$name" = relay ] && echo ", through the relay log")"
    [ "$TARGET_AT_SEED" = 1 ] || restore_target
    TARGET_AT_SEED=0
    dst -e "DROP TABLE IF EXISTS dm_meta.\`${INCR_TASK}_syncer_checkpoint\`"
    if [ "$name" = relay ]; then
        start_server ",\"relay_config\":{\"enable_relay\":true,\"relay_binlog_name\":\"$PRE_FILE\"}"
    else
        start_server
    fi
    api POST /tasks "$(task_json $INCR_TASK incremental ",\"binlog_name\":\"$PRE_FILE\",\"binlog_pos\":$PRE_POS")" >/dev/null
    if [ "$PERF" = 1 ]; then
        perf record -g -o "$WORK/perf.data" -p "$SERVER_PID" >/dev/null 2>&1 &
        PERF_PID=$!
        sleep 0.5
    fi
    c0=$(cpu_s "$SERVER_PID") d0=$(cpu_s "$(TARGET_PID)")
    t0=$(now)
    api POST "/tasks/$INCR_TASK/start" '{}' >/dev/null
    CK="SELECT CONCAT(binlog_name, ' ', binlog_pos) FROM dm_meta.\`${INCR_TASK}_syncer_checkpoint\` WHERE worker = 0"
    # One client answers every poll (a coprocess), and the pause is a read with a timeout: a
    # client and a sleep forked per poll cost the shared CPU on sluice's side only, while native
    # replication is timed by one MASTER_POS_WAIT. Each poll ends with a marker row, so a poll
    # whose table does not exist yet (--force: the error goes to stderr) still gets its answer.
    coproc CKQ { mariadb "${T[@]}" -N -B --force --unbuffered 2>/dev/null; }
    local pause_fd line f p
    exec {pause_fd}<> <(:)
    n=0
    while :; do
        printf '%s;\nSELECT "-poll-end-";\n' "$CK" >&"${CKQ[1]}"
        f=- p=0
        while :; do
            if ! read -r line <&"${CKQ[0]}"; then
                say "the checkpoint poller's client ended" >&2
                exit 1
            fi
            [ "$line" = "-poll-end-" ] && break
            f=${line%% *} p=${line##* }
        done
        if [ "$f" != - ] && { [[ "$f" > "$END_FILE" ]] || { [ "$f" = "$END_FILE" ] && [ "$p" -ge "$END_POS" ]; }; }; then
            break
        fi
        # (the checkpoint every 0.1 s, the stage every 2 s)
        if [ $((++n % 20)) = 0 ]; then
            st=$(task_stage $INCR_TASK)
            case "$st" in Paused*|Stopped*) say "incremental task: $st" >&2; exit 1 ;; esac
        fi
        read -r -t 0.1 -u "$pause_fd" _ || true
    done
    t1=$(now)
    kill "$CKQ_PID" 2>/dev/null || true
    wait "$CKQ_PID" 2>/dev/null || true
    exec {pause_fd}<&-
    TIME[$name]=$(elapsed "$t0" "$t1")
    TIMES[$name]+="${TIME[$name]} "
    CPU_SLUICE=$(elapsed "$c0" "$(cpu_s "$SERVER_PID")") CPU_TARGET=$(elapsed "$d0" "$(cpu_s "$(TARGET_PID)")")
    if [ -n "$PERF_PID" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID" || true; PERF_PID=""; fi
    RSS=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$SERVER_PID/status")
    api GET "/tasks/$INCR_TASK/status" | jq -c '.data[0].sync_status | {total_events, total_tps, syncer_binlog, synced, binlog_type}' |
        sed 's/^/   status: /'
    [ "$name" = relay ] && api GET /sources/bench/status |
        jq -c '.data[0].relay_status | {stage, relay_binlog, bytes_written, error_msg}' | sed 's/^/   relay: /'
    api POST "/tasks/$INCR_TASK/stop" '{}' >/dev/null
    stop_server
    say "   time ${TIME[$name]} s, server peak RSS $RSS MiB; CPU: sluice-server $CPU_SLUICE s, target mariadbd $CPU_TARGET s"
    verify "$name" dst
    if [ "$PERF" = 1 ]; then
        perf report -i "$WORK/perf.data" --stdio --no-children --sort dso -g none >"$WORK/perf.dso" 2>/dev/null || true
        perf report -i "$WORK/perf.data" --stdio --no-children --sort dso,symbol -g none >"$WORK/perf.sym" 2>/dev/null || true
        say "   perf of sluice-server, self time by object ($WORK/perf.data):"
        grep -E '^ +[0-9]' "$WORK/perf.dso" | sed -n '1,8p' | sed 's/^/   /'
        say "   by symbol (top 20):"
        grep -E '^ +[0-9]' "$WORK/perf.sym" | sed -n '1,20p' | sed 's/^/   /'
    fi
}

# ---- 4b/4c. native MariaDB replica ---------------------------------------------------------------
native() { # NAME PARALLEL_THREADS
    local name=$1 par=$2 dir="$WORK/replica"
    say "== ($([ "$par" = 0 ] && echo b || echo c)) native MariaDB replica, slave_parallel_threads=$par$([ "$par" = 0 ] || echo ", optimistic")"
    rm -rf "$dir"
    mkdir -p "$dir"
    cp -a "$WORK/seed" "$dir/data"
    local user=()
    [ "$(id -u)" = 0 ] && user=(--user=root)
    # The sandbox target's exact settings (scripts/sandbox), plus the replica's own.
    /usr/sbin/mariadbd --no-defaults "${user[@]}" --datadir="$dir/data" --socket="$dir/replica.sock" \
        --port="$RPORT" --bind-address=127.0.0.1 --pid-file="$dir/replica.pid" \
        --log-error="$dir/replica.err" --server-id=3 --skip-name-resolve \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        --max-allowed-packet=1G --max-connections=2000 --local-infile=1 --secure-file-priv="" \
        --innodb-buffer-pool-size="$POOL" --innodb-log-file-size=512M \
        --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 --performance-schema=OFF \
        --tmpdir="$dir" --skip-log-bin --relay-log="$dir/relay" --skip-slave-start \
        --slave-parallel-threads="$par" --slave-parallel-mode=optimistic >/dev/null 2>&1 &
    REPLICA_PID=$!
    local i
    for i in $(seq 1 150); do rep -e "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
    rep -e "CHANGE MASTER TO MASTER_HOST='$SLUICE_SOURCE_HOST', MASTER_PORT=$SLUICE_SOURCE_PORT,
            MASTER_USER='$SLUICE_SOURCE_USER', MASTER_PASSWORD='$SLUICE_SOURCE_PASSWORD',
            MASTER_LOG_FILE='$PRE_FILE', MASTER_LOG_POS=$PRE_POS, MASTER_USE_GTID=no"
    local t0 t1 w c0
    c0=$(cpu_s "$REPLICA_PID")
    t0=$(now)
    rep -e "START SLAVE"
    w=$(rep -e "SELECT MASTER_POS_WAIT('$END_FILE', $END_POS, 3600)")
    t1=$(now)
    [ "$w" != NULL ] && [ "$w" -ge 0 ] || { rep -e "SHOW SLAVE STATUS\G" >&2; exit 1; }
    TIME[$name]=$(elapsed "$t0" "$t1")
    TIMES[$name]+="${TIME[$name]} "
    say "   time ${TIME[$name]} s; CPU: replica mariadbd $(elapsed "$c0" "$(cpu_s "$REPLICA_PID")") s"
    verify "$name" rep
    rep -e "STOP SLAVE"
    kill -TERM "$REPLICA_PID"
    wait "$REPLICA_PID" || true
    REPLICA_PID=""
}
for round in $(seq 1 "$REPEAT"); do
    [ "$REPEAT" = 1 ] || say "==== round $round of $REPEAT"
    want sluice && run_sluice sluice
    want relay && run_sluice relay
    want native && native native 0
    want native4 && native native4 4
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for k in sluice relay native native4; do
    [ -n "${TIMES[$k]:-}" ] && TIME[$k]=$(echo "${TIMES[$k]}" | median)
done

# ---- summary -------------------------------------------------------------------------------------
say "== summary: $EVENTS transactions, $ROWS row changes, $((BINLOG_BYTES / 1048576)) MiB of binlog ($TABLES x $SIZE rows, --rand-type=$RAND)"
say "   decode alone: $DECODE"
for k in sluice relay native native4; do
    [ -n "${TIME[$k]:-}" ] || continue
    [ "$REPEAT" = 1 ] || say "   $k: runs ${TIMES[$k]}s, median:"
    line=$(printf "   %-8s %8.2f s %9.0f rows/s %8.0f txn/s" "$k" "${TIME[$k]}" \
        "$(awk -v r=$ROWS -v t="${TIME[$k]}" 'BEGIN{print r/t}')" "$(awk -v r="$EVENTS" -v t="${TIME[$k]}" 'BEGIN{print r/t}')")
    if [ -n "${TIME[sluice]:-}" ] && [ "$k" = relay ]; then
        line+=$(printf "   relay time / sluice time = %s" "$(awk -v a="${TIME[relay]}" -v b="${TIME[sluice]}" 'BEGIN{printf "%.2f", a/b}')")
    elif [ -n "${TIME[sluice]:-}" ] && [ "$k" != sluice ]; then
        line+=$(printf "   sluice time / %s time = %s" "$k" "$(awk -v a="${TIME[sluice]}" -v b="${TIME[$k]}" 'BEGIN{printf "%.2f", a/b}')")
    fi
    say "$line"
done
[ -n "${TIME[sluice]:-}" ] && [ -n "${TIME[relay]:-}" ] &&
    say "   goal: the relay costs at most 10 % of catch-up time: $(awk -v a="${TIME[relay]}" -v b="${TIME[sluice]}" 'BEGIN{print (a <= b * 1.10) ? "met" : "NOT met"}')"
[ -n "${TIME[sluice]:-}" ] && [ -n "${TIME[native]:-}" ] &&
    say "   goal: sluice no slower than the single-threaded native replica: $(awk -v a="${TIME[sluice]}" -v b="${TIME[native]}" 'BEGIN{print (a <= b) ? "met" : "NOT met"}')"
exit $FAILED
