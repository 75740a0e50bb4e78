//! Ctrl-C and SIGTERM: set a flag that the uploads and the main flow check,
//! so the conversion stops cleanly (the VM left blocked and marked
//! incomplete, or removed) instead of dying half way.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: nix::libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// Installs the handlers (once is enough; later calls change nothing).
pub fn install() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe, and it replaces no handler Rust relies on.
        if let Err(e) = unsafe { sigaction(signal, &action) } {
            tracing::warn!(%signal, error = %e, "cannot catch the signal");
        }
    }
}

pub fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// The error a stop by the operator becomes.
pub fn error() -> anyhow::Error {
    anyhow::anyhow!("stopped by the operator (Ctrl-C or SIGTERM)")
}
