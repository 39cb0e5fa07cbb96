#!/usr/bin/env bash
# The whole test suite: unit, integration, CLI and doc tests of every crate,
# against real compilers, libraries and interpreters.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo test --workspace --locked "$@"
