#!/usr/bin/env bash
# Benchmark of the engine's per-iteration overhead. It prints figures; it is not a timed test and
# fails only when a measurement is broken (a run that did not do what was measured).
#
#   bash scripts/bench.sh        # from the repository root; about 2 minutes on 2 idle cores
#
# Everything below is measured in one run, on the same machine state:
#
# 1. Engine cost per iteration on a 10-file and a 20,000-file repository (src/metric.txt plus
#    files spread over src/dNN/eNN/, committed and packed). `codex-autoresearch run` (release
#    build) uses a command agent that edits src/metric.txt, lowering the number on odd iterations
#    (keep) and raising it on even ones (discard, rollback), and a verify script that prints the
#    number. Both are POSIX sh scripts outside the repository (the engine protects files a verify
#    command names; an absolute path outside the repo names none).
#    Startup (preflight scan, baseline verify, process start) is not charged to the iterations:
#    each setup is run twice from the same starting state, with ITER_SHORT and with N iterations,
#    and the per-iteration figures are the slope between the two runs:
#      engine/iter   = (wall_N - wall_short) / (N - ITER_SHORT): what a user waits per iteration
#      overhead/iter = the same after subtracting the agent and verify time the engine recorded
#                      (autoresearch-results/state.json engine.agent_ms + verify_ms + guard_ms). Those
#                      times cover spawning, running and reaping the child processes, so this is
#                      the engine's own work.
#    Caveats when reading "overhead": the recorded times are whole milliseconds, truncated per
#    process, so up to 1 ms per agent or verify run is charged to "overhead" (overstated by < 2 ms
#    per iteration, ~1 ms on average); and the engine counts its fsynced write of
#    autoresearch-results/engine/feedback.txt after each verify inside verify_ms, which hides that piece of
#    engine work from "overhead" ("engine/iter" includes everything).
#    "in-loop ovh" is a cross-check: the mean of summary.json total_ms - agent_ms - verify_ms over
#    the long run (it misses the checks between iterations).
#    "stale index" repeats the 20,000-file case after `touch`ing every file (same content, new
#    mtime), the state a formatter, a build step, `cp -a`/rsync or a restored backup leave: the
#    index's stat data no longer matches the files. git repairs that on its first `status`; the
#    engine is measured on it as it comes.
# 2. The same repository work with the git CLI, in the same rounds, from the same starting state:
#    per iteration `git status --porcelain`, the same edit, `git add <file>`, `git commit -q -m`,
#    and on discard iterations `git reset -q --hard HEAD~1`. Loop time / iterations.
# 3. Growth with the length of the results log: one real run of ROWS_FEW iterations is made, and a
#    copy of it is grown to ROWS_MANY rows the way a long run leaves it: discard rows appended to
#    autoresearch-results/results.tsv, a refs/autoresearch/<tag>/trial-N ref and an autoresearch-results/engine/iter-NNNN/
#    directory per row. autoresearch-results/state.json stays as the short run wrote it; the engine
#    rebuilds its counters from the log (the TSV wins), as after any disagreement. Synthesizing is
#    used instead of letting the engine write 10,000 no-op rows because each row costs several
#    fsyncs (minutes here); the synthesized rows go through the same parser and reducer on resume,
#    and every run is checked to have continued the numbering with keep/discard rows only (no
#    drift row, so the retained metric was recovered). Both logs are resumed with
#    `run --iterations ROWS+N`, again twice (ITER_SHORT and ITER_ROWS more iterations), so the
#    slope removes the resume's re-measure and the parsing of the log.
#
# Starting state: the repositories are reused between runs; before each run the branch is reset
# to the base commit, the run's artifacts and refs/autoresearch/ are deleted, .git/info/exclude is
# restored and the index is refreshed (`git update-index --refresh`), so the engine and git start
# alike. The rows scenarios are copied with `cp -a` (their artifacts are the point) and refreshed.
# Rounds interleave the setups so a disturbance from other work on the machine spreads over all of
# them; the tables give the median over rounds, the spread, and the load average.
#
# Hermetic: HOME is a temp dir, GIT_CONFIG_GLOBAL=/dev/null, GIT_CONFIG_NOSYSTEM=1, AUTORESEARCH_*
# variables are unset, the repos have a local user.name/email and gc.auto=0 (no auto-gc in the
# CLI loop; libgit2 never gcs). libgit2 (inside the engine) still reads /etc/gitconfig: it does
# not honour GIT_CONFIG_NOSYSTEM.
#
# Knobs (environment):
#   ITER_SMALL=50 ITER_LARGE=20 ITER_STALE=12 (0 skips it) ITER_SHORT=2 ITER_ROWS=30 REPEAT=3
#   SMALL_FILES=10 LARGE_FILES=20000 ROWS_FEW=10 ROWS_MANY=10000
#   BIN=path/to/codex-autoresearch (default target/release/codex-autoresearch, built with
#   `cargo build --release` unless NO_BUILD=1); KEEP_TMP=1 keeps the scratch directory.
set -euo pipefail
shopt -s inherit_errexit

