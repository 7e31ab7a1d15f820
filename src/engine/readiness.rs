//! Ship mode's readiness checklist (pure): the project type from the files at the root, the
//! items of each type, the ship command and its dry-run form, and the rules of the engine's own
//! checks (version order, changelog headings, markers added since the last tag).

use super::checklist::{EngineCheck, Item};
use crate::config::ShipType;

/// The project type from the names at the repository root (`auto`).
pub fn detect(has: impl Fn(&str) -> bool) -> ShipType {
    if has("Cargo.toml") {
        ShipType::RustCrate
    } else if has("pyproject.toml") || has("setup.py") {
        ShipType::PythonPackage
    } else if has("package.json") {
        ShipType::NpmPackage
    } else {
        ShipType::Generic
    }
}

/// The readiness items of a type: a clean tree and the guard for every type, then the type's
/// tools and the engine's release checks, then the `[[ship.check]]` entries.
pub fn items(ty: ShipType, guard: Option<&str>, custom: &[Item]) -> Vec<Item> {
    let mut out = vec![Item::engine("clean tree", EngineCheck::CleanTree)];
    if let Some(g) = guard {
        out.push(Item::command("guard", g));
    }
    let tools: &[(&str, &str)] = match ty {
        ShipType::RustCrate => &[
            ("formatter", "cargo fmt --check"),
            (
                "linter",
                "cargo clippy --offline --all-targets -- -D warnings",
            ),
            ("build", "cargo build --offline"),
            (
                "package dry run",
                "cargo package --offline --no-verify --allow-dirty",
            ),
        ],
        ShipType::PythonPackage => &[
            ("formatter", "ruff format --check ."),
            ("linter", "ruff check ."),
            (
                "build",
                "rm -rf dist && python3 -m build --no-isolation --outdir dist .",
            ),
            ("package metadata", "python3 -m twine check dist/*"),
        ],
        ShipType::NpmPackage => &[
            ("formatter", "npx --no-install prettier --check ."),
            ("linter", "npm run --if-present lint"),
            ("build", "npm run --if-present build"),
            ("package dry run", "npm pack --dry-run"),
        ],
        ShipType::Generic | ShipType::Auto => &[],
    };
    out.extend(tools.iter().map(|(n, c)| Item::command(n, c)));
    if !matches!(ty, ShipType::Generic | ShipType::Auto) {
        out.push(Item::engine("version bumped", EngineCheck::VersionBumped));
        out.push(Item::engine("changelog entry", EngineCheck::Changelog));
        out.push(Item::engine("no new TODO/FIXME", EngineCheck::NoNewMarkers));
        out.push(Item::engine(
            "license and README",
            EngineCheck::LicenseReadme,
        ));
    }
    out.extend(custom.iter().cloned());
    out
}

/// The type's own ship command.
pub fn ship_command(ty: ShipType) -> Option<&'static str> {
    match ty {
        ShipType::RustCrate => Some("cargo publish"),
        ShipType::PythonPackage => Some("python3 -m twine upload dist/*"),
        ShipType::NpmPackage => Some("npm publish"),
        ShipType::Generic | ShipType::Auto => None,
    }
}

/// The dry-run form of the type's ship command, when it has one.
pub fn dry_run_command(ty: ShipType) -> Option<&'static str> {
    match ty {
        ShipType::RustCrate => Some("cargo publish --dry-run"),
        ShipType::PythonPackage => Some("python3 -m twine check dist/*"),
        ShipType::NpmPackage => Some("npm publish --dry-run"),
        ShipType::Generic | ShipType::Auto => None,
    }
}

/// The manifest that holds a type's version.
pub fn manifest(ty: ShipType) -> Option<&'static str> {
    match ty {
        ShipType::RustCrate => Some("Cargo.toml"),
        ShipType::PythonPackage => Some("pyproject.toml"),
        ShipType::NpmPackage => Some("package.json"),
        ShipType::Generic | ShipType::Auto => None,
    }
}

fn numbers(v: &str) -> Option<Vec<u64>> {
    let core = v.trim().trim_start_matches('v');
    let core = core.split(['-', '+']).next()?;
    core.split('.').map(|p| p.parse().ok()).collect()
}

/// True when `new` is a later version than `old`: numeric parts compared in order; with equal
/// numbers, only a different version after a pre-release of `old` (`1.0.0-rc1` to `1.0.0` or
/// `-rc2`); versions that are not numbers only need to differ.
pub fn bumped(new: &str, old: &str) -> bool {
    let (new, old) = (
        new.trim().trim_start_matches('v'),
        old.trim().trim_start_matches('v'),
    );
    match (numbers(new), numbers(old)) {
        (Some(a), Some(b)) if a == b => old.contains('-') && new != old,
        (Some(a), Some(b)) => a > b,
        _ => new != old,
    }
}

