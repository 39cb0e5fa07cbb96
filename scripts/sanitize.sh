#!/usr/bin/env bash
# Runs the native, reload, soundness and FFI test suites under
# AddressSanitizer (nightly `-Zsanitizer=address`, with LeakSanitizer), and
# the reclamation stress (the unit tests of `polyload::reclaim`, readers
# racing a writer that poisons and frees what it retires) under it too.
#
#   scripts/sanitize.sh
#
# ThreadSanitizer is not run: it needs a standard library built with it
# (`-Zbuild-std`, which needs the rust-src component these machines cannot
# download), and without one it reports races inside std's own
# synchronisation. The reclamation protocol is instead model-checked with
# loom (`cargo test -p polyload --test loom`) and stressed here under ASan,
# where a read of reclaimed memory is a report, not a chance.
#
# Not part of .ci/run (it rebuilds everything instrumented); takes about
# ten minutes on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "sanitize: the nightly toolchain is required" >&2
    exit 1
fi
scripts/setup.sh
target=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=address"
export RUSTDOCFLAGS="-Zsanitizer=address"
export CARGO_TARGET_DIR=target/sanitize
# Bundles the tests build with cc are not instrumented; they are dlopen'ed
# into the instrumented process. Leaks are reported at exit.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:symbolize=1"
run() { echo "sanitize: $*" >&2; cargo +nightly test --target "$target" --locked "$@"; }
run -p polyload --lib
# (The RSS test is skipped: ASan's quarantine keeps freed memory on purpose.)
run -p polyload --test all -- native:: reload:: dynamic:: load_errors:: providers:: fuzz_regressions:: \
    --skip ten_thousand_load_unload_cycles_keep_memory_flat
run -p polyload-outside --test soundness
run -p polyload-ffi --test all
echo "sanitize: no reports" >&2
