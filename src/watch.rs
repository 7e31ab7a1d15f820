//! Work-tree change notification (inotify): tells the engine when a full scan cannot find anything.
//!
//! The engine scans the whole work tree twice per iteration: after the agent (what did it change?)
//! and after verify and guard (what did they leave behind?). On a large repository each scan
//! costs one `lstat` per file. This module watches every directory a scan looks into; when no
//! event arrived between the first scan and the second, the tree still equals the trial commit
//! and the second scan is skipped. The watch is only ever used to skip work: any event, a queue
//! overflow, or a watch that cannot be placed means "scan".
//!
//! What is watched: the work-tree root and every directory below it that is not ignored, not
//! `.git` and not `.autoresearch`, and not inside a nested repository. Events on the engine's own
//! root artifacts count like any other (the engine does not write them inside the window).
//! `IN_CLOSE_WRITE` catches writers that modify a file through `mmap`, which sends no
//! `IN_MODIFY`. Set `AUTORESEARCH_NO_WATCH=1` to scan every time (for example on a network file
//! system, where writes made by another machine raise no events).

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use crate::git::Repo;

/// The environment variable that turns the watch off.
pub const DISABLE_ENV: &str = "AUTORESEARCH_NO_WATCH";

/// Directories below the root that are never watched (the engine's own, and git's).
const SKIP_AT_ROOT: [&str; 4] = [
    ".git",
    ".autoresearch",
    crate::artifacts::layout::RESULTS_DIR,
    crate::artifacts::layout::POINTER_DIR,
];

fn mask() -> AddWatchFlags {
    AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVE_SELF
        | AddWatchFlags::IN_ONLYDIR
        | AddWatchFlags::IN_DONT_FOLLOW
}

/// The inotify watch over a work tree.
pub struct TreeWatch {
    inotify: Option<Inotify>,
    /// The directory of each watch, relative to the root ("" for the root).
    dirs: HashMap<WatchDescriptor, String>,
    /// The engine's own files in the tree (relative paths): their events do not count.
    own: HashSet<String>,
    /// An event arrived since the last [`TreeWatch::arm`].
    dirty: bool,
    /// The watch set may miss a directory (one was created or moved, an ignore file changed,
    /// the queue overflowed): rebuilt at the next [`TreeWatch::arm`].
    stale: bool,
    /// Why the watch is off, once (for the log).
    off_reason: Option<String>,
}

impl TreeWatch {
    /// A watch that never reports the tree as quiet.
    pub fn off() -> Self {
        TreeWatch {
            inotify: None,
            dirs: HashMap::new(),
            own: HashSet::new(),
            dirty: true,
            stale: false,
            off_reason: None,
        }
    }

    /// Watches the work tree of `repo`; on any failure (no inotify, too many directories for the
    /// system's watch limit) the watch is off and the engine scans every time. Events on `own`
    /// (the engine's files, relative paths) and on its temporary files do not count.
    pub fn start(repo: &Repo, own: &[String]) -> Self {
        let mut w = TreeWatch::off();
        w.own = own.iter().cloned().collect();
        if std::env::var_os(DISABLE_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
            w.off_reason = Some(format!("{DISABLE_ENV} is set"));
            return w;
        }
        w.build(repo);
        w
    }

    /// Whether the watch is on.
    pub fn active(&self) -> bool {
        self.inotify.is_some()
    }

    /// Why the watch went off, once.
    pub fn take_off_reason(&mut self) -> Option<String> {
        self.off_reason.take()
    }

