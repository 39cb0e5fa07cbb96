#!/usr/bin/env bash
# Instructions per call of FFI benchmark shapes (crates/polyload-ffi/
# examples/call_loop.rs), counted with callgrind by scripts/icount.sh.
#
#   scripts/ffi-icount.sh [SHAPE/ROUTINE ...]
#
# Default: struct_pair and struct_mixed24, each as `call` and `libffi`.
set -euo pipefail
shapes=("$@")
if [ ${#shapes[@]} -eq 0 ]; then
    shapes=(struct_pair/call struct_pair/libffi struct_mixed24/call struct_mixed24/libffi)
fi
exec "$(dirname "$0")/icount.sh" polyload-ffi call_loop 1000 11000 "${shapes[@]}"
