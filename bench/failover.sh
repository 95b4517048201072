#!/usr/bin/env bash
# bench/failover.sh - how long a failover costs (issue 13): a master and two workers replicate
# one source under a steady writer; the source's bound worker runs it. Each round kills that
# worker with SIGKILL and times the gap from the kill to the first row its successor (the other
# worker, to which the leader rebinds the source) applies on the target, then restarts the killed
# worker (free). Prints each round, the median of the rounds and the lease TTL beside it; the
# goal is a median under TTL + 3 s (the worker's lease must run out before its source may move:
# the TTL is the floor, the rest is the leader's next binding pass, the new worker's poll and
# the resumed pipeline). Not part of the test run.
#
#   eval "$(scripts/sandbox env)"; eval "$(scripts/etcd env)"
#   bench/failover.sh [--rounds 10] [--ttl 3]
#
# Environment: SLUICE_SERVER_BIN (default <repo>/build/bin/sluice-server; a Release build gives
# the figures to compare, a sanitizer build runs a few times slower), SLUICE_PLUGIN_DIR,
# SLUICE_ETCD_ENDPOINTS (scripts/etcd env), SLUICE_SOURCE_* and SLUICE_TARGET_* (scripts/sandbox).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=10 TTL=3
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --ttl) TTL=$2; shift 2 ;;
    *) echo "usage: bench/failover.sh [--rounds N] [--ttl SECONDS]" >&2; exit 2 ;;
    esac
