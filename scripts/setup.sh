#!/usr/bin/env bash
# Installs what polyload's build, examples and tests need on a fresh Debian
# machine with the Rust toolchain (idempotent; apt-get runs only when a
# package is missing). Fails with a clear message when something cannot be had.
set -euo pipefail

need_apt=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# clang, lld, wasi-libc and the wasm32 compiler runtime: C sources built to
# WebAssembly (`[build] wasm-cc`). Mono for .NET bundles: the runtime
# (libmonosgen, dlopened by polyload-dotnet), its C# compiler mcs
# (`[build] csc`), and Newtonsoft.Json for the csjson example.
for pkg in build-essential pkg-config libffi-dev zlib1g-dev lua-dkjson \
    clang lld wasi-libc libclang-rt-14-dev-wasm32 \
    mono-runtime mono-mcs libmono-2.0-dev libnewtonsoft-json5.0-cil; do
    have_pkg "$pkg" || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
    if [ "$(id -u)" != 0 ]; then
        echo "setup: missing Debian packages: ${need_apt[*]} (run as root, or install them)" >&2
        exit 1
    fi
    echo "setup: installing ${need_apt[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

for tool in cargo cc python3 node npm clang wasm-ld mcs; do
    command -v "$tool" >/dev/null || { echo "setup: \`$tool\` is required but not installed" >&2; exit 1; }
done

# zlib's C sources from crates.io, for the WebAssembly example bundle.
"$(dirname "$0")/fetch-zlib.sh"