ITER_SMALL=${ITER_SMALL:-50}
ITER_LARGE=${ITER_LARGE:-20}
ITER_STALE=${ITER_STALE:-12}
ITER_SHORT=${ITER_SHORT:-2}
ITER_ROWS=${ITER_ROWS:-30}
REPEAT=${REPEAT:-3}
SMALL_FILES=${SMALL_FILES:-10}
LARGE_FILES=${LARGE_FILES:-20000}
ROWS_FEW=${ROWS_FEW:-10}
ROWS_MANY=${ROWS_MANY:-10000}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPER="$ROOT/scripts/bench_helper.py"
for n in ITER_SMALL ITER_LARGE ITER_ROWS; do
    if (( ${!n} <= ITER_SHORT )); then
        echo "bench: $n (${!n}) must be greater than ITER_SHORT ($ITER_SHORT)" >&2
        exit 2
    fi
done
if (( REPEAT < 1 || SMALL_FILES < 1 || LARGE_FILES < 1 || ROWS_MANY <= ROWS_FEW || ROWS_FEW < 1 )); then
    echo "bench: need REPEAT >= 1, *_FILES >= 1 and ROWS_MANY > ROWS_FEW >= 1" >&2
    exit 2
fi

if [[ -z "${BIN:-}" ]]; then
    BIN="$ROOT/target/release/codex-autoresearch"
    if [[ "${NO_BUILD:-}" != 1 ]]; then
        echo "bench: cargo build --release" >&2
        (cd "$ROOT" && cargo build --release --quiet)
    fi
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
[[ -x "$BIN" ]] || { echo "bench: no binary at $BIN" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/autoresearch-bench.XXXXXX")
cleanup() {
    if [[ "${KEEP_TMP:-}" == 1 ]]; then
        echo "bench: scratch kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Hermetic environment for git, libgit2 and the engine.
mkdir -p "$WORK/home"
export HOME="$WORK/home" XDG_CONFIG_HOME="$WORK/home/.config" GIT_CONFIG_GLOBAL=/dev/null \
    GIT_CONFIG_NOSYSTEM=1 LANG=C LC_ALL=C
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES \
    GIT_CEILING_DIRECTORIES GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL
while read -r v; do unset "$v"; done < <(compgen -e | grep '^AUTORESEARCH_' || true)

RESULTS="$WORK/results.txt"
: > "$RESULTS"
note() { echo "bench: $*" >&2; }
put() { echo "$1 $2" >> "$RESULTS"; }
load() { cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo -1; }

# The trivial agent and verify (POSIX sh, no child processes of their own).
AGENT="$WORK/agent.sh"
VERIFY="$WORK/verify.sh"
cat > "$AGENT" <<'EOF'
#!/bin/sh
# Odd iterations lower the metric (keep), even ones raise it (discard).
read -r v < src/metric.txt
if [ $((AUTORESEARCH_ITERATION % 2)) -eq 1 ]; then
    echo $((v - 1)) > src/metric.txt; echo "lower the metric"
else
    echo $((v + 1)) > src/metric.txt; echo "raise the metric"
fi
EOF
cat > "$VERIFY" <<'EOF'
#!/bin/sh
read -r v < src/metric.txt
echo "$v"
EOF
chmod +x "$AGENT" "$VERIFY"

now() { echo "$EPOCHREALTIME"; }
ms_since() { python3 -c "import sys; print('%.3f' % ((float(sys.argv[2]) - float(sys.argv[1])) * 1000))" "$1" "$(now)"; }

# make_repo DIR NFILES: a committed, packed repository on branch main, reusable with `restore`.
make_repo() {
    local dir=$1 n=$2
    mkdir -p "$dir"
    git -C "$dir" init -q -b main
    git -C "$dir" config user.name bench
    git -C "$dir" config user.email bench@localhost
    git -C "$dir" config gc.auto 0
    python3 "$HELPER" mkrepo "$dir" "$n"
    git -C "$dir" add -A
    git -C "$dir" commit -q -m "bench: $n files"
    git -C "$dir" gc -q --prune=now
    git -C "$dir" rev-parse HEAD > "$dir.base"
    cp "$dir/.git/info/exclude" "$dir.exclude"
}

# restore DIR [stale]: back to the base commit with no run in it and a refreshed index; "stale"
# then gives every file a new mtime (same content), so the index's stat data is out of date.
restore() {
    local d=$1
    rm -rf "$d/autoresearch-results" "$d/.codex-autoresearch"
    git -C "$d" for-each-ref --format='delete %(refname)' refs/autoresearch | git -C "$d" update-ref --stdin
    git -C "$d" checkout -q -f main
    git -C "$d" reset -q --hard "$(cat "$d.base")"
    git -C "$d" clean -fdq
    cp "$d.exclude" "$d/.git/info/exclude"
    git -C "$d" update-index -q --refresh > /dev/null || true
    if [[ "${2:-}" == stale ]]; then
        find "$d/src" -type f -exec touch -d "@$(( ${EPOCHSECONDS} - 1800 ))" {} +
    fi
}

# prepare SETUP DIR MODE: the starting state of a measured run.
#   MODE fresh|stale: restore the repository SETUP in place (DIR is SETUP)
#   MODE copy:        DIR becomes a refreshed cp -a of SETUP (a repository holding a run)
prepare() {
    local src=$1 d=$2 mode=$3
    if [[ "$mode" == copy ]]; then
        rm -rf "$d"
        cp -a "$src" "$d"
        git -C "$d" update-index -q --refresh > /dev/null || true
    else
        restore "$d" "$mode"
    fi
}

# The end-of-run confirmation re-measures the result (20 verify runs per keep): not an
# iteration's cost, so it is left out where the build has it.
NO_CONFIRM=()
if "$BIN" run --help 2>/dev/null | grep -q -- '--no-confirm'; then NO_CONFIRM=(--no-confirm); fi

# engine DIR ITERATIONS: runs the engine; prints the wall time in ms.
engine() {
    local dir=$1 iters=$2 t0 rc=0 wall
    t0=$(now)
    "$BIN" run --repo "$dir" --goal "bench overhead" --scope 'src/**' --metric metric \
        --direction lower --verify "$VERIFY" --agent command --agent-cmd "$AGENT" \
        --iterations "$iters" --refine-after 0 --pivot-after 0 --max-pivots 0 --json \
        "${NO_CONFIRM[@]}" > "$dir.out" 2> "$dir.err" || rc=$?
    wall=$(ms_since "$t0")
    if (( rc != 0 )); then
        note "the engine failed (exit $rc) in $dir:"; tail -5 "$dir.err" >&2; exit 1
    fi
    python3 "$HELPER" check "$dir" "$iters"
    echo "$wall"
}

# measure NAME ROUND SETUP MODE ITERATIONS [ROWS_BEFORE]: the short and the long engine run.
measure() {
    local p=$1 r=$2 setup=$3 mode=$4 n2=$5 base=${6:-0} d k n wall child out before total count
    d=$setup
    [[ "$mode" == copy ]] && d="$WORK/$p.run"
    for k in 1 2; do
        n=$(( k == 1 ? ITER_SHORT : n2 ))
        prepare "$setup" "$d" "$mode"
        before=0
        if [[ -f "$d/autoresearch-results/state.json" ]]; then
            out=$(python3 "$HELPER" engine-ms "$d")
            read -r before _ <<< "$out"
        fi
        wall=$(engine "$d" $(( base + n )))
        out=$(python3 "$HELPER" engine-ms "$d")
        read -r child _ <<< "$out"
        put "$p.$r.n$k" "$n"
        put "$p.$r.wall$k" "$wall"
        put "$p.$r.child$k" "$(( child - before ))"
        note "$p #$r: $n iterations in $(printf '%.0f' "$wall") ms (agent+verify $(( child - before )) ms)"
    done
    out=$(python3 "$HELPER" inloop-ms "$d" $(( base + 1 )))
    read -r total count <<< "$out"
    put "$p.$r.inloop" "$total"
    put "$p.$r.inloop_n" "$count"
    [[ "$mode" == copy ]] && rm -rf "$d"
    return 0
}

# gitcli NAME ROUND SETUP MODE ITERATIONS: the same repository work with the git CLI.
gitcli() {
    local p=$1 r=$2 d=$3 mode=$4 n=$5 i v t0 wall
    prepare "$d" "$d" "$mode"
    cd "$d"
    t0=$(now)
    for (( i = 1; i <= n; i++ )); do
        git status --porcelain > /dev/null
        read -r v < src/metric.txt
        if (( i % 2 )); then echo $(( v - 1 )) > src/metric.txt; else echo $(( v + 1 )) > src/metric.txt; fi
        git add src/metric.txt
        git commit -q -m "experiment $i"
        if (( i % 2 == 0 )); then git reset -q --hard HEAD~1; fi
    done
    wall=$(ms_since "$t0")
    cd "$WORK"
    put "$p.$r.git" "$(python3 -c "print('%.3f' % ($wall / $n))")"
    note "$p #$r: git CLI $n iterations in $(printf '%.0f' "$wall") ms"
}

cd "$WORK"
note "engine: $BIN"
put load.start "$(load)"
put cpus "$(nproc 2>/dev/null || echo -1)"
put small.files "$SMALL_FILES"
put large.files "$LARGE_FILES"
put rows_few.rows "$ROWS_FEW"
put rows_many.rows "$ROWS_MANY"

note "creating the $SMALL_FILES-file and $LARGE_FILES-file repositories"
make_repo "$WORK/small" "$SMALL_FILES"
make_repo "$WORK/large" "$LARGE_FILES"

note "making a $ROWS_FEW-row run and growing a copy of it to $ROWS_MANY rows"
restore "$WORK/small"
engine "$WORK/small" "$ROWS_FEW" > /dev/null
cp -a "$WORK/small" "$WORK/rows-few"
cp -a "$WORK/small" "$WORK/rows-many"
python3 "$HELPER" synth "$WORK/rows-many" "$ROWS_MANY"

for (( r = 1; r <= REPEAT; r++ )); do
    # 1 + 2: the engine and the git CLI on both sizes.
    measure small "$r" "$WORK/small" fresh "$ITER_SMALL"
    gitcli small "$r" "$WORK/small" fresh "$ITER_SMALL"
    measure large "$r" "$WORK/large" fresh "$ITER_LARGE"
    gitcli large "$r" "$WORK/large" fresh "$ITER_LARGE"
    # 3: a results log with ROWS_FEW and with ROWS_MANY rows, resumed.
    measure rows_few "$r" "$WORK/rows-few" copy "$ITER_ROWS" "$ROWS_FEW"
    measure rows_many "$r" "$WORK/rows-many" copy "$ITER_ROWS" "$ROWS_MANY"
done
if (( ITER_STALE > ITER_SHORT )); then
    # Seconds per iteration with the engine as it is: one round.
    measure stale 1 "$WORK/large" stale "$ITER_STALE"
    gitcli stale 1 "$WORK/large" stale "$ITER_STALE"
fi
put load.end "$(load)"

python3 "$HELPER" report "$RESULTS"
