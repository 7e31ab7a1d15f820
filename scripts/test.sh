#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the pinned Codex CLI into .tools/ (npm) when
# it is missing, and rsvg-convert (Debian's librsvg2-bin, for the report chart's render test) when
# it is missing and this runs as root, then checks formatting and lints and runs every test. The
# end-to-end tests drive that real Codex binary against a local mock model server (no network, no
# API key).
set -euo pipefail
root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$root"

CODEX_BIN="$(bash scripts/install-codex.sh | tail -n 1)"
export CODEX_BIN
echo "test.sh: using $("$CODEX_BIN" --version) at $CODEX_BIN"

if ! command -v rsvg-convert > /dev/null; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get > /dev/null; then
        echo "test.sh: installing librsvg2-bin (rsvg-convert) for the report chart's render test"
        apt-get update -qq > /dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq librsvg2-bin > /dev/null
    else
        echo "test.sh: rsvg-convert is missing: install librsvg2-bin (or run this as root)" >&2
        exit 1
    fi
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