/// True when a markdown heading of `changelog` names `version` (`## 1.2.0`, `## [1.2.0] - ...`).
pub fn changelog_has(changelog: &str, version: &str) -> bool {
    let v = version.trim();
    !v.is_empty()
        && changelog.lines().any(|l| {
            l.trim_start().starts_with('#')
                && l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
                    .any(|w| w.trim_start_matches('v') == v)
        })
}

/// What an added line carries that a release should not: a TODO or FIXME marker, or a debug
/// print of the type's language.
pub fn marker(line: &str, ty: ShipType) -> Option<&'static str> {
    const ALL: &[&str] = &["TODO", "FIXME"];
    let debug: &[&str] = match ty {
        ShipType::RustCrate => &["dbg!("],
        ShipType::PythonPackage => &["breakpoint()", "pdb.set_trace("],
        ShipType::NpmPackage => &["console.log(", "debugger;"],
        ShipType::Generic | ShipType::Auto => &[],
    };
    ALL.iter().chain(debug).copied().find(|m| line.contains(m))
}

/// Files whose added lines are not scanned for markers (documentation and the changelog).
pub fn skip_for_markers(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    [".md", ".txt", ".rst", ".adoc"]
        .iter()
        .any(|e| lower.ends_with(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_comes_from_the_manifest_at_the_root() {
        assert_eq!(detect(|n| n == "Cargo.toml"), ShipType::RustCrate);
        assert_eq!(detect(|n| n == "setup.py"), ShipType::PythonPackage);
        assert_eq!(detect(|n| n == "package.json"), ShipType::NpmPackage);
        assert_eq!(detect(|_| false), ShipType::Generic);
    }

    #[test]
    fn generic_has_only_a_clean_tree_the_guard_and_custom_checks() {
        let custom = [Item::command("docs", "make docs")];
        let names = |v: Vec<Item>| v.into_iter().map(|i| i.name).collect::<Vec<_>>();
        assert_eq!(
            names(items(ShipType::Generic, Some("make test"), &custom)),
            ["clean tree", "guard", "docs"]
        );
        assert_eq!(names(items(ShipType::Generic, None, &[])), ["clean tree"]);
        let rust = names(items(ShipType::RustCrate, None, &[]));
        assert_eq!(rust.len(), 9);
        assert!(rust.contains(&"changelog entry".to_string()));
        assert_eq!(ship_command(ShipType::Generic), None);
        assert_eq!(
            dry_run_command(ShipType::RustCrate),
            Some("cargo publish --dry-run")
        );
    }

    #[test]
    fn versions_compare_by_their_numbers() {
        assert!(bumped("0.2.0", "0.1.9"));
        assert!(bumped("0.10.0", "v0.9.0"));
        assert!(!bumped("0.1.0", "v0.1.0"));
        assert!(!bumped("0.1.0", "0.2.0"));
        assert!(bumped("1.0.0", "1.0.0-rc1"));
        assert!(bumped("1.0.0-rc2", "1.0.0-rc1"));
        assert!(!bumped("1.0.0-rc1", "1.0.0"));
        assert!(bumped("next", "prev"));
    }

    #[test]
    fn changelog_headings_name_the_version() {
        let log = "# Changelog\n\n## [0.2.0] - 2026-01-01\n- 0.3.0 mentioned in text\n## v0.1.0\n";
        assert!(changelog_has(log, "0.2.0"));
        assert!(changelog_has(log, "0.1.0"));
        assert!(!changelog_has(log, "0.3.0"));
        assert!(!changelog_has(log, "0.2"));
    }

    #[test]
    fn markers_are_todo_fixme_and_the_language_debug_prints() {
        assert_eq!(marker("// TODO later", ShipType::Generic), Some("TODO"));
        assert_eq!(marker("dbg!(x);", ShipType::RustCrate), Some("dbg!("));
        assert_eq!(marker("dbg!(x);", ShipType::NpmPackage), None);
        assert_eq!(
            marker("console.log(1)", ShipType::NpmPackage),
            Some("console.log(")
        );
        assert_eq!(marker("let x = 1;", ShipType::RustCrate), None);
        assert!(skip_for_markers("CHANGELOG.md") && !skip_for_markers("src/lib.rs"));
    }
}
