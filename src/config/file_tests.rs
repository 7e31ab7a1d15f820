//! Unit tests of autoresearch.toml parsing: keys in either spelling, errors naming the line.

use super::*;

fn parse(text: &str) -> Result<Settings> {
    parse_file(text, Path::new("/repo/autoresearch.toml")).map(|(s, _)| s)
}

#[test]
fn every_key_with_dashes_or_underscores() {
    let s = parse(
        "goal = \"fewer bugs\"\nscope = [\"src/**\", \"tests/**\"]\nverify-timeout = \"90s\"\nmax_pivots = 4\nfresh = true\nagent-arg = [\"-c\", \"x=1\"]\nartifacts-dir = \"out\"\ndirection = \"higher\"\n",
    )
    .unwrap();
    assert_eq!(s.goal.as_deref(), Some("fewer bugs"));
    assert_eq!(
        s.scope,
        Some(Patterns(vec!["src/**".into(), "tests/**".into()]))
    );
    assert_eq!(s.verify_timeout, Some(Dur(Duration::from_secs(90))));
    assert_eq!(s.max_pivots, Some(4));
    assert_eq!(s.fresh, Some(true));
    assert_eq!(
        s.agent_arg,
        Some(StringOrList(vec!["-c".into(), "x=1".into()]))
    );
    assert_eq!(
        s.artifacts_dir,
        Some(PathBuf::from("/repo/out")),
        "relative to the file"
    );
    assert_eq!(s.direction, Some(Direction::Higher));
}

#[test]
fn errors_name_the_key_and_the_line() {
    let e = parse("goal = \"x\"\n\nverfy = \"make\"\n")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "/repo/autoresearch.toml line 3: unknown key `verfy` (did you mean `verify`?)"
    );
    let e = parse("goal = \"x\"\niterations = \"ten\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("/repo/autoresearch.toml line 2: `iterations`: invalid type"),
        "{e}"
    );
    let e = parse("verify_timeout = \"5x\"\n").unwrap_err().to_string();
    assert!(
        e.contains("line 1: `verify_timeout`: `5x` is not a duration"),
        "{e}"
    );
    let e = parse("direction = \"down\"\n").unwrap_err().to_string();
    assert!(e.contains("line 1: `direction`"), "{e}");
    let e = parse("goal = \n").unwrap_err().to_string();
    assert!(e.starts_with("/repo/autoresearch.toml line 1:"), "{e}");
    let e = parse("[run]\ngoal = \"x\"\n").unwrap_err().to_string();
    assert!(e.contains("line 1: unknown key `run`"), "{e}");
    let e = parse("fresh = \"yes\"\n").unwrap_err().to_string();
    assert!(e.contains("`fresh`: invalid type"), "{e}");
}

#[test]
fn precedence_is_file_then_env_then_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("custom.toml");
    std::fs::write(
        &file,
        "goal = \"from file\"\nmetric = \"file-metric\"\nverify = \"file verify\"\n",
    )
    .unwrap();
    let flags = Settings {
        verify: Some("flag verify".into()),
        ..Settings::default()
    };
    let g = gather(flags, Some(&file), |k| match k {
        "AUTORESEARCH_METRIC" => Some("env-metric".into()),
        "AUTORESEARCH_VERIFY" => Some("env verify".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(g.settings.goal.as_deref(), Some("from file"));
    assert_eq!(g.settings.metric.as_deref(), Some("env-metric"));
    assert_eq!(g.settings.verify.as_deref(), Some("flag verify"));
    assert_eq!(
        g.sources["goal"],
        Source::File {
            path: file.clone(),
            line: 1,
            key: "goal".into()
        }
    );
    assert_eq!(
        g.sources["metric"],
        Source::Env("AUTORESEARCH_METRIC".into())
    );
    assert_eq!(g.sources["verify"], Source::Flag);
    assert!(
        gather(
            Settings::default(),
            Some(Path::new("/nonexistent.toml")),
            |_| None
        )
        .is_err()
    );
}
