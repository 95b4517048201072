#!/usr/bin/env bash
# bench/full.sh - full migration benchmark (issue 12): sluice (a task_mode "full" task run by
# sluice-server: mysql-dump -> route -> loader) side by side with Debian's mydumper + myloader and
# the floor (SELECT INTO OUTFILE + LOAD DATA INFILE per table, in parallel, one phase after the
# other), optionally mariadb-dump | mariadb, on sysbench tables in the sandbox (scripts/sandbox).
#
# It runs every data shape against every target configuration; before each configuration it
# restarts the sandbox target (a cold buffer pool) and sets:
#   default  MariaDB's defaults: innodb_flush_log_at_trx_commit=1, innodb_log_file_size=96M
#   tuned    innodb_flush_log_at_trx_commit=2, innodb_log_file_size=512M
# (both are dynamic in MariaDB 10.11, so the sandbox's own start options need not change). After
# each copy it checks the target's CHECKSUM TABLE against the source's, and it prints every time,
# the ratios sluice/mydumper+myloader and sluice/floor, sluice-server's peak RSS (VmHWM) and the
# disk use of its data_dir, and the CPU seconds each copy cost (the tool's own, the source mysqld's,
# the target mysqld's), the phases of each sluice copy (the end of its dump, every row in, the end;
# print_phases), then a summary with the load average and the target settings.
#
#   eval "$(scripts/sandbox env)"; bench/full.sh [--shapes "8x500000 1x4000000 2000x1000"]
#       [--configs "default tuned"] [--threads 4] [--rounds 3] [--runner server|inprocess] [--no-prepare]
#       [--only sluice|mydumper|mariadb-dump|floor] [--mariadb-dump] [--stream]
#   --stream: the sluice task sets full_migrate_conf.stream (chunks through pipes, no files;
#   server runner only)
#   bench/full.sh --tables 8 --rows 500000      one shape (as before)
#   --rounds N (3): every tool runs N times on each shape and configuration, the order of the tools
#   reversed every other round (so neither always runs on a warmer or a busier machine). A round's
#   ratio compares the tools' times of that round; the summary shows the median time of each tool
#   and the median and range of the rounds' ratios (one run's ratio does not hold on this machine:
#   the same copy's time varied by half between runs of one hour).
#
# Before its first round on a restarted target, the floor copies once, not counted (warm_up).
#
# Goals (issue 12): sluice <= 0.6x mydumper+myloader and <= 0.9x the floor on 8x500000; <= 0.7x
# mydumper+myloader on the two other shapes; peak RSS < 64 MiB everywhere.
#
# --runner server (default): sluice runs the way a user runs it: a Release sluice-server is started
# on 127.0.0.1:$SLUICE_BENCH_PORT (18461), the source is created with POST /api/v1/sources, a task
# with task_mode "full" with POST /api/v1/tasks, started with POST .../start, and its status is
# polled (GET .../status) until stage Finished; the time runs from the start request to Finished.
# While it runs the script checks what DM's status shows: unit Dump with dump_status, then unit
# Load with load_status progress, and stage Finished at the end (printed as "status checks").
# The peak RSS is the server's (VmHWM). Thread counts: --threads for both sluice and the peers.
# --runner inprocess: sluice-full-run (tests/integration/full), the same pipeline in one process.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TABLES="" ROWS="" THREADS=4 CHUNK=100000 PREPARE=1 ONLY="" RUNNER_KIND=server
SHAPES="8x500000 1x4000000 2000x1000" CONFIGS="default tuned" WITH_MDUMP=0 STREAM=0 ROUNDS=3
while [ $# -gt 0 ]; do
    case "$1" in
    --tables) TABLES=$2; shift 2 ;;
    --rows) ROWS=$2; shift 2 ;;
    --shapes) SHAPES=$2; shift 2 ;;
    --configs) CONFIGS=$2; shift 2 ;;
    --mariadb-dump) WITH_MDUMP=1; shift ;;
    --stream) STREAM=1; shift ;;
    --threads) THREADS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --chunk-rows) CHUNK=$2; shift 2 ;;
    --no-prepare) PREPARE=0; shift ;;
    --only) ONLY=$2; shift 2 ;;
    --runner) RUNNER_KIND=$2; shift 2 ;;
    *) echo "usage: $0 [--shapes \"TABLESxROWS ...\"] [--configs \"default tuned\"] [--tables N --rows N] [--threads N] [--chunk-rows N] [--rounds N] [--runner server|inprocess] [--no-prepare] [--only sluice|mydumper|mariadb-dump|floor] [--mariadb-dump] [--stream]" >&2; exit 2 ;;
    esac
