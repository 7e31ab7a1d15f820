//! SIGINT, SIGTERM and SIGHUP: the first one sets a flag that the loop and the process
//! supervisor poll (they kill the running child group, roll back and record the interruption);
//! a second one kills the running child group at once and exits (the in-flight marker makes that
//! recoverable). A watcher thread receives the signals, so no code runs inside a signal handler.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

static RECEIVED: AtomicI32 = AtomicI32::new(0);
static CHILD_GROUP: AtomicI32 = AtomicI32::new(0);

/// Installs the watcher once. Safe to call more than once.
pub fn install() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        for sig in signals.forever() {
            // A run started by `launch` has no terminal to lose: SIGHUP does not stop it.
            if sig == SIGHUP && crate::launch::child::detached() {
                continue;
            }
            if RECEIVED
                .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                continue;
            }
            // A second signal: stop now, but never leave a child group running behind us.
            let group = CHILD_GROUP.load(Ordering::SeqCst);
            if group > 0 {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(group),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            std::process::exit(i32::from(exit_code(sig)));
        }
    });
}

/// Records the process group of the child being supervised (0 when none), so a second signal
/// can kill it before the engine exits.
pub fn set_child_group(pgid: i32) {
    CHILD_GROUP.store(pgid, Ordering::SeqCst);
}

/// Returns the first signal received, if any.
pub fn pending() -> Option<i32> {
    let v = RECEIVED.load(Ordering::SeqCst);
    (v != 0).then_some(v)
}

/// Returns the exit code for an interrupting signal: 128 + its number (130, 143, 129).
pub fn exit_code(sig: i32) -> u8 {
    match sig {
        SIGTERM => crate::error::exit::SIGTERM,
        SIGHUP => crate::error::exit::SIGHUP,
        _ => crate::error::exit::SIGINT,
    }
}