    fn build(&mut self, repo: &Repo) {
        self.inotify = None;
        self.dirs.clear();
        self.stale = false;
        self.dirty = true;
        let ino = match Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC) {
            Ok(i) => i,
            Err(e) => {
                self.off_reason = Some(format!("inotify is not available ({e})"));
                return;
            }
        };
        let tracked = tracked_dirs(repo);
        match watch_dir(&ino, &mut self.dirs, repo, &tracked, &repo.root, "") {
            Ok(()) => self.inotify = Some(ino),
            Err(e) => {
                let hint = if e == Errno::ENOSPC {
                    " (the system's inotify watch limit, fs.inotify.max_user_watches, is too low for this tree)"
                } else {
                    ""
                };
                self.off_reason = Some(format!("cannot watch the work tree: {e}{hint}"));
            }
        }
    }

    /// Reads the pending events; returns whether any arrived.
    fn drain(&mut self) -> bool {
        let Some(ino) = &self.inotify else {
            return true;
        };
        let mut any = false;
        loop {
            match ino.read_events() {
                Ok(events) if events.is_empty() => break,
                Ok(events) => {
                    for e in events {
                        if let (Some(dir), Some(name)) = (self.dirs.get(&e.wd), &e.name)
                            && let Some(name) = name.to_str()
                        {
                            let path = if dir.is_empty() {
                                name.to_string()
                            } else {
                                format!("{dir}/{name}")
                            };
                            if name.starts_with(crate::fsutil::TMP_PREFIX)
                                || self.own.contains(&path)
                            {
                                continue;
                            }
                        }
                        any = true;
                        if e.mask.contains(AddWatchFlags::IN_Q_OVERFLOW)
                            || e.mask.contains(AddWatchFlags::IN_MOVE_SELF)
                            || (e.mask.contains(AddWatchFlags::IN_ISDIR)
                                && e.mask.intersects(
                                    AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO,
                                ))
                            || e.name.as_deref() == Some(OsStr::new(".gitignore"))
                        {
                            self.stale = true;
                        }
                    }
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    self.inotify = None;
                    self.off_reason = Some(format!("reading inotify events failed: {e}"));
                    return true;
                }
            }
        }
        any
    }

    /// Starts a window: forgets what happened so far (re-watching the tree if it changed shape).
    /// Call it before a scan whose result [`TreeWatch::quiet`] later vouches for.
    pub fn arm(&mut self, repo: &Repo) {
        if self.inotify.is_none() {
            return;
        }
        self.drain();
        if self.stale {
            self.build(repo);
        }
        self.dirty = false;
    }

    /// Whether nothing in the watched tree changed since the last [`TreeWatch::arm`].
    pub fn quiet(&mut self) -> bool {
        if self.inotify.is_none() {
            return false;
        }
        if self.drain() {
            self.dirty = true;
        }
        self.inotify.is_some() && !self.dirty
    }
}

/// Every directory that holds a tracked file, at any depth (`a/b/c` gives `a` and `a/b`).
fn tracked_dirs(repo: &Repo) -> HashSet<String> {
    let mut dirs = HashSet::new();
    let Ok(mut index) = repo.repo.index() else {
        return dirs;
    };
    let _ = index.read(false);
    for e in index.iter() {
        let path = String::from_utf8_lossy(&e.path);
        let mut end = path.len();
        while let Some(i) = path[..end].rfind('/') {
            if !dirs.insert(path[..i].to_string()) {
                break;
            }
            end = i;
        }
    }
    dirs
}

/// Watches `dir` (relative path `rel`, "" for the root) and the directories below it that a
/// status scan looks into: not ignored, or holding a tracked file.
fn watch_dir(
    ino: &Inotify,
    dirs: &mut HashMap<WatchDescriptor, String>,
    repo: &Repo,
    tracked: &HashSet<String>,
    dir: &Path,
    rel: &str,
) -> Result<(), Errno> {
    dirs.insert(ino.add_watch(dir, mask())?, rel.to_string());
    let Ok(entries) = std::fs::read_dir(dir) else {
        // Unreadable: a scan cannot look into it either.
        return Ok(());
    };
    for entry in entries.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        if !ft.is_dir() {
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            // A name that is not UTF-8 cannot be asked about ignore rules; watch it whole.
            watch_all(ino, dirs, &entry.path())?;
            continue;
        };
        if name == ".git" || (rel.is_empty() && SKIP_AT_ROOT.contains(&name)) {
            continue;
        }
        let child_rel = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let path = entry.path();
        if path.join(".git").exists() && !tracked.contains(&child_rel) {
            // A nested repository: a scan reports it as one entry and does not look inside.
            continue;
        }
        if !tracked.contains(&child_rel)
            && repo
                .repo
                .is_path_ignored(format!("{child_rel}/"))
                .unwrap_or(false)
        {
            continue;
        }
        watch_dir(ino, dirs, repo, tracked, &path, &child_rel)?;
    }
    Ok(())
}

/// Watches `dir` and every directory below it, without asking about ignore rules.
fn watch_all(
    ino: &Inotify,
    dirs: &mut HashMap<WatchDescriptor, String>,
    dir: &Path,
) -> Result<(), Errno> {
    // Not UTF-8: no relative name, so no event here is taken for the engine's own.
    dirs.insert(ino.add_watch(dir, mask())?, String::from("\0"));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) && entry.file_name() != ".git" {
            watch_all(ino, dirs, &entry.path())?;
        }
    }
    Ok(())
}
