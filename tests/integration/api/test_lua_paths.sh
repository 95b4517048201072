#!/usr/bin/env bash
# test_lua_paths.sh - what a task sent over REST can learn about the server's files through a Lua
# script "file". The server reads scripts only under <data-dir>/lua; it answered "outside the
# script directory" for a file that exists outside and "No such file or directory" for one that
# does not, so any client could probe which files exist (also through a link in the directory).
# Now a name that climbs out is refused on its text, and links out, dangling links and missing
# files get one answer. A task could also name lua-hook as a custom stage, whose own "file" option
# the plugin opened as given: any file, its first tokens shown in a Lua syntax error; refused now.
. "$(dirname "$0")/lib.sh"

start_server "$WORK/data"
api POST /sources "{\"source_name\":\"lp\",\"host\":\"$SLUICE_SOURCE_HOST\",\"port\":$SLUICE_SOURCE_PORT,\"user\":\"$SLUICE_SOURCE_USER\",\"password\":\"$SLUICE_SOURCE_PASSWORD\",\"enable\":true}"
expect 201 "source"

mkdir -p "$WORK/data/lua/sub"
echo 'function on_row(ev) return true end' >"$WORK/data/lua/ok.lua"
echo 'secret_token = = 1' >"$WORK/secret.lua"      # outside the script directory
ln -s "$WORK/secret.lua" "$WORK/data/lua/link.lua"
ln -s "$WORK/nothing.lua" "$WORK/data/lua/dangling.lua"

task() {   # NAME EXTRA-JSON-FIELDS
    printf '{"task":{"name":"%s","task_mode":"full","target_config":{"host":"%s","port":%s,"user":"%s","password":"%s"},"table_migrate_rule":[{"source":{"source_name":"lp","schema":"lp","table":"*"}}],"source_config":{"full_migrate_conf":{"data_dir":"%s"},"source_conf":[{"source_name":"lp"}]},%s}}' \
        "$1" "$SLUICE_TARGET_HOST" "$SLUICE_TARGET_PORT" "$SLUICE_TARGET_USER" "$SLUICE_TARGET_PASSWORD" "$WORK/dump" "$2"
}
script() { printf '"lua_scripts":[{"tables":[{"schema":"lp"}],"file":"%s"}]' "$1"; }

# why FILE: POST /tasks/check with the script FILE; prints why it cannot be read ("" = it can)
why() {
    api POST /tasks/check "$(task lp "$(script "$1")")"
    [ "$CODE" = 200 ] || { fail "check with $1: HTTP $CODE"; return; }
    printf '%s' "$BODY" | jq -r --arg f "$1" \
        '[.errors[] | select(.path == "/task/lua_scripts/0/file") | .msg | ltrimstr("cannot read Lua script " + $f + ": ")] | join("")'
}
same() {   # WHAT WANT-PATTERN FILE...: every FILE gets the same answer, which matches WANT-PATTERN
    local what=$1 want=$2 first f w
    shift 2
    first=$(why "$1")
    if [[ "$first" != *$want* ]]; then fail "$what: $1: '$first'"; return; fi
    for f in "$@"; do
        w=$(why "$f")
        [ "$w" = "$first" ] && ok || fail "$what: $1 gives '$first', $f gives '$w'"
    done
    [[ "$first" != *secret_token* ]] && ok || fail "$what: the file's text in the answer: $first"
}

[ -z "$(why ok.lua)" ] && ok || fail "ok.lua: $(why ok.lua)"
same "names that climb out, to a file or to nothing" "outside the script directory" \
    ../../secret.lua ../../nothing.lua sub/../../../secret.lua ./../../nothing.lua ../lua/../../secret.lua
same "links out, to a file or to nothing, and missing files" "no such file in the script directory" \
    link.lua dangling.lua missing.lua sub/missing.lua

# lua-hook as a custom stage: its "file" would be opened as given, at start
for f in "$WORK/secret.lua" "$WORK/nothing.lua"; do
    hook="\"plugins\":[{\"name\":\"lua-hook\",\"at\":\"after-route\",\"options\":{\"scripts\":[{\"tables\":[{\"schema\":\"lp\"}],\"file\":\"$f\",\"on_row\":\"on_row\"}]}}]"
    api POST /tasks "$(task lp-hook "$hook")"
    expect 400 "lua-hook as a custom stage naming $f" "$ERRBODY" \
        '.errors | map(select(.path == "/task/plugins/0/name")) | .[0].msg | test("lua-hook is the stage of the task.s lua_scripts")' \
        '.error_msg | test("secret_token") | not'
done
api GET /tasks/lp-hook
expect 404 "no task was created"

stop_server
check_log
finish
