#!/usr/bin/env bash
# Instructions per call of FFI benchmark shapes, counted with callgrind:
# a figure that does not move with code layout or machine noise, unlike
# the criterion timings (which remain the reported speed).
#
#   scripts/ffi-icount.sh [SHAPE/ROUTINE ...]
#
# Default: struct_pair and struct_mixed24, each as `call` and `libffi`.
# Each count is (run of 11000 calls - run of 1000 calls) / 10000, so set-up
# cancels out.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
    echo "ffi-icount: needs valgrind (apt-get install -y valgrind)" >&2
    exit 1
fi
cargo build --release --locked -q -p polyload-ffi --example call_loop
bin=target/release/examples/call_loop
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        awk '/Collected/ { gsub(",", "", $4); print $4 }'
}
shapes=("$@")
if [ ${#shapes[@]} -eq 0 ]; then
    shapes=(struct_pair/call struct_pair/libffi struct_mixed24/call struct_mixed24/libffi)
fi
for s in "${shapes[@]}"; do
    a=$(count "$s" 1000)
    b=$(count "$s" 11000)
    echo "$s: $(((b - a) / 10000)) instructions per call"
done
