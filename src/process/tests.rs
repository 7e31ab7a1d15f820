//! Unit tests of process supervision: timeouts, group kills, leftovers.

use super::*;
use leftover::group_members;

fn sh(cmd: &str) -> Spec {
    Spec::shell(cmd, Path::new("/tmp"))
}

#[test]
fn captures_exit_code_and_streams() {
    let o = run(&sh("echo out; echo err >&2; exit 3")).unwrap();
    assert_eq!(o.end, End::Exited(3));
    assert_eq!(o.stdout, "out\n");
    assert_eq!(o.stderr, "err\n");
}

#[test]
fn feeds_stdin_then_closes_it() {
    let mut s = sh("cat; echo done");
    s.stdin = Some(b"hello\n".to_vec());
    let o = run(&s).unwrap();
    assert_eq!(o.stdout, "hello\ndone\n");
}

#[test]
fn stdin_is_null_by_default() {
    let o = run(&sh("cat; echo eof")).unwrap();
    assert_eq!(o.stdout, "eof\n");
}

#[test]
fn timeout_kills_the_whole_group() {
    let mut s = sh("sleep 30 & sleep 30; echo never");
    s.timeout = Some(Duration::from_millis(300));
    let o = run(&s).unwrap();
    assert_eq!(o.end, End::TimedOut);
    assert!(o.duration < Duration::from_secs(20), "{:?}", o.duration);
}

#[test]
fn term_ignoring_child_gets_killed() {
    let mut s = sh("trap '' TERM; while :; do sleep 0.1; done");
    s.timeout = Some(Duration::from_millis(200));
    let o = run(&s).unwrap();
    assert_eq!(o.end, End::TimedOut);
}

#[test]
fn grandchild_holding_the_pipe_cannot_hang() {
    // The shell exits at once; its background child keeps stdout open for 60 s.
    let o = run(&sh("sleep 60 & echo 7")).unwrap();
    assert_eq!(o.end, End::Exited(0));
    assert_eq!(o.stdout, "7\n");
    assert!(o.duration < Duration::from_secs(20), "{:?}", o.duration);
}

#[test]
fn idle_timeout_fires_without_output() {
    let mut s = sh("echo start; sleep 30");
    s.idle_timeout = Some(Duration::from_millis(300));
    let o = run(&s).unwrap();
    assert_eq!(o.end, End::IdleTimedOut);
    assert_eq!(o.stdout, "start\n");
}

#[test]
fn an_event_stream_is_idle_while_only_stderr_or_a_partial_line_moves() {
    // Half a line on stdout, then stderr chatter: no new event line, so idle.
    let mut s = sh("printf '{\"type\":'; while :; do echo log >&2; printf x; sleep 0.1; done");
    s.idle_timeout = Some(Duration::from_millis(400));
    // Counting stderr or partial lines would run into the wall-clock limit instead.
    s.timeout = Some(Duration::from_secs(10));
    s.idle_on_stdout_lines = true;
    let o = run(&s).unwrap();
    assert_eq!(o.end, End::IdleTimedOut);
    // Whole lines keep it alive.
    let mut s = sh("for i in 1 2 3 4 5 6; do echo '{}'; sleep 0.1; done");
    s.idle_timeout = Some(Duration::from_millis(1500));
    s.idle_on_stdout_lines = true;
    assert_eq!(run(&s).unwrap().end, End::Exited(0));
}

#[test]
fn output_keeps_the_idle_timer_alive() {
    let mut s = sh("for i in 1 2 3 4 5 6; do echo $i; sleep 0.1; done");
    s.idle_timeout = Some(Duration::from_millis(1500));
    let o = run(&s).unwrap();
    assert_eq!(o.end, End::Exited(0));
}

#[test]
fn tail_is_bounded_but_log_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("out.log");
    let mut s = sh("i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); done");
    s.tail_bytes = 1024;
    s.stdout_log = Some(log.clone());
    s.stderr_log = Some(log.clone());
    let o = run(&s).unwrap();
    assert!(o.truncated);
    assert!(o.stdout.len() <= 1024);
    assert!(o.stdout.ends_with("line-19999\n"));
    let full = std::fs::read_to_string(&log).unwrap();
    assert_eq!(full.lines().count(), 20000);
}

