//! The stop check with multi-metric gates (GUIDE "Multi-metric gates"): the run stops as goal
//! reached only when every configured gate holds on the retained result, as the reference's
//! supervisor decides. Without gates it is exactly [`policy::stop_check`]. Pure.

use super::gates::{Gates, Reading};
use super::policy::{self, Policy, Rules, Stop};
use super::reducer::Replay;

/// The mode's policy with its own goal turned off (the gated check decides the goal).
struct NoGoal<'a>(&'a dyn Policy);

impl Policy for NoGoal<'_> {
    fn template(&self) -> &'static str {
        self.0.template()
    }
}

/// What the gated check reads: the gates and the retained result's reading (`None` when not
/// measured with metrics-json yet).
pub struct GoalGates<'a> {
    pub gates: &'a Gates,
    pub retained: Option<&'a Reading>,
}

/// The stop before the next iteration, in GUIDE §7's order, with the goal gated: when a stop
/// condition and/or acceptance criteria are configured, all of those configured must hold on
/// the retained result; with neither, the mode's own goal counts; either way the retained
/// labels must include every `--required-stop-label`.
pub fn stop_check(
    policy: &dyn Policy,
    rules: &Rules,
    replay: &Replay,
    g: &GoalGates<'_>,
) -> Option<Stop> {
    if g.gates.is_empty() {
        return policy::stop_check(policy, rules, replay);
    }
    let t = &replay.tally;
    let gap = g.gates.goal_gap(g.retained, &t.current_labels);
    let goal = if rules.stop_condition.is_some() || !g.gates.acceptance.is_empty() {
        let condition = match &rules.stop_condition {
            Some((_, cond)) if !cond.satisfied(t.current_metric) => None,
            Some(_) => match policy::stop_check(policy, rules, replay) {
                Some(Stop::Goal(why)) => Some(why),
                _ => None,
            },
            None => Some(String::new()),
        };
        condition.filter(|_| gap.is_none()).map(|why| {
            let acc = (!g.gates.acceptance.is_empty()).then(|| {
                let list: Vec<String> = g.gates.acceptance.iter().map(|c| c.to_string()).collect();
                format!("acceptance criteria met ({})", list.join(", "))
            });
            [Some(why).filter(|w| !w.is_empty()), acc]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ")
        })
    } else {
        policy
            .goal_reached(&rules.metric, t.current_metric)
            .filter(|_| gap.is_none())
    };
    if let Some(why) = goal {
        return Some(Stop::Goal(why));
    }
    let rest = Rules {
        stop_condition: None,
        ..rules.clone()
    };
    policy::stop_check(&NoGoal(policy), &rest, replay)
}

