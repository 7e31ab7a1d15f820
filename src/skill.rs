//! The `$codex-autoresearch` skill for Codex: its files (embedded in the binary), where Codex
//! looks for them, and the `skill install` and `skill show` commands.
//!
//! Codex 0.169 reads skills from `.agents/skills/<name>/` in every directory from the project
//! root (the nearest ancestor holding `.git`) down to its working directory, and from
//! `$HOME/.agents/skills/<name>/`; a skill is a `SKILL.md` with `name` and `description` front
//! matter plus optional `agents/openai.yaml` (`policy.allow_implicit_invocation`).

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::error::{Error, IoContext, Result};
use crate::git::Repo;
use crate::output::Output;

/// The skill's name: its directory and `$` mention.
pub const NAME: &str = "codex-autoresearch";
/// The skill's instructions, as this binary carries them.
pub const SKILL_MD: &str = include_str!("../SKILL.md");
/// The skill's Codex metadata (invocation policy, display name).
pub const OPENAI_YAML: &str = include_str!("../agents/openai.yaml");
/// The files of the skill, by path inside its directory.
pub const FILES: [(&str, &str); 2] = [("SKILL.md", SKILL_MD), ("agents/openai.yaml", OPENAI_YAML)];

/// `skill` subcommands.
#[derive(Args, Debug)]
pub struct SkillArgs {
    #[command(subcommand)]
    pub command: SkillCommand,
}

/// What to do with the skill.
#[derive(Subcommand, Debug)]
pub enum SkillCommand {
    /// Write the skill where Codex finds it (default: this repository's .agents/skills/).
    Install(InstallArgs),
    /// Print the skill's SKILL.md, and say where installed copies are.
    Show(ShowArgs),
}

/// `skill install` flags.
#[derive(Args, Debug)]
pub struct InstallArgs {
    /// Install into <repo>/.agents/skills/ (the default; DIR: a directory inside the repository).
    #[arg(long, value_name = "DIR", num_args = 0..=1, conflicts_with = "user")]
    pub repo: Option<Option<PathBuf>>,
    /// Install into ~/.agents/skills/ (every repository of this user).
    #[arg(long)]
    pub user: bool,
    /// Overwrite an installed copy that differs from this binary's.
    #[arg(long)]
    pub force: bool,
}

/// `skill show` flags.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Repository whose installed copy to report (default: the one of the current directory).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
}

/// Runs a `skill` subcommand; returns the exit code.
pub fn command(args: SkillArgs, out: &Output) -> Result<u8> {
    match args.command {
        SkillCommand::Install(a) => {
            let repo = match (&a.repo, a.user) {
                (_, true) => None,
                (Some(Some(d)), false) => {
                    Some(discover(&std::path::absolute(d).ctx("resolve", d)?)?)
                }
                (_, false) => Some(discover(&crate::config::start_dir(None)?)?),
            };
            let dir = match &repo {
                Some(r) => skill_dir(&r.root),
                None => user_dir()?,
            };
            println!("{}", install(&dir, a.force)?);
            if let Some(line) = repo.as_ref().map(exclude).transpose()?.flatten() {
                println!("{line}");
            }
            Ok(crate::error::exit::OK)
        }
        SkillCommand::Show(a) => {
            print!("{SKILL_MD}");
            for line in installed_copies(a.repo.as_deref()) {
                out.note(&line);
            }
            Ok(crate::error::exit::OK)
        }
    }
}

/// The repository containing `start`.
fn discover(start: &Path) -> Result<Repo> {
    Repo::discover(start).map_err(|_| {
        Error::Refused(format!(
            "{} is not inside a git repository with a working tree; run this inside one, or pass --user to install for every repository",
            start.display()
        ))
    })
}

/// The skill's directory in the repository containing `start`.
pub fn repo_dir(start: &Path) -> Result<PathBuf> {
    Ok(skill_dir(&discover(start)?.root))
}

/// Hides the skill installed in `repo` with a root-anchored `.git/info/exclude` entry, so a
/// run's scope finds no untracked file there; returns the line to print, or `None` when its
/// files are tracked (committed: nothing to hide).
fn exclude(repo: &Repo) -> Result<Option<String>> {
    let rel = format!(".agents/skills/{NAME}");
    if FILES
        .iter()
        .any(|(f, _)| repo.is_tracked(&format!("{rel}/{f}")))
    {
        return Ok(None);
    }
    repo.add_excludes(&[format!("/{rel}/")])?;
    Ok(Some(format!(
        "hidden from git by `/{rel}/` in .git/info/exclude (runs see no untracked file there); commit it with `git add -f` to share it"
    )))
}

/// The skill's directory for this user: `$HOME/.agents/skills/codex-autoresearch`.
pub fn user_dir() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| skill_dir(Path::new(&h)))
        .ok_or_else(|| {
            Error::Usage("HOME is not set; set it, or install into a repository with --repo".into())
        })
}

fn skill_dir(base: &Path) -> PathBuf {
    base.join(".agents/skills").join(NAME)
}

/// How an installed copy compares with this binary's files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Copy {
    /// No file of the skill is there.
    Absent,
    /// Every file is there, byte for byte.
    Same,
    /// Some files are missing, none differs.
    Incomplete,
    /// These files differ (or cannot be read).
    Differs(Vec<PathBuf>),
}

/// Compares the copy in `dir` with this binary's files.
pub fn compare(dir: &Path) -> Copy {
    let mut missing = 0;
    let mut differs = Vec::new();
    for (rel, content) in FILES {
        let p = dir.join(rel);
        match fs::read(&p) {
            Ok(bytes) if bytes == content.as_bytes() => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing += 1,
            _ => differs.push(p),
        }
    }
    match (differs.is_empty(), missing) {
        (false, _) => Copy::Differs(differs),
        (true, 0) => Copy::Same,
        (true, m) if m == FILES.len() => Copy::Absent,
        (true, _) => Copy::Incomplete,
    }
}

