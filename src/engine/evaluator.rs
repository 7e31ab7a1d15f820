//! The evaluator of a shell command: the files it *executes* (the script an interpreter runs,
//! `make`'s Makefile, a `./bench.sh`, `package.json` of `npm run`), as opposed to the files it
//! only reads (`grep ... src/`, `cat counter.txt`: the thing being measured). Pure: it reads the
//! command's text only; the caller keeps the candidates that exist.

/// One file the command executes: the first candidate that exists (`make` tries
/// `GNUmakefile`, `makefile`, `Makefile` in that order). Paths are as the command names them,
/// joined to the directory a `cd` or `make -C` moved to; relative ones are relative to where the
/// command starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluator {
    pub candidates: Vec<String>,
}

/// How deep `sh -c '...'`, `env`, `timeout` and the like may nest.
const MAX_DEPTH: usize = 8;

/// Returns the files `command` executes, in the order it names them, without duplicates.
pub fn evaluators(command: &str) -> Vec<Evaluator> {
    let mut out = Vec::new();
    script(command, "", 0, &mut out);
    out
}

/// One word of a command, or a separator between simple commands.
#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Sep,
}

/// Splits shell text into words (quotes removed) and separators (`;`, `&`, `|`, newlines,
/// parentheses, `$(`, backticks); redirections and their targets are left out.
fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut skip_next_word = false;
    let mut chars = text.chars().peekable();
    let push = |word: &mut String, in_word: &mut bool, skip: &mut bool, t: &mut Vec<Token>| {
        if *in_word {
            if *skip {
                *skip = false;
            } else {
                t.push(Token::Word(std::mem::take(word)));
            }
        }
        word.clear();
        *in_word = false;
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => {
                            if let Some(e) = chars.next() {
                                word.push(e);
                            }
                        }
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    word.push(e);
                }
            }
            '<' | '>' => {
                // `2>&1`: the digits before were a file descriptor, not a word.
                if in_word && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                }
                push(&mut word, &mut in_word, &mut skip_next_word, &mut tokens);
                while chars
                    .next_if(|n| matches!(n, '<' | '>' | '&' | '|'))
                    .is_some()
                {}
                skip_next_word = true;
            }
            '$' if chars.peek() == Some(&'(') => {
                chars.next();
                push(&mut word, &mut in_word, &mut skip_next_word, &mut tokens);
                tokens.push(Token::Sep);
            }
            ';' | '&' | '|' | '\n' | '(' | ')' | '`' => {
                push(&mut word, &mut in_word, &mut skip_next_word, &mut tokens);
                skip_next_word = false;
                tokens.push(Token::Sep);
            }
            c if c.is_whitespace() => {
                push(&mut word, &mut in_word, &mut skip_next_word, &mut tokens);
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    push(&mut word, &mut in_word, &mut skip_next_word, &mut tokens);
    tokens
}

/// Walks the simple commands of `text`; a `cd` moves the directory of the ones after it.
fn script(text: &str, cwd: &str, depth: usize, out: &mut Vec<Evaluator>) {
    if depth > MAX_DEPTH {
        return;
    }
    let mut cwd = cwd.to_string();
    let mut words: Vec<String> = Vec::new();
    for t in tokenize(text).into_iter().chain([Token::Sep]) {
        match t {
            Token::Word(w) => words.push(w),
            Token::Sep => {
                if let Some(dir) = simple(&words, &cwd, depth, out) {
                    cwd = dir;
                }
                words.clear();
            }
        }
    }
}

/// Joins `path` to `cwd` (an absolute or `~` path stands alone).
fn join(cwd: &str, path: &str) -> String {
    let path = path.strip_prefix("./").unwrap_or(path);
    if cwd.is_empty() || path.starts_with('/') || path.starts_with('~') {
        path.to_string()
    } else {
        format!("{}/{path}", cwd.trim_end_matches('/'))
    }
}

/// A word that can name a file: no variable, no glob, not empty.
fn plain(word: &str) -> bool {
    !word.is_empty() && !word.contains(['$', '*', '?', '[', '{', '='])
}

fn add(out: &mut Vec<Evaluator>, candidates: Vec<String>) {
    if candidates.iter().all(|c| plain(c)) && !out.iter().any(|e| e.candidates == candidates) {
        out.push(Evaluator { candidates });
    }
}

fn add_file(out: &mut Vec<Evaluator>, cwd: &str, path: &str) {
    if plain(path) {
        add(out, vec![join(cwd, path)]);
    }
}

fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The program's name: the last component of its path (`/usr/bin/python3` is `python3`).
fn base(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// Skips options (words starting with `-`; those in `with_value` take the next word as their
/// value); returns the index of the first operand. `--` ends the options.
fn operand(words: &[String], from: usize, with_value: &[&str]) -> usize {
    let mut i = from;
    while let Some(w) = words.get(i) {
        if w == "--" {
            return i + 1;
        }
        if !w.starts_with('-') || w == "-" {
            return i;
        }
        i += if with_value.contains(&w.as_str()) {
            2
        } else {
            1
        };
    }
    i
}

/// Looks at one simple command; returns the new directory when it is a `cd`.
fn simple(words: &[String], cwd: &str, depth: usize, out: &mut Vec<Evaluator>) -> Option<String> {
    let mut start = 0;
    while words.get(start).is_some_and(|w| {
        is_assignment(w)
            || matches!(
                w.as_str(),
                "!" | "{" | "}" | "if" | "then" | "else" | "elif" | "do" | "while" | "until"
            )
    }) {
        start += 1;
    }
    let words = &words[start..];
    let first = words.first()?;
    let rest = &words[1..];
    let again = |from: usize, out: &mut Vec<Evaluator>| {
        if let Some(tail) = rest.get(from..) {
            let _ = simple(tail, cwd, depth + 1, out);
        }
    };
    if depth > MAX_DEPTH {
        return None;
    }
    let name = base(first);
    match name {
        "cd" | "pushd" => {
            let dir = rest.first().filter(|d| plain(d) && !d.starts_with('-'))?;
            return Some(join(cwd, dir));
        }
        "env" => {
            let mut i = operand(rest, 0, &["-u", "--unset", "-C", "--chdir", "-S"]);
            while rest.get(i).is_some_and(|w| is_assignment(w)) {
                i += 1;
            }
            again(i, out);
        }
        "timeout" => {
            let i = operand(rest, 0, &["-s", "--signal", "-k", "--kill-after"]);
            again(i + 1, out);
        }
        "nice" => again(operand(rest, 0, &["-n", "--adjustment"]), out),
        "ionice" => again(operand(rest, 0, &["-c", "-n", "-p", "-P", "-u"]), out),
        "stdbuf" => again(operand(rest, 0, &["-i", "-o", "-e"]), out),
        "taskset" => {
            let i = operand(rest, 0, &[]);
            again(i + 1, out);
        }
        "nohup" | "exec" | "command" | "builtin" | "time" | "chronic" | "xvfb-run" => {
            again(operand(rest, 0, &[]), out)
        }
        "hyperfine" => hyperfine(rest, cwd, depth, out),
        "sh" | "bash" | "zsh" | "dash" | "ksh" | "mksh" | "ash" | "fish" => {
            shell(rest, cwd, depth, out);
        }
        "source" | "." => {
            if let Some(f) = rest.first() {
                add_file(out, cwd, f);
            }
        }
        "make" | "gmake" => make(rest, cwd, out),
        "just" => just(rest, cwd, out),
        "npm" | "pnpm" | "yarn" => package_scripts(name, rest, cwd, out),
        "uv" | "poetry" | "pipenv" | "pdm" | "hatch" | "rye" | "conda" | "pixi" => {
            runner(rest, cwd, depth, out)
        }
        "deno" | "bun" => deno_bun(name, rest, cwd, out),
        _ => {
            if let Some(opts) = interpreter(name) {
                let i = operand(rest, 0, opts.with_value);
                if let Some(w) = rest.get(i)
                    && !rest[..i]
                        .iter()
                        .any(|o| opts.no_script.contains(&o.as_str()))
                {
                    add_file(out, cwd, w);
                }
            } else if first.contains('/') {
                // A program named by its path (`./bench.sh`, `scripts/run`, `/opt/bench/run.sh`).
                add_file(out, cwd, first);
            }
        }
    }
    None
}

/// `hyperfine 'cmd' ...`: every command it benchmarks, prepares, sets up or cleans up with.
fn hyperfine(rest: &[String], cwd: &str, depth: usize, out: &mut Vec<Evaluator>) {
    let with_value = [
        "-w",
        "--warmup",
        "-r",
        "--runs",
        "-m",
        "--min-runs",
        "-M",
        "--max-runs",
        "--export-json",
        "--export-csv",
        "--export-markdown",
        "-n",
        "--command-name",
        "-u",
        "--time-unit",
        "-S",
        "--shell",
        "--style",
        "--output",
    ];
    let mut i = 0;
    while let Some(w) = rest.get(i) {
        if with_value.contains(&w.as_str()) {
            i += 2;
            continue;
        }
        if !w.starts_with('-')
            || matches!(
                w.as_str(),
                "-p" | "--prepare" | "-c" | "--cleanup" | "-s" | "--setup"
            )
        {
            let cmd = if w.starts_with('-') {
                rest.get(i + 1)
            } else {
                Some(w)
            };
            if let Some(c) = cmd {
                script(c, cwd, depth + 1, out);
            }
            i += if w.starts_with('-') { 2 } else { 1 };
            continue;
        }
        i += 1;
    }
}

/// `deno run x.ts`, `bun x.ts` (a script), `bun run bench` (a script of `package.json`).
fn deno_bun(name: &str, rest: &[String], cwd: &str, out: &mut Vec<Evaluator>) {
    let sub = usize::from(rest.first().is_some_and(|w| w == "run"));
    if name == "deno" {
        let i = operand(rest, sub, &["--config", "-c", "--import-map", "--lock"]);
        if let Some(f) = rest.get(i).filter(|w| w.as_str() != "task") {
            add_file(out, cwd, f);
        }
        return;
    }
    let i = operand(rest, sub, &["--cwd", "--config", "-c"]);
    match rest.get(i) {
        Some(f) if f.contains('/') || has_script_ext(f) => add_file(out, cwd, f),
        Some(f) if sub == 1 || !BUN_COMMANDS.contains(&f.as_str()) => {
            add(out, vec![join(cwd, "package.json")])
        }
        _ => {}
    }
}

/// `bun` subcommands that are not package scripts.
const BUN_COMMANDS: &[&str] = &[
    "test", "install", "i", "add", "remove", "update", "x", "build", "init", "create", "pm",
    "link", "unlink", "upgrade", "outdated", "publish", "repl",
];

fn has_script_ext(word: &str) -> bool {
    const EXT: &[&str] = &[
        ".py", ".js", ".mjs", ".cjs", ".ts", ".mts", ".jsx", ".tsx", ".sh", ".rb", ".pl", ".php",
        ".r", ".R", ".jl", ".lua",
    ];
    EXT.iter().any(|e| word.ends_with(e))
}

/// What an interpreter's options look like: those that take a value, and those after which
/// no script file follows (`python -m`, `node -e`).
struct Interp {
    with_value: &'static [&'static str],
    no_script: &'static [&'static str],
}