done
: "${SLUICE_SOURCE_HOST:?run eval \"\$(scripts/sandbox env)\" first}" "${SLUICE_TARGET_HOST:?}"
case "$RUNNER_KIND" in server|inprocess) ;; *) echo "--runner: server or inprocess" >&2; exit 2 ;; esac
case "$ROUNDS" in ''|*[!0-9]*|0) echo "--rounds: a positive number" >&2; exit 2 ;; esac
[ -n "$TABLES$ROWS" ] && SHAPES="${TABLES:-8}x${ROWS:-500000}"
for c in $CONFIGS; do case "$c" in default|tuned) ;; *) echo "--configs: default and/or tuned" >&2; exit 2 ;; esac; done
SANDBOX="$ROOT/scripts/sandbox"
BUILD=${SLUICE_BENCH_BUILD:-$ROOT/build-full2/bench-release}
PORT=${SLUICE_BENCH_PORT:-18461}
WORK=${SLUICE_BENCH_DIR:-${SLUICE_SANDBOX_DIR:-/tmp}/bench-full}

S=(--no-defaults -h"$SLUICE_SOURCE_HOST" -P"$SLUICE_SOURCE_PORT" -u"$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD")
T=(--no-defaults -h"$SLUICE_TARGET_HOST" -P"$SLUICE_TARGET_PORT" -u"$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD")
src() { mariadb "${S[@]}" -N -B "$@"; }
dst() { mariadb "${T[@]}" -N -B "$@"; }
now() { echo "$EPOCHREALTIME"; }   # no fork: bash 5
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

echo "== building sluice (Release) in $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSLUICE_ASAN=OFF -DSLUICE_TESTS=ON >/dev/null
if [ "$RUNNER_KIND" = server ]; then
    # The server loads every plugin of its plugin dir.
    TARGETS=(sluice-server sluice-mysql-dump sluice-loader sluice-route sluice-event-filter
             sluice-binlog-reader sluice-mysql-sink sluice-lua-hook)
else
    TARGETS=(sluice-full-run sluice-mysql-dump sluice-loader sluice-route)
fi
RUNNER="$BUILD/bin/sluice-full-run"
SERVER="$BUILD/bin/sluice-server"
# The tree is shared with people mid-edit: a failed build falls back to what was built before.
if ! cmake --build "$BUILD" -j2 --target "${TARGETS[@]}" >"$BUILD/bench-build.log" 2>&1; then
    if [ -x "$([ "$RUNNER_KIND" = server ] && echo "$SERVER" || echo "$RUNNER")" ]; then
        echo "   WARNING: the build failed (see $BUILD/bench-build.log): using the binaries built before"
    else
        tail -20 "$BUILD/bench-build.log"; exit 1
    fi
fi
SERVER_PID=
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null || true' EXIT

# prepare_shape TABLES ROWS: the source database sb_<TABLES>x<ROWS> (kept between runs), its table
# list, checksums and size.
prepare_shape() {
    TABLES=$1 ROWS=$2 DB="sb_${1}x${2}"
    if [ "$PREPARE" = 1 ]; then
        local have rows
        have=$(src -e "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='$DB'" 2>/dev/null || echo 0)
        rows=$(src -e "SELECT IFNULL(MAX(id),0) FROM \`$DB\`.sbtest$TABLES" 2>/dev/null || echo 0)
        if [ "$have" != "$TABLES" ] || [ "$rows" != "$ROWS" ]; then
            echo "== preparing $TABLES x $ROWS sysbench rows on the source ($DB)"
            src -e "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`"
            sysbench oltp_read_write --db-driver=mysql --mysql-host="$SLUICE_SOURCE_HOST" \
                --mysql-port="$SLUICE_SOURCE_PORT" --mysql-user="$SLUICE_SOURCE_USER" \
                --mysql-password="$SLUICE_SOURCE_PASSWORD" --mysql-db="$DB" --tables="$TABLES" \
                --table-size="$ROWS" --threads=2 prepare >/dev/null
        fi
    fi
    TBL_LIST=$(src -e "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='$DB' ORDER BY 1")
    SRC_SUM=$(checksums src)
    local bytes total
    bytes=$(src -e "SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA='$DB'")
    total=$(src -e "SELECT SUM(TABLE_ROWS) FROM information_schema.TABLES WHERE TABLE_SCHEMA='$DB'")
    echo "== data $DB: $(echo "$TBL_LIST" | wc -w) tables, ~$total rows, $((bytes / 1048576)) MiB InnoDB data+indexes; threads $THREADS"
}
# One CHECKSUM TABLE statement for every table (2,000 tables: one round trip, not 2,000 clients).
checksums() { # $1 = src|dst
    local list; list=$(for t in $TBL_LIST; do printf '`%s`.`%s`,' "$DB" "$t"; done)
    $1 -e "CHECKSUM TABLE ${list%,} EXTENDED" | awk '{printf "%s=%s ", $1, $2}'
}

