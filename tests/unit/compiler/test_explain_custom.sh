#!/bin/sh
# test_explain_custom.sh SLUICE TASK - `sluice explain` shows a task's custom stages with their
# resolved options (text) and in place in the chain (DOT).
set -eu
sluice=$1 task=$2
text=$("$sluice" explain "$task")
dot=$("$sluice" explain --dot "$task")
fail() { echo "FAIL: $1"; printf '%s\n' "$text" "$dot"; exit 1; }
printf '%s\n' "$text" | grep -q '^    \[plugin0\] route$' || fail "text: no stage plugin0 (route)"
printf '%s\n' "$text" | grep -q '^    \[plugin1\] event-filter$' || fail "text: no stage plugin1"
printf '%s\n' "$text" | grep -q 'repl_batch *50$' || fail "text: the sink's own option repl_batch 50"
printf '%s\n' "$dot" | grep -q '"s0_p0_filter" -> "s0_p0_plugin0";' || fail "dot: filter -> plugin0"
printf '%s\n' "$dot" | grep -q '"s0_p0_plugin0" -> "s0_p0_route";' || fail "dot: plugin0 -> route"
printf '%s\n' "$dot" | grep -q '"s0_p0_plugin1" -> "s0_p0_sink";' || fail "dot: plugin1 -> sink"
echo ok