/// Why a met stop condition (or mode goal) does not stop the run yet, for `status` and notes:
/// the gates it still waits for. `None` when nothing waits.
pub fn waiting(
    policy: &dyn Policy,
    rules: &Rules,
    replay: &Replay,
    g: &GoalGates<'_>,
) -> Option<String> {
    if g.gates.is_empty() {
        return None;
    }
    let t = &replay.tally;
    let met = match &rules.stop_condition {
        Some((_, cond)) => cond.satisfied(t.current_metric),
        None => {
            !g.gates.acceptance.is_empty()
                || policy
                    .goal_reached(&rules.metric, t.current_metric)
                    .is_some()
        }
    };
    if !met {
        return None;
    }
    g.gates.goal_gap(g.retained, &t.current_labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Direction;
    use crate::engine::gates::parse_gates;
    use crate::engine::reducer::Thresholds;
    use crate::engine::row::{Guard, Row, Status};

    fn rules(stop: Option<&str>) -> Rules {
        Rules {
            metric: "score".into(),
            stop_condition: stop.map(|s| {
                let c = crate::engine::stop::parse(s, &["score"], Direction::Higher).unwrap();
                (s.to_string(), c)
            }),
            thresholds: Thresholds {
                refine_after: 3,
                pivot_after: 5,
                max_pivots: 3,
            },
            iterations: Some(10),
        }
    }

    fn replay(metric: f64, labels: &str, iteration: u64) -> Replay {
        let row = |i: u64, status, metric| Row {
            iteration: i,
            commit: "a".into(),
            metric,
            delta: 0.0,
            guard: Guard::NotRun,
            status,
            description: format!("{labels}x"),
        };
        let mut r = Replay::start(&row(0, Status::Baseline, 1.0), Direction::Higher).unwrap();
        for i in 1..=iteration {
            r.apply(&row(i, Status::Keep, metric)).unwrap();
        }
        r
    }

    fn reading(pairs: &[(&str, f64)]) -> Reading {
        Reading {
            metrics: pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            labels: Vec::new(),
        }
    }

    #[test]
    fn stop_waits_for_the_stop_labels_and_the_acceptance() {
        let policy = policy::for_mode(crate::config::Mode::Loop);
        let g = parse_gates(&["coverage >= 80".into()], &[], &[], &["reviewed".into()]).unwrap();
        let good = reading(&[("score", 10.0), ("coverage", 85.0)]);
        let low = reading(&[("score", 10.0), ("coverage", 70.0)]);
        let r = rules(Some("score >= 5"));
        let gg = |retained| GoalGates {
            gates: &g,
            retained,
        };
        // Met stop condition, acceptance met, label missing: keeps running.
        let plain = replay(10.0, "", 1);
        assert_eq!(stop_check(policy, &r, &plain, &gg(Some(&good))), None);
        assert!(
            waiting(policy, &r, &plain, &gg(Some(&good)))
                .unwrap()
                .contains("reviewed")
        );
        // Labelled, but acceptance not met: keeps running.
        let labelled = replay(10.0, "[labels: reviewed] ", 1);
        assert_eq!(stop_check(policy, &r, &labelled, &gg(Some(&low))), None);
        // Everything holds: goal.
        match stop_check(policy, &r, &labelled, &gg(Some(&good))) {
            Some(Stop::Goal(why)) => {
                assert!(
                    why.contains("score >= 5") && why.contains("coverage >= 80"),
                    "{why}"
                )
            }
            other => panic!("{other:?}"),
        }
        // Stop condition not met: no goal, whatever the gates say.
        let early = replay(3.0, "[labels: reviewed] ", 1);
        assert_eq!(stop_check(policy, &r, &early, &gg(Some(&good))), None);
    }

    #[test]
    fn acceptance_alone_is_a_goal_and_other_stops_still_apply() {
        let policy = policy::for_mode(crate::config::Mode::Loop);
        let g = parse_gates(&["coverage >= 80".into()], &[], &[], &[]).unwrap();
        let good = reading(&[("coverage", 85.0)]);
        let low = reading(&[("coverage", 50.0)]);
        let r = rules(None);
        let gg = |retained| GoalGates {
            gates: &g,
            retained,
        };
        assert!(matches!(
            stop_check(policy, &r, &replay(2.0, "", 1), &gg(Some(&good))),
            Some(Stop::Goal(_))
        ));
        assert_eq!(
            stop_check(policy, &r, &replay(2.0, "", 1), &gg(Some(&low))),
            None
        );
        assert_eq!(stop_check(policy, &r, &replay(2.0, "", 1), &gg(None)), None);
        // The cap still stops a run whose goal waits on a gate.
        assert_eq!(
            stop_check(policy, &r, &replay(2.0, "", 10), &gg(Some(&low))),
            Some(Stop::Cap(10))
        );
    }

    #[test]
    fn without_gates_it_is_the_plain_check() {
        let policy = policy::for_mode(crate::config::Mode::Loop);
        let g = Gates::default();
        let r = rules(Some("score >= 5"));
        let rp = replay(10.0, "", 1);
        let gg = GoalGates {
            gates: &g,
            retained: None,
        };
        assert_eq!(
            stop_check(policy, &r, &rp, &gg),
            policy::stop_check(policy, &r, &rp)
        );
        assert!(matches!(
            stop_check(policy, &r, &rp, &gg),
            Some(Stop::Goal(_))
        ));
    }
}
