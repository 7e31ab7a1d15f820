//! GUIDE's verify recipes (§8, Recipes) are read out of GUIDE.md as config files and checked
//! against real output of each tool (captured once in tests/fixtures/recipes/), and the
//! `cargo test`, pytest and ruff ones against the real tools.

use std::path::Path;
use std::process::Command;

use codex_autoresearch::config::{Mode, Settings, VerifyFormat, parse_file};
use codex_autoresearch::engine::metric::MetricFormat;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A recipe: its name (`# recipe: NAME ...`) and its settings.
struct Recipe {
    name: String,
    settings: Settings,
}

impl Recipe {
    fn verify(&self) -> &str {
        self.settings
            .verify
            .as_deref()
            .expect("a recipe has a verify")
    }

    fn format(&self) -> MetricFormat {
        match self
            .settings
            .verify_format
            .expect("a recipe names its format")
        {
            VerifyFormat::Regex => MetricFormat::Regex(
                regex::Regex::new(self.settings.metric_regex.as_deref().expect("a regex"))
                    .expect("the recipe's regex compiles"),
            ),
            VerifyFormat::Scalar => MetricFormat::Scalar,
            VerifyFormat::MetricsJson | VerifyFormat::Checklist => {
                panic!("no recipe uses metrics-json or checklist")
            }
        }
    }

    /// Reads the metric from what verify printed, as the engine does.
    fn read(&self, stdout: &str, exit_code: i32) -> Result<f64, String> {
        let fix = self.settings.mode == Some(Mode::Fix);
        let metric = self.settings.metric.as_deref().unwrap_or_default();
        self.format().read(stdout, metric, fix && exit_code == 0)
    }
}

/// Every ```toml block of GUIDE.md that starts with `# recipe: NAME`.
fn recipes() -> Vec<Recipe> {
    let guide = std::fs::read_to_string(Path::new(ROOT).join("GUIDE.md")).expect("GUIDE.md");
    let mut found = Vec::new();
    for block in guide.split("```toml\n").skip(1) {
        let text = block.split("```").next().unwrap_or_default();
        let Some(rest) = text.strip_prefix("# recipe: ") else {
            continue;
        };
        let name = rest
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        let (settings, _) = parse_file(text, Path::new("GUIDE.md"))
            .unwrap_or_else(|e| panic!("recipe {name} is not a valid config file: {e}"));
        found.push(Recipe { name, settings });
    }
    found
}

fn recipe(name: &str) -> Recipe {
    recipes()
        .into_iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("GUIDE.md has no recipe {name}"))
}

/// What verify prints when the tool prints `output`: the output itself, or what the recipe's
/// filter (after the first `|`) makes of it.
fn through_filter(verify: &str, output: &str) -> String {
    let Some((_, filter)) = verify.split_once('|') else {
        return output.to_string();
    };
    let mut child = Command::new("sh")
        .args(["-c", filter])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sh");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), output.as_bytes())
        .expect("feed the filter");
    let out = child.wait_with_output().expect("filter");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_recipe_reads_the_real_output_of_its_tool() {
    // (recipe, fixture, count in the failing output, exit status of the failing run)
    let cases = [
        ("pytest", "pytest", 2.0, 1),
        ("cargo-test", "cargo-test", 2.0, 101),
        ("jest", "jest", 2.0, 1),
        ("tsc", "tsc", 3.0, 2),
        ("ruff", "ruff", 3.0, 1),
        ("eslint", "eslint", 6.0, 1),
        ("eslint-warnings", "eslint", 1.0, 1),
    ];
    let all = recipes();
    assert_eq!(
        all.len(),
        cases.len(),
        "every recipe in GUIDE.md is tested, and only those"
    );
    let dir = Path::new(ROOT).join("tests/fixtures/recipes");
    for (name, fixture, failing, code) in cases {
        let r = recipe(name);
        let text = |kind: &str| {
            std::fs::read_to_string(dir.join(format!("{fixture}-{kind}.txt")))
                .unwrap_or_else(|e| panic!("fixture {fixture}-{kind}: {e}"))
        };
        let out = through_filter(r.verify(), &text("failing"));
        assert_eq!(r.read(&out, code), Ok(failing), "{name} on failing output");
        let out = through_filter(r.verify(), &text("passing"));
        assert_eq!(r.read(&out, 0), Ok(0.0), "{name} on passing output");
    }
}

/// Runs `verify` with `sh -c` in `dir`; returns stdout and the exit status.
fn run_verify(verify: &str, dir: &Path, target: &Path) -> (String, i32) {
    let out = Command::new("sh")
        .args(["-c", verify])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("sh");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, c).expect("write");
    }
}