done
SERVER=${SLUICE_SERVER_BIN:-$ROOT/build/bin/sluice-server}
PLUGINS=${SLUICE_PLUGIN_DIR:-$(dirname "$(dirname "$SERVER")")/lib/sluice/plugins}
: "${SLUICE_ETCD_ENDPOINTS:?eval \"\$(scripts/etcd env)\" first}"
: "${SLUICE_SOURCE_HOST:?eval \"\$(scripts/sandbox env)\" first}"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-failover-bench.XXXXXX")
EROOT=/sluice-bench-failover/$$
DB=bench_fo_$$ COPY=bench_fo_copy_$$ TASK=bfo$$
declare -A PIDS PORTS
WRITER=
src_sql() { mariadb -h "$SLUICE_SOURCE_HOST" -P "$SLUICE_SOURCE_PORT" -u "$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD" -N -e "$1"; }
dst_sql() { mariadb -h "$SLUICE_TARGET_HOST" -P "$SLUICE_TARGET_PORT" -u "$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD" -N -e "$1"; }
cleanup() {
    [ -n "$WRITER" ] && kill "$WRITER" 2>/dev/null
    for n in "${!PIDS[@]}"; do kill -KILL "${PIDS[$n]}" 2>/dev/null; done
    src_sql "DROP DATABASE IF EXISTS \`$DB\`" 2>/dev/null
    dst_sql "DROP DATABASE IF EXISTS \`$COPY\`; DROP TABLE IF EXISTS dm_meta.\`${TASK}_syncer_checkpoint\`;
             DELETE FROM dm_meta.sluice_fence WHERE source_name = 'bench-src'" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
now() { date +%s.%N; }

start() {
    local n=$1 role=$2 log=$WORK/$1.log before i
    if [ "$n" != m1 ] && [ ! -e "$WORK/$n/secret.key" ]; then
        mkdir -p "$WORK/$n" && cp "$WORK/m1/secret.key" "$WORK/$n/" && chmod 600 "$WORK/$n/secret.key"
    fi
    before=$(grep -c 'serving the DM OpenAPI' "$log" 2>/dev/null)
    "$SERVER" --addr 127.0.0.1:0 --data-dir "$WORK/$n" --plugin-dir "$PLUGINS" --role "$role" --name "$n" \
        --etcd "$SLUICE_ETCD_ENDPOINTS" --etcd-root "$EROOT" --lease-ttl "$TTL" >>"$log" 2>&1 &
    PIDS[$n]=$!
    for i in $(seq 1 600); do
        if [ "$(grep -c 'serving the DM OpenAPI' "$log")" -gt "${before:-0}" ]; then
            PORTS[$n]=$(sed -n 's/.*serving the DM OpenAPI.*(port \([0-9]*\)).*/\1/p' "$log" | tail -1)
            return 0
        fi
        kill -0 "${PIDS[$n]}" 2>/dev/null || { tail -20 "$log" >&2; echo "$n died" >&2; exit 1; }
        sleep 0.1
    done
    echo "$n did not serve within 60 s" >&2; exit 1
}
api() { curl -s -m 30 "http://127.0.0.1:${PORTS[$1]}/api/v1/$2"; }
leader_of() { api "$1" cluster/masters | jq -r '.data[] | select(.leader and .alive) | .name' 2>/dev/null; }
bound_worker() { api m1 cluster/workers | jq -r '.data[] | select(.bound_stage == "bound") | .name' 2>/dev/null; }
rows() { dst_sql "SELECT COUNT(*) FROM \`$COPY\`.k" 2>/dev/null || echo 0; }

src_sql "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`; CREATE TABLE \`$DB\`.k (n INT NOT NULL)"
dst_sql "CREATE DATABASE IF NOT EXISTS \`$COPY\`; CREATE TABLE \`$COPY\`.k (n INT NOT NULL)"
read -r BFILE BPOS < <(src_sql "SHOW MASTER STATUS" | awk '{print $1, $2}')
start m1 master
start w1 worker
start w2 worker
for i in $(seq 1 100); do [ "$(leader_of m1)" = m1 ] && break; sleep 0.1; done
src='{"source_name":"bench-src","host":"'$SLUICE_SOURCE_HOST'","port":'$SLUICE_SOURCE_PORT',"user":"'$SLUICE_SOURCE_USER'","password":"'$SLUICE_SOURCE_PASSWORD'","enable":true}'
task='{"task":{"name":"'$TASK'","task_mode":"incremental","target_config":{"host":"'$SLUICE_TARGET_HOST'","port":'$SLUICE_TARGET_PORT',"user":"'$SLUICE_TARGET_USER'","password":"'$SLUICE_TARGET_PASSWORD'"},"table_migrate_rule":[{"source":{"source_name":"bench-src","schema":"'$DB'","table":"*"},"target":{"schema":"'$COPY'"}}],"source_config":{"source_conf":[{"source_name":"bench-src","binlog_name":"'$BFILE'","binlog_pos":'$BPOS'}]}}}'
A="http://127.0.0.1:${PORTS[m1]}/api/v1"
curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' -d "$src" "$A/sources" || { echo "source refused" >&2; exit 1; }
curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' -d "$task" "$A/tasks" || { echo "task refused" >&2; exit 1; }
curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' -d '{}' "$A/tasks/$TASK/start" || { echo "start refused" >&2; exit 1; }
( i=0; while :; do i=$((i + 1)); src_sql "INSERT INTO \`$DB\`.k VALUES ($i)" || exit 1; sleep 0.02; done ) &
WRITER=$!

echo "failover: kill -9 of the source's worker -> first row applied by its successor; lease TTL $TTL s; $(uptime | sed 's/.*load/load/')"
times=()
for r in $(seq 1 "$ROUNDS"); do
    # the pipeline runs on the source's bound worker: wait until rows flow, then kill it
    lead=; for i in $(seq 1 600); do lead=$(bound_worker); [ -n "$lead" ] && break; sleep 0.1; done
    other=w1; [ "$lead" = w1 ] && other=w2
    c=$(rows); for i in $(seq 1 600); do [ "$(rows)" -gt "$c" ] && break; sleep 0.1; done
    kill -KILL "${PIDS[$lead]}"; t0=$(now); wait "${PIDS[$lead]}" 2>/dev/null
    c=$(rows)
    t1=
    for i in $(seq 1 3000); do
        if [ "$(rows)" -gt "$c" ]; then t1=$(now); break; fi
        sleep 0.05
    done
    [ -n "$t1" ] || { echo "round $r: no row applied within 150 s" >&2; exit 1; }
    t=$(echo "$t1 - $t0" | bc -l)
    times+=("$t")
    printf 'round %2d: %s -> %s  %.2f s\n' "$r" "$lead" "$other" "$t"
    start "$lead" worker              # back, free
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
printf 'median of %d: %.2f s   lease TTL: %d s   goal: < %d s (TTL + 3)\n' "$ROUNDS" "$median" "$TTL" $((TTL + 3))
