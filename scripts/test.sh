#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the pinned Codex CLI into .tools/ (npm) when
# it is missing, then checks formatting and lints and runs every test. The end-to-end tests drive
# that real Codex binary against a local mock model server (no network, no API key).
set -euo pipefail
root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$root"

CODEX_BIN="$(bash scripts/install-codex.sh | tail -n 1)"
export CODEX_BIN
echo "test.sh: using $("$CODEX_BIN" --version) at $CODEX_BIN"

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
