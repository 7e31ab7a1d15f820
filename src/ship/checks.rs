//! The checks ship mode's engine makes itself, on the work tree and git: a clean tree, the
//! version bumped since the last tag, its changelog entry, no TODO/FIXME/debug print added since
//! the last tag, a license and a README. Each gives pass/fail and an explanation.

use std::path::Path;

use git2::{DescribeFormatOptions, DescribeOptions, Repository, StatusOptions};

use crate::config::ShipType;
use crate::engine::checklist::EngineCheck;
use crate::engine::readiness;

/// Runs one engine check; returns whether it passes and what it found.
pub fn run(repo: &Repository, root: &Path, ty: ShipType, check: EngineCheck) -> (bool, String) {
    match check {
        EngineCheck::CleanTree => clean_tree(repo),
        EngineCheck::VersionBumped => version_bumped(repo, root, ty),
        EngineCheck::Changelog => changelog(root, ty),
        EngineCheck::NoNewMarkers => no_new_markers(repo, ty),
        EngineCheck::LicenseReadme => license_readme(root),
    }
}

fn clean_tree(repo: &Repository) -> (bool, String) {
    let mut opts = StatusOptions::new();
    opts.include_untracked(false).include_ignored(false);
    match repo.statuses(Some(&mut opts)) {
        Ok(st) => {
            let dirty: Vec<String> = st
                .iter()
                .filter(|e| !e.status().is_empty())
                .map(|e| crate::repopath::decode(e.path_bytes()))
                .collect();
            if dirty.is_empty() {
                (true, "no tracked file differs from HEAD".into())
            } else {
                (
                    false,
                    format!(
                        "tracked files differ from HEAD: {}",
                        crate::engine::list_paths(&dirty)
                    ),
                )
            }
        }
        Err(e) => (false, format!("cannot read the status: {}", e.message())),
    }
}

/// The last tag reachable from HEAD and its commit.
fn last_tag(repo: &Repository) -> Option<(String, git2::Commit<'_>)> {
    let d = repo.describe(DescribeOptions::new().describe_tags()).ok()?;
    let name = d
        .format(Some(DescribeFormatOptions::new().abbreviated_size(0)))
        .ok()?;
    let commit = repo.revparse_single(&name).ok()?.peel_to_commit().ok()?;
    Some((name, commit))
}

/// The version a manifest's text declares.
fn version_of(ty: ShipType, text: &str) -> Option<String> {
    match ty {
        ShipType::NpmPackage => serde_json::from_str::<serde_json::Value>(text)
            .ok()?
            .get("version")?
            .as_str()
            .map(str::to_string),
        ShipType::RustCrate | ShipType::PythonPackage => {
            let t: toml::Table = toml::from_str(text).ok()?;
            let section = if ty == ShipType::RustCrate {
                "package"
            } else {
                "project"
            };
            let from =
                |table: Option<&toml::Value>| table?.get("version")?.as_str().map(str::to_string);
            from(t.get(section)).or_else(|| from(t.get("tool").and_then(|tool| tool.get("poetry"))))
        }
        ShipType::Generic | ShipType::Auto => None,
    }
}

/// The version in the work tree's manifest, or why there is none.
fn current_version(root: &Path, ty: ShipType) -> Result<String, String> {
    let Some(manifest) = readiness::manifest(ty) else {
        return Err("this project type has no version".into());
    };
    let path = root.join(manifest);
    if ty == ShipType::PythonPackage && !path.exists() {
        // A setup.py-only project: its version is code the engine does not run.
        return Err(
            "no pyproject.toml: the engine reads the version from its [project] (or [tool.poetry]) table; add one with the version, or ship with --ship-type generic and [[ship.check]] entries"
                .into(),
        );
    }
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read {manifest}: {e}"))?;
    version_of(ty, &text).ok_or_else(|| format!("{manifest} declares no version"))
}

fn version_bumped(repo: &Repository, root: &Path, ty: ShipType) -> (bool, String) {
    let now = match current_version(root, ty) {
        Ok(v) => v,
        Err(e) => return (false, e),
    };
    let Some((tag, commit)) = last_tag(repo) else {
        return (true, format!("version {now}; no earlier tag"));
    };
    let at_tag = readiness::manifest(ty)
        .and_then(|m| commit.tree().ok()?.get_path(Path::new(m)).ok())
        .and_then(|e| e.to_object(repo).ok()?.peel_to_blob().ok())
        .and_then(|b| version_of(ty, &String::from_utf8_lossy(b.content())));
    let before = at_tag.unwrap_or_else(|| tag.trim_start_matches('v').to_string());
    if readiness::bumped(&now, &before) {
        (true, format!("version {now} > {before} (tag {tag})"))
    } else {
        (
            false,
            format!(
                "version {now} is not above {before}, the version at the last tag {tag}: bump it in {}",
                readiness::manifest(ty).unwrap_or("the manifest")
            ),
        )
    }
}

const CHANGELOGS: &[&str] = &[
    "CHANGELOG.md",
    "CHANGELOG",
    "CHANGELOG.rst",
    "CHANGES.md",
    "HISTORY.md",
    "NEWS.md",
];

fn changelog(root: &Path, ty: ShipType) -> (bool, String) {
    let version = match current_version(root, ty) {
        Ok(v) => v,
        Err(e) => return (false, e),
    };
    let Some((name, text)) = CHANGELOGS
        .iter()
        .find_map(|n| Some((*n, std::fs::read_to_string(root.join(n)).ok()?)))
    else {
        return (
            false,
            format!("no changelog (CHANGELOG.md) with an entry for {version}"),
        );
    };
    if readiness::changelog_has(&text, &version) {
        (true, format!("{name} has an entry for {version}"))
    } else {
        (
            false,
            format!(
                "{name} has no heading for {version} (add e.g. `## {version}` with the changes)"
            ),
        )
    }
}

