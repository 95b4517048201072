#!/bin/sh
# run.sh TARGET SECONDS - build the libFuzzer target fuzz_TARGET (clang, -DSLUICE_FUZZ=ON, ASan +
# UBSan, everything instrumented with -fsanitize=fuzzer-no-link) and run it for SECONDS seconds on
# a fresh copy of its seed corpus. Exits non-zero if the fuzzer found a crash, leak or sanitizer
# report (the reproducer is left in the build directory's fuzz-TARGET/artifacts/).
# Environment: SLUICE_FUZZ_BUILD (build dir, default <repo>/build-fuzz), JOBS (default 2).
set -eu
if [ $# -ne 2 ]; then
    echo "usage: $0 TARGET SECONDS   (e.g. $0 compiler 60)" >&2
    exit 2
fi
target=$1
seconds=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${SLUICE_FUZZ_BUILD:-$root/build-fuzz}
jobs=${JOBS:-2}

CC=clang cmake -S "$root" -B "$build" -DSLUICE_FUZZ=ON -DSLUICE_ASAN=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link" >/dev/null
cmake --build "$build" --target "fuzz_$target" -j"$jobs" >/dev/null

work=$build/fuzz-$target
rm -rf "$work/corpus"
mkdir -p "$work/corpus" "$work/artifacts"
# Seeds: the target's own corpus directory, and for the compiler every task of the test corpus.
if [ -d "$root/tests/fuzz/$target/corpus" ]; then
    cp "$root/tests/fuzz/$target/corpus/"* "$work/corpus/" 2>/dev/null || true
fi
if [ "$target" = compiler ]; then
    for f in "$root"/tests/data/tasks/good/*.json "$root"/tests/data/tasks/bad/*.json; do
        cp "$f" "$work/corpus/$(basename "$(dirname "$f")")_$(basename "$f")"
    done
fi
dict=""
if [ -f "$root/tests/fuzz/$target/$target.dict" ]; then
    dict="-dict=$root/tests/fuzz/$target/$target.dict"
fi
# shellcheck disable=SC2086
exec "$build/bin/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/artifacts/" $dict "$work/corpus"
