#!/usr/bin/env python3
"""Differential check of the Rust SEQ machine against the reference model's `Seq` class.

    SEQ_DUMP=/tmp/seq_dump.txt cargo test --lib dump_sessions -- --ignored
    python3 src/engine/seq/model_check.py /tmp/seq_dump.txt DIR_WITH_noise_rules.py

Each dumped iteration lists the retained and candidate values the Rust machine asked for and
whether it kept; the Python class is fed the same values in the order it asks for them and
must ask for exactly those runs and reach the same decision.
"""
import ast
import sys

dump, model_dir = sys.argv[1], sys.argv[2]
sys.path.insert(0, model_dir)
import noise_rules as nr  # noqa: E402

rule, ok = None, True
iterations = sessions = bad = 0
for line in open(dump).read().splitlines():
    kind, rest = line.split(" ", 1)
    if kind == "S":
        effort, direction, base = rest.split(" ", 2)
        queue = list(ast.literal_eval(base))
        rule = nr.Seq(direction, **(nr.SEQ_THOROUGH if effort == "thorough" else {}))
        rule.start(lambda: queue.pop(0))
        assert not queue, "the baselines differ in length"
        sessions, ok = sessions + 1, True
        continue
    kept, rest = rest.split(" ", 1)
    cut = rest.index("] [")
    qr, qc = list(ast.literal_eval(rest[:cut + 1])), list(ast.literal_eval(rest[cut + 2:]))
    iterations += 1
    if not ok:
        continue

    def pop(q, what):
        if not q:
            raise RuntimeError(f"the model asked for one more {what} run")
        return q.pop(0)

    try:
        k = rule.iterate(lambda: pop(qr, "retained"), lambda: pop(qc, "candidate"))
    except RuntimeError as e:
        print(f"session {sessions}: {e}")
        bad, ok = bad + 1, False
        continue
    if str(k).lower() != kept or qr or qc:
        print(f"session {sessions}: model kept {k}, machine {kept}; unused {len(qr)}R {len(qc)}C")
        bad, ok = bad + 1, False
print(f"iterations {iterations}, sessions {sessions}, sessions that differ {bad}")
sys.exit(1 if bad else 0)
