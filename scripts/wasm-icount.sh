#!/usr/bin/env bash
# Instructions per call of `fn(i64, i64) -> i64` in a wasm bundle, through
# polyload's typed handle and `Runtime::call` and through wasmtime's own
# `TypedFunc::call` (crates/polyload-wasm/examples/add_loop.rs), beside the
# criterion timings of `cargo bench -p polyload-wasm --bench call`.
#
#   scripts/wasm-icount.sh [PATH ...]
#
# (default: wasmtime wasmtime-unchecked wasmtime-mutex typed dynamic)
set -euo pipefail
paths=("$@")
if [ ${#paths[@]} -eq 0 ]; then
    paths=(wasmtime wasmtime-unchecked wasmtime-mutex typed dynamic)
fi
exec "$(dirname "$0")/icount.sh" polyload-wasm add_loop 1000 101000 "${paths[@]}"
