//! Unit tests of the settings: layering, validation, defaults, the saved form.

use super::*;
use crate::engine::reducer::Thresholds;

fn base() -> Settings {
    Settings {
        goal: Some("fewer failures".into()),
        scope: Some(Patterns(vec!["src/**".into()])),
        metric: Some("failures".into()),
        direction: Some(Direction::Lower),
        verify: Some("./count.sh".into()),
        agent: Some(AgentKind::Command),
        agent_cmd: Some("./agent.sh".into()),
        ..Settings::default()
    }
}

fn err(s: Settings) -> String {
    RunConfig::from_settings(s).unwrap_err().to_string()
}

#[test]
fn defaults_apply() {
    let c = RunConfig::from_settings(base()).unwrap();
    assert_eq!(c.verify_timeout, Duration::from_secs(600));
    assert_eq!(
        c.thresholds,
        Thresholds {
            refine_after: 3,
            pivot_after: 5,
            max_pivots: 3
        }
    );
    assert_eq!(c.rework, 2);
    assert_eq!(c.primary_metric_key, "failures");
}

#[test]
fn missing_required_fields_name_the_flag() {
    for key in ["goal", "scope", "metric", "direction", "verify"] {
        let mut s = base();
        match key {
            "goal" => s.goal = None,
            "scope" => s.scope = None,
            "metric" => s.metric = None,
            "direction" => s.direction = None,
            _ => s.verify = None,
        }
        assert!(
            err(s).contains(&format!("missing required field: {key} (set --{key}")),
            "{key}"
        );
    }
}

#[test]
fn contradictions_are_errors() {
    let mut s = base();
    s.verify_format = Some(VerifyFormat::Regex);
    assert!(err(s).contains("--metric-regex"));
    let mut s = base();
    s.metric_regex = Some("x(\\d)".into());
    assert!(err(s).contains("only applies with --verify-format regex"));
    let mut s = base();
    s.agent_cmd = None;
    assert!(err(s).contains("--agent-cmd"));
    // A task list without its format named the missing metric instead of the missing format.
    let mut s = base();
    s.metric = None;
    s.checklist = Some("PLAN.md".into());
    assert!(err(s).contains("--checklist only applies with --verify-format checklist"));
    let mut s = base();
    s.mode = Some(Mode::Fix);
    s.direction = Some(Direction::Higher);
    assert!(err(s).contains("--direction lower"));
    let mut s = base();
    s.stop_condition = Some("when happy".into());
    assert!(err(s).contains("--stop-condition"));
    let mut s = base();
    s.run_tag = Some("bad tag".into());
    assert!(err(s).contains("--run-tag"));
    let mut s = base();
    s.model = Some("gpt".into());
    assert!(err(s).contains("--model only applies"));
    let mut s = base();
    s.agent = Some(AgentKind::Codex);
    s.agent_cmd = None;
    s.agent_arg = Some(StringOrList(vec!["--sandbox=danger-full-access".into()]));
    assert!(err(s).contains("the sandbox is set by --sandbox"));
    let mut s = base();
    s.verify_timeout = Some(Dur(Duration::ZERO));
    assert!(err(s).contains("--verify-timeout must be longer"));
}

#[test]
fn saved_settings_round_trip_without_local_keys() {
    let mut s = base();
    s.repo = Some("/somewhere".into());
    s.verify_timeout = Some(Dur(Duration::from_secs(90)));
    let saved = serde_json::Value::Object(s.to_saved());
    assert_eq!(saved["scope"], "src/**");
    assert_eq!(saved["verify_timeout"], "90s");
    assert!(saved.get("repo").is_none());
    let back = Settings::from_saved(&saved).unwrap();
    assert_eq!(back.verify_timeout, s.verify_timeout);
    assert_eq!(back.scope, s.scope);
    assert_eq!(back.repo, None);
}

#[test]
fn identity_changes_are_refused() {
    let saved = base();
    let mut explicit = Settings {
        goal: Some("fewer failures ".into()),
        ..Settings::default()
    };
    assert!(check_identity(&saved, &explicit).is_ok());
    explicit.direction = Some(Direction::Higher);
    let e = check_identity(&saved, &explicit).unwrap_err().to_string();
    assert!(e.contains("--direction") && e.contains("--fresh"));
}

#[test]
fn env_fallbacks() {
    let (s, src) = Settings::from_env(|k| match k {
        "AUTORESEARCH_GOAL" => Some("g".into()),
        "AUTORESEARCH_ITERATIONS" => Some("4".into()),
        "AUTORESEARCH_SCOPE" => Some("a/**,b".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(s.goal.as_deref(), Some("g"));
    assert_eq!(s.iterations, Some(4));
    assert_eq!(s.scope, Some(Patterns(vec!["a/**".into(), "b".into()])));
    assert_eq!(
        src.get("goal"),
        Some(&Source::Env("AUTORESEARCH_GOAL".into()))
    );
    assert!(Settings::from_env(|k| (k == "AUTORESEARCH_ITERATIONS").then(|| "x".into())).is_err());
}

#[test]
fn an_unset_primary_key_is_the_metric_name_for_identity() {
    let saved = Settings {
        metric: Some("latency".into()),
        ..Settings::default()
    };
    let same = Settings {
        primary_metric_key: Some("latency".into()),
        ..Settings::default()
    };
    assert!(check_identity(&saved, &same).is_ok());
    let other = Settings {
        primary_metric_key: Some("throughput".into()),
        ..Settings::default()
    };
    let e = check_identity(&saved, &other).unwrap_err().to_string();
    assert!(e.contains("--primary-metric-key differs"), "{e}");
}

#[test]
fn run_tags() {
    assert!(valid_run_tag("fewer-bugs_2.1"));
    for bad in ["", "-x", ".x", "a..b", "a/b", "x.lock", "with space"] {
        assert!(!valid_run_tag(bad), "{bad}");
    }
}

#[test]
fn min_effect_and_clock_parse_or_say_what_is_expected() {
    assert_eq!(parse_min_effect("0.5"), Ok((0.5, false)));
    assert_eq!(parse_min_effect(" 2% "), Ok((2.0, true)));
    for bad in ["", "%", "-1", "fast", "nan", "1e999"] {
        let e = parse_min_effect(bad).unwrap_err();
        assert!(e.contains("e.g. 0.5 or 2%"), "{bad}: {e}");
    }
    assert_eq!(parse_clock("07:00"), Ok((7, 0)));
    assert_eq!(parse_clock("23:59"), Ok((23, 59)));
    for bad in ["24:00", "7", "07:60", "7pm", ""] {
        assert!(parse_clock(bad).unwrap_err().contains("HH:MM"), "{bad}");
    }
}
