#!/usr/bin/env bash
# test_example_plugin.sh - installs the current build into a temporary prefix, builds
# examples/plugin-passthrough out of tree against it (pkg-config sluice-plugin), and loads the
# result with the registry, running one batch through it.
#   test_example_plugin.sh <build dir> <source dir> <test_load_plugin binary>
set -euo pipefail
build="$1" src="$2" loader="$3"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 || {
    cat "$tmp/install.log" >&2
    echo "FAIL: cmake --install of $build (build every target first)" >&2
    exit 1
}
pc="$(find "$tmp/prefix" -name sluice-plugin.pc | head -n1)"
[ -n "$pc" ] || { echo "FAIL: sluice-plugin.pc was not installed" >&2; exit 1; }
test -f "$tmp/prefix/include/sluice/plugin.h" || { echo "FAIL: plugin.h not installed" >&2; exit 1; }

# The .pc names the configured prefix; --define-prefix derives it from where the file is.
export PKG_CONFIG_PATH="$(dirname "$pc")"
cflags="$(pkg-config --define-prefix --cflags sluice-plugin)"
case "$cflags" in
    *"-I$tmp/prefix/include"*) ;;
    *) echo "FAIL: pkg-config cflags '$cflags' do not point into the prefix" >&2; exit 1 ;;
esac

# Out of tree: a fresh CMake project that sees only the installed files. Sanitizer flags of the
# main build are not inherited (the plugin is plain C, like a user's).
cp -r "$src/examples/plugin-passthrough" "$tmp/example"
env -u CFLAGS cmake -S "$tmp/example" -B "$tmp/example-build" -DPKG_CONFIG_ARGN=--define-prefix \
    >"$tmp/configure.log" 2>&1 || { cat "$tmp/configure.log" >&2; exit 1; }
cmake --build "$tmp/example-build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; exit 1; }
so="$tmp/example-build/sluice-passthrough.so"
test -f "$so" || { echo "FAIL: $so was not built" >&2; exit 1; }
# The header must have come from the prefix, not from the source tree.
grep -q "$tmp/prefix/include" "$tmp/example-build/CMakeFiles/passthrough.dir/flags.make" || {
    echo "FAIL: the example was not compiled against the installed header" >&2; exit 1; }

"$loader" "$so" passthrough