# target_config default|tuned: restart the sandbox target with the configuration's settings on
# its command line. (Setting innodb_log_file_size with SET GLOBAL after the restart, as this script
# did before, resized the redo log while the first copy ran: sluice's, always, 23.5 s against
# 16.1-18.6 s in the rounds after it on the default target.) The first copy after it is a warm-up.
target_config() {
    local opts
    case "$1" in
    default) opts="--innodb-flush-log-at-trx-commit=1 --innodb-log-file-size=96M" ;;
    tuned)   opts="--innodb-flush-log-at-trx-commit=2 --innodb-log-file-size=512M" ;;
    esac
    SLUICE_SANDBOX_TARGET_OPTS=$opts "$SANDBOX" restart target >/dev/null
    TARGET_SETTINGS=$(dst -e "SELECT CONCAT('flush_log_at_trx_commit=', @@innodb_flush_log_at_trx_commit,
        ' redo=', @@innodb_log_file_size DIV 1048576, 'M buffer_pool=', @@innodb_buffer_pool_size DIV 1048576, 'M')")
    echo "== target configuration $1: $TARGET_SETTINGS"
    WARM=0
}

# warm_up: the floor's copy once, not counted, on a target just restarted. The first copy after
# a restart ran slower whoever made it (sluice's, always, being first in round 1: 16.1 s against
# 13.5-14.1 s in the rounds after it on the tuned target, with no redo resize): the buffer pool's
# memory is touched for the first time, and so on.
warm_up() {
    [ "$WARM" = 0 ] || return 0
    WARM=1
    echo "== warm-up, not counted: the floor's copy once on the restarted target"
    tool_floor
    TIME=() CPU=()
}