fn available(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_cargo_test_pytest_and_ruff_recipes_count_with_the_real_tools() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let target = tmp.path().join("target");

    // cargo test: one failure in the unit tests, one in an integration test.
    let krate = tmp.path().join("crate");
    let lib = "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() {\n        assert_eq!(super::add(1, 2), 3);\n    }\n\n    #[test]\n    fn adds_negatives() {\n        assert_eq!(super::add(-1, -2), EXPECTED);\n    }\n}\n";
    write(
        &krate,
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"calc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            ),
            ("src/lib.rs", &lib.replace("EXPECTED", "-4")),
            (
                "tests/more.rs",
                "#[test]\nfn adds_zero() {\n    assert_eq!(calc::add(0, 0), 1);\n}\n",
            ),
        ],
    );
    let r = recipe("cargo-test");
    let (out, code) = run_verify(r.verify(), &krate, &target);
    assert_eq!(r.read(&out, code), Ok(2.0), "cargo test output: {out}");
    write(
        &krate,
        &[
            ("src/lib.rs", &lib.replace("EXPECTED", "-3")),
            (
                "tests/more.rs",
                "#[test]\nfn adds_zero() {\n    assert_eq!(calc::add(0, 0), 0);\n}\n",
            ),
        ],
    );
    let (out, code) = run_verify(r.verify(), &krate, &target);
    assert_eq!(r.read(&out, code), Ok(0.0), "cargo test output: {out}");
    // A compile error is no metric, not 0 failures.
    write(&krate, &[("tests/more.rs", "fn broken( {\n")]);
    let (out, code) = run_verify(r.verify(), &krate, &target);
    assert!(r.read(&out, code).is_err(), "cargo test output: {out}");

    let py = tmp.path().join("py");
    let tests = "def test_one():\n    assert 1 == 1\n\n\ndef test_two():\n    assert 2 == TWO\n\n\ndef test_three():\n    assert 3 == THREE\n";
    if available("python3", &["-m", "pytest", "--version"]) {
        let r = recipe("pytest");
        write(
            &py,
            &[(
                "test_calc.py",
                &tests.replace("TWO", "1").replace("THREE", "1"),
            )],
        );
        let (out, code) = run_verify(r.verify(), &py, &target);
        assert_eq!(r.read(&out, code), Ok(2.0), "pytest output: {out}");
        write(
            &py,
            &[(
                "test_calc.py",
                &tests.replace("TWO", "2").replace("THREE", "3"),
            )],
        );
        let (out, code) = run_verify(r.verify(), &py, &target);
        assert_eq!(r.read(&out, code), Ok(0.0), "pytest output: {out}");
    } else {
        eprintln!(
            "pytest is not installed here: its recipe is checked on the captured output only"
        );
    }

    if available("ruff", &["--version"]) {
        let r = recipe("ruff");
        let lint = tmp.path().join("lint");
        write(&lint, &[("bad.py", "import os\nimport sys\n")]);
        let (out, code) = run_verify(r.verify(), &lint, &target);
        assert_eq!(r.read(&out, code), Ok(2.0), "ruff output: {out}");
        write(&lint, &[("bad.py", "print('ok')\n")]);
        let (out, code) = run_verify(r.verify(), &lint, &target);
        assert_eq!(r.read(&out, code), Ok(0.0), "ruff output: {out}");
    } else {
        eprintln!("ruff is not installed here: its recipe is checked on the captured output only");
    }
}
