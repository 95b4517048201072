# lib.sh - what the cluster tests of one source and one task share (sourced after NAME, the
# test's name, and PREFIX, its schema and task prefix, are set; STATUS_VIA names the master the
# task status is read from, m1 by default): the environment, a data dir per member
# (start NAME ROLE), the API (api, call), etcd's records (etcd_get, bound_to), the target's rows
# of the keyless table k (rows, wait_rows), the task status (status, wait_status), and polling
# (wait_until), the final comparison (check_copy) and the end (finish). The cleanup drops the
# test's schemas and meta tables.
set -uo pipefail
SERVER=${SLUICE_SERVER_BIN:?SLUICE_SERVER_BIN is not set}
PLUGINS=${SLUICE_PLUGIN_DIR:?SLUICE_PLUGIN_DIR is not set}
: "${SLUICE_ETCD_ENDPOINTS:?SLUICE_ETCD_ENDPOINTS is not set: eval \"\$(scripts/etcd env)\"}"
for v in SLUICE_SOURCE_HOST SLUICE_SOURCE_PORT SLUICE_SOURCE_USER SLUICE_SOURCE_PASSWORD \
         SLUICE_TARGET_HOST SLUICE_TARGET_PORT SLUICE_TARGET_USER SLUICE_TARGET_PASSWORD; do
    [ -n "${!v:-}" ] || { echo "FAIL: $v is not set (eval \"\$(scripts/sandbox env)\")" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "FAIL: jq is needed" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-$NAME-test.XXXXXX")
ROOT=/sluice-test-$NAME/$$
TTL=3
DB=clu_${PREFIX}_$$ COPY=clu_${PREFIX}_copy_$$ TASK=$PREFIX$$ SRC=$PREFIX$$-src
FAILS=0 CHECKS=0 WRITER=
declare -A PIDS PORTS
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
src_sql() { mariadb -h "$SLUICE_SOURCE_HOST" -P "$SLUICE_SOURCE_PORT" -u "$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD" -N -e "$1"; }
dst_sql() { mariadb -h "$SLUICE_TARGET_HOST" -P "$SLUICE_TARGET_PORT" -u "$SLUICE_TARGET_USER" -p"$SLUICE_TARGET_PASSWORD" -N -e "$1"; }
cleanup() {
    touch "$WORK/stop"; [ -n "$WRITER" ] && kill "$WRITER" 2>/dev/null
    for n in "${!PIDS[@]}"; do kill -CONT "${PIDS[$n]}" 2>/dev/null; kill -KILL "${PIDS[$n]}" 2>/dev/null; done
    src_sql "DROP DATABASE IF EXISTS \`$DB\`" 2>/dev/null
    dst_sql "DROP DATABASE IF EXISTS \`$COPY\`; DROP TABLE IF EXISTS dm_meta.\`${TASK}_syncer_checkpoint\`,
               dm_meta.\`${TASK}_loader_checkpoint\`, dm_meta.\`${TASK}_loader_tables\`;
             DELETE FROM dm_meta.sluice_fence WHERE source_name = '$SRC'" 2>/dev/null
    if [ "$FAILS" = 0 ]; then rm -rf "$WORK"; else echo "(kept $WORK)"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
check() { CHECKS=$((CHECKS + 1)); if [ "$2" != "$3" ]; then fail "$1: got '$2', want '$3'"; fi; }
start() {
    local n=$1 role=$2 log=$WORK/$1.log i before
    if [ "$n" != m1 ] && [ ! -e "$WORK/$n/secret.key" ]; then
        mkdir -p "$WORK/$n" && cp "$WORK/m1/secret.key" "$WORK/$n/" && chmod 600 "$WORK/$n/secret.key"
    fi
    before=$(grep -c 'serving the DM OpenAPI' "$log" 2>/dev/null)
    "$SERVER" --addr 127.0.0.1:0 --data-dir "$WORK/$n" --plugin-dir "$PLUGINS" --role "$role" --name "$n" \
        --etcd "$SLUICE_ETCD_ENDPOINTS" --etcd-root "$ROOT" --lease-ttl "$TTL" >>"$log" 2>&1 &
    PIDS[$n]=$!
    for i in $(seq 1 300); do
        if [ "$(grep -c 'serving the DM OpenAPI' "$log")" -gt "${before:-0}" ]; then
            PORTS[$n]=$(sed -n 's/.*serving the DM OpenAPI.*(port \([0-9]*\)).*/\1/p' "$log" | tail -1)
            return 0
        fi
        kill -0 "${PIDS[$n]}" 2>/dev/null || { tail -20 "$log" >&2; fail "$n died at start"; exit 1; }
        sleep 0.1
    done
    fail "$n did not serve within 30 s"; exit 1
}
api() { curl -s -m 60 "http://127.0.0.1:${PORTS[$1]}/api/v1/$2"; }
call() {
    curl -s -m 60 -o "$WORK/body" -w '%{http_code}' -X "$2" ${4:+-H 'Content-Type: application/json' -d "$4"} \
        "http://127.0.0.1:${PORTS[$1]}/api/v1/$3"
}
etcd_get() {   # KEY FIELD: a field of the key's etcd record (mod_revision, value, ...)
    curl -s -X POST "${SLUICE_ETCD_ENDPOINTS##*,}/v3/kv/range" \
        -d "{\"key\":\"$(printf '%s' "$1" | base64 -w0)\"}" | jq -r ".kvs[0].$2 // empty"
}
bound_to() { etcd_get "$ROOT/bound/$1" value | base64 -d 2>/dev/null | jq -r '.worker // empty' 2>/dev/null; }
rows() { dst_sql "SELECT COUNT(*) FROM \`$COPY\`.k" 2>/dev/null || echo 0; }
wait_rows() {   # MIN [SECONDS]: until the target's keyless table has more than MIN rows
    local i c=0
    for i in $(seq 1 $((${2:-120} * 10))); do c=$(rows); [ "${c:-0}" -gt "$1" ] && return 0; sleep 0.1; done
    fail "the target did not get past $1 rows (has $c)"
}
status() { api "${STATUS_VIA:-m1}" "tasks/$TASK/status" | jq -r ".data[0].$1" 2>/dev/null; }
wait_status() {   # FIELD WANT
    local i v
    for i in $(seq 1 300); do v=$(status "$1"); [ "$v" = "$2" ] && return 0; sleep 0.1; done
    check "task status $1" "$v" "$2"
}
# wait_until DESC CMD WANT SECONDS
wait_until() {
    local i got
    for i in $(seq 1 $(($4 * 10))); do got=$(eval "$2"); [ "$got" = "$3" ] && break; sleep 0.1; done
    check "$1" "$got" "$3"
}

# Stop the writer, then the target must hold the source's rows: as many keyless rows, none twice,
# row by row, and the keyed table's checksum.
check_copy() {
    touch "$WORK/stop"; wait "$WRITER"; check "the writer ran to the end" "$?" 0; WRITER=
    local want i
    want=$(src_sql "SELECT COUNT(*) FROM \`$DB\`.k")
    for i in $(seq 1 1200); do [ "$(rows)" -ge "$want" ] && break; sleep 0.1; done
    sleep 1
    check "keyless rows: as many on the target" "$(rows)" "$want"
    check "keyless rows: no duplicate" "$(dst_sql "SELECT COUNT(*) - COUNT(DISTINCT n) FROM \`$COPY\`.k")" 0
    check "keyed table: the same checksum" "$(dst_sql "CHECKSUM TABLE \`$COPY\`.t" | cut -f2)" \
        "$(src_sql "CHECKSUM TABLE \`$DB\`.t" | cut -f2)"
    check "keyless table: row by row" "$(dst_sql "SELECT n, note FROM \`$COPY\`.k ORDER BY n" | md5sum)" \
        "$(src_sql "SELECT n, note FROM \`$DB\`.k ORDER BY n" | md5sum)"
}

# Stop every member (each must exit 0), look for sanitizer reports, and give the verdict.
finish() {
    local n
    for n in "${!PIDS[@]}"; do
        kill -TERM "${PIDS[$n]}"; wait "${PIDS[$n]}"; check "$n stops cleanly" "$?" 0; unset "PIDS[$n]"
    done
    if grep -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$WORK"/*.log >/dev/null; then
        fail "sanitizer report in a member's log"
    fi
    echo "$CHECKS checks, $FAILS failures"
    [ "$FAILS" = 0 ]
}
