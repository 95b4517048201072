#!/usr/bin/env bash
# test_flags.sh - sluice-server's command line: a flag whose value is missing is refused with
# "FLAG needs a value" and exit status 2, also when the next word is another flag
# (`--data-dir --plugin-dir X` used to take "--plugin-dir" as the data directory and create a
# directory of that name) or the value is empty; the joined form --flag=VALUE takes any value.
# The `sluice` client's words: --server before the command, unknown subcommands, extra words.
# Needs no database: it runs in a scratch directory and checks that nothing is created there.
set -uo pipefail
SERVER=${SLUICE_SERVER_BIN:?SLUICE_SERVER_BIN is not set}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sluice-flags-test.XXXXXX")
FAILS=0 CHECKS=0 PID=
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID"; fi
    if [ "$FAILS" = 0 ]; then rm -rf -- "$WORK"; else echo "(kept $WORK)"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { CHECKS=$((CHECKS + 1)); }
cd "$WORK" || exit 1
mkdir run

# refused FLAG ARGS...: exit 2 and "FLAG needs a value", nothing created in the working directory
refused() {
    local flag=$1 rc
    shift
    (cd run && "$SERVER" "$@" >../out 2>../err)
    rc=$?
    if [ "$rc" != 2 ]; then
        fail "sluice-server $*: exit $rc, want 2 ($(cat err))"
    elif ! grep -qF -- "sluice-server: $flag needs a value" err; then
        fail "sluice-server $*: stderr is '$(cat err)', want '$flag needs a value'"
    elif [ -n "$(ls -A run)" ]; then
        fail "sluice-server $*: created $(ls -A run)"
        rm -rf -- run/* run/.[!.]* 2>/dev/null
    else
        ok
    fi
}

refused --data-dir --data-dir --plugin-dir "$WORK/p"
refused --plugin-dir --plugin-dir --data-dir "$WORK/d"
refused --addr --addr --data-dir "$WORK/d"
refused --config --config --addr 127.0.0.1:0
refused --log-level --log-level --http-threads 4
refused --http-threads --http-threads --log-level info
refused --data-dir --addr 127.0.0.1:0 --data-dir
refused --data-dir --data-dir ""
refused --data-dir --data-dir=
refused --plugin-dir --plugin-dir=
refused --addr --data-dir "$WORK/d" --addr ""

# An unknown flag is named as such, even when a flag follows it.
(cd run && "$SERVER" --verbose --addr 127.0.0.1:0 >../out 2>../err)
rc=$?
[ "$rc" = 2 ] && grep -qF "unknown option --verbose" err && ok || fail "--verbose: exit $rc, '$(cat err)'"

# The CLI's flags too: a value left out is named as such, not as an unknown option.
CLI=${SLUICE_CLI_BIN:?SLUICE_CLI_BIN is not set}
printf '{}' >"$WORK/t.json"
for args in "check-task $WORK/t.json --sources" "explain $WORK/t.json --plugin-dir"; do
    (cd run && "$CLI" $args >../out 2>../err)
    rc=$?
    flag=${args##* }
    [ "$rc" != 0 ] && grep -qF -- "$flag needs a value" err && ok || fail "sluice $args: exit $rc, '$(cat err)'"
done
(cd run && "$CLI" source list --server >../out 2>../err)
rc=$?
[ "$rc" = 2 ] && grep -qF -- "--server needs a value" err && ok || fail "sluice source list --server: exit $rc, '$(cat err)'"

# The client's subcommands: an unknown one is named with the known ones, a word too many is
# refused (not ignored), and check-task's columns are 1-based also at the start of a line.
cli_refused() {   # cli_refused WANT ARGS...: exit 2 and stderr holding WANT
    local want=$1 rc
    shift
    # a server nobody listens on, should a refused command try to talk to one
    (cd run && SLUICE_SERVER=http://127.0.0.1:1 "$CLI" "$@" >../out 2>../err)
    rc=$?
    [ "$rc" = 2 ] && grep -qF -- "$want" err && ok || fail "sluice $*: exit $rc, stderr '$(cat err)', want '$want'"
}
cli_refused 'unknown subcommand "bogus" of task; the known ones: create update list get start' task bogus
cli_refused 'unknown subcommand "bogus" of source' source bogus
cli_refused 'unknown subcommand "bogus" of cluster' cluster bogus
cli_refused 'task list takes no argument; unexpected "extra-arg"' task list extra-arg
cli_refused 'task start takes NAME; unexpected "b"' task start a b
cli_refused 'task start needs a NAME' task start
cli_refused '--server goes with the client commands' --server http://127.0.0.1:1 explain x
printf '{"task":\n' >"$WORK/cut.json"
(cd run && "$CLI" check-task "$WORK/cut.json" >../out 2>../err)
rc=$?
[ "$rc" = 1 ] && grep -qF "line 2, column 1:" err && ok || fail "check-task of a cut task: exit $rc, '$(cat err)'"

# check-task names the shard merges and what their DDL does under the task's shard_mode: with
# shard_mode set, a rule that merges nothing was labelled "(shard merge)", and the DDL line said
# "pauses the subtask" (found by an exploratory session).
cat >"$WORK/shard.json" <<EOF
{"name":"m1","task_mode":"all","shard_mode":"pessimistic","strict_optimistic_shard_mode":true,
 "target_config":{"host":"127.0.0.1","port":3306,"user":"root","password":""},
 "table_migrate_rule":[{"source":{"source_name":"s1","schema":"a_*","table":"t"},"target":{"schema":"m","table":"t"}},
                       {"source":{"source_name":"s2","schema":"solo","table":"t"}}],
 "source_config":{"source_conf":[{"source_name":"s1"},{"source_name":"s2"}]}}
EOF
(cd run && "$CLI" check-task "$WORK/shard.json" >../out 2>../err)
grep -qF "source s1: mode all, 1 table rule (shard merge)," out && grep -qF "source s2: mode all, 1 table rule, full" out &&
    grep -qF "DDL of a shard-merged table waits until every shard has run it, then runs once (shard_mode pessimistic)" out &&
    grep -qF "strict_optimistic_shard_mode: ignored (shard_mode is pessimistic)" out && ok ||
    fail "check-task of a pessimistic shard merge: '$(cat out err)'"
sed 's/"shard_mode":"pessimistic","strict_optimistic_shard_mode":true,//' "$WORK/shard.json" >"$WORK/shard0.json"
(cd run && "$CLI" check-task "$WORK/shard0.json" >../out 2>../err)
grep -qF "DDL of a shard-merged table pauses the subtask (no shard_mode)" out && ! grep -q "strict_optimistic" out && ok ||
    fail "check-task of a shard merge without shard_mode: '$(cat out err)'"

# An empty value in the config file is refused with its line.
printf 'addr = "127.0.0.1:0"\ndata-dir = ""\n' >"$WORK/empty.toml"
(cd run && "$SERVER" --config "$WORK/empty.toml" >../out 2>../err)
rc=$?
if [ "$rc" != 0 ] && grep -qF "empty.toml:2: data-dir needs a value" err && [ -z "$(ls -A run)" ]; then
    ok
else
    fail "config data-dir = \"\": exit $rc, stderr '$(cat err)', created '$(ls -A run)'"
fi

# The joined form takes a value that starts with "--" as it is.
(cd run && exec "$SERVER" --addr 127.0.0.1:0 --data-dir=--odd-dir --plugin-dir="$WORK/none" >../joined.log 2>&1) &
PID=$!
for _ in $(seq 1 300); do
    grep -q 'serving the DM OpenAPI' joined.log && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
done
if grep -q 'serving the DM OpenAPI' joined.log && [ -f run/--odd-dir/meta.db ]; then ok; else
    fail "--data-dir=--odd-dir: $(tail -3 joined.log)"; fi
# The client's --server before the command, as --help lists it among the options.
port=$(sed -n 's/.*serving the DM OpenAPI.*(port \([0-9]*\)).*/\1/p' joined.log | tail -1)
for form in "--server http://127.0.0.1:$port" "--server=http://127.0.0.1:$port"; do
    (cd run && "$CLI" $form task list >../out 2>../err)
    rc=$?
    [ "$rc" = 0 ] && grep -q '"total"' out && ok || fail "sluice $form task list: exit $rc, '$(cat err)' '$(cat out)'"
done
kill -TERM "$PID" 2>/dev/null
wait "$PID"
rc=$?
PID=
[ "$rc" = 0 ] && ok || fail "the server exited with $rc after SIGTERM"
if grep -E "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" joined.log out err >/dev/null; then
    fail "sanitizer report: $(grep -h -A20 -E 'ERROR: |runtime error:' joined.log out err | head -40)"
else
    ok
fi

if [ "$FAILS" = 0 ]; then echo "PASS: $CHECKS checks"; exit 0; fi
echo "FAILED: $FAILS of $((CHECKS + FAILS)) checks" >&2
exit 1
