#!/usr/bin/env bash
# Size of a long run's report: makes a real run of ITERATIONS (default 100) iterations with a fast
# command agent (keeps, discards and a crash every 15 iterations), then `report`, and prints the
# sizes of report.md, progress.svg and iterations.jsonl and how long `report` took. With
# rsvg-convert on PATH it also renders the chart to PNG. It fails only when a step fails.
#
#   bash scripts/report-bench.sh            # about 15 s on 2 cores (release build first)
#
# BIN=path uses that binary (else `cargo build --release` unless NO_BUILD=1); KEEP_TMP=1 keeps
# the scratch directory.
set -euo pipefail
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
ITERATIONS=${ITERATIONS:-100}

if [[ -z "${BIN:-}" ]]; then
    BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/codex-autoresearch"
    if [[ "${NO_BUILD:-}" != 1 ]]; then
        echo "report-bench: cargo build --release" >&2
        (cd "$ROOT" && cargo build --release --locked --quiet)
    fi
fi
[[ -x "$BIN" ]] || { echo "report-bench: no binary at $BIN" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/autoresearch-report-bench.XXXXXX")
cleanup() {
    if [[ "${KEEP_TMP:-}" == 1 ]]; then
        echo "report-bench: kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

repo="$WORK/repo"
mkdir -p "$repo/src"
cd "$repo"
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
git init -q -b main
git config user.name bench
git config user.email bench@example.com
echo 1000 > src/value.txt
echo 'cat src/value.txt' > measure.sh
git add -A
git commit -q -m initial

# Iteration n: n%5==0 lowers by 3 (keep), n%5==3 lowers by 1 (keep) or breaks the output
# (crash, every 15th), the others raise the number (discard).
cat > "$WORK/agent.sh" <<'AGENT'
#!/bin/sh
cat > /dev/null
n=$AUTORESEARCH_ITERATION
v=$(cat src/value.txt)
case $((n % 5)) in
  0) echo $((v - 3)) > src/value.txt; echo "trim step $n" ;;
  1) echo $((v + 7 + n % 3)) > src/value.txt; echo "try bigger buffers $n" ;;
  2) echo $((v + 2)) > src/value.txt; echo "reorder the loop $n" ;;
  3) if [ $((n % 15)) = 3 ]; then echo oops > src/value.txt; echo "break the output $n"
     else echo $((v - 1)) > src/value.txt; echo "small win $n"; fi ;;
  4) echo $((v + 1)) > src/value.txt; echo "inline the helper $n" ;;
esac
AGENT
chmod +x "$WORK/agent.sh"

"$BIN" run --goal "lower the number" --scope 'src/**' --metric value --direction lower \
    --verify "sh measure.sh" --agent command --agent-cmd "$WORK/agent.sh" \
    --iterations "$ITERATIONS" --refine-after 0 --pivot-after 0 > "$WORK/run.log" 2>&1 \
    || { tail -5 "$WORK/run.log" >&2; exit 1; }

start=$(date +%s%N)
report=$("$BIN" report)
took_ms=$(( ($(date +%s%N) - start) / 1000000 ))
dir=$(dirname "$report")
size() { wc -c < "$1" | tr -d ' '; }
echo "iterations:        $ITERATIONS"
echo "report.md:         $(size "$report") bytes"
echo "progress.svg:      $(size "$dir/progress.svg") bytes"
echo "iterations.jsonl:  $(size "$dir/iterations.jsonl") bytes"
echo "report took:       ${took_ms} ms"
if command -v rsvg-convert > /dev/null; then
    rsvg-convert -o "$WORK/progress.png" "$dir/progress.svg"
    echo "progress.png:      $(size "$WORK/progress.png") bytes (rsvg-convert)"
fi
