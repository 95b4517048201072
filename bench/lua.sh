#!/bin/sh
# bench/lua.sh - overhead of the lua-hook stage: the same in-process pipeline (generator of user
# rows -> [lua-hook] -> counting sink, real plugin .so, real executor) run with no hook, with a
# keep-everything script and with examples/lua/mask_email.lua; prints events/s and the overhead
# of each. Builds without sanitizers into $BUILD (default build-bench-lua).
# Usage: bench/lua.sh [events]   (default 1000000)
# Not yet the binlog -> MySQL benchmark of issue 7: that needs a running sandbox and the full
# incremental pipeline; this measures the hook's own cost per event.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$here/build-bench-lua}
n=${1:-1000000}
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_ASAN=OFF >/dev/null
cmake --build "$build" --target test_lua_hook_pipeline -j2 >/dev/null
ref=${REF_EPS:-30000}
"$build/bin/test_lua_hook_pipeline" bench "$n" 2>/dev/null | tee /dev/stderr | awk -v ref="$ref" '
  /per event/ { for (i = 1; i <= NF; i++) if ($i == "+" || $i ~ /^\+[0-9]/) us = substr($i, 2) + 0;
                name = $0; sub(/ +[0-9.]+ s .*/, "", name);
                base = 1e6 / ref;
                printf "overhead at %d events/s end to end (DM incremental figure, perf-notes.md): %-26s %.1f%%\n", ref, name, us * 100 / base }' >&2
