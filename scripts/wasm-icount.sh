#!/usr/bin/env bash
# Instructions per call of `fn(i64, i64) -> i64` in a wasm bundle, through
# polyload's typed handle and `Runtime::call` and through wasmtime's own
# `TypedFunc::call` (crates/polyload-wasm/examples/add_loop.rs), counted with
# callgrind: a figure that does not move with machine noise, beside the
# criterion timings of `cargo bench -p polyload-wasm --bench call`.
#
#   scripts/wasm-icount.sh [PATH ...]     (wasmtime typed dynamic)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
    echo "wasm-icount: needs valgrind (apt-get install -y valgrind)" >&2
    exit 1
fi
cargo build --release --locked -q -p polyload-wasm --example add_loop
bin=target/release/examples/add_loop
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        awk '/Collected/ { gsub(",", "", $4); print $4 }'
}
paths=("$@")
if [ ${#paths[@]} -eq 0 ]; then
    paths=(wasmtime typed dynamic)
fi
for p in "${paths[@]}"; do
    a=$(count "$p" 1000)
    b=$(count "$p" 101000)
    echo "$p: $(((b - a) / 100000)) instructions per call"
done