fn no_new_markers(repo: &Repository, ty: ShipType) -> (bool, String) {
    let old = last_tag(repo).and_then(|(_, c)| c.tree().ok());
    let mut opts = git2::DiffOptions::new();
    opts.context_lines(0);
    let diff = match repo.diff_tree_to_workdir_with_index(old.as_ref(), Some(&mut opts)) {
        Ok(d) => d,
        Err(e) => return (false, format!("cannot diff: {}", e.message())),
    };
    let mut found = Vec::new();
    let _ = diff.foreach(
        &mut |_, _| true,
        None,
        None,
        Some(&mut |delta, _, line| {
            let path = delta
                .new_file()
                .path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if line.origin() == '+' && !readiness::skip_for_markers(&path) {
                let text = String::from_utf8_lossy(line.content());
                if let Some(m) = readiness::marker(&text, ty) {
                    found.push(format!(
                        "{path}:{}: {m}: {}",
                        line.new_lineno().unwrap_or(0),
                        text.trim()
                    ));
                }
            }
            found.len() < 20
        }),
    );
    let since = if old.is_some() {
        "since the last tag"
    } else {
        "(no tag: the whole tree)"
    };
    if found.is_empty() {
        (true, format!("no TODO, FIXME or debug print added {since}"))
    } else {
        (false, format!("added {since}:\n{}", found.join("\n")))
    }
}

fn license_readme(root: &Path) -> (bool, String) {
    let names: Vec<String> = std::fs::read_dir(root)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().to_ascii_uppercase())
                .collect()
        })
        .unwrap_or_default();
    let has = |prefixes: &[&str]| {
        names
            .iter()
            .any(|n| prefixes.iter().any(|p| n.starts_with(p)))
    };
    let license = has(&["LICENSE", "LICENCE", "COPYING"]);
    let readme = has(&["README"]);
    match (license, readme) {
        (true, true) => (true, "LICENSE and README present".into()),
        (l, r) => {
            let missing: Vec<&str> = [(!l).then_some("a LICENSE file"), (!r).then_some("a README")]
                .into_iter()
                .flatten()
                .collect();
            (
                false,
                format!("missing at the root: {}", missing.join(" and ")),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit_all(repo: &Repository, msg: &str) -> git2::Oid {
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        repo.commit(Some("HEAD"), &sig, &sig, msg, &tree, &parents)
            .unwrap()
    }

    #[test]
    fn a_setup_py_project_is_told_where_the_version_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = Repository::init(root).unwrap();
        std::fs::write(root.join("setup.py"), "setup(version=about['v'])\n").unwrap();
        commit_all(&repo, "first");
        let ty = ShipType::PythonPackage;
        for check in [EngineCheck::VersionBumped, EngineCheck::Changelog] {
            let (ok, why) = run(&repo, root, ty, check);
            assert!(!ok, "{why}");
            assert!(why.starts_with("no pyproject.toml:"), "{why}");
            assert!(why.contains("--ship-type generic"), "{why}");
        }
    }

    #[test]
    fn release_checks_compare_with_the_last_tag() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = Repository::init(root).unwrap();
        let toml = |v: &str| format!("[package]\nname = \"x\"\nversion = \"{v}\"\n");
        std::fs::write(root.join("Cargo.toml"), toml("0.1.0")).unwrap();
        std::fs::write(root.join("lib.rs"), "// TODO: old, before the tag\n").unwrap();
        let first = commit_all(&repo, "first");
        let ty = ShipType::RustCrate;
        // No tag yet: any version is a bump, and every line counts as added.
        assert!(run(&repo, root, ty, EngineCheck::VersionBumped).0);
        let (ok, why) = run(&repo, root, ty, EngineCheck::NoNewMarkers);
        assert!(!ok && why.contains("lib.rs:1: TODO"), "{why}");
        let obj = repo.find_object(first, None).unwrap();
        repo.tag_lightweight("v0.1.0", &obj, false).unwrap();
        let (ok, why) = run(&repo, root, ty, EngineCheck::VersionBumped);
        assert!(!ok && why.contains("not above 0.1.0"), "{why}");
        assert!(run(&repo, root, ty, EngineCheck::NoNewMarkers).0);
        std::fs::write(
            root.join("lib.rs"),
            "// TODO: old, before the tag\nfn f() { dbg!(1); }\n",
        )
        .unwrap();
        std::fs::write(root.join("Cargo.toml"), toml("0.2.0")).unwrap();
        let (ok, why) = run(&repo, root, ty, EngineCheck::NoNewMarkers);
        assert!(!ok && why.contains("lib.rs:2: dbg!("), "{why}");
        assert!(run(&repo, root, ty, EngineCheck::VersionBumped).0);
        let (ok, why) = run(&repo, root, ty, EngineCheck::CleanTree);
        assert!(!ok && why.contains("Cargo.toml"), "{why}");
        let (ok, why) = run(&repo, root, ty, EngineCheck::Changelog);
        assert!(!ok && why.contains("no changelog"), "{why}");
        std::fs::write(root.join("CHANGELOG.md"), "# Changes\n\n## [0.2.0]\n").unwrap();
        assert!(run(&repo, root, ty, EngineCheck::Changelog).0);
        let (ok, why) = run(&repo, root, ty, EngineCheck::LicenseReadme);
        assert!(!ok && why.contains("a LICENSE file and a README"), "{why}");
        std::fs::write(root.join("LICENSE-MIT"), "MIT\n").unwrap();
        std::fs::write(root.join("readme.md"), "x\n").unwrap();
        assert!(run(&repo, root, ty, EngineCheck::LicenseReadme).0);
    }
}
