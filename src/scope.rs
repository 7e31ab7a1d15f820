//! Path sets for `--scope` and `--protect`: anchored, gitignore-like globs over repo-relative paths.
//!
//! `*` and `?` never cross `/`; `**` spans directories; a pattern without glob characters (or
//! ending in `/`) names a file or a whole directory. Patterns are anchored at the repository root:
//! `*.py` is a root-level file, `**/*.py` is any depth.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// A compiled set of path patterns.
#[derive(Clone, Debug)]
pub struct PathSet {
    patterns: Vec<String>,
    globs: GlobSet,
    prefixes: Vec<String>,
}

/// Splits user input on commas that are not inside `{...}` alternations; trims; drops empties.
pub fn split_patterns(values: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for value in values {
        let mut depth = 0usize;
        let mut cur = String::new();
        for ch in value.chars() {
            match ch {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            if ch == ',' && depth == 0 {
                out.push(std::mem::take(&mut cur));
            } else {
                cur.push(ch);
            }
        }
        out.push(cur);
    }
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn normalize(pattern: &str) -> String {
    // `\` escapes a glob character (`foo\*.rs`); paths use `/`.
    let mut p = pattern.trim().to_string();
    while let Some(rest) = p.strip_prefix("./") {
        p = rest.to_string();
    }
    p
}

fn has_glob(p: &str) -> bool {
    p.contains(['*', '?', '[', '{'])
}

impl PathSet {
    /// Compiles `patterns` (already split). Errors name the offending pattern.
    pub fn new(patterns: &[String]) -> Result<PathSet, String> {
        let mut builder = GlobSetBuilder::new();
        let mut prefixes = Vec::new();
        let mut kept = Vec::new();
        for raw in patterns {
            let p = normalize(raw);
            if p.is_empty() || p == "." {
                kept.push(raw.clone());
                builder.add(
                    GlobBuilder::new("**")
                        .literal_separator(true)
                        .build()
                        .map_err(|e| e.to_string())?,
                );
                continue;
            }
            if p.starts_with('/') {
                return Err(format!(
                    "`{raw}` is absolute; patterns are relative to the repository root"
                ));
            }
            if p.split('/').any(|c| c == "..") {
                return Err(format!("`{raw}` points outside the repository"));
            }
            kept.push(raw.clone());
            if !has_glob(&p) {
                prefixes.push(p.trim_end_matches('/').to_string());
                continue;
            }
            let glob = GlobBuilder::new(&p)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!("`{raw}` is not a valid glob: {}", e.kind()))?;
            builder.add(glob);
            if let Some(dir) = p.strip_suffix("/**")
                && !has_glob(dir)
            {
                prefixes.push(dir.to_string());
            }
        }
        let globs = builder.build().map_err(|e| e.to_string())?;
        Ok(PathSet {
            patterns: kept,
            globs,
            prefixes,
        })
    }

    /// Returns an empty set (matches nothing).
    pub fn empty() -> PathSet {
        PathSet {
            patterns: Vec::new(),
            globs: GlobSet::empty(),
            prefixes: Vec::new(),
        }
    }

    /// Returns true when the repo-relative `path` (with `/` separators, in the string form of
    /// [`crate::repopath`]) is in the set. Matching is on the name's real bytes, as git's own
    /// pathspecs do: `src/**` and `src/caf?.txt` both match a file `src/caf\xe9.txt`.
    pub fn matches(&self, path: &str) -> bool {
        let path = path.trim_start_matches("./");
        let bytes = crate::repopath::encode(path);
        self.prefixes.iter().any(|p| {
            let p = p.as_bytes();
            bytes.as_ref() == p
                || (bytes.len() > p.len() && bytes.starts_with(p) && bytes[p.len()] == b'/')
        }) || self.globs.is_match(crate::repopath::as_path(path))
    }

    /// Returns true when no pattern was given.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backslash_escapes_a_glob_character() {
        let set = PathSet::new(&["out\\*.log".to_string()]).unwrap();
        assert!(set.matches("out*.log"));
        assert!(!set.matches("outx.log"));
    }

    fn set(p: &[&str]) -> PathSet {
        PathSet::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn globs_are_anchored_at_the_root() {
        let s = set(&["src/*.py"]);
        assert!(s.matches("src/a.py"));
        assert!(!s.matches("vendor/src/a.py"));
        assert!(!s.matches("src/sub/a.py"));
        let root = set(&["*.py"]);
        assert!(root.matches("a.py"));
        assert!(!root.matches("src/a.py"));
        let deep = set(&["**/*.py"]);
        assert!(deep.matches("a.py") && deep.matches("src/x/a.py"));
    }

    #[test]
    fn directories_and_double_star() {
        let s = set(&["src"]);
        assert!(s.matches("src/a/b.py") && s.matches("src"));
        assert!(!s.matches("srcs/a.py"));
        let t = set(&["src/**"]);
        assert!(t.matches("src/a/b.py") && t.matches("src/.hidden/x"));
        assert!(!t.matches("github/x"));
        let u = set(&["docs/"]);
        assert!(u.matches("docs/x.md") && !u.matches("docs2/x.md"));
        let gh = set(&[".github/**"]);
        assert!(gh.matches(".github/workflows/ci.yml") && !gh.matches("github/x"));
    }

    #[test]
    fn exact_files_and_dot_slash() {
        let s = set(&[".env", "./lib/x.rs"]);
        assert!(s.matches(".env") && !s.matches("a/.env") && !s.matches(".envrc"));
        assert!(s.matches("lib/x.rs"));
    }

    #[test]
    fn splitting_respects_braces() {
        let v = split_patterns(&["src/**/*.{rs,toml}, tests/**".into(), "a,,b".into()]);
        assert_eq!(v, vec!["src/**/*.{rs,toml}", "tests/**", "a", "b"]);
        let s = PathSet::new(&v).unwrap();
        assert!(s.matches("src/x/y.toml") && s.matches("tests/t.rs") && !s.matches("src/x/y.md"));
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(
            PathSet::new(&["../x".into()])
                .unwrap_err()
                .contains("outside")
        );
        assert!(
            PathSet::new(&["/etc/*".into()])
                .unwrap_err()
                .contains("absolute")
        );
        assert!(
            PathSet::new(&["src/[".into()])
                .unwrap_err()
                .contains("not a valid glob")
        );
    }

    #[test]
    fn names_that_are_not_utf8_match_by_their_bytes() {
        let name = crate::repopath::decode(b"src/caf\xe9.txt");
        assert!(set(&["src/**"]).matches(&name));
        assert!(set(&["src"]).matches(&name));
        assert!(set(&["src/*.txt"]).matches(&name));
        assert!(set(&["src/caf?.txt"]).matches(&name), "`?` is one byte");
        assert!(!set(&["docs/**"]).matches(&name));
        let dir = crate::repopath::decode(b"d\xff/x");
        assert!(set(&["d?/x"]).matches(&dir) && !set(&["d"]).matches(&dir));
    }

    #[test]
    fn dot_means_everything() {
        let s = set(&["."]);
        assert!(s.matches("a") && s.matches("x/y/z"));
    }
}
