#!/usr/bin/env bash
# test_crash.sh - SIGKILL the server during a burst of writes (source and task creations, updates
# and deletions from several clients), restart it, and check that every acknowledged write is
# there, that nothing acknowledged as deleted came back, and that no object is half-written:
# every source and task the restarted server lists is complete and its secrets decrypt.
. "$(dirname "$0")/lib.sh"

start_server "$WORK/data"
src_body() {
    printf '{"source_name":"%s","host":"%s","port":%s,"user":"%s","password":"%s","enable":true}' \
        "$1" "$SLUICE_SOURCE_HOST" "$SLUICE_SOURCE_PORT" "$SLUICE_SOURCE_USER" "$SLUICE_SOURCE_PASSWORD"
}
task_body() {
    printf '{"task":{"name":"%s","task_mode":"incremental","target_config":{"host":"%s","port":%s,"user":"%s","password":"%s"},"table_migrate_rule":[{"source":{"source_name":"base","schema":"crash_db","table":"t*"},"target":{"schema":"crash_copy"}}],"source_config":{"incr_migrate_conf":{"repl_batch":%s},"source_conf":[{"source_name":"base","binlog_name":"mysql-bin.000001","binlog_pos":4}]}}}' \
        "$1" "$SLUICE_TARGET_HOST" "$SLUICE_TARGET_PORT" "$SLUICE_TARGET_USER" "$SLUICE_TARGET_PASSWORD" "$2"
}
api POST /sources "$(src_body base)"
expect 201 "base source"

# writer CLIENT: creates sources and tasks, updates and deletes some; logs what was acknowledged,
# and in try.CLIENT the request it sent last: the one the kill cut may have been committed without
# its answer reaching the client, so either outcome of that one request is right.
writer() {
    local c=$1 i code
    for i in $(seq 1 400); do
        echo "source s-$c-$i" >"$WORK/try.$c"
        code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d "$(src_body "s-$c-$i")" "$A/sources") || break
        [ "$code" = 201 ] && echo "source s-$c-$i" >>"$WORK/ack.$c"
        echo "task t-$c-$i 100" >"$WORK/try.$c"
        code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -d "$(task_body "t-$c-$i" 100)" "$A/tasks") || break
        [ "$code" = 200 ] && echo "task t-$c-$i 100" >>"$WORK/ack.$c"
        if [ $((i % 3)) = 0 ]; then
            echo "task t-$c-$i 777" >"$WORK/try.$c"
            code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -d "$(task_body "t-$c-$i" 777)" "$A/tasks/t-$c-$i") || break
            [ "$code" = 200 ] && echo "task t-$c-$i 777" >>"$WORK/ack.$c"
        fi
        if [ $((i % 4)) = 0 ]; then
            echo "deltask t-$c-$i" >"$WORK/try.$c"
            code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$A/tasks/t-$c-$i?keep_meta=true") || break
            [ "$code" = 204 ] && echo "deltask t-$c-$i" >>"$WORK/ack.$c"
            echo "delsource s-$c-$i" >"$WORK/try.$c"
            code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$A/sources/s-$c-$i") || break
            [ "$code" = 204 ] && echo "delsource s-$c-$i" >>"$WORK/ack.$c"
        fi
    done
}
pids=()
for c in 1 2 3 4; do writer "$c" & pids+=($!); done
# let the burst run, then kill the server in the middle of it
for _ in $(seq 1 60); do
    n=$(cat "$WORK"/ack.* 2>/dev/null | wc -l)
    [ "$n" -ge 150 ] && break
    sleep 0.1
done
kill_server
wait "${pids[@]}"
n=$(cat "$WORK"/ack.* | wc -l)
[ "$n" -ge 20 ] && ok || fail "only $n writes were acknowledged before the kill"
echo "acknowledged writes before SIGKILL: $n"

start_server "$WORK/data"
# expected final state from the acknowledged log (each client's log is in order)
declare -A want_src want_task
cat "$WORK"/ack.* >"$WORK/ack"
while read -r kind name arg; do
    case $kind in
    source) want_src[$name]=1 ;;
    delsource) want_src[$name]=0 ;;
    task) want_task[$name]=$arg ;;
    deltask) want_task[$name]=del ;;
    esac
done <"$WORK/ack"
# the request each client had in flight when the server died (sent, never answered)
declare -A maybe
for c in 1 2 3 4; do
    [ -s "$WORK/try.$c" ] || continue
    last=$(tail -n 1 "$WORK/ack.$c" 2>/dev/null)
    read -r kind name arg <"$WORK/try.$c"
    [ "$(cat "$WORK/try.$c")" = "$last" ] || maybe[$name]="$kind${arg:+ $arg}"
done
echo "in flight at the kill: ${#maybe[@]} request(s): $(for k in "${!maybe[@]}"; do printf '%s=%s; ' "$k" "${maybe[$k]}"; done)"
for s in "${!want_src[@]}"; do
    api GET "/sources/$s"
    if [ "${maybe[$s]:-}" = delsource ] && [ "$CODE" = 404 ]; then
        ok      # the deletion in flight was committed, its answer lost with the server
    elif [ "${want_src[$s]}" = 1 ]; then
        expect 200 "acknowledged source $s" ".source_name==\"$s\"" ".port==$SLUICE_SOURCE_PORT" '.password=="******"'
    else
        expect 404 "acknowledged deletion of source $s"
    fi
done
for t in "${!want_task[@]}"; do
    api GET "/tasks/$t?with_status=true"
    if [ "${maybe[$t]:-}" = deltask ] && [ "$CODE" = 404 ]; then ok; continue; fi
    if [ "${maybe[$t]:-}" = "task 777" ] && [ "$CODE" = 200 ] &&
        printf '%s' "$BODY" | jq -e '.source_config.incr_migrate_conf.repl_batch == 777' >/dev/null; then
        ok; continue       # the update in flight was committed, its answer lost with the server
    fi
    case ${want_task[$t]} in
    del) expect 404 "acknowledged deletion of task $t" ;;
    *) expect 200 "acknowledged task $t" ".name==\"$t\"" ".source_config.incr_migrate_conf.repl_batch==${want_task[$t]}" \
           '.status_list[0].stage=="Stopped"' ;;
    esac
done
# nothing half-written: every listed object is complete, and counts agree with the store's view
api GET /sources
expect 200 "source list after restart" 'all(.data[]; (.source_name|length>0) and (.host|length>0) and (.port>0) and .password=="******" and (.purge|type=="object"))'
api GET "/tasks?with_status=true"
expect 200 "task list after restart" 'all(.data[]; (.name|length>0) and (.target_config.host|length>0) and (.status_list|length==1) and (.table_migrate_rule|length==1))'
grep -q "cannot be restored\|no longer compiles" "$WORK/server.log" && fail "the restarted server found broken objects" || ok
# the secrets of a restored source still work: it can reach its database
api GET /sources/base/schemas
expect 200 "restored password decrypts"
stop_server
check_log
finish
