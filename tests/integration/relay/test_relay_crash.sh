#!/usr/bin/env bash
# test_relay_crash.sh - issue 14's crash test of the relay writer: relay the sandbox source while
# a writer runs transactions of every shape (small, 100 KB, 2 MB, non-transactional, DDL) and
# rotates the binlog, SIGKILL the relay at 10 random moments and start it again each time; then
# let it catch up and check that the relay holds the source's binlog once, in order, no gap:
#   - relay.index names each source file from the first relayed to the current one, once;
#   - each relayed file is byte for byte the source's file (the source's current file differs
#     only in its FORMAT_DESCRIPTION's "in use" flag, which a dump clears);
#   - mariadb-binlog reads every relay file, and its GTIDs are the source's, consecutive;
#   - relay.meta names the source's current position.
# Needs SLUICE_RELAY_RUN (the sluice-relay-run binary) and the sandbox env; a minute or so.
# With SLUICE_SERVER_BIN (and SLUICE_PLUGIN_DIR) set, what is killed is a whole sluice-server
# whose source has its relay enabled (test relay_server_crash): the relay then starts again with
# the server, from the source restored out of its metadata store.
set -uo pipefail

SERVER=${SLUICE_SERVER_BIN:-}
[ -n "$SERVER" ] || RUN=${SLUICE_RELAY_RUN:?SLUICE_RELAY_RUN is not set}
for v in SLUICE_SOURCE_HOST SLUICE_SOURCE_PORT SLUICE_SOURCE_USER SLUICE_SOURCE_PASSWORD; do
    [ -n "${!v:-}" ] || { echo "FAIL: $v is not set (run: eval \"\$(scripts/sandbox env)\")" >&2; exit 1; }
done
KILLS=${SLUICE_RELAY_KILLS:-10}
DB=relay_crash
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-relay-test.XXXXXX")
RELAY=$WORK/relay
FAILS=0
CHECKS=0
RPID=
LPID=
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
S=(--no-defaults -h"$SLUICE_SOURCE_HOST" -P"$SLUICE_SOURCE_PORT" -u"$SLUICE_SOURCE_USER" -p"$SLUICE_SOURCE_PASSWORD" -N -B)
src() { mariadb "${S[@]}" "$@"; }
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { CHECKS=$((CHECKS + 1)); }
cleanup() {
    [ -n "$RPID" ] && kill -KILL "$RPID" 2>/dev/null
    [ -n "$LPID" ] && kill -KILL "$LPID" 2>/dev/null
    src -e "DROP DATABASE IF EXISTS \`$DB\`" 2>/dev/null
    if [ "$FAILS" = 0 ]; then rm -rf "$WORK"; else echo "(kept $WORK)"; fi
}
trap cleanup EXIT
finish() {
    echo "relay_crash: $CHECKS checks, $FAILS failures"
    [ "$FAILS" = 0 ]
    exit $?
}

BINDIR=$(dirname "$(src -e "SELECT @@GLOBAL.log_bin_basename")")
[ -d "$BINDIR" ] || { fail "the source's binlog directory $BINDIR is not on this machine"; finish; }