fn interpreter(name: &str) -> Option<Interp> {
    let python = name.starts_with("python") || name.starts_with("pypy");
    let (with_value, no_script): (&'static [&'static str], &'static [&'static str]) = match name {
        _ if python => (&["-W", "-X", "-Q"], &["-m", "-c"]),
        "node" | "nodejs" | "ts-node" | "tsx" => (
            &[
                "-r",
                "--require",
                "--import",
                "--loader",
                "-C",
                "--conditions",
            ],
            &["-e", "--eval", "-p", "--print"],
        ),
        "ruby" => (&["-I", "-r", "-C", "-E"], &["-e"]),
        "perl" => (&["-I", "-M", "-m"], &["-e", "-E"]),
        "php" => (&["-c", "-d", "-z"], &["-r", "-a", "-S"]),
        "Rscript" => (&[], &["-e"]),
        "julia" => (
            &["-t", "-p", "-C", "-J", "-O"],
            &["-e", "--eval", "-E", "--print"],
        ),
        "lua" | "luajit" | "tclsh" | "wish" | "groovy" | "elixir" | "escript" | "raku" => {
            (&["-l", "-r"], &["-e"])
        }
        _ => return None,
    };
    Some(Interp {
        with_value,
        no_script,
    })
}

/// `bash x.sh`, `sh -c '...'`, `bash -e -o pipefail x.sh`.
fn shell(rest: &[String], cwd: &str, depth: usize, out: &mut Vec<Evaluator>) {
    let mut i = 0;
    while let Some(w) = rest.get(i) {
        if w == "--" {
            i += 1;
            break;
        }
        if w.starts_with('-') || w.starts_with('+') {
            if w.starts_with('-') && !w.starts_with("--") && w.contains('c') {
                // `-c 'script'` (also `-ec`, `-xc`): the script is the next operand.
                let j = operand(rest, i + 1, &["-o", "+o", "-O", "+O"]);
                if let Some(text) = rest.get(j) {
                    script(text, cwd, depth + 1, out);
                }
                return;
            }
            i += if matches!(w.as_str(), "-o" | "+o" | "-O" | "+O") {
                2
            } else {
                1
            };
            continue;
        }
        break;
    }
    if let Some(f) = rest.get(i) {
        add_file(out, cwd, f);
    }
}

