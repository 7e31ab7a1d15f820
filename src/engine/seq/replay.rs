//! Rebuilding the rule's state on resume: `runs.tsv` (every verify run, append-only) plus each
//! iteration's outcome from the results log drive a fresh machine through the same calls the
//! driver made.

use std::collections::BTreeMap;

use super::{Next, Params, Role, Seq, Use};
use crate::engine::Direction;

/// One line of `runs.tsv`: iteration (0 = baseline), run number, commit, role, value (metric
/// units), and what the rule did with it.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRecord {
    pub iteration: u64,
    pub run: u64,
    pub commit: String,
    pub role: Role,
    pub value: f64,
    pub used: Use,
}

/// The machine after the recorded runs. Records are grouped by iteration (file order within
/// one); `outcomes` lists the iterations that ended with a recorded row and whether it was a
/// keep. Iteration 0 is the baseline. Every other iteration in either list gets `begin()` (the
/// driver opens each iteration so), then its runs: a candidate run with a different commit than
/// the iteration's previous candidate runs is a rework (`begin()` again); a candidate run while
/// the machine waits for the guard means the guard passed. At the end, a recorded keep passes
/// a still pending guard, and anything not decided is abandoned (a killed iteration, a failed
/// guard, an iteration without runs).
pub fn replay(
    direction: Direction,
    params: Params,
    records: &[RunRecord],
    outcomes: &[(u64, bool)],
) -> Seq {
    let mut groups: BTreeMap<u64, Vec<&RunRecord>> = BTreeMap::new();
    for r in records {
        groups.entry(r.iteration).or_default().push(r);
    }
    let mut kept: BTreeMap<u64, Option<bool>> = BTreeMap::new();
    for &(i, k) in outcomes {
        kept.insert(i, Some(k));
    }
    for &i in groups.keys() {
        kept.entry(i).or_insert(None);
    }
    let mut seq = Seq::new(direction, params);
    for (iteration, outcome) in kept {
        let group = groups.get(&iteration).map_or(&[][..], |g| &g[..]);
        if iteration == 0 {
            for r in group {
                seq.observe(r.role, r.value);
            }
            continue;
        }
        // A re-baseline (HEAD moved between runs, an evaluator changed): a new reference
        // from fresh baseline runs, as the driver makes it; the iteration's own runs follow.
        // Everything up to the last baseline run belongs to it (a resume's check before it).
        let fresh = group
            .iter()
            .rposition(|r| r.role == Role::Baseline)
            .map_or(0, |i| i + 1);
        if fresh > 0 {
            seq = Seq::new(direction, seq.params().clone());
            for r in group[..fresh].iter().filter(|r| r.role == Role::Baseline) {
                seq.observe(r.role, r.value);
            }
        }
        let rest: Vec<&RunRecord> = group[fresh..]
            .iter()
            .copied()
            // A check the rule did not take (the retained tree re-measured on resume).
            .filter(|r| r.role != Role::Check)
            .collect();
        if rest.is_empty() && fresh > 0 && outcome.is_none() {
            continue;
        }
        replay_iteration(&mut seq, &rest);
        finish(&mut seq, outcome);
    }
    seq
}

/// The runs of one iteration, with the begin/rework/guard calls they imply.
fn replay_iteration(seq: &mut Seq, group: &[&RunRecord]) {
    seq.begin();
    let mut commit: Option<&str> = None;
    for r in group {
        if r.role == Role::Candidate {
            match commit {
                Some(c) if c != r.commit => seq.begin(),
                _ if seq.next() == Next::Guard => seq.guard_passed(),
                _ => {}
            }
            commit = Some(r.commit.as_str());
        }
        seq.observe(r.role, r.value);
    }
}

/// The iteration's end: a recorded keep, or anything else.
fn finish(seq: &mut Seq, kept: Option<bool>) {
    if kept == Some(true) && seq.next() == Next::Guard {
        seq.guard_passed();
    }
    match seq.next() {
        Next::Keep if kept == Some(true) => {}
        Next::Discard(_) => {}
        _ => seq.abandon(),
    }
}
