//! `plan`'s repository profile, computed without an agent: the languages and their share, the
//! build and test tools found (Cargo.toml, pyproject/setup.cfg/pytest.ini, package.json scripts,
//! go.mod, Makefile targets, CMake), benchmark entry points, the linters and type checkers
//! configured, the size of the tree and what is ignored. [`Profile::from_files`] is pure: it
//! reads file contents through a closure; [`Profile::of_repo`] feeds it the tracked files.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

/// Tracked files whose contents the profile reads at most (manifests, configs).
const MAX_READ: u64 = 256 * 1024;

/// A language and how much of the tracked source it is.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Language {
    pub name: &'static str,
    pub files: usize,
    /// Percent of the bytes of all recognized source files.
    pub share: u32,
}

/// A benchmark entry point: what it is and the command that runs it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bench {
    pub name: String,
    pub command: String,
}

/// How the repository's tests run, when that can be told from its files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TestRunner {
    Cargo,
    Pytest,
    Unittest,
    NodeTest,
    Jest,
    Npm,
    Go,
    Make,
    Ctest,
}

/// What `plan` knows about a repository before any agent looks at it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Profile {
    pub languages: Vec<Language>,
    /// Build and test tools found (`cargo`, `python`, `pytest`, `npm`, `go`, `make`, `cmake`).
    pub tools: Vec<&'static str>,
    pub tests: Vec<TestRunner>,
    /// `package.json` script names.
    pub scripts: Vec<String>,
    /// Makefile targets.
    pub make_targets: Vec<String>,
    pub benchmarks: Vec<Bench>,
    /// Linters and type checkers configured (`clippy` with cargo, `ruff`, `flake8`, `mypy`,
    /// `pyright`, `eslint`, `tsc`, `go-vet`).
    pub checkers: Vec<&'static str>,
    /// Where the code of each language lives: scope patterns without the tests.
    pub sources: BTreeMap<&'static str, Vec<String>>,
    pub tracked_files: usize,
    pub tracked_bytes: u64,
    /// The root `.gitignore` patterns.
    pub ignored: Vec<String>,
}

fn language_of(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "rs" => "Rust",
        "py" => "Python",
        "js" | "mjs" | "cjs" | "jsx" => "JavaScript",
        "ts" | "tsx" | "mts" | "cts" => "TypeScript",
        "go" => "Go",
        "c" | "h" => "C",
        "cc" | "cpp" | "cxx" | "hpp" | "hh" => "C++",
        "java" => "Java",
        "rb" => "Ruby",
        "sh" | "bash" => "Shell",
        _ => return None,
    })
}

/// Whether `path` (any language) is a test file or under a test directory.
fn is_test(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let stem = name.split('.').next().unwrap_or(name);
    path.split('/').any(|c| {
        matches!(
            c,
            "tests" | "test" | "__tests__" | "spec" | "testdata" | "fixtures"
        )
    }) || stem.starts_with("test_")
        || stem.ends_with("_test")
        || name.contains(".test.")
        || name.contains(".spec.")
        || name == "conftest.py"
}

fn is_bench(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    path.split('/')
        .any(|c| matches!(c, "benches" | "bench" | "benchmarks"))
        || name.starts_with("bench")
}

/// Scope patterns for the non-test, non-benchmark files of a language: `src/**` (or `lib/**`)
/// when the code lives there, else its top-level directories and root files.
fn source_patterns(files: &[&str]) -> Vec<String> {
    let code: Vec<&str> = files
        .iter()
        .copied()
        .filter(|f| !is_test(f) && !is_bench(f) && *f != "setup.py")
        .collect();
    for dir in ["src", "lib"] {
        if code.iter().any(|f| f.starts_with(&format!("{dir}/"))) {
            return vec![format!("{dir}/**")];
        }
    }
    let mut out: Vec<String> = code
        .iter()
        .map(|f| match f.split_once('/') {
            Some((dir, _)) => format!("{dir}/**"),
            None => f.to_string(),
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn has_section(text: &str, section: &str) -> bool {
    text.lines().any(|l| l.trim().starts_with(section))
}

/// The Makefile's targets (`name:` at the start of a line, not special ones or variables).
fn make_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let ok = !name.is_empty()
            && !rest.starts_with('=')
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c));
        if ok && !out.iter().any(|t| t == name) {
            out.push(name.to_string());
        }
    }
    out
}

