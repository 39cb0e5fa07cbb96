#!/usr/bin/env bash
# Fetches zlib's C sources as the libz-sys crate on crates.io ships them
# (zlib 1.3.1 in libz-sys 1.1.22), checked against the registry's SHA-256,
# into examples/bundles/wzlib/vendor/zlib: the WebAssembly example bundle
# builds them on demand. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.1.22
sha256=8b70e7a7df205e92a1a4cd9aaae7898dac0aa555503cc0a649494d0d60e7651d
dest=examples/bundles/wzlib/vendor/zlib
stamp="$dest/.libz-sys-$version"
[ -f "$stamp" ] && exit 0
command -v curl >/dev/null || { echo "fetch-zlib: \`curl\` is required" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
url="https://static.crates.io/crates/libz-sys/libz-sys-$version.crate"
curl -fsSL --retry 3 -o "$tmp/libz-sys.crate" "$url" ||
    { echo "fetch-zlib: cannot download $url" >&2; exit 1; }
echo "$sha256  $tmp/libz-sys.crate" | sha256sum -c --quiet - ||
    { echo "fetch-zlib: $url does not have the expected SHA-256" >&2; exit 1; }
rm -rf "$dest"
mkdir -p "$dest"
tar xzf "$tmp/libz-sys.crate" -C "$dest" --strip-components=3 "libz-sys-$version/src/zlib"
touch "$stamp"
echo "fetch-zlib: zlib sources from libz-sys $version in $dest" >&2
