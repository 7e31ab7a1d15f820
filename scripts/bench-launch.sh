#!/usr/bin/env bash
# How long `codex-autoresearch launch` takes to return (preflight passed, baseline started), and
# the memory (RSS) of a detached run while its agent sleeps.
# Usage: bash scripts/bench-launch.sh [BINARY] [ROUNDS]   (default: a release build, 10 rounds)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-}
[ -n "$bin" ] && bin=$(realpath "$bin")
rounds=${2:-10}
if [ -z "$bin" ]; then
  cargo build --locked --release --manifest-path "$here/Cargo.toml" >&2
  bin="$here/target/release/codex-autoresearch"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/agent.sh" <<'AGENT'
#!/bin/sh
cat > /dev/null
sleep "${BENCH_SLEEP:-0}"
echo idle
AGENT
chmod +x "$work/agent.sh"
new_repo() {
  local r="$work/repo-$1"
  mkdir -p "$r/src"
  git -C "$r" init -q -b main
  echo 10 > "$r/src/value.txt"
  echo 'cat src/value.txt' > "$r/measure.sh"
  git -C "$r" add -A
  git -C "$r" -c user.name=b -c user.email=b@b commit -qm init
  echo "$r"
}
flags=(--goal "bench" --scope 'src/**' --metric value --direction lower --verify 'sh measure.sh'
       --agent command --agent-cmd "$work/agent.sh" --keep-rule strict)
echo "launch: time to return, $rounds rounds (fresh repository each, --iterations 1)"
times=()
for i in $(seq "$rounds"); do
  r=$(new_repo "$i")
  t0=$(date +%s%N)
  out=$(cd "$r" && "$bin" launch "${flags[@]}" --iterations 1 --json)
  t1=$(date +%s%N)
  times+=($(( (t1 - t0) / 1000000 )))
  pid=$(echo "$out" | sed 's/.*"pid":\([0-9]*\).*/\1/')
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
echo "  ms: $(echo $sorted)"
echo "  median: $(echo "$sorted" | sed -n "$(( (rounds + 1) / 2 ))p") ms, max: $(echo "$sorted" | tail -n 1) ms"
r=$(new_repo idle)
out=$(cd "$r" && BENCH_SLEEP=30 "$bin" launch "${flags[@]}" --iterations 1 --json)
pid=$(echo "$out" | sed 's/.*"pid":\([0-9]*\).*/\1/')
sleep 3
echo "idle detached run (agent sleeping): $(grep -E 'VmRSS|VmHWM' /proc/"$pid"/status | tr -s ' \t' ' ' | paste -sd ';')"
(cd "$r" && "$bin" stop >/dev/null)
