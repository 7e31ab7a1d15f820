//! `codex-autoresearch finalize`: turns a run into a branch to review. A new branch from the
//! run's start commit holding its keeps (each replayed as its own commit, or one squashed commit
//! listing them); only the new branch's ref is written: the user's branch, index and work tree
//! are never touched.

use std::path::Path;

use git2::Oid;
use serde_json::json;

use crate::artifacts::results::ResultsLog;
use crate::artifacts::state::StateFile;
use crate::engine::number::{canonical, signed};
use crate::engine::row::{Row, Status};
use crate::error::{Error, Result};
use crate::git::Repo;

/// `finalize` flags.
#[derive(clap::Args, Debug)]
pub struct FinalizeArgs {
    #[command(flatten)]
    pub at: crate::cli::RunAt,
    /// The branch to create (default: `autoresearch/<run-tag>-final`); refused if it exists.
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// One commit holding every keep, its message listing them with their deltas.
    #[arg(long)]
    pub squash: bool,
    /// Print one JSON object instead of the lines.
    #[arg(long)]
    pub json: bool,
}

/// One keep of the run, resolved to its commit.
#[derive(Clone, Debug)]
struct Keep {
    row: Row,
    commit: Oid,
}

/// The branch name `finalize` creates when none is given.
pub fn default_branch(run_tag: &str) -> String {
    format!("autoresearch/{run_tag}-final")
}

/// The message of the squashed commit: a subject with the metric's move, then one line per keep
/// (iteration, description without its measured `[labels: ...]` prefix, metric and delta).
pub fn squash_message(run_tag: &str, metric: &str, baseline: f64, keeps: &[Row]) -> String {
    let last = keeps.last().map_or(baseline, |k| k.metric);
    let n = keeps.len();
    let mut msg = format!(
        "autoresearch {run_tag}: {metric} {} -> {} ({n} keep{})\n\n",
        canonical(baseline),
        canonical(last),
        if n == 1 { "" } else { "s" }
    );
    for k in keeps {
        msg.push_str(&format!(
            "- #{} {} ({metric} {}, {})\n",
            k.iteration,
            crate::engine::gates::without_labels(&k.description),
            canonical(k.metric),
            signed(k.delta)
        ));
    }
    msg
}

/// Reads the run (its log, start commit and keeps); refuses without a run or a keep.
fn read_run(repo: &Repo, results: &Path) -> Result<(ResultsLog, Oid, Vec<Keep>)> {
    if !results.exists() || crate::artifacts::stand_in::sized_like(results) {
        return Err(Error::Refused(format!(
            "no autoresearch run in {} (no {}); finalize works on a run's results",
            repo.root.display(),
            results.display()
        )));
    }
    let (log, _) = ResultsLog::read(results)?;
    let replay = log.replay()?;
    let rows = log.tail(usize::MAX);
    let resolve = |short: &str| -> Option<Oid> {
        let obj = repo.repo.revparse_single(short).ok()?;
        obj.peel_to_commit().ok().map(|c| c.id())
    };
    let missing = |what: &str, short: &str| {
        Error::Refused(format!(
            "the {what} commit {short} of the run is not in the repository (was the branch rewritten?); nothing to finalize"
        ))
    };
    let first = rows
        .first()
        .ok_or_else(|| Error::Refused("the results log has no baseline row".into()))?;
    let start = resolve(&first.commit).ok_or_else(|| missing("start", &first.commit))?;
    let last_short = &replay.tally.last_commit;
    let last = resolve(last_short).ok_or_else(|| missing("final retained", last_short))?;
    let mut keeps = Vec::new();
    for r in rows.iter().filter(|r| r.status == Status::Keep) {
        let commit = resolve(&r.commit).ok_or_else(|| missing("kept", &r.commit))?;
        // A keep taken back later (not on the line to the final commit) is not part of the result.
        if commit == last || repo.descends_from(last, commit) {
            keeps.push(Keep {
                row: r.clone(),
                commit,
            });
        }
    }
    if keeps.is_empty() {
        return Err(Error::Refused(
            "the run has no keep: nothing to finalize (its branch is still at its start commit)"
                .into(),
        ));
    }
    Ok((log, start, keeps))
}

