#!/usr/bin/env bash
# The main job: load every example bundle (building those with sources on
# demand) and run textstats.top_words over the README.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --quiet --release -p polyload-cli -- call examples/bundles textstats.top_words @README.md "${1:-5}"