impl Profile {
    /// The profile of `files` (tracked paths and sizes); `read` returns a file's text.
    pub fn from_files(files: &[(String, u64)], read: impl Fn(&str) -> Option<String>) -> Profile {
        let mut p = Profile {
            tracked_files: files.len(),
            tracked_bytes: files.iter().map(|(_, s)| s).sum(),
            ..Profile::default()
        };
        p.languages(files);
        let has = |name: &str| files.iter().any(|(f, _)| f == name);
        let text = |name: &str| if has(name) { read(name) } else { None };
        if let Some(ignore) = text(".gitignore") {
            p.ignored = ignore
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from)
                .collect();
        }
        if has("Cargo.toml") {
            p.tools.push("cargo");
            p.tests.push(TestRunner::Cargo);
            p.checkers.push("clippy");
            if files.iter().any(|(f, _)| f.starts_with("benches/")) {
                p.benchmarks.push(Bench {
                    name: "cargo bench".into(),
                    command: "cargo bench".into(),
                });
            }
        }
        p.python(files, &text);
        p.node(&text, has("tsconfig.json"), files);
        if has("go.mod") {
            p.tools.push("go");
            p.tests.push(TestRunner::Go);
            p.checkers.push("go-vet");
        }
        if let Some(make) = text("Makefile") {
            p.tools.push("make");
            p.make_targets = make_targets(&make);
            let target = |t: &str| p.make_targets.iter().any(|x| x == t);
            if p.tests.is_empty() && (target("test") || target("check")) {
                p.tests.push(TestRunner::Make);
            }
            if let Some(b) = ["bench", "benchmark"].into_iter().find(|t| target(t)) {
                p.benchmarks.push(Bench {
                    name: format!("make {b}"),
                    command: format!("make -s {b}"),
                });
            }
        }
        if let Some(cmake) = text("CMakeLists.txt") {
            p.tools.push("cmake");
            if cmake.contains("add_test") || cmake.contains("enable_testing") {
                p.tests.push(TestRunner::Ctest);
            }
        }
        p
    }

    /// Languages by bytes, most first, and where each one's code lives.
    fn languages(&mut self, files: &[(String, u64)]) {
        let mut by: BTreeMap<&'static str, (usize, u64, Vec<&str>)> = BTreeMap::new();
        for (f, size) in files {
            if let Some(l) = language_of(f) {
                let e = by.entry(l).or_default();
                e.0 += 1;
                e.1 += size.max(&1);
                e.2.push(f);
            }
        }
        let total: u64 = by.values().map(|e| e.1).sum::<u64>().max(1);
        let mut langs: Vec<Language> = by
            .iter()
            .map(|(name, (n, bytes, _))| Language {
                name,
                files: *n,
                share: ((bytes * 100 + total / 2) / total) as u32,
            })
            .collect();
        langs.sort_by(|a, b| b.share.cmp(&a.share).then(a.name.cmp(b.name)));
        self.languages = langs;
        for (name, (_, _, list)) in by {
            let s = source_patterns(&list);
            if !s.is_empty() {
                self.sources.insert(name, s);
            }
        }
    }

    fn python(&mut self, files: &[(String, u64)], text: &impl Fn(&str) -> Option<String>) {
        let manifests = [
            "pyproject.toml",
            "setup.cfg",
            "setup.py",
            "pytest.ini",
            "tox.ini",
        ];
        let py_files: Vec<&str> = files
            .iter()
            .map(|(f, _)| f.as_str())
            .filter(|f| f.ends_with(".py"))
            .collect();
        let found: BTreeMap<&str, String> = manifests
            .iter()
            .filter_map(|m| text(m).map(|t| (*m, t)))
            .collect();
        if found.is_empty() && py_files.is_empty() {
            return;
        }
        self.tools.push("python");
        let get = |m: &str| found.get(m).map(String::as_str).unwrap_or("");
        let (pyproject, setup_cfg, tox) = (get("pyproject.toml"), get("setup.cfg"), get("tox.ini"));
        let pytest = found.contains_key("pytest.ini")
            || py_files.iter().any(|f| f.ends_with("conftest.py"))
            || has_section(pyproject, "[tool.pytest")
            || has_section(setup_cfg, "[tool:pytest]")
            || has_section(tox, "[pytest]");
        if pytest {
            self.tools.push("pytest");
            self.tests.push(TestRunner::Pytest);
        } else if py_files.iter().any(|f| is_test(f)) {
            self.tests.push(TestRunner::Unittest);
        }
        let any = |names: &[&str]| names.iter().any(|n| text(n).is_some());
        if any(&["ruff.toml", ".ruff.toml"]) || has_section(pyproject, "[tool.ruff") {
            self.checkers.push("ruff");
        }
        if any(&[".flake8"]) || has_section(setup_cfg, "[flake8]") || has_section(tox, "[flake8]") {
            self.checkers.push("flake8");
        }
        if any(&["mypy.ini", ".mypy.ini"])
            || has_section(pyproject, "[tool.mypy")
            || has_section(setup_cfg, "[mypy")
        {
            self.checkers.push("mypy");
        }
        if any(&["pyrightconfig.json"]) || has_section(pyproject, "[tool.pyright") {
            self.checkers.push("pyright");
        }
        for f in py_files.iter().filter(|f| is_bench(f) && !f.contains("/")) {
            self.benchmarks.push(Bench {
                name: (*f).to_string(),
                command: format!("python3 {f}"),
            });
        }
    }

    fn node(
        &mut self,
        text: &impl Fn(&str) -> Option<String>,
        tsconfig: bool,
        files: &[(String, u64)],
    ) {
        let Some(pkg) = text("package.json") else {
            return;
        };
        self.tools.push("npm");
        let json: serde_json::Value = serde_json::from_str(&pkg).unwrap_or_default();
        let scripts = json["scripts"].as_object().cloned().unwrap_or_default();
        self.scripts = scripts.keys().cloned().collect();
        let script = |k: &str| scripts.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let test = script("test");
        if test.contains("node --test") {
            self.tests.push(TestRunner::NodeTest);
        } else if test.contains("jest") {
            self.tests.push(TestRunner::Jest);
        } else if !test.is_empty() && !test.contains("no test specified") {
            self.tests.push(TestRunner::Npm);
        }
        for b in ["bench", "benchmark"] {
            if !script(b).is_empty() {
                self.benchmarks.push(Bench {
                    name: format!("npm run {b}"),
                    command: format!("npm run --silent {b}"),
                });
            }
        }
        let eslint = files.iter().any(|(f, _)| {
            !f.contains('/') && (f.starts_with("eslint.config.") || f.starts_with(".eslintrc"))
        }) || json.get("eslintConfig").is_some();
        if eslint {
            self.checkers.push("eslint");
        }
        if tsconfig {
            self.checkers.push("tsc");
        }
    }

    /// The profile of the repository at `root`: its tracked files (from the index).
    pub fn of_repo(repo: &git2::Repository, root: &Path) -> Profile {
        let files: Vec<(String, u64)> = repo
            .index()
            .map(|index| {
                index
                    .iter()
                    .map(|e| (crate::repopath::decode(&e.path), u64::from(e.file_size)))
                    .collect()
            })
            .unwrap_or_default();
        Profile::from_files(&files, |name| {
            let p = root.join(name);
            let small = std::fs::metadata(&p).is_ok_and(|m| m.len() <= MAX_READ);
            small.then(|| std::fs::read_to_string(&p).ok()).flatten()
        })
    }

    /// One line for people: `Rust 80%, Python 20%; cargo, make; 42 files`.
    pub fn summary(&self) -> String {
        let langs: Vec<String> = self
            .languages
            .iter()
            .take(3)
            .map(|l| format!("{} {}%", l.name, l.share))
            .collect();
        let mut parts = vec![if langs.is_empty() {
            "no recognized source".to_string()
        } else {
            langs.join(", ")
        }];
        if !self.tools.is_empty() {
            parts.push(self.tools.join(", "));
        }
        if !self.checkers.is_empty() {
            parts.push(format!("checks: {}", self.checkers.join(", ")));
        }
        parts.push(format!("{} tracked files", self.tracked_files));
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(files: &[(&str, &str)]) -> Profile {
        let list: Vec<(String, u64)> = files
            .iter()
            .map(|(f, t)| (f.to_string(), t.len() as u64))
            .collect();
        let map: BTreeMap<String, String> = files
            .iter()
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect();
        Profile::from_files(&list, |n| map.get(n).cloned())
    }

    #[test]
    fn a_rust_crate_with_benches() {
        let p = profile(&[
            ("Cargo.toml", "[package]\nname = \"x\"\n"),
            ("src/lib.rs", "pub fn f() {}\n"),
            ("tests/t.rs", "#[test] fn t() {}\n"),
            ("benches/b.rs", "fn main() {}\n"),
            (".gitignore", "# build\n/target\n\n"),
        ]);
        assert_eq!(p.tools, ["cargo"]);
        assert_eq!(p.tests, [TestRunner::Cargo]);
        assert_eq!(p.checkers, ["clippy"]);
        assert_eq!(p.benchmarks[0].command, "cargo bench");
        assert_eq!(p.sources["Rust"], ["src/**"]);
        assert_eq!(p.ignored, ["/target"]);
        assert_eq!(p.languages[0].name, "Rust");
        assert_eq!(p.languages[0].share, 100);
        assert_eq!(p.tracked_files, 5);
    }

    #[test]
    fn python_with_pytest_ruff_and_mypy_in_pyproject() {
        let p = profile(&[
            (
                "pyproject.toml",
                "[tool.pytest.ini_options]\n[tool.ruff]\n[tool.mypy]\n",
            ),
            ("calc/__init__.py", "x = 1\n"),
            ("tests/test_calc.py", "def test(): pass\n"),
            ("bench.py", "print(1)\n"),
        ]);
        assert_eq!(p.tools, ["python", "pytest"]);
        assert_eq!(p.tests, [TestRunner::Pytest]);
        assert_eq!(p.checkers, ["ruff", "mypy"]);
        assert_eq!(p.sources["Python"], ["calc/**"]);
        assert_eq!(p.benchmarks[0].command, "python3 bench.py");
    }

    #[test]
    fn python_without_pytest_uses_unittest_and_root_modules() {
        let p = profile(&[
            ("calc.py", "x = 1\n"),
            ("test_calc.py", "import unittest\n"),
            ("setup.cfg", "[flake8]\nmax-line-length = 99\n"),
        ]);
        assert_eq!(p.tests, [TestRunner::Unittest]);
        assert_eq!(p.checkers, ["flake8"]);
        assert_eq!(p.sources["Python"], ["calc.py"]);
    }

    #[test]
    fn node_scripts_eslint_and_tsc() {
        let p = profile(&[
            (
                "package.json",
                r#"{"scripts": {"test": "node --test", "bench": "node bench.js"}}"#,
            ),
            ("eslint.config.js", "export default [];\n"),
            ("tsconfig.json", "{}"),
            ("src/a.ts", "export const a = 1;\n"),
            ("src/a.test.ts", "test;\n"),
        ]);
        assert_eq!(p.tests, [TestRunner::NodeTest]);
        assert_eq!(p.scripts, ["bench", "test"]);
        assert_eq!(p.benchmarks[0].command, "npm run --silent bench");
        assert_eq!(p.checkers, ["eslint", "tsc"]);
        assert_eq!(p.sources["TypeScript"], ["src/**"]);
        let jest = profile(&[("package.json", r#"{"scripts": {"test": "jest --ci"}}"#)]);
        assert_eq!(jest.tests, [TestRunner::Jest]);
        let none = profile(&[(
            "package.json",
            r#"{"scripts": {"test": "echo \"Error: no test specified\" && exit 1"}}"#,
        )]);
        assert!(none.tests.is_empty());
    }

    #[test]
    fn go_makefile_and_cmake() {
        let p = profile(&[
            ("go.mod", "module x\n"),
            ("main.go", "package main\n"),
            (
                "Makefile",
                "CC := cc\n.PHONY: bench\nbench:\n\tgo test -bench .\nall: bench\n",
            ),
            (
                "CMakeLists.txt",
                "enable_testing()\nadd_test(NAME t COMMAND t)\n",
            ),
        ]);
        assert_eq!(p.tools, ["go", "make", "cmake"]);
        assert_eq!(p.tests, [TestRunner::Go, TestRunner::Ctest]);
        assert_eq!(p.make_targets, ["bench", "all"]);
        assert_eq!(p.benchmarks[0].command, "make -s bench");
        assert!(
            p.summary()
                .starts_with("Go 100%; go, make, cmake; checks: go-vet")
        );
    }

    #[test]
    fn shares_are_by_bytes() {
        let p = profile(&[("a.py", &"x".repeat(300)), ("b.js", &"y".repeat(100))]);
        assert_eq!(
            p.languages
                .iter()
                .map(|l| (l.name, l.share))
                .collect::<Vec<_>>(),
            [("Python", 75), ("JavaScript", 25)]
        );
    }
}
