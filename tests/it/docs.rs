//! The README's install facts against the build: the minimum Rust version is the one the locked
//! dependencies need (and Cargo.toml says the same), installs are `--locked`, and the quickstart
//! does not build in silence.

use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{ROOT}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn version(v: &str) -> Vec<u32> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

/// The highest `rust-version` of the locked packages built for this host, with its package.
fn locked_minimum() -> (Vec<u32>, String) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let host = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    let host = String::from_utf8_lossy(&host.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("host triple");
    let out = Command::new(cargo)
        .args(["metadata", "--locked", "--offline", "--format-version", "1"])
        .args(["--filter-platform", &host, "--manifest-path"])
        .arg(format!("{ROOT}/Cargo.toml"))
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] != "codex-autoresearch")
        .filter_map(|p| {
            let v = p["rust_version"].as_str()?;
            Some((
                version(v),
                format!("{} {}", p["name"].as_str()?, p["version"].as_str()?),
            ))
        })
        .max()
        .expect("some package declares a rust-version")
}

#[test]
fn the_minimum_rust_version_is_what_the_locked_dependencies_need() {
    let (need, by) = locked_minimum();
    let manifest = read("Cargo.toml");
    let declared = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("rust-version in Cargo.toml")
        .trim_matches('"');
    assert_eq!(version(declared), need, "Cargo.toml rust-version vs {by}");
    let readme = read("README.md")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        readme.contains(&format!("Rust {declared} or newer")),
        "README must say Rust {declared} or newer"
    );
    assert!(readme.contains("cargo install --locked --path ."));
    assert!(!readme.contains("cargo install --path"));
}

#[test]
fn the_quickstart_build_shows_progress() {
    let script = read("examples/quickstart/run.sh");
    let build = script
        .lines()
        .find(|l| l.contains("cargo build"))
        .expect("the quickstart builds");
    assert!(
        !build.contains("--quiet") && !build.contains(" -q"),
        "{build}"
    );
    assert!(build.contains("--locked"), "{build}");
    assert!(script.contains("takes a couple of minutes"));
}

/// Every long flag of every subcommand appears in GUIDE.md (as `--flag`), so a new flag cannot
/// ship undocumented.
#[test]
fn every_flag_is_documented_in_the_guide() {
    use clap::CommandFactory;
    let guide = read("GUIDE.md");
    let mut missing = Vec::new();
    let cli = codex_autoresearch::cli::Cli::command();
    let mut stack = vec![cli];
    while let Some(cmd) = stack.pop() {
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                let flag = format!("--{long}");
                if !["--help", "--version"].contains(&flag.as_str()) && !guide.contains(&flag) {
                    missing.push(format!("{} {flag}", cmd.get_name()));
                }
            }
        }
        stack.extend(cmd.get_subcommands().cloned());
    }
    assert!(missing.is_empty(), "flags not in GUIDE.md: {missing:?}");
}
