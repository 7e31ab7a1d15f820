#!/usr/bin/env bash
# The offline demo: copies project/ into a fresh git repository in a temporary directory and
# runs codex-autoresearch on it with the scripted command agent (no API key, no network).
# Usage: bash examples/quickstart/run.sh [extra run flags]
set -euo pipefail
here="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
root="$(cd -- "$here/../.." && pwd -P)"

bin="${CODEX_AUTORESEARCH:-}"
if [[ -z "$bin" ]]; then
  echo "== building codex-autoresearch (release; the first build takes a couple of minutes)"
  cargo build --release --locked --manifest-path "$root/Cargo.toml"
  bin="$root/target/release/codex-autoresearch"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/autoresearch-demo.XXXXXX")"
cp -R "$here/project/." "$work/"
cd "$work"
git init -q -b main
git -c user.name=demo -c user.email=demo@localhost add -A
git -c user.name=demo -c user.email=demo@localhost commit -q -m "demo project"

echo "== demo repository: $work"
set +e
"$bin" run \
  --goal "resolve the TODO markers in the release notes" \
  --scope 'src/**' \
  --metric todos --direction lower \
  --verify 'sh count-todos.sh' \
  --guard 'sh check.sh' --rework 1 \
  --agent command --agent-cmd "sh $here/agent.sh" \
  --iterations 8 --stop-condition 'reaches zero' "$@"
code=$?
set -e
echo "== exit code $code"
echo "== autoresearch-results/results.tsv (rows)"
grep -v '^#' autoresearch-results/results.tsv
echo "== git log"
git log --oneline
echo "== status"
"$bin" status
echo "== the repository stays at $work (delete it when done)"
exit "$code"
