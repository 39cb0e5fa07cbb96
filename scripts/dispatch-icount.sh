#!/usr/bin/env bash
# Instructions per call of each dispatch path of `benches/dispatch.rs`
# (crates/polyload/examples/dispatch_loop.rs), counted with callgrind by
# scripts/icount.sh.
#
#   scripts/dispatch-icount.sh [PATH ...]     (raw typed scoped dynamic call)
set -euo pipefail
paths=("$@")
if [ ${#paths[@]} -eq 0 ]; then
    paths=(raw typed scoped dynamic call)
fi
exec "$(dirname "$0")/icount.sh" polyload dispatch_loop 1000 101000 "${paths[@]}"
