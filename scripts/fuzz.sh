#!/usr/bin/env bash
# Runs one cargo-fuzz target (fuzz/fuzz_targets/TARGET.rs) for SECONDS
# (default 60) with the nightly toolchain and AddressSanitizer, starting
# from its regression corpus (fuzz/regressions/TARGET, inputs that once
# crashed or are worth keeping) and a working corpus under target/fuzz.
#
#   scripts/fuzz.sh TARGET [SECONDS]      TARGET: manifest signature args elf
#   scripts/fuzz.sh --all [SECONDS]       every target in turn
#
# Installs cargo-fuzz from crates.io when it is missing. Prints libFuzzer's
# final statistics line (executions, coverage) and fails on a crash, whose
# input libFuzzer writes under fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."
targets=(manifest signature args elf)
if [ $# -lt 1 ]; then
    echo "usage: scripts/fuzz.sh TARGET|--all [SECONDS]  (targets: ${targets[*]})" >&2
    exit 2
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: the nightly toolchain is required (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz from crates.io" >&2
    cargo install cargo-fuzz --locked --quiet
fi
scripts/setup.sh
secs="${2:-60}"
run_one() {
    local t="$1"
    local corpus="target/fuzz/corpus/$t"
    mkdir -p "$corpus" "fuzz/regressions/$t"
    echo "fuzz: $t for ${secs}s" >&2
    # A separate target directory: sanitizer builds must not mix with the
    # main build's artifacts.
    CARGO_TARGET_DIR=target/fuzz/build cargo +nightly fuzz run --fuzz-dir fuzz "$t" \
        "$corpus" "fuzz/regressions/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=4096 \
        -artifact_prefix="fuzz/artifacts/$t/" 2>&1 |
        tee "target/fuzz/$t.log" | grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE|==[0-9]+==ERROR|SUMMARY)' || true
    if grep -qE '==[0-9]+==ERROR|panicked at|deadly signal' "target/fuzz/$t.log"; then
        echo "fuzz: $t crashed; see target/fuzz/$t.log and fuzz/artifacts/$t/" >&2
        return 1
    fi
}
mkdir -p target/fuzz
if [ "$1" = "--all" ]; then
    for t in "${targets[@]}"; do
        mkdir -p "fuzz/artifacts/$t"
        run_one "$t"
    done
else
    mkdir -p "fuzz/artifacts/$1"
    run_one "$1"
fi
