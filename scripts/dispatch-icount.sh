#!/usr/bin/env bash
# Instructions per call of each dispatch path of `benches/dispatch.rs`,
# counted with callgrind: a figure that does not move with code layout or
# machine noise, unlike the criterion timings (which remain the reported
# speed).
#
#   scripts/dispatch-icount.sh [PATH ...]     (raw typed scoped dynamic call)
#
# Each count is (run of 101000 calls - run of 1000 calls) / 100000, so
# set-up (building and loading the bundle) cancels out.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
    echo "dispatch-icount: needs valgrind (apt-get install -y valgrind)" >&2
    exit 1
fi
cargo build --release --locked -q -p polyload --example dispatch_loop
bin=target/release/examples/dispatch_loop
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        awk '/Collected/ { gsub(",", "", $4); print $4 }'
}
paths=("$@")
if [ ${#paths[@]} -eq 0 ]; then
    paths=(raw typed scoped dynamic call)
fi
for p in "${paths[@]}"; do
    a=$(count "$p" 1000)
    b=$(count "$p" 101000)
    echo "$p: $(((b - a) / 100000)) instructions per call"
done