/// Replays each keep's change (against its parent) on top of `onto` as a commit of its own
/// (the kept commit's author, committer and message); returns the commits, made without moving
/// any ref. A keep that does not apply (someone changed the branch between keeps) refuses.
fn replay_keeps(repo: &git2::Repository, onto: Oid, keeps: &[Keep]) -> Result<Vec<Oid>> {
    let mut base = repo.find_commit(onto).git("read the start commit")?;
    let mut commits = Vec::with_capacity(keeps.len());
    for k in keeps {
        let kept = repo.find_commit(k.commit).git("read a kept commit")?;
        let mut index = repo
            .cherrypick_commit(&kept, &base, 0, None)
            .git("replay a kept commit")?;
        if index.has_conflicts() {
            return Err(Error::Refused(format!(
                "keep #{} ({}) does not apply on top of the keeps before it (the branch changed between them); nothing was created",
                k.row.iteration, k.row.commit
            )));
        }
        let tree = index.write_tree_to(repo).git("write a replayed tree")?;
        let tree = repo.find_tree(tree).git("read a replayed tree")?;
        let message = kept.message().unwrap_or("experiment");
        let oid = repo
            .commit(
                None,
                &kept.author(),
                &kept.committer(),
                message,
                &tree,
                &[&base],
            )
            .git("write a replayed commit")?;
        base = repo.find_commit(oid).git("read a replayed commit")?;
        commits.push(oid);
    }
    Ok(commits)
}

/// git2 errors with a context, as [`crate::error`] words them.
trait GitCtx<T> {
    fn git(self, what: &str) -> Result<T>;
}

impl<T> GitCtx<T> for std::result::Result<T, git2::Error> {
    fn git(self, what: &str) -> Result<T> {
        self.map_err(|e| Error::git(what.to_string(), e))
    }
}

/// What `finalize` made.
struct Made {
    branch: String,
    head: Oid,
    /// Each keep and the commit that carries it (the squashed one for every keep with `--squash`).
    commits: Vec<(Keep, Oid)>,
}

/// Makes the commits (each keep, or one squashed) on top of `start` and creates `branch` at the
/// last; refuses if the branch exists.
fn make(
    repo: &Repo,
    branch: &str,
    start: Oid,
    keeps: &[Keep],
    squash: Option<String>,
) -> Result<Made> {
    let r = &repo.repo;
    let replayed = replay_keeps(r, start, keeps)?;
    let commits: Vec<(Keep, Oid)> = match squash {
        Some(message) => {
            let last = *replayed.last().expect("a keep at least");
            let tree = r
                .find_commit(last)
                .and_then(|c| c.tree())
                .git("read the final tree")?;
            let parent = r.find_commit(start).git("read the start commit")?;
            let sig = r
                .signature()
                .or_else(|_| git2::Signature::now("codex-autoresearch", "autoresearch@localhost"))
                .git("make a signature")?;
            let oid = r
                .commit(None, &sig, &sig, &message, &tree, &[&parent])
                .git("write the squashed commit")?;
            keeps.iter().map(|k| (k.clone(), oid)).collect()
        }
        None => keeps.iter().cloned().zip(replayed).collect(),
    };
    let head = commits.last().map(|c| c.1).expect("a keep at least");
    // Not forced: a branch created meanwhile is refused, never overwritten.
    r.reference(
        &format!("refs/heads/{branch}"),
        head,
        false,
        "autoresearch: finalize",
    )
    .map_err(|e| match e.code() {
        git2::ErrorCode::Exists => exists(branch),
        _ => Error::git(format!("create the branch {branch}"), e),
    })?;
    Ok(Made {
        branch: branch.to_string(),
        head,
        commits,
    })
}

fn exists(branch: &str) -> Error {
    Error::Refused(format!(
        "branch {branch} already exists; pick another name with --branch NAME (or delete it: git branch -D {branch})"
    ))
}

