//! Unit tests of the evaluator inference: what a command executes, and what it only reads.

use super::evaluators;

/// The first candidate of each evaluator (the only one but for make and just).
fn files(command: &str) -> Vec<String> {
    evaluators(command)
        .into_iter()
        .map(|e| e.candidates.last().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn interpreters_execute_their_script() {
    assert_eq!(files("python3 bench.py"), ["bench.py"]);
    assert_eq!(
        files("python -u -W ignore tools/bench.py --fast"),
        ["tools/bench.py"]
    );
    assert_eq!(files("/usr/bin/python3.12 ./bench.py"), ["bench.py"]);
    assert_eq!(files("node --require ts-node/register x.js"), ["x.js"]);
    assert_eq!(files("bash scripts/bench.sh arg"), ["scripts/bench.sh"]);
    assert_eq!(files("sh -e measure.sh"), ["measure.sh"]);
    assert_eq!(files("ruby -I lib bench.rb"), ["bench.rb"]);
    assert_eq!(files("perl bench.pl"), ["bench.pl"]);
    assert_eq!(files("php bench.php"), ["bench.php"]);
    assert_eq!(files("Rscript model.R"), ["model.R"]);
    assert_eq!(files("julia --project bench.jl"), ["bench.jl"]);
    assert_eq!(files("deno run --allow-read bench.ts"), ["bench.ts"]);
    assert_eq!(files("bun bench.ts"), ["bench.ts"]);
    assert_eq!(files(". ./env.sh && source lib.sh"), ["env.sh", "lib.sh"]);
}

#[test]
fn code_given_inline_or_a_module_is_no_file() {
    assert!(files("python3 -m pytest -q tests/").is_empty());
    assert!(files("python3 -c 'print(1)'").is_empty());
    assert!(files("node -e 'console.log(1)'").is_empty());
    assert!(files("perl -e 'print 1' data.txt").is_empty());
}

#[test]
fn runners_reach_the_script() {
    assert_eq!(files("uv run bench.py"), ["bench.py"]);
    assert_eq!(files("uv run --with numpy python bench.py"), ["bench.py"]);
    assert_eq!(files("poetry run python x.py"), ["x.py"]);
    assert_eq!(files("conda run -n env python x.py"), ["x.py"]);
    assert!(files("uv run pytest tests/").is_empty());
}

#[test]
fn make_reads_its_makefile() {
    let e = evaluators("make -s bench");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].candidates, ["GNUmakefile", "makefile", "Makefile"]);
    assert_eq!(
        evaluators("make -C sub bench")[0].candidates,
        ["sub/GNUmakefile", "sub/makefile", "sub/Makefile"]
    );
    assert_eq!(files("make -f bench.mk"), ["bench.mk"]);
    assert_eq!(files("make -C sub -f bench.mk"), ["sub/bench.mk"]);
    assert_eq!(files("make --file=x.mk"), ["x.mk"]);
    assert_eq!(files("gmake --directory=d"), ["d/Makefile"]);
    assert_eq!(
        evaluators("just bench")[0].candidates,
        ["justfile", "Justfile", ".justfile"]
    );
    assert_eq!(files("just -f tasks.just bench"), ["tasks.just"]);
}

#[test]
fn package_scripts_run_package_json() {
    assert_eq!(files("npm run bench"), ["package.json"]);
    assert_eq!(files("npm test"), ["package.json"]);
    assert_eq!(files("npm --prefix web run bench"), ["web/package.json"]);
    assert_eq!(files("pnpm bench"), ["package.json"]);
    assert_eq!(files("yarn run bench"), ["package.json"]);
    assert_eq!(files("bun run bench"), ["package.json"]);
    assert!(files("npm install").is_empty());
    assert!(files("bun test").is_empty());
}

#[test]
fn a_program_named_by_its_path_is_executed() {
    assert_eq!(files("./bench.sh"), ["bench.sh"]);
    assert_eq!(files("scripts/run --quick"), ["scripts/run"]);
    assert_eq!(files("/opt/bench/run.sh"), ["/opt/bench/run.sh"]);
    assert!(files("cargo bench").is_empty());
}

#[test]
fn wrappers_and_lists_are_seen_through() {
    assert_eq!(files("FOO=1 BAR=x python3 bench.py"), ["bench.py"]);
    assert_eq!(files("timeout 60 ./bench.sh"), ["bench.sh"]);
    assert_eq!(files("timeout -s KILL 1m python3 b.py"), ["b.py"]);
    assert_eq!(files("nice -n 5 ./bench.sh"), ["bench.sh"]);
    assert_eq!(files("env -i PATH=/bin ./bench.sh"), ["bench.sh"]);
    assert_eq!(files("/usr/bin/env python3 b.py"), ["b.py"]);
    assert_eq!(
        files("cargo build && ./a.sh; ./b.sh | ./c.sh || ./d.sh"),
        ["a.sh", "b.sh", "c.sh", "d.sh"]
    );
    assert_eq!(
        files("sh -c 'make -f x.mk && python3 y.py'"),
        ["x.mk", "y.py"]
    );
    assert_eq!(files("bash -ec \"./run.sh\""), ["run.sh"]);
    assert_eq!(files("echo $(python3 gen.py)"), ["gen.py"]);
    assert_eq!(files("cd bench && ./run.sh"), ["bench/run.sh"]);
    assert_eq!(files("hyperfine -w 3 'python3 b.py'"), ["b.py"]);
    assert_eq!(files("./a.sh && ./a.sh"), ["a.sh"], "no duplicates");
}

#[test]
fn paths_that_are_only_read_are_not_evaluators() {
    assert!(files("grep -rc TODO src/ | wc -l").is_empty());
    assert!(files("cat counter.txt").is_empty());
    assert!(files("wc -l src/*.py | tail -1").is_empty());
    assert!(files("pytest -q tests/test_x.py").is_empty());
    assert!(files("cargo test --manifest-path sub/Cargo.toml").is_empty());
    assert!(files("./bench.sh > out/log.txt 2>&1").len() == 1);
    assert_eq!(files("python3 b.py < input/data.txt"), ["b.py"]);
}

#[test]
fn words_that_cannot_name_a_file_are_skipped() {
    assert!(files("python3 $SCRIPT").is_empty());
    assert!(files("bash scripts/*.sh").is_empty());
    assert!(files("").is_empty());
    assert!(files("'unterminated").is_empty());
}
