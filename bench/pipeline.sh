#!/usr/bin/env bash
# bench/pipeline.sh - events/s and peak RSS of the core runtime (memory source -> transform ->
# memory sink), built in Release without sanitizers.
#   BUILD_DIR (default <repo>/build-bench), EVENTS (10000000), BATCH (1024), QUEUE (4)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$repo/build-bench}"
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSLUICE_ASAN=OFF -DSLUICE_TSAN=OFF \
      -DSLUICE_TESTS=OFF >/dev/null
cmake --build "$build" --target pipeline_bench -j2 >/dev/null
"$build/bin/pipeline_bench" "${EVENTS:-10000000}" "${BATCH:-1024}" "${QUEUE:-4}"