#[test]
fn a_flood_of_output_leaves_capped_logs_with_head_note_and_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (out_log, err_log) = (dir.path().join("out.log"), dir.path().join("err.log"));
    // About 50 MB on stdout and 20 MB on stderr.
    let mut s = sh("seq 1 6500000; seq 1 2800000 >&2");
    s.log_cap = 8 << 20;
    s.stdout_log = Some(out_log.clone());
    s.stderr_log = Some(err_log.clone());
    let o = run(&s).unwrap();
    assert_eq!(o.end, End::Exited(0));
    assert!(o.stdout.len() <= DEFAULT_TAIL && o.stderr.len() <= 256 * 1024);
    for (log, last) in [(out_log, 6_500_000u64), (err_log, 2_800_000)] {
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.len() as u64 <= (8 << 20) + 200, "{}", text.len());
        let (head, rest) = text.split_once("[... ").expect("a cut note");
        let (note, tail) = rest.split_once('\n').unwrap();
        assert!(
            note.ends_with(" bytes cut by codex-autoresearch: logs are capped at 8 MiB (AUTORESEARCH_LOG_CAP) ...]"),
            "{note}"
        );
        let numbers = |t: &str| -> Vec<u64> { t.lines().filter_map(|l| l.parse().ok()).collect() };
        let (head, tail) = (numbers(head), numbers(tail));
        assert_eq!(head[..3], [1, 2, 3]);
        // The head's last line may be cut short; the lines before it are all there.
        assert!(head[..head.len() - 1].windows(2).all(|w| w[1] == w[0] + 1));
        assert_eq!(tail.last(), Some(&last));
        assert!(tail.windows(2).all(|w| w[1] == w[0] + 1));
        assert!(tail.len() > 100_000, "about 4 MiB of tail: {}", tail.len());
    }
}

#[test]
fn missing_program_is_a_spawn_error() {
    let s = Spec::argv(vec!["/nonexistent/prog".into()], Path::new("/tmp"));
    assert!(run(&s).is_err());
}

#[test]
fn an_orphaned_group_is_killed_from_its_record() {
    // A group whose supervisor "died": started detached here, then killed from the record.
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "sleep 60 & sleep 60"])
        .process_group(0)
        .stdout(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let record = GroupRecord {
        pgid: child.id() as i32,
        start_time: crate::procfs::process_start_time(child.id()).unwrap(),
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        kill_recorded_group(&record) >= 2,
        "the leader and its background child"
    );
    let _ = child.wait();
    assert!(group_members(record.pgid, record.start_time).is_empty());
    // A record whose processes started later than anything in the group touches nothing.
    let later = GroupRecord {
        start_time: u64::MAX,
        ..record
    };
    assert_eq!(kill_recorded_group(&later), 0);
}

#[test]
fn every_child_carries_the_run_token_and_no_descriptor_of_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let lock_path = dir.path().join("lock");
    let (_lock, _) = crate::artifacts::lock::Lock::acquire(&lock_path).unwrap();
    let o = run(&sh(
        "echo \"$AUTORESEARCH_RUN_TOKEN\"; for f in /proc/$$/fd/*; do readlink \"$f\"; done",
    ))
    .unwrap();
    let mut lines = o.stdout.lines();
    assert_eq!(lines.next(), Some(run_token()));
    assert!(run_token().starts_with(&format!("{}-", std::process::id())));
    assert!(
        !o.stdout.contains(&*lock_path.to_string_lossy()),
        "the lock's descriptor is close-on-exec: {}",
        o.stdout
    );
}

#[test]
fn the_processes_of_a_dead_run_are_found_by_token_and_ended() {
    let token = format!("test-{}-orphans", std::process::id());
    // An orphan that ignores SIGTERM, and one that left the process group; a process with a
    // token that merely starts with ours is not touched.
    let spawn = |script: &str, token: &str| {
        Command::new("sh")
            .args(["-c", script])
            .env(RUN_TOKEN_VAR, token)
            .process_group(0)
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut stubborn = spawn("trap '' TERM; while :; do sleep 0.05; done", &token);
    let mut plain = spawn("exec sleep 60", &token);
    let mut other = spawn("exec sleep 60", &format!("{token}-2"));
    let mut found = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && found.len() < 2 {
        thread::sleep(Duration::from_millis(20));
        found = run_processes(&token);
    }
    assert!(found.contains(&stubborn.id()) && found.contains(&plain.id()));
    assert!(!found.contains(&other.id()));
    assert!(has_run_token(plain.id(), &token));
    assert!(kill_run_processes(&token) >= 2);
    assert!(run_processes(&token).is_empty());
    assert_eq!(stubborn.wait().unwrap().signal(), Some(9));
    assert_eq!(plain.wait().unwrap().signal(), Some(15));
    assert_eq!(
        other.try_wait().unwrap(),
        None,
        "another token is left alone"
    );
    assert_eq!(kill_run_processes(&token), 0);
    other.kill().unwrap();
    other.wait().unwrap();
}

#[test]
fn signal_exit_is_reported() {
    let o = run(&sh("kill -9 $$")).unwrap();
    assert_eq!(o.end, End::Signaled(9));
}