/// Runs `finalize`; returns the exit code.
pub fn command(args: &FinalizeArgs) -> Result<u8> {
    let (repo_dir, artifacts_dir) = args.at.absolute();
    let (repo, paths) = crate::artifacts::locate(repo_dir.as_deref(), artifacts_dir.as_deref())?;
    let (log, start, keeps) = read_run(&repo, &paths.results)?;
    let state = StateFile::load(&paths.state).ok();
    let run_tag = log
        .meta("run_tag")
        .map(str::to_string)
        .or_else(|| state.as_ref().map(|s| s.run_tag.clone()))
        .unwrap_or_else(|| "run".into());
    let branch = args
        .branch
        .clone()
        .unwrap_or_else(|| default_branch(&run_tag));
    if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
        return Err(Error::Usage(format!(
            "--branch {branch}: not a valid branch name; pick another"
        )));
    }
    if repo
        .repo
        .find_reference(&format!("refs/heads/{branch}"))
        .is_ok()
    {
        return Err(exists(&branch));
    }
    let replay = log.replay()?;
    let metric = log.meta("metric").unwrap_or("metric").to_string();
    let squash = args.squash.then(|| {
        let rows: Vec<Row> = keeps.iter().map(|k| k.row.clone()).collect();
        squash_message(&run_tag, &metric, replay.tally.baseline_metric, &rows)
    });
    let made = make(&repo, &branch, start, &keeps, squash)?;
    print(&made, start, args);
    Ok(0)
}

/// Prints what was made and the commands to push it and open a pull request.
fn print(made: &Made, start: Oid, args: &FinalizeArgs) {
    let push = format!("git push -u origin {}", made.branch);
    // No `--base`: the run's own branch already holds the keeps (a PR into it would be empty);
    // the repository's default branch is gh's choice, `--base` picks another.
    let pr = format!("gh pr create --head {} --fill", made.branch);
    if args.json {
        let keeps: Vec<_> = made
            .commits
            .iter()
            .map(|(k, c)| {
                json!({
                    "iteration": k.row.iteration,
                    "kept_commit": k.commit.to_string(),
                    "commit": c.to_string(),
                    "metric": crate::output::num(k.row.metric),
                    "delta": crate::output::num(k.row.delta),
                    "description": k.row.description,
                })
            })
            .collect();
        crate::output::say(
            &json!({
                "branch": made.branch,
                "start": start.to_string(),
                "head": made.head.to_string(),
                "squash": args.squash,
                "keeps": keeps,
                "push": push,
                "pr": pr,
            })
            .to_string(),
        );
        return;
    }
    let n = made.commits.len();
    let how = if args.squash {
        format!(
            "{n} keep{} squashed into one commit",
            if n == 1 { "" } else { "s" }
        )
    } else {
        format!(
            "{n} keep{} as {n} commit{}",
            if n == 1 { "" } else { "s" },
            if n == 1 { "" } else { "s" }
        )
    };
    crate::output::say(&format!(
        "created branch {} at {} from the run's start {}: {how} (your branch and work tree are untouched)",
        made.branch,
        Repo::short(made.head),
        Repo::short(start)
    ));
    crate::output::say(&format!("push it:  {push}"));
    crate::output::say(&format!("open a PR: {pr}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::row::Guard;

    fn keep(iteration: u64, metric: f64, delta: f64, description: &str) -> Row {
        Row {
            iteration,
            commit: "abc1234".into(),
            metric,
            delta,
            guard: Guard::Pass,
            status: Status::Keep,
            description: description.into(),
        }
    }

    #[test]
    fn the_default_branch_names_the_run() {
        assert_eq!(default_branch("r1"), "autoresearch/r1-final");
    }

    #[test]
    fn the_squashed_message_lists_every_keep_with_its_delta() {
        let keeps = [
            keep(2, 8.0, -2.0, "cache the parse"),
            keep(5, 6.5, -1.5, "[labels: fast, pure] var -> let"),
        ];
        assert_eq!(
            squash_message("r1", "ms", 10.0, &keeps),
            "autoresearch r1: ms 10 -> 6.5 (2 keeps)\n\n\
             - #2 cache the parse (ms 8, -2)\n\
             - #5 var -> let (ms 6.5, -1.5)\n"
        );
        assert!(
            squash_message("r1", "ms", 10.0, &keeps[..1])
                .starts_with("autoresearch r1: ms 10 -> 8 (1 keep)\n")
        );
    }
}
