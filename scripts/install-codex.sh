#!/usr/bin/env bash
# Installs a pinned @openai/codex into <repo>/.tools/codex (git-ignored) and prints
# the absolute path of the native codex binary on the last stdout line.
#
# Usage: scripts/install-codex.sh            # pinned version
#        CODEX_VERSION=x.y.z scripts/install-codex.sh
#
# Idempotent: if the native binary is already installed and reports the wanted
# version, nothing is downloaded. Quiet on success (only the path is printed).
set -euo pipefail

readonly DEFAULT_VERSION="0.169.0"
version="${CODEX_VERSION:-$DEFAULT_VERSION}"

die() { printf 'install-codex: error: %s\n' "$*" >&2; exit 1; }

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
root="$(cd -- "$script_dir/.." && pwd -P)"
prefix="$root/.tools/codex"

case "$(uname -s)-$(uname -m)" in
  Linux-x86_64|Linux-amd64)   triple="x86_64-unknown-linux-musl" ;;
  Linux-aarch64|Linux-arm64)  triple="aarch64-unknown-linux-musl" ;;
  Darwin-x86_64)              triple="x86_64-apple-darwin" ;;
  Darwin-arm64|Darwin-aarch64) triple="aarch64-apple-darwin" ;;
  *) die "unsupported platform $(uname -s)-$(uname -m)" ;;
esac

# Prints the native binary under $prefix, preferring the expected target triple.
# Layout (0.169.0): node_modules/@openai/codex-<os>-<arch>/vendor/<triple>/bin/codex
find_binary() {
  local nm="$prefix/node_modules" hit
  [[ -d "$nm" ]] || return 1
  hit="$(find "$nm" -type f -name codex -perm -u+x -path "*/vendor/$triple/*" 2>/dev/null | sort | head -n 1)"
  if [[ -z "$hit" ]]; then
    hit="$(find "$nm" -type f -name codex -perm -u+x -path '*/vendor/*' 2>/dev/null | sort | head -n 1)"
  fi
  [[ -n "$hit" ]] || return 1
  printf '%s\n' "$hit"
}

# Succeeds when $1 runs and reports exactly the wanted version ("codex-cli X.Y.Z").
has_version() {
  local out
  out="$("$1" --version 2>/dev/null)" || return 1
  [[ "$out" == "codex-cli $version" ]]
}

if bin="$(find_binary)" && has_version "$bin"; then
  printf '%s\n' "$bin"
  exit 0
fi

command -v npm >/dev/null 2>&1 \
  || die "npm not found on PATH; install Node.js (>= 18) with npm, or put a codex $version binary at $prefix by hand"

mkdir -p "$prefix"
# Keep the tool folder out of git without touching the repo's .gitignore.
[[ -f "$root/.tools/.gitignore" ]] || printf '*\n' > "$root/.tools/.gitignore"

log="$(mktemp "${TMPDIR:-/tmp}/install-codex.XXXXXX.log")"
trap 'rm -f "$log"' EXIT
if ! npm install --prefix "$prefix" --no-audit --no-fund --save-exact --loglevel=error \
    "@openai/codex@$version" >"$log" 2>&1; then
  cat "$log" >&2
  die "npm install @openai/codex@$version into $prefix failed (see npm output above)"
fi

bin="$(find_binary)" \
  || die "installed @openai/codex@$version but found no native codex binary for $triple under $prefix/node_modules"
if ! has_version "$bin"; then
  die "$bin does not report 'codex-cli $version' (got: $("$bin" --version 2>&1 | head -n 1))"
fi
printf '%s\n' "$bin"
