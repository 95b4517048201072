#!/usr/bin/env bash
# bench/pipeline.sh - events/s and peak RSS of the core runtime (memory source -> transform ->
# memory sink), built in Release without sanitizers. With CUSTOM=1 it also builds
# examples/plugin-passthrough against the source tree's headers and SDK and runs the same
# stream with no transform, the built-in in-process transform and the custom one (dlopen'ed,
# through the plugin ABI) side by side, with their ratio.
#   BUILD_DIR (default <repo>/build-bench), EVENTS (10000000), BATCH (1024), QUEUE (4), CUSTOM (1)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD_DIR:-$repo/build-bench}"
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSLUICE_ASAN=OFF -DSLUICE_TSAN=OFF \
      -DSLUICE_TESTS=OFF >/dev/null
cmake --build "$build" --target pipeline_bench sluice_sdk -j2 >/dev/null
if [ "${CUSTOM:-1}" = 1 ]; then
    # The example as a user builds it (one cc line, docs/plugins.md), against this tree's
    # headers and the SDK just built, optimised like the rest.
    so="$build/bench-custom/sluice-passthrough.so"
    mkdir -p "$(dirname "$so")"
    sdk=$(find "$build" -name 'libsluice-sdk.a' -o -name 'libsluice_sdk.a' | head -n1)
    cc -std=c11 -O2 -shared -fPIC -fvisibility=hidden -Wall -Wextra -Werror -I"$repo/include" \
        -o "$so" "$repo/examples/plugin-passthrough/passthrough.c" "$sdk" \
        $(pkg-config --libs libpcre2-8 jansson) -pthread
    "$build/bin/pipeline_bench" "${EVENTS:-10000000}" "${BATCH:-1024}" "${QUEUE:-4}" "$so" passthrough
else
    "$build/bin/pipeline_bench" "${EVENTS:-10000000}" "${BATCH:-1024}" "${QUEUE:-4}"
fi
