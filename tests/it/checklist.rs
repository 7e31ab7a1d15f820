//! `--verify-format checklist --checklist FILE`: a task list's passing acceptance commands are
//! the metric; ticking a box counts for nothing, the engine ticks its own copy, the prompt
//! names the next failing task, `status` shows N/M.

use crate::support::*;

const TASKS: &str = "# Plan\n\n\
- [ ] Task 1: the parser\n  accept: test -f src/a.txt\n\
- [ ] Task 2: the printer\n  accept: grep -q done src/b.txt\n\
- [ ] Task 3: the docs\n  accept: test -s src/c.txt\n\
- [ ] Task 4: the release\n  accept: test -f src/d.txt\n";

/// An agent that completes task N on turn N, and on turn 1 also ticks task 4's box (without
/// doing it); it keeps each prompt beside the scripts.
fn agent(repo: &TestRepo) -> String {
    let aux = repo.aux.display();
    repo.script(
        "tasks-agent.sh",
        &format!(
            "cat > {aux}/prompt-$AUTORESEARCH_ITERATION.md\n\
             case \"$AUTORESEARCH_ITERATION\" in\n\
             1) echo x > src/a.txt; sed -i 's/- \\[ \\] Task 4/- [x] Task 4/' TASKS.md; echo 'task 1 (and a tick on task 4)' ;;\n\
             2) echo done > src/b.txt; echo 'task 2' ;;\n\
             3) echo text > src/c.txt; echo 'task 3' ;;\n\
             4) echo x > src/d.txt; echo 'task 4' ;;\n\
             *) echo idle ;;\n\
             esac"
        ),
    )
}

fn args(agent: &str, iterations: &str) -> Vec<String> {
    [
        "run",
        "--goal",
        "work through the task list",
        "--scope",
        "src/**,TASKS.md",
        "--verify-format",
        "checklist",
        "--checklist",
        "TASKS.md",
        "--agent",
        "command",
        "--agent-cmd",
        agent,
        "--iterations",
        iterations,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn only_passing_accepts_count_and_status_shows_n_of_m() {
    let repo = TestRepo::with_files(&[("TASKS.md", TASKS), ("src/keep.txt", "x\n")]);
    let agent = agent(&repo);
    repo.run_owned(&args(&agent, "3")).expect_code(0);
    let rows = repo.rows();
    let metrics: Vec<f64> = rows.iter().map(|r| tsv_num(&r[2])).collect();
    assert_eq!(metrics, [0.0, 1.0, 2.0, 3.0], "{rows:?}");
    assert_eq!(repo.statuses(), ["baseline", "keep", "keep", "keep"]);
    // The agent's tick on task 4 is in your file (kept with task 1); the engine never ticks it.
    let mine = repo.read("TASKS.md");
    assert!(
        mine.contains("- [x] Task 4") && mine.contains("- [ ] Task 1"),
        "{mine}"
    );
    // The engine's copy says what passes.
    let copy = std::fs::read_to_string(repo.find_artifact("checklist-copy.md")).unwrap();
    assert!(
        copy.contains("- [x] Task 3") && copy.contains("- [ ] Task 4"),
        "{copy}"
    );
    let st = repo.run(&["status"]);
    st.expect_code(0);
    assert!(st.stdout.contains("checklist: 3/4 done"), "{}", st.stdout);
    let v: serde_json::Value =
        serde_json::from_str(repo.run(&["status", "--json"]).stdout.trim()).unwrap();
    assert_eq!(
        v["run"]["checklist"],
        serde_json::json!({"done": 3, "total": 4})
    );
    // The prompt names the next failing task.
    let p2 = repo.aux_read("prompt-2.md");
    assert!(p2.contains("## Next task (1/4 done)"), "{p2}");
    assert!(
        p2.contains("Task 2: the printer\naccept: grep -q done src/b.txt"),
        "{p2}"
    );

    // Resumed, the fourth task ends the run: every task done.
    let r = repo.run_owned(&args(&agent, "10"));
    r.expect_code(0);
    assert!(r.stdout.contains("goal reached"), "{}", r.stdout);
    assert_eq!(tsv_num(&repo.rows().last().unwrap()[2]), 4.0);
    let st = repo.run(&["status"]);
    assert!(st.stdout.contains("checklist: 4/4 done"), "{}", st.stdout);
}

#[test]
fn a_task_without_an_accept_line_is_refused_before_anything_is_written() {
    let repo = TestRepo::with_files(&[(
        "TASKS.md",
        "- [ ] Task 1: x\n\n- [ ] Task 2: y\n  accept: true\n",
    )]);
    let before = repo.snapshot();
    let r = repo.run_owned(&args("true", "1"));
    r.expect_code(2);
    assert!(
        r.stderr.contains("line 1") && r.stderr.contains("accept:"),
        "{}",
        r.stderr
    );
    repo.assert_untouched(&before);
}

#[test]
fn a_trial_that_breaks_a_done_task_is_not_kept_even_when_more_pass() {
    let repo = TestRepo::with_files(&[("TASKS.md", TASKS), ("src/a.txt", "x\n")]);
    let aux = repo.aux.display();
    // Turn 1 completes tasks 2 and 3 but deletes what task 1 accepts (1 -> 2 passing); its
    // rework turns change nothing.
    let agent = repo.script(
        "breaking-agent.sh",
        &format!(
            "cat > {aux}/prompt-$AUTORESEARCH_ITERATION-$AUTORESEARCH_DIRECTIVE.md\n\
             if [ \"$AUTORESEARCH_DIRECTIVE\" = rework ]; then echo 'no idea'; exit 0; fi\n\
             rm src/a.txt; echo done > src/b.txt; echo text > src/c.txt; echo 'tasks 2 and 3'"
        ),
    );
    repo.run_owned(&args(&agent, "1")).expect_code(0);
    let rows = repo.rows();
    assert_eq!(repo.statuses(), ["baseline", "discard"], "{rows:?}");
    assert_eq!(rows[1][4], "fail", "the guard column: {rows:?}");
    assert!(repo.exists("src/a.txt"), "rolled back");
    let rework = repo.aux_read("prompt-1-rework.md");
    assert!(
        rework.contains("## Failing guard output") && rework.contains("### Task 1: the parser"),
        "{rework}"
    );
}
