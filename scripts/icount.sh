#!/usr/bin/env bash
# Instructions per call of an example loop, counted with callgrind: a figure
# that does not move with code layout or machine noise, unlike the criterion
# timings (which remain the reported speed). The front ends are
# dispatch-icount.sh, ffi-icount.sh and wasm-icount.sh.
#
#   scripts/icount.sh CRATE EXAMPLE SMALL LARGE PATH...
#
# Runs `EXAMPLE PATH N` for N = SMALL and N = LARGE; each count is
# (LARGE run - SMALL run) / (LARGE - SMALL), so set-up cancels out.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 5 ]; then
    echo "usage: scripts/icount.sh CRATE EXAMPLE SMALL LARGE PATH..." >&2
    exit 2
fi
crate=$1 example=$2 small=$3 large=$4
shift 4
if ! command -v valgrind >/dev/null; then
    echo "icount: needs valgrind (apt-get install -y valgrind)" >&2
    exit 1
fi
cargo build --release --locked -q -p "$crate" --example "$example"
bin=target/release/examples/$example
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        awk '/Collected/ { gsub(",", "", $4); print $4 }'
}
for p in "$@"; do
    a=$(count "$p" "$small")
    b=$(count "$p" "$large")
    echo "$p: $(((b - a) / (large - small))) instructions per call"
done