src -e "DROP DATABASE IF EXISTS \`$DB\`; CREATE DATABASE \`$DB\`;
        CREATE TABLE \`$DB\`.\`t\` (id INT AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL, b MEDIUMBLOB) ENGINE=InnoDB;
        CREATE TABLE \`$DB\`.\`n\` (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64)) ENGINE=Aria;
        FLUSH BINARY LOGS" || { fail "cannot prepare the source"; finish; }
FIRST=$(src -e "SHOW MASTER STATUS" | cut -f1)

# The load: one client fed by a generator until $WORK/stop exists.
gen() {
    local i=0
    while [ ! -e "$WORK/stop" ]; do
        i=$((i + 1))
        case $((i % 6)) in
        0) echo "INSERT INTO \`t\` (k, b) SELECT seq, REPEAT('b', 300) FROM seq_1_to_100;" ;;
        1) echo "BEGIN; UPDATE \`t\` SET k = k + 1 WHERE id % 7 = $((i % 7)) LIMIT 50; INSERT INTO \`t\` (k) VALUES ($i); COMMIT;" ;;
        2) echo "INSERT INTO \`n\` (v) VALUES ('n$i');" ;;
        3) echo "DELETE FROM \`t\` WHERE id % 11 = $((i % 11)) LIMIT 40;" ;;
        4) echo "INSERT INTO \`t\` (k, b) VALUES ($i, REPEAT('s', 100));" ;;
        5) echo "DO SLEEP(0.01);" ;;
        esac
        [ $((i % 199)) = 0 ] && echo "INSERT INTO \`t\` (k, b) SELECT seq, REPEAT('m', 20000) FROM seq_1_to_100;"
        [ $((i % 131)) = 0 ] && echo "CREATE TABLE \`d$i\` (a INT); DROP TABLE \`d$i\`;"
        [ $((i % 300)) = 0 ] && echo "FLUSH BINARY LOGS;"
    done
    return 0
}
gen | src "$DB" >"$WORK/load.log" 2>&1 &
LPID=$!

start_relay() {
    "$RUN" "$RELAY" "$FIRST" >>"$WORK/relay.log" 2>&1 &
    RPID=$!
}
if [ -n "$SERVER" ]; then
    RELAY=$WORK/data/relay_log/relay-crash
    API=
    # The server on a free port; the source with its relay is created on the first start and
    # restored from the metadata store on the others. Returns once it serves (its relay runs).
    start_relay() {
        local before
        before=$(grep -c 'serving the DM OpenAPI' "$WORK/relay.log" 2>/dev/null)
        "$SERVER" --addr 127.0.0.1:0 --data-dir "$WORK/data" --plugin-dir "${SLUICE_PLUGIN_DIR:?}" \
            >>"$WORK/relay.log" 2>&1 &
        RPID=$!
        for _ in $(seq 1 600); do
            [ "$(grep -c 'serving the DM OpenAPI' "$WORK/relay.log")" -gt "${before:-0}" ] && break
            kill -0 "$RPID" 2>/dev/null || break
            sleep 0.05
        done
        API="http://127.0.0.1:$(sed -n 's/.*serving the DM OpenAPI.*(port \([0-9]*\)).*/\1/p' "$WORK/relay.log" | tail -1)/api/v1"
        [ -d "$RELAY" ] && return 0
        curl -sS -o "$WORK/post.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
            --data-binary "{\"source_name\":\"relay-crash\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true,\"relay_config\":{\"enable_relay\":true,\"relay_binlog_name\":\"$FIRST\"}}" \
            "$API/sources" >"$WORK/post.code"
        [ "$(cat "$WORK/post.code")" = 201 ] && ok || fail "POST /sources: $(cat "$WORK/post.code") $(cat "$WORK/post.json")"
    }
    mkdir -p "$WORK/data"
fi

PARTS=0
TORN=0
for k in $(seq 1 "$KILLS"); do
    start_relay
    sleep "0.$((RANDOM % 9 + 1))$((RANDOM % 10))"
    kill -KILL "$RPID" 2>/dev/null
    wait "$RPID" 2>/dev/null
    RPID=
    # A kill lands in the middle of a write only now and then; leave what such a kill leaves
    # on the others too: the source's next bytes cut anywhere (a transaction's first part), or a
    # torn event (bytes that are no event). Recovery must cut both back and fetch again.
    cur=$(tail -n1 "$RELAY/relay.index" 2>/dev/null)
    [ -n "$cur" ] && [ -f "$RELAY/$cur" ] || continue
    size=$(stat -c %s "$RELAY/$cur")
    if [ $((k % 2)) = 1 ]; then
        tail -c +"$((size + 1))" "$BINDIR/$cur" | head -c "$((RANDOM * 3 % 60000 + 1))" >>"$RELAY/$cur"
        PARTS=$((PARTS + 1))
    else
        head -c "$((RANDOM % 200 + 1))" /dev/urandom >>"$RELAY/$cur"
        TORN=$((TORN + 1))
    fi
done
touch "$WORK/stop"
wait "$LPID" || fail "the load failed: $(tail -3 "$WORK/load.log")"
LPID=
ok
src -e "FLUSH BINARY LOGS"

# Catch up and stop. The source's position is read again each time: it writes a
# BINLOG_CHECKPOINT of its own a moment after a FLUSH.
start_relay
caught=0
for _ in $(seq 1 600); do
    read -r LAST LASTPOS < <(src -e "SHOW MASTER STATUS" | cut -f1,2)
    if [ -s "$RELAY/relay.meta" ] &&
       [ "$(jq -r '.binlog_name + " " + (.binlog_pos|tostring)' "$RELAY/relay.meta")" = "$LAST $LASTPOS" ]; then
        caught=1
        break
    fi
    kill -0 "$RPID" 2>/dev/null || break
    sleep 0.1
done
[ "$caught" = 1 ] && ok || fail "the relay did not reach ($LAST, $LASTPOS): meta $(cat "$RELAY/relay.meta" 2>/dev/null)"
if [ -n "$SERVER" ]; then
    st=$(curl -sS "$API/sources/relay-crash/status" | jq -c '.data[0].relay_status')
    [ "$(printf '%s' "$st" | jq -r '.stage + " " + (has("error_msg")|tostring)')" = "Running false" ] && ok ||
        fail "the relay in the server is not running cleanly: $st"
fi
kill -TERM "$RPID" 2>/dev/null
wait "$RPID" && ok || fail "the relay did not stop cleanly: $(tail -3 "$WORK/relay.log")"
RPID=
CUTS=$(grep -c "cutting" "$WORK/relay.log")
[ "$CUTS" -ge "$TORN" ] && ok || fail "$TORN torn tails were left, only $CUTS cut"
if grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$WORK/relay.log"; then
    fail "sanitizer report in the relay's log"; grep -m5 -A5 "Sanitizer\|runtime error" "$WORK/relay.log"
else ok; fi
if grep -q "^relay: relay:" "$WORK/relay.log"; then
    fail "the relay stopped on an error: $(grep -m3 '^relay: relay:' "$WORK/relay.log")"
else ok; fi

# The index: every source file from FIRST to LAST, once, in order.
EXPECT=$(ls "$BINDIR" | grep -E "^$(basename "$(src -e "SELECT @@GLOBAL.log_bin_basename")")\.[0-9]+$" |
         sort | awk -v f="$FIRST" -v l="$LAST" '$0 >= f && $0 <= l')
if [ "$(cat "$RELAY/relay.index")" = "$EXPECT" ]; then ok; else
    fail "relay.index is not the source's files $FIRST..$LAST:"; diff <(echo "$EXPECT") "$RELAY/relay.index" | head; fi
NFILES=$(echo "$EXPECT" | wc -l)

# Byte for byte: every file but the source's current one exactly; that one as a prefix, but
# byte 22 (the "in use" flag of its FORMAT_DESCRIPTION, set on the source while it is open).
for f in $EXPECT; do
    if [ "$f" = "$LAST" ]; then
        # and the source may have added its BINLOG_CHECKPOINT since the relay caught up
        d=$(cmp -l -n "$(stat -c %s "$RELAY/$f")" "$RELAY/$f" "$BINDIR/$f" 2>&1 | grep -v '^ *22 ')
    else
        d=$(cmp "$RELAY/$f" "$BINDIR/$f" 2>&1)
    fi
    [ -z "$d" ] && ok || fail "relay file $f differs from the source's: $d"
done

# mariadb-binlog reads the relay; its GTIDs are the source's and consecutive.
rgt() { mariadb-binlog "$@" 2>"$WORK/mb.err" | grep -oE '^#.*GTID [0-9]+-[0-9]+-[0-9]+' | grep -oE '[0-9]+-[0-9]+-[0-9]+$'; }
R=$(cd "$RELAY" && rgt $EXPECT) && [ ! -s "$WORK/mb.err" ] && ok || fail "mariadb-binlog cannot read the relay: $(head -3 "$WORK/mb.err")"
O=$(cd "$BINDIR" && rgt $EXPECT)
NG=$(echo "$R" | grep -c .)
[ "$NG" -gt 100 ] && ok || fail "only $NG transactions were relayed: the load did not run"
[ "$R" = "$O" ] && ok || { fail "the relay's GTIDs are not the source's"; diff <(echo "$O") <(echo "$R") | head; }
GAPS=$(echo "$R" | awk -F- 'NR > 1 && $3 != prev + 1 { n++ } { prev = $3 } END { print n + 0 }')
[ "$GAPS" = 0 ] && ok || fail "$GAPS gaps or repeats in the relay's GTID sequence numbers"
G=$(jq -r .binlog_gtid "$RELAY/relay.meta")
[ "$G" = "$(src -e "SELECT @@GLOBAL.gtid_binlog_pos")" ] && ok || fail "relay.meta's GTID set '$G' is not the source's"

echo "relay_crash${SERVER:+ (sluice-server)}: $KILLS kills ($PARTS partial writes and $TORN torn events left behind), $CUTS tails cut, $NFILES files, $NG transactions, $(du -sk "$RELAY" | cut -f1) KiB"
finish
