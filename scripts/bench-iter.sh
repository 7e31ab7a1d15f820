#!/usr/bin/env bash
# One timed unit for an A/B comparison of two engine builds: N iterations of `run` on a 10-file
# repository with a deterministic metric (keep on odd iterations, discard on even ones), from the
# same starting state every time. Prints nothing on success; a broken run fails loudly.
#
#   bash scripts/bench-iter.sh BIN DIR [N]     # DIR is created once and reused
#
# EXTRA="--no-confirm" adds flags (a build without them refuses them: leave EXTRA empty there).
#
# Pair two builds with any A/B timer, e.g. `hyperfine -N 'bash scripts/bench-iter.sh OLD /tmp/a 30'
# 'bash scripts/bench-iter.sh NEW /tmp/b 30'`, and divide by N for the cost of one iteration.
set -euo pipefail
BIN=$(realpath "$1") DIR=$2 N=${3:-30}
export HOME=$DIR/home GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
unset AUTORESEARCH_GOAL AUTORESEARCH_SCOPE AUTORESEARCH_METRIC AUTORESEARCH_DIRECTION \
  AUTORESEARCH_VERIFY AUTORESEARCH_ITERATIONS AUTORESEARCH_GUARD
repo=$DIR/repo
if [ ! -d "$repo/.git" ]; then
  mkdir -p "$repo/src" "$HOME"
  for i in $(seq 1 9); do echo "file $i" > "$repo/src/f$i.txt"; done
  echo 1000 > "$repo/src/metric.txt"
  git -C "$repo" init -q -b main
  git -C "$repo" config user.name bench && git -C "$repo" config user.email bench@example.com
  git -C "$repo" add -A && git -C "$repo" commit -qm base
  git -C "$repo" tag bench-base
  cat > "$DIR/agent.sh" <<'AGENT'
#!/bin/sh
cat > /dev/null
v=$(cat src/metric.txt)
if [ $((AUTORESEARCH_ITERATION % 2)) = 1 ]; then echo $((v - 1)) > src/metric.txt; echo lower
else echo $((v + 1)) > src/metric.txt; echo higher; fi
AGENT
  printf '#!/bin/sh\ncat src/metric.txt\n' > "$DIR/verify.sh"
  chmod +x "$DIR/agent.sh" "$DIR/verify.sh"
fi
cd "$repo"
git reset -q --hard bench-base
# Both layouts: an A/B against a build from before the current layout writes the March names.
rm -rf autoresearch-results .codex-autoresearch research-results.tsv autoresearch-state.json \
  autoresearch-lessons.md .autoresearch
git for-each-ref --format='%(refname)' refs/autoresearch | xargs -r -n1 git update-ref -d
"$BIN" run --goal "bench" --scope 'src/**' --metric n --direction lower \
  --verify "$DIR/verify.sh" --agent command --agent-cmd "$DIR/agent.sh" \
  --iterations "$N" --refine-after 0 --pivot-after 0 --max-pivots 0 ${EXTRA:-} \
  >/dev/null 2>"$DIR/err" \
  || { cat "$DIR/err" >&2; exit 1; }
