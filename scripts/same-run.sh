#!/usr/bin/env bash
# Runs one scripted run (keep, discard, scope and protection discards, no-op, a verify crash, a
# guard failure with a rework turn that fixes it, one that does not, refine and pivot rows) with
# each of two binaries and compares what they wrote: the results rows, the state, the refs and
# the console lines, with commit ids, times and durations masked. Exit 0 when they are the same.
#
#   bash scripts/same-run.sh OLD_BINARY NEW_BINARY
set -uo pipefail
[[ $# -eq 2 ]] || { echo "usage: $0 OLD_BINARY NEW_BINARY" >&2; exit 2; }

one() { # one BINARY OUTDIR
  local bin out w
  bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1"); out=$2; mkdir -p "$out"
  w=$(mktemp -d)
  (
    cd "$w" || exit 1
    export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
    git init -q -b main; mkdir src
    echo 20 > src/value.txt; echo "keep me" > src/other.txt; echo readme > README
    printf 'v=$(cat src/value.txt)\n[ "$v" = 13 ] && { echo boom; exit 1; }\necho "$v"\n' > verify.sh
    printf 'grep -q BAD src/other.txt && { echo "TypeError: bad"; exit 1; }\nexit 0\n' > guard.sh
    cat > agent.sh <<'A'
cat > /dev/null
v=$(cat src/value.txt)
case "$AUTORESEARCH_ITERATION:$AUTORESEARCH_DIRECTIVE" in
  1:*) echo 18 > src/value.txt; echo "lower to 18" ;;
  2:*) echo 19 > src/value.txt; echo "raise to 19" ;;
  3:*) echo x > outside.txt; echo "write outside" ;;
  4:*) echo hi >> verify.sh; echo "edit verify" ;;
  5:*) echo "nothing" ;;
  6:*) echo 13 > src/value.txt; echo "crash verify" ;;
  7:rework) echo "keep me" > src/other.txt; echo "fixed" ;;
  7:*) echo 15 > src/value.txt; echo BAD > src/other.txt; echo "lower with bad guard" ;;
  8:rework) echo "no change" ;;
  8:*) echo 14 > src/value.txt; echo BAD > src/other.txt; echo "bad again" ;;
  *) echo "$((v+1))" > src/value.txt; echo "worse" ;;
esac
A
    git add -A; git -c user.name=a -c user.email=a@b commit -qm init
    "$bin" run --goal "lower value" --metric v --direction lower --verify 'sh verify.sh' \
      --guard 'sh guard.sh' --rework 1 --scope 'src/**' --agent command --agent-cmd 'sh agent.sh' \
      --iterations 16 --run-tag same > stdout 2> stderr
    echo "exit $?" > "$out/code"
    sed -E 's/\b[0-9a-f]{7,40}\b/C/g; s/^(# started_at: ).*/\1T/' autoresearch-results/results.tsv > "$out/tsv"
    sed -E 's/\b[0-9a-f]{7,40}\b/C/g; s/"[a-z_]*_(ms|at)": *[0-9"TZ:.-]+/"T"/g' autoresearch-results/state.json > "$out/state"
    sed -E 's/\b[0-9a-f]{7,40}\b/C/g; s/ +[0-9]+ms / Nms /; s|/tmp/[^ :]*|DIR|g' stdout > "$out/stdout"
    sed -E 's/\b[0-9a-f]{7,40}\b/C/g; s|/tmp/[^ :]*|DIR|g' stderr > "$out/stderr"
    git for-each-ref --format='%(refname)' > "$out/refs"
  )
  rm -rf "$w"
}

tmp=$(mktemp -d)
one "$1" "$tmp/a"; one "$2" "$tmp/b"
if diff -r "$tmp/a" "$tmp/b"; then
  echo "same-run: the two binaries wrote the same rows, state, refs and console lines"
  [[ -n "${KEEP:-}" ]] && echo "outputs in $tmp" || rm -rf "$tmp"
else
  echo "same-run: they differ (above); outputs kept in $tmp" >&2
  exit 1
fi