/// Writes the skill into `dir`; a copy that differs is only replaced with `force`. Returns the
/// line to print. Other files in `dir` are left alone.
pub fn install(dir: &Path, force: bool) -> Result<String> {
    let was = compare(dir);
    match &was {
        Copy::Same => return Ok(format!("already installed: {}", dir.display())),
        Copy::Differs(files) if !force => {
            let files: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
            return Err(Error::Refused(format!(
                "{} differs from the skill this binary carries; pass --force to overwrite it",
                crate::engine::list_paths(&files)
            )));
        }
        _ => {}
    }
    for (rel, content) in FILES {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).ctx("create the directory", parent)?;
        }
        crate::fsutil::write_atomic(&p, content.as_bytes())?;
        // Readable by all, as any checked-out file (the temporary file was 0600).
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).ctx("set the mode of", &p)?;
    }
    let verb = if matches!(was, Copy::Differs(_)) {
        "replaced"
    } else {
        "installed"
    };
    Ok(format!(
        "{verb} the skill in {} (SKILL.md, agents/openai.yaml); in a new Codex session, say `${NAME}` and what to improve",
        dir.display()
    ))
}

/// One line per place Codex would look (this repository, this user) saying what is there.
fn installed_copies(repo: Option<&Path>) -> Vec<String> {
    let start = repo
        .map(Path::to_path_buf)
        .or_else(|| std::env::current_dir().ok());
    let places = [start.and_then(|s| repo_dir(&s).ok()), user_dir().ok()];
    let mut lines = Vec::new();
    for dir in places.into_iter().flatten() {
        let state = match compare(&dir) {
            Copy::Absent => continue,
            Copy::Same => "the same as this binary's",
            Copy::Incomplete => "incomplete; `skill install` completes it",
            Copy::Differs(_) => "differs from this binary's; `skill install --force` replaces it",
        };
        lines.push(format!("installed copy: {} ({state})", dir.display()));
    }
    if lines.is_empty() {
        lines.push(format!(
            "not installed; `{NAME} skill install` installs it in this repository, `--user` for every repository"
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of `key: value` in the SKILL.md front matter.
    fn front_matter(key: &str) -> String {
        let body = SKILL_MD.strip_prefix("---\n").expect("front matter");
        let fm = &body[..body.find("\n---\n").expect("front matter end")];
        fm.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}: ")))
            .unwrap_or_else(|| panic!("no {key} in the front matter"))
            .to_string()
    }

    fn implicit_invocation() -> bool {
        let v = OPENAI_YAML
            .lines()
            .find_map(|l| l.trim().strip_prefix("allow_implicit_invocation:"))
            .expect("policy.allow_implicit_invocation is set");
        v.trim().parse().expect("true or false")
    }

    #[test]
    fn the_description_agrees_with_the_invocation_policy() {
        assert_eq!(front_matter("name"), NAME);
        let description = front_matter("description");
        // Codex's limits: a name of at most 64 characters, a description of at most 1024.
        assert!(description.len() <= 1024 && NAME.len() <= 64);
        assert!(description.contains(&format!("${NAME}")), "{description}");
        // Codex lists only implicitly invocable skills with their description for the model to
        // match a task against; an explicit-only skill must not read like a trigger list.
        let triggers = description.contains("Use when") || description.contains("Use it when");
        if implicit_invocation() {
            assert!(triggers, "implicit: say when to use it: {description}");
        } else {
            assert!(!triggers, "explicit only, yet triggers: {description}");
            assert!(description.contains("only when"), "{description}");
        }
    }

    #[test]
    fn the_flow_validates_once_then_launches_once_with_escalation() {
        // The read-only check is one line, so `plan` replaces `config` in one edit.
        let checks: Vec<&str> = SKILL_MD
            .lines()
            .filter(|l| l.contains("codex-autoresearch config"))
            .collect();
        assert_eq!(checks.len(), 1, "{checks:?}");
        assert!(checks[0].contains("config --check"), "{checks:?}");
        let launches = SKILL_MD
            .lines()
            .filter(|l| l.trim_start().starts_with("codex-autoresearch launch"))
            .count();
        assert_eq!(launches, 1);
        // The escalation as Codex 0.169's exec_command tool spells it.
        for needle in [
            "\"sandbox_permissions\": \"require_escalated\"",
            "\"justification\"",
            "status",
            "logs -f",
            "stop",
            "report",
        ] {
            assert!(SKILL_MD.contains(needle), "SKILL.md lacks {needle}");
        }
    }

    #[test]
    fn install_compares_refuses_and_forces() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("s");
        assert_eq!(compare(&dir), Copy::Absent);
        assert!(install(&dir, false).unwrap().starts_with("installed"));
        assert_eq!(compare(&dir), Copy::Same);
        assert!(
            install(&dir, false)
                .unwrap()
                .starts_with("already installed")
        );
        fs::remove_file(dir.join("agents/openai.yaml")).unwrap();
        assert_eq!(compare(&dir), Copy::Incomplete);
        install(&dir, false).unwrap();
        fs::write(dir.join("SKILL.md"), "mine").unwrap();
        let e = install(&dir, false).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::exit::BLOCKED);
        assert!(e.to_string().contains("--force"), "{e}");
        assert_eq!(fs::read_to_string(dir.join("SKILL.md")).unwrap(), "mine");
        assert!(install(&dir, true).unwrap().starts_with("replaced"));
        assert_eq!(compare(&dir), Copy::Same);
    }
}