/// `make`, `make -s bench`, `make -C dir`, `make -f file`, `make --directory=dir`.
fn make(rest: &[String], cwd: &str, out: &mut Vec<Evaluator>) {
    let mut dir = cwd.to_string();
    let mut files = Vec::new();
    let mut i = 0;
    while let Some(w) = rest.get(i) {
        let next = rest.get(i + 1).cloned();
        let (dir_arg, file_arg, step) = match w.as_str() {
            "-C" | "--directory" => (next, None, 2),
            "-f" | "--file" | "--makefile" => (None, next, 2),
            "-I" | "--include-dir" | "-o" | "-W" | "--old-file" | "--what-if" => (None, None, 2),
            _ if w.starts_with("--directory=") => (Some(w[12..].to_string()), None, 1),
            _ if w.starts_with("--file=") => (None, Some(w[7..].to_string()), 1),
            _ if w.starts_with("--makefile=") => (None, Some(w[11..].to_string()), 1),
            _ if w.starts_with("-C") => (Some(w[2..].to_string()), None, 1),
            _ if w.starts_with("-f") && !w.starts_with("--") => (None, Some(w[2..].to_string()), 1),
            _ => (None, None, 1),
        };
        if let Some(d) = dir_arg {
            dir = join(&dir, &d);
        }
        if let Some(f) = file_arg {
            files.push(f);
        }
        i += step;
    }
    if files.is_empty() {
        let names = ["GNUmakefile", "makefile", "Makefile"];
        add(out, names.iter().map(|n| join(&dir, n)).collect());
    }
    for f in files {
        add_file(out, &dir, &f);
    }
}

/// `just`, `just bench`, `just -f file`, `just -d dir`.
fn just(rest: &[String], cwd: &str, out: &mut Vec<Evaluator>) {
    let mut dir = cwd.to_string();
    let mut file = None;
    let mut i = 0;
    while let Some(w) = rest.get(i) {
        match w.as_str() {
            "-f" | "--justfile" => file = rest.get(i + 1).cloned(),
            "-d" | "--working-directory" => {
                if let Some(d) = rest.get(i + 1) {
                    dir = join(&dir, d);
                }
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    match file {
        Some(f) => add_file(out, cwd, &f),
        None => {
            let names = ["justfile", "Justfile", ".justfile"];
            add(out, names.iter().map(|n| join(&dir, n)).collect());
        }
    }
}

/// `npm run X`, `npm test`, `pnpm X`, `yarn X`: the scripts of `package.json`.
fn package_scripts(name: &str, rest: &[String], cwd: &str, out: &mut Vec<Evaluator>) {
    let mut dir = cwd.to_string();
    let mut sub = None;
    let mut i = 0;
    while let Some(w) = rest.get(i) {
        match w.as_str() {
            "--prefix" | "-C" | "--dir" | "--cwd" => {
                if let Some(d) = rest.get(i + 1) {
                    dir = join(&dir, d);
                }
                i += 2;
                continue;
            }
            _ if w.starts_with('-') => {}
            _ if sub.is_none() => sub = Some(w.as_str()),
            _ => {}
        }
        i += 1;
    }
    let runs_script = match (name, sub) {
        (_, Some("run" | "run-script" | "test" | "t" | "start" | "stop" | "restart")) => true,
        ("npm", _) => false,
        (_, None) => name == "yarn",
        (_, Some(s)) => !matches!(
            s,
            "install" | "i" | "add" | "remove" | "exec" | "dlx" | "x" | "create" | "init"
        ),
    };
    if runs_script {
        add(out, vec![join(&dir, "package.json")]);
    }
}

/// `uv run x.py`, `poetry run python x.py`, `conda run -n env cmd`.
fn runner(rest: &[String], cwd: &str, depth: usize, out: &mut Vec<Evaluator>) {
    let Some(at) = rest.iter().position(|w| w == "run") else {
        return;
    };
    let with_value = [
        "--with",
        "--python",
        "-p",
        "--project",
        "--directory",
        "--extra",
        "--group",
        "--package",
        "--env-file",
        "--index",
        "-n",
        "--name",
        "--prefix",
        "-e",
        "--env",
        "--manifest-path",
    ];
    let i = operand(rest, at + 1, &with_value);
    let Some(first) = rest.get(i) else {
        return;
    };
    if !first.contains('/') && has_script_ext(first) {
        add_file(out, cwd, first);
    } else {
        let _ = simple(&rest[i..], cwd, depth + 1, out);
    }
}

#[cfg(test)]
#[path = "evaluator_tests.rs"]
mod tests;