clean_target() {
    dst -e "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE IF NOT EXISTS dm_meta;
            DROP TABLE IF EXISTS dm_meta.\`bench-full_loader_checkpoint\`, dm_meta.\`bench-full_syncer_checkpoint\`,
                dm_meta.\`bench-full_loader_tables\`"
    rm -rf "$WORK"
    mkdir -p "$WORK"
    quiesce_target
}
# The copy before can leave the target dirty pages (up to its redo size: 512 MB tuned), which it
# would flush in the background on the next tool's clock. So every tool starts on a target
# without dirty pages: the page cleaner is told to flush everything, the clock starts when it
# has, and the log says how many there were (after a myloader copy of 1 x 4,000,000 and the
# DROP: 17,018 pages, flushed in 0.7 s; after sluice's: 38). Then it waits until the target's
# purge has caught up (history list under 100) and its process has been idle (at most 4 % of a
# core) for two half-seconds in a row, so that no copy starts while the server still works on
# the one before. (Sluice's 2,000 x 1,000 copy once took 23.3 s right after the floor's DROP of
# 2,000 tables against 19.3 s first in its round. The wait has not found such work since: the
# target was idle 1.2 s after each DROP, and the copy took 19.2 s after the floor, 21.5 s first.)
server_cpu() { # SIDE: jiffies of the sandbox's source or target mysqld, or nothing without its pid file
    local p; p=$(cat "${SLUICE_SANDBOX_DIR:-/nonexistent}/$1.pid" 2>/dev/null) || return 0
    awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || true
}
target_cpu() { server_cpu target; }
# CPU seconds of a copy, by whom. The copy shares two cores with both servers, so a tool's time is
# bounded by the CPU that all three spend (sluice: 27.7 CPU-seconds for a 15.9 s copy of 8 x
# 500,000, 76 % of it the target's). cpu_start before the clock starts; cpu_stop OWN after it stops,
# OWN the tool's own jiffies (sluice-server's from /proc) or empty for the shell's children
# (mydumper, myloader, the floor's clients: bash's `times`). It sets CPU_LINE and CPU[tool] (total).
HZ=$(getconf CLK_TCK)
children_cpu() { # the shell's children's user + system time, in jiffies, into CHILD_JIFFIES
    times >"$WORK/times"   # here, not in a $(...) subshell, whose children are not this shell's
    CHILD_JIFFIES=$(awk -v hz="$HZ" 'NR == 2 { n = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); n += a[1] * 60 + a[2] } printf "%d", n * hz }' "$WORK/times")
}
cpu_start() { CPU0_SRC=$(server_cpu source); CPU0_TGT=$(server_cpu target); children_cpu; CPU0_OWN=$CHILD_JIFFIES; }
cpu_stop() { # TOOL [OWN_JIFFIES]
    local src tgt own
    src=$(server_cpu source) tgt=$(server_cpu target)
    children_cpu
    own=${2:-$((CHILD_JIFFIES - CPU0_OWN))}
    if [ -z "$src" ] || [ -z "$tgt" ] || [ -z "$CPU0_SRC" ] || [ -z "$CPU0_TGT" ]; then CPU_LINE=""; return; fi
    CPU_LINE=$(awk -v o="$own" -v s="$((src - CPU0_SRC))" -v t="$((tgt - CPU0_TGT))" -v hz="$HZ" \
        'BEGIN { printf "%.1f %.1f %.1f %.1f", o / hz, s / hz, t / hz, (o + s + t) / hz }')
    CPU[$1]=${CPU_LINE##* }
    set -- $CPU_LINE
    echo "   CPU: own $1 s, source mysqld $2 s, target mysqld $3 s; $4 s in all"
}
dirty_pages() { dst -e "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_PAGES_DIRTY'"; }
quiesce_target() {
    local pct lwm dirty first i t0q
    t0q=$(now)
    read -r pct lwm < <(dst -e "SELECT @@innodb_max_dirty_pages_pct, @@innodb_max_dirty_pages_pct_lwm")
    first=$(dirty_pages)
    dst -e "SET GLOBAL innodb_max_dirty_pages_pct = 0"
    dirty=$first
    for i in $(seq 1 240); do
        [ "$dirty" -lt 50 ] && break
        sleep 0.5
        dirty=$(dirty_pages)
    done
    dst -e "SET GLOBAL innodb_max_dirty_pages_pct = $pct, GLOBAL innodb_max_dirty_pages_pct_lwm = $lwm"
    sync
    local t1q hist=0 a b busy=- idle=0
    t1q=$(now)
    for i in $(seq 1 240); do
        hist=$(dst -e "SELECT COUNT FROM information_schema.INNODB_METRICS WHERE NAME = 'trx_rseg_history_len'")
        a=$(target_cpu); sleep 0.5; b=$(target_cpu)
        busy=$([ -n "$a" ] && [ -n "$b" ] && echo $((b - a)) || echo 0)
        if [ "${hist:-0}" -lt 100 ] && [ "$busy" -le 2 ]; then
            idle=$((idle + 1))
            [ "$idle" -ge 2 ] && break
        else
            idle=0
        fi
    done
    echo "   target quiesced before the copy: $first dirty pages, $dirty after $(elapsed "$t0q" "$t1q") s;" \
         "purge history $hist, idle after $(elapsed "$t1q" "$(now)") s more (last half-second: $busy jiffies)"
}
verify() { # $1 = name
    local got; got=$(checksums dst)
    if [ "$got" = "$SRC_SUM" ]; then echo "   $1: checksums match"; else
        echo "   $1: CHECKSUM MISMATCH"; echo "   source: ${SRC_SUM:0:300}"; echo "   target: ${got:0:300}"; FAILED=1; fi
}
declare -A TIME SETTINGS CPU
FAILED=0 STATUS_FAILED=0
SUMMARY=() CPU_SUMMARY=()
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

# sluice through sluice-server and the DM OpenAPI; sets TIME[sluice] and RSS_KB.
API="http://127.0.0.1:$PORT/api/v1"
api() { # METHOD PATH [BODY]: prints the body, fails on HTTP >= 400
    local out code
    out=$(curl -sS -X "$1" "$API$2" -H 'Content-Type: application/json' ${3:+-d "$3"} -w '\n%{http_code}') || return 1
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    if [ "$code" -ge 400 ]; then echo "   $1 $2 -> HTTP $code: $out" >&2; return 1; fi
    printf '%s' "$out"
}
# http_get PATH: GET $API/PATH without forking (bash's /dev/tcp; HTTP/1.0, so the server closes
# the connection after its answer); sets HTTP_BODY; fails on no answer or HTTP >= 400.
http_get() {
    local fd resp code
    exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" || return 1
    printf 'GET /api/v1%s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&"$fd"
    IFS= read -r -d '' -u "$fd" resp || true    # up to the end of the connection
    exec {fd}<&-
    code=${resp#HTTP/1.[01] }
    code=${code%% *}
    HTTP_BODY=${resp#*$'\r\n\r\n'}
    case "$code" in [0-9][0-9][0-9]) ;; *) echo "   GET $1: no HTTP answer" >&2; return 1 ;; esac
    if [ "$code" -ge 400 ]; then echo "   GET $1 -> HTTP $code: $HTTP_BODY" >&2; return 1; fi
}
sluice_server_run() {
    rm -rf "$WORK/server-data"
    "$SERVER" --addr "127.0.0.1:$PORT" --data-dir "$WORK/server-data" --plugin-dir "$BUILD/lib/sluice/plugins" \
        --log-level info >"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do curl -fsS "$API/cluster/masters" >/dev/null 2>&1 && break; sleep 0.1; done
    api POST /sources "{\"source_name\":\"bench-src\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,
        \"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}" >/dev/null
    api POST /tasks "{\"task\":{\"name\":\"bench-full\",\"task_mode\":\"full\",\"on_duplicate\":\"overwrite\",
        \"meta_schema\":\"dm_meta\",
        \"target_config\":{\"host\":\"$SLUICE_TARGET_HOST\",\"port\":$SLUICE_TARGET_PORT,
          \"user\":\"$SLUICE_TARGET_USER\",\"password\":\"$SLUICE_TARGET_PASSWORD\"},
        \"table_migrate_rule\":[{\"source\":{\"source_name\":\"bench-src\",\"schema\":\"$DB\",\"table\":\"*\"}}],
        \"source_config\":{\"full_migrate_conf\":{\"export_threads\":$THREADS,\"import_threads\":$THREADS,
          \"data_dir\":\"$WORK/sluice\"$([ "$STREAM" = 1 ] && echo ',"stream":true')},\"source_conf\":[{\"source_name\":\"bench-src\"}]}}}" >/dev/null
    : >"$WORK/status.log"
    local npoll=0 pause final="" sfd seen_dump seen_dump_progress seen_load seen_load_progress
    # A poll forks no process: the GET goes through bash's /dev/tcp (http_get), the pause is a
    # read -t on a pipe nobody writes, and the status is only appended to status.log, read by jq
    # once after the run. The copy is CPU-bound on a small machine and the peers run without a
    # poller: a curl and a jq per poll cost ~4 s of CPU in a 25 s run (perf -a, 2,000 x 1,000),
    # after a poller of five processes per poll had cost 8.7 s in 18 s. The end time comes from
    # the server's own log (when it recorded stage Finished), not from the poll that saw it.
    exec {sfd}<> <(:)
    cpu_start
    t0=$(now)
    api POST /tasks/bench-full/start '{}' >/dev/null
    while :; do
        http_get /tasks/bench-full/status || { final=error; break; }
        printf '%s %s\n' "$EPOCHREALTIME" "$HTTP_BODY" >>"$WORK/status.log"
        case "$HTTP_BODY" in
        *'"stage":"Finished"'*) final=Finished; break ;;
        *'"stage":"Paused"'*) final=Paused; break ;;
        *'"stage":"Stopped"'*) final=Stopped; break ;;
        esac
        # every 0.1 s for the first two seconds (a small copy still shows its progress), then 0.5 s
        npoll=$((npoll + 1))
        pause=0.1
        [ "$npoll" -lt 20 ] || pause=0.5
        read -r -t "$pause" -u "$sfd" _ || true
    done
    exec {sfd}<&-
    t1=$(now)
    local fin
    fin=$(log_epoch 'task bench-full source bench-src: finished$')
    [ -n "$fin" ] && t1=$fin
    TIME[sluice]=$(elapsed "$t0" "$t1")
    RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
    SERVER_JIFFIES=$(awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat")
    local last; last=$(tail -1 "$WORK/status.log" | cut -d' ' -f2-)
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
    if [ "$final" != Finished ]; then
        echo "   the task ended ${final:-without a status}: $(jq -c '.data[0] | {stage, unit, error_msg}' <<<"$last" 2>/dev/null || echo "$last")"
        tail -5 "$WORK/server.log"; exit 1
    fi
    # What the polls saw while the task ran: the units and their progress, one jq over them all.
    read -r seen_dump seen_dump_progress seen_load seen_load_progress seen_load_in_dump < <(cut -d' ' -f2- "$WORK/status.log" |
        jq -rs 'def loading: (.load_status.finished_bytes // 0) > 0 and (.load_status.total_bytes // 0) > 0
                  and ((.load_status.progress // "") | test("^[0-9]+\\.[0-9]{2} %$"))
                  and .load_status.progress != "0.00 %";
            [.[] | .data[0] | select(.stage == "Running")] |
            [(map(.unit == "Dump") | any),
             (map((.dump_status.finished_rows // 0) > 0 and (.dump_status.total_tables // 0) > 0) | any),
             (map(.unit == "Load") | any),
             (map(loading) | any),
             (map(.unit == "Dump" and loading) | any)]
            | map(if . then 1 else 0 end) | @tsv')
    local ok=1 polls=$((npoll + 1))
    check() { if [ "$2" = 1 ]; then echo "   status check ok: $1"; else echo "   STATUS CHECK FAILED: $1"; ok=0; fi; }
    echo "   status over REST ($polls polls, see $WORK/status.log):"
    check "unit Dump shown while Running" $seen_dump
    check "dump_status with finished_rows while Running" $seen_dump_progress
    # A streamed dump lasts as long as the load (each chunk is dumped while it loads), so the unit
    # turns Load only for the last index builds, which a poll can miss: there the check is that
    # the load's progress shows while the unit is still Dump.
    if [ "$STREAM" = 1 ]; then
        check "load progress shown while the unit is Dump (stream: the dump lasts as long as the load)" $seen_load_in_dump
    else
        check "unit Load shown while Running" $seen_load
    fi
    check "load_status finished_bytes/total_bytes/progress moving while Running" $seen_load_progress
    check "stage Finished at the end" "$([ "$(jq -r '.data[0].stage' <<<"$last")" = Finished ] && echo 1)"
    check "load_status 100.00 % with the snapshot position at the end" \
        "$(jq -e '.data[0].load_status.progress == "100.00 %" and (.data[0].load_status.meta_binlog | test("^\\(.+, [0-9]+\\)$"))' \
           <<<"$last" >/dev/null 2>&1 && echo 1)"
    echo "   final status: $(jq -c '.data[0] | {stage, unit, load_status: (.load_status | {finished_bytes, total_bytes, progress, meta_binlog}), dump_status: (.dump_status | {total_tables, completed_tables, finished_rows, progress})}' <<<"$last")"
    [ "$ok" = 1 ] || STATUS_FAILED=1
    SLUICE_T0=$t0
}

# log_epoch REGEX: the time (seconds since the epoch) of the server log's last line that matches
# REGEX (a sed regex, no '/'), or nothing.
log_epoch() {
    local ts
    ts=$(sed -n "/$1/s/^\([0-9T:.-]*Z\) .*/\1/p" "$WORK/server.log" | tail -1)
    [ -z "$ts" ] || date -d "$ts" +%s.%N
}

# print_phases T0 TOTAL: where the copy's time went, in seconds from the start request: the end
# of the dump (the server's log line, and the share of the bytes loaded by then, from the poll
# before it), the first poll that saw every byte loaded, and the end. What follows the rows is the
# last index builds and the finish. The polls are 0.5 s apart after the first two seconds.
print_phases() {
    local t0=$1 total=$2 dend rows
    dend=$(log_epoch 'dump finished: ')
    [ -n "$dend" ] && dend=$(elapsed "$t0" "$dend")
    rows=$(jq -Rrn --argjson t0 "$t0" --argjson dend "${dend:-0}" '
        [inputs | capture("^(?<t>[0-9.]+) (?<j>.*)$") | {t: (.t | tonumber), s: (.j | fromjson | .data[0])}
         | {t: (.t - $t0), unit: .s.unit, fb: (.s.load_status.finished_bytes // 0), tb: (.s.load_status.total_bytes // 0)}] as $p
        | ($p | last | .tb) as $bytes
        | ([$p[] | select(.t <= $dend)] | last // {fb: 0}) as $d
        | ([$p[] | select(.unit == "Load" and .tb > 0 and .fb == .tb)] | first) as $all
        | "\(if $bytes > 0 then ($d.fb * 100 / $bytes | floor) else 0 end) \(if $all then ($all.t * 100 | round / 100) else "-" end)"' \
        "$WORK/status.log" 2>/dev/null) || rows=""
    [ -n "$dend" ] && [ -n "$rows" ] || return 0
    echo "   phases: dump finished at ${dend} s (${rows%% *}% of the bytes loaded by then), every row in at ${rows#* } s, end at $total s"
}

tool_sluice() {
    echo "== (a) sluice full task via $RUNNER_KIND (export_threads=$THREADS import_threads=$THREADS chunk_rows=$CHUNK$([ "$STREAM" = 1 ] && echo ', stream: true'))"
    clean_target
    if [ "$RUNNER_KIND" = server ]; then
        [ "$CHUNK" = 100000 ] || echo "   note: --chunk-rows is ignored by the server runner (the task has no such field)"
        sluice_server_run
        echo "   time ${TIME[sluice]} s (start request to stage Finished), server peak RSS $((RSS_KB / 1024)) MiB"
        cpu_stop sluice "$SERVER_JIFFIES"
        grep -E "consistency|dumping|dump finished|secondary indexes|load finished" "$WORK/server.log" | sed 's/^/   /' || true
        print_phases "$SLUICE_T0" "${TIME[sluice]}"
    else
        RULES="[{\"schema\":\"$DB\",\"table\":\"\",\"target_schema\":\"\",\"target_table\":\"\",\"filters\":[]}]"
        cpu_start
        t0=$(now)
        /usr/bin/time -f "%M" -o "$WORK/rss" "$RUNNER" --task bench-full --source bench --data-dir "$WORK/sluice" \
            --rules "$RULES" --export-threads "$THREADS" --import-threads "$THREADS" --chunk-rows "$CHUNK" \
            >"$WORK/sluice.status" 2>"$WORK/sluice.log" || { tail -5 "$WORK/sluice.log"; exit 1; }
        t1=$(now)
        TIME[sluice]=$(elapsed "$t0" "$t1")
        RSS_KB=$(cat "$WORK/rss")
        echo "   time ${TIME[sluice]} s, peak RSS $((RSS_KB / 1024)) MiB"
        cpu_stop sluice
        grep -E "consistency|dump finished|load finished" "$WORK/sluice.log" | sed 's/^/   /'
    fi
    DISK_KB=$(du -sk "$WORK/sluice" 2>/dev/null | cut -f1)
    echo "   data_dir disk use after the task: $((${DISK_KB:-0} / 1024)) MiB"
    # the highest of the rounds: the limit holds in every run or not at all
    [ -n "$RSS_KB" ] && [ "$RSS_KB" -gt "${RSS_MAX_KB:-0}" ] && RSS_MAX_KB=$RSS_KB
    verify sluice
}

tool_mydumper() {
    echo "== (b) mydumper + myloader (-t $THREADS -r $CHUNK)"
    clean_target
    cpu_start
    t0=$(now)
    mydumper -h "$SLUICE_SOURCE_HOST" -P "$SLUICE_SOURCE_PORT" -u "$SLUICE_SOURCE_USER" -p "$SLUICE_SOURCE_PASSWORD" \
        -B "$DB" -t "$THREADS" -r "$CHUNK" --trx-consistency-only -o "$WORK/mydumper" 2>"$WORK/mydumper.log"
    t1=$(now)
    myloader -h "$SLUICE_TARGET_HOST" -P "$SLUICE_TARGET_PORT" -u "$SLUICE_TARGET_USER" -p "$SLUICE_TARGET_PASSWORD" \
        -d "$WORK/mydumper" -t "$THREADS" -o 2>"$WORK/myloader.log"
    t2=$(now)
    TIME[mydumper]=$(elapsed "$t0" "$t2")
    echo "   time ${TIME[mydumper]} s (dump $(elapsed "$t0" "$t1") s, load $(elapsed "$t1" "$t2") s)"
    cpu_stop mydumper
    verify mydumper+myloader
}

tool_mariadb-dump() {
    echo "== (c) mariadb-dump --single-transaction | mariadb"
    clean_target
    cpu_start
    t0=$(now)
    mariadb-dump "${S[@]}" --single-transaction --databases "$DB" | mariadb "${T[@]}"
    t1=$(now)
    TIME[mariadb-dump]=$(elapsed "$t0" "$t1")
    echo "   time ${TIME[mariadb-dump]} s"
    cpu_stop mariadb-dump
    verify mariadb-dump
}

tool_floor() {
    echo "== (d) floor: SELECT INTO OUTFILE + LOAD DATA INFILE per table, $THREADS at a time"
    clean_target
    dst -e "CREATE DATABASE \`$DB\`"
    for t in $TBL_LIST; do
        src -e "SHOW CREATE TABLE \`$DB\`.\`$t\`" | cut -f2- | sed 's/\\n/\n/g' | dst "$DB"
    done
    cpu_start
    t0=$(now)
    echo "$TBL_LIST" | xargs -P "$THREADS" -I{} mariadb "${S[@]}" -e \
        "SELECT * INTO OUTFILE '$WORK/{}.txt' CHARACTER SET binary FROM \`$DB\`.\`{}\`"
    t1=$(now)
    echo "$TBL_LIST" | xargs -P "$THREADS" -I{} mariadb "${T[@]}" -e \
        "SET foreign_key_checks=0; LOAD DATA INFILE '$WORK/{}.txt' INTO TABLE \`$DB\`.\`{}\` CHARACTER SET binary"
    t2=$(now)
    TIME[floor]=$(elapsed "$t0" "$t2")
    echo "   time ${TIME[floor]} s (outfile $(elapsed "$t0" "$t1") s, load $(elapsed "$t1" "$t2") s)"
    cpu_stop floor
    verify floor
}

median() { tr ' ' '\n' | awk NF | sort -g | awk '{ v[NR] = $1 } END { if (NR) printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; else printf "-" }'; }
range() { tr ' ' '\n' | awk NF | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { if (NR > 1) printf "%s-%s", lo, hi; else if (NR) printf "%s", lo; else printf "-" }'; }
ratio() { # A B: TIME[A] / TIME[B] of this round, or nothing
    if [ -n "${TIME[$1]:-}" ] && [ -n "${TIME[$2]:-}" ]; then
        awk -v a="${TIME[$1]}" -v b="${TIME[$2]}" 'BEGIN { printf "%.2f", a / b }'
    fi
}

# run_shape CONFIG: every tool on the prepared shape, ROUNDS times, then its lines of the summary.
run_shape() {
    local cfg=$1 r tool order=()
    local -A ALL=() ALLCPU=()
    local ratios_my="" ratios_fl=""
    RSS_MAX_KB="" DISK_KB=""
    want sluice && order+=(sluice)
    want mydumper && order+=(mydumper)
    want mariadb-dump && { [ "$WITH_MDUMP" = 1 ] || [ "$ONLY" = mariadb-dump ]; } && order+=(mariadb-dump)
    want floor && order+=(floor)
    warm_up
    for r in $(seq 1 "$ROUNDS"); do
        [ "$ROUNDS" = 1 ] || echo "== round $r of $ROUNDS ($cfg, ${TABLES}x${ROWS})"
        TIME=() CPU=() RSS_KB=""
        local this=("${order[@]}")
        if [ $((r % 2)) = 0 ]; then   # every other round backwards
            this=(); for ((k = ${#order[@]} - 1; k >= 0; k--)); do this+=("${order[k]}"); done
        fi
        for tool in "${this[@]}"; do
            "tool_$tool"
            ALL[$tool]+="${TIME[$tool]} "
            ALLCPU[$tool]+="${CPU[$tool]:-} "
        done
        ratios_my+="$(ratio sluice mydumper) "
        ratios_fl+="$(ratio sluice floor) "
        [ "$ROUNDS" = 1 ] || echo "   round $r: sluice/mydumper $(ratio sluice mydumper), sluice/floor $(ratio sluice floor)"
    done
    local rm rf
    rm=$(median <<<"$ratios_my") rf=$(median <<<"$ratios_fl")
    [ "$ROUNDS" -gt 1 ] && [ "$rm" != - ] && rm="$rm ($(range <<<"$ratios_my"))"
    [ "$ROUNDS" -gt 1 ] && [ "$rf" != - ] && rf="$rf ($(range <<<"$ratios_fl"))"
    SUMMARY+=("$(printf '%-8s %-12s %9s %11s %9s %9s %18s %18s %8s %9s' "$cfg" "${TABLES}x${ROWS}" \
        "$(median <<<"${ALL[sluice]:-}")" "$(median <<<"${ALL[mydumper]:-}")" "$(median <<<"${ALL[floor]:-}")" \
        "$(median <<<"${ALL[mariadb-dump]:-}")" "$rm" "$rf" \
        "$([ -n "$RSS_MAX_KB" ] && echo $((RSS_MAX_KB / 1024)) || echo -)" \
        "$([ -n "$DISK_KB" ] && echo $((DISK_KB / 1024)) || echo -)")")
    local cs cm
    cs=$(median <<<"${ALLCPU[sluice]:-}") cm=$(median <<<"${ALLCPU[mydumper]:-}")
    CPU_SUMMARY+=("$(printf '%-8s %-12s %9s %11s %9s %9s %18s' "$cfg" "${TABLES}x${ROWS}" \
        "$cs" "$cm" "$(median <<<"${ALLCPU[floor]:-}")" "$(median <<<"${ALLCPU[mariadb-dump]:-}")" \
        "$(awk -v a="$cs" -v b="$cm" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else printf "-" }')")")
}

for cfg in $CONFIGS; do
    target_config "$cfg"
    SETTINGS[$cfg]=$TARGET_SETTINGS
    for shape in $SHAPES; do
        prepare_shape "${shape%x*}" "${shape#*x}"
        run_shape "$cfg"
        echo "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    done
done

echo "== summary of $ROUNDS round(s): median times in seconds; ratio = sluice time / the other's time in"
echo "   the same round, the median of the rounds (and their range); RSS: the highest of the rounds"
echo "   goals: 8x500000 <= 0.60 vs mydumper+myloader and <= 0.90 vs the floor; other shapes <= 0.70"
echo "   vs mydumper+myloader; sluice-server peak RSS < 64 MiB"
for cfg in $CONFIGS; do echo "   target $cfg: ${SETTINGS[$cfg]}"; done
printf '   %-8s %-12s %9s %11s %9s %9s %18s %18s %8s %9s\n' config shape sluice mydumper+ floor mariadb sluice/mydumper sluice/floor "RSS MiB" "disk MiB"
for line in "${SUMMARY[@]}"; do echo "   $line"; done
echo "   CPU seconds of a copy in all (the tool's own, the source mysqld's and the target mysqld's), median:"
printf '   %-8s %-12s %9s %11s %9s %9s %18s\n' config shape sluice mydumper+ floor mariadb sluice/mydumper
for line in "${CPU_SUMMARY[@]}"; do echo "   $line"; done
echo "   load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (2 cores shared with other work)"
[ "$STATUS_FAILED" = 0 ] || { echo "   the task status over REST failed some checks (see above)"; FAILED=1; }
exit $FAILED
