#!/usr/bin/env python3
"""Helper for scripts/bench.sh (Python standard library only).

Subcommands:
  mkrepo DIR NFILES        write NFILES files under DIR/src (src/metric.txt plus files spread over
                           src/dNN/eNN/), all with an mtime one hour in the past so the index git
                           writes afterwards has no racily-clean entries
  engine-ms DIR            print "agent_ms+verify_ms+guard_ms iteration" of the run in DIR (totals
                           recorded by the engine in autoresearch-results/state.json under `engine`)
  inloop-ms DIR FIRST      print the sum over iterations >= FIRST of summary.json
                           total_ms - agent_ms - verify_ms - guard_ms, and how many iterations
  check DIR ITER           fail unless the run in DIR reached iteration ITER with no drift or crash
                           rows and only keep/discard rows after the baseline (sanity of a measurement)
  synth DIR ROWS           grow the finished run in DIR to ROWS iteration rows, the way a long run
                           leaves it: discard rows appended to autoresearch-results/results.tsv, one
                           refs/autoresearch/<tag>/trial-N per row and one autoresearch-results/engine/iter-NNNN/
                           directory per row
  report FILE              print the tables from the measurements in FILE
"""

import glob
import json
import os
import subprocess
import sys
import time


def mkrepo(root, nfiles):
    nfiles = int(nfiles)
    old = time.time() - 3600
    src = os.path.join(root, "src")
    os.makedirs(src, exist_ok=True)

    def put(path, text):
        with open(path, "w") as f:
            f.write(text)
        os.utime(path, (old, old))

    put(os.path.join(src, "metric.txt"), "1000000\n")
    # 100 files per leaf directory, 10 leaves per top directory: src/d00/e00/f000.txt ...
    for n in range(nfiles - 1):
        d = os.path.join(src, "d%02d" % (n // 1000), "e%02d" % (n // 100 % 10))
        if n % 100 == 0:
            os.makedirs(d, exist_ok=True)
        put(os.path.join(d, "f%03d.txt" % (n % 100)), "line %d\n" % n)


def state(root):
    with open(os.path.join(root, "autoresearch-results/state.json")) as f:
        return json.load(f)


def engine_ms(root):
    s = state(root)
    e = s["engine"]
    print(e["agent_ms"] + e["verify_ms"] + e.get("guard_ms", 0), s["state"]["iteration"])


def inloop_ms(root, first):
    first = int(first)
    total, count = 0, 0
    for path in glob.glob(os.path.join(root, "autoresearch-results", "engine", "iter-*", "summary.json")):
        with open(path) as f:
            r = json.load(f)
        if r["iteration"] < first:
            continue
        total += r["total_ms"] - r["agent_ms"] - r["verify_ms"] - r.get("guard_ms", 0)
        count += 1
    print(total, count)


def rows(root):
    with open(os.path.join(root, "autoresearch-results/results.tsv")) as f:
        lines = f.read().splitlines()
    start = lines.index("iteration\tcommit\tmetric\tdelta\tguard\tstatus\tdescription") + 1
    return lines[:start], [l.split("\t") for l in lines[start:] if l]


def check(root, want):
    want = int(want)
    got = state(root)["state"]["iteration"]
    _, data = rows(root)
    bad = [r for r in data[1:] if r[5] not in ("keep", "discard")]
    if got != want or bad or int(data[-1][0]) != want:
        sys.exit(
            "bench: the run in %s is not what was measured: iteration %s (wanted %d), unexpected rows: %s"
            % (root, got, want, [r[0] + " " + r[5] for r in bad[:5]])
        )


def synth(root, want):
    want = int(want)
    s = state(root)
    tag = s["run_tag"]
    _, data = rows(root)
    last = data[-1]
    have = int(last[0])
    retained = s["state"]["current_metric"]
    commit = subprocess.run(
        ["git", "-C", root, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    lines, refs = [], []
    for i in range(have + 1, want + 1):
        lines.append("%d\t%s\t%d\t+1\t-\tdiscard\tsynthetic experiment %d\n" % (i, commit[:7], retained + 1, i))
        refs.append("create refs/autoresearch/%s/trial-%d %s\n" % (tag, i, commit))
        os.makedirs(os.path.join(root, "autoresearch-results", "engine", "iter-%04d" % i))
    with open(os.path.join(root, "autoresearch-results/results.tsv"), "a") as f:
        f.writelines(lines)
    subprocess.run(["git", "-C", root, "update-ref", "--stdin"], input="".join(refs), text=True, check=True)


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if n == 0:
        return float("nan")
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def report(path):
    m = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition(" ")
            if k:
                m[k] = float(v)

    def rounds(p):
        return sorted({int(k.split(".")[1]) for k in m if k.startswith(p + ".") and k.endswith(".wall2")})

    def one(p, r):
        """Per-iteration figures of one round: two runs that differ only in their iterations."""
        g = lambda k: m["%s.%d.%s" % (p, r, k)]
        n1, n2 = g("n1"), g("n2")
        total = (g("wall2") - g("wall1")) / (n2 - n1)
        over = ((g("wall2") - g("child2")) - (g("wall1") - g("child1"))) / (n2 - n1)
        startup = g("wall1") - n1 * total
        inloop = g("inloop") / g("inloop_n") if g("inloop_n") else float("nan")
        return startup, total, over, inloop

    def figures(p):
        rs = rounds(p)
        per = [one(p, r) for r in rs]
        med = [median([x[i] for x in per]) for i in range(4)]
        git = [m["%s.%d.git" % (p, r)] for r in rs if "%s.%d.git" % (p, r) in m]
        iters = "%d/%d" % (m["%s.%d.n1" % (p, rs[0])], m["%s.%d.n2" % (p, rs[0])])
        spread = max(x[2] for x in per) - min(x[2] for x in per) if len(per) > 1 else 0.0
        return iters, len(rs), med, (median(git) if git else None), spread

    def f(x):
        return "-" if x is None else "%.1f" % x

    print()
    print("Per-iteration cost in ms (trivial agent and verify; keep and discard alternate; median of rounds)")
    print("  %-24s %6s %6s %8s %11s %13s %11s %12s %9s" % (
        "repo", "iters", "rounds", "startup", "engine/iter", "overhead/iter", "in-loop ovh", "git CLI/iter",
        "ovh range"))
    for p, label in (("small", "%d files" % m["small.files"]), ("large", "%d files" % m["large.files"]),
                     ("stale", "%d files, stale index" % m["large.files"])):
        if not rounds(p):
            continue
        iters, n, (st, tot, ov, il), git, spread = figures(p)
        print("  %-24s %6s %6d %8s %11s %13s %11s %12s %9s" % (
            label, iters, n, f(st), f(tot), f(ov), f(il), f(git), f(spread)))
    if rounds("rows_few"):
        print()
        print("Per-iteration cost in ms vs. results-log length (%d-file repo, resumed runs)" % m["small.files"])
        print("  %-24s %6s %6s %8s %11s %13s %11s %12s %9s" % (
            "rows in the log", "iters", "rounds", "startup", "engine/iter", "overhead/iter", "in-loop ovh", "",
            "ovh range"))
        for p in ("rows_few", "rows_many"):
            iters, n, (st, tot, ov, il), _, spread = figures(p)
            print("  %-24d %6s %6d %8s %11s %13s %11s %12s %9s" % (
                m[p + ".rows"], iters, n, f(st), f(tot), f(ov), f(il), "", f(spread)))
    print()
    print("  iters         = short/long run (the figures are the slope between the two)")
    print("  startup       = intercept: wall of the short run minus its iterations (preflight, baseline")
    print("                  verify or resume re-measure, parsing the log, process start)")
    print("  engine/iter   = whole-run wall time per iteration, agent and verify included")
    print("  overhead/iter = the same minus the agent and verify time the engine recorded (spawn, run and")
    print("                  reap of those processes): the engine's own work")
    print("  in-loop ovh   = mean summary.json total_ms - agent_ms - verify_ms (cross-check; it misses the")
    print("                  checks between iterations)")
    print("  git CLI/iter  = git status --porcelain, edit, git add, git commit, git reset --hard HEAD~1 on")
    print("                  discard iterations; same repo, same edits")
    print("  ovh range     = max - min of overhead/iter over the rounds (noise)")
    print("  load average  = %.2f at start, %.2f at end, %d CPUs (other work on the machine skews figures)" % (
        m.get("load.start", -1), m.get("load.end", -1), m.get("cpus", -1)))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"mkrepo": mkrepo, "engine-ms": engine_ms, "inloop-ms": inloop_ms, "check": check,
     "synth": synth, "report": report}[cmd](*args)


if __name__ == "__main__":
    main()
