//! SIGINT/SIGTERM handling: the first signal sets a flag the loop and the process supervisor poll;
//! a second one exits at once (the in-flight marker makes that recoverable).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use signal_hook::consts::{SIGINT, SIGTERM};

/// Installs the handlers once. Safe to call more than once.
pub fn install() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let seen = Arc::new(AtomicBool::new(false));
    for (sig, code) in [(SIGINT, 130), (SIGTERM, 143)] {
        // Registered first, so it runs before `seen` is set by this same signal: a second signal
        // (of either kind) finds `seen` already true and exits immediately.
        let _ = signal_hook::flag::register_conditional_shutdown(sig, code, Arc::clone(&seen));
        let _ = signal_hook::flag::register(sig, Arc::clone(&seen));
        let _ = signal_hook::flag::register_usize(sig, signal_static(), sig as usize);
    }
}

fn signal_static() -> Arc<AtomicUsize> {
    // signal-hook wants an Arc; mirror it into the static so callers need no handle.
    static MIRROR: std::sync::OnceLock<Arc<AtomicUsize>> = std::sync::OnceLock::new();
    Arc::clone(MIRROR.get_or_init(|| Arc::new(AtomicUsize::new(0))))
}

/// Returns the first signal received (SIGINT or SIGTERM), if any.
pub fn pending() -> Option<i32> {
    let v = signal_static().load(Ordering::SeqCst);
    (v != 0).then_some(v as i32)
}

/// Returns the exit code for an interrupting signal (130 for SIGINT, 143 for SIGTERM).
pub fn exit_code(sig: i32) -> u8 {
    if sig == SIGTERM {
        crate::error::exit::SIGTERM
    } else {
        crate::error::exit::SIGINT
    }
}

/// Returns the signal's name.
pub fn name(sig: i32) -> &'static str {
    if sig == SIGTERM { "SIGTERM" } else { "SIGINT" }
}
