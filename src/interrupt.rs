//! Ctrl-C. SIGINT no longer ends xone wherever it happens to be: outside anything that must
//! finish, xone says so and exits 130 at once; inside a `Hold` (a write transaction, a result
//! that must reach the user once it is recorded, a rollout being followed) the work in hand
//! finishes, is reported, and xone exits 130 after it. A second Ctrl-C outside a hold ends
//! xone at once.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static HELD: AtomicUsize = AtomicUsize::new(0);
/// Set while xone decides to exit at once; a hold taken meanwhile waits for the exit.
static EXITING: AtomicBool = AtomicBool::new(false);
/// The signal handler's way to wake the thread that acts on it: writing a byte is all a
/// signal handler may safely do.
static WAKE: OnceLock<UnixStream> = OnceLock::new();

/// Takes over SIGINT. Called once, early in `main`.
pub fn install() {
    let Ok((mut rx, tx)) = UnixStream::pair() else { return };
    let _ = tx.set_nonblocking(true);
    if WAKE.set(tx).is_err() {
        return;
    }
    // Whether to exit at once is decided at the signal, not when the thread wakes: by then
    // a rollout's follower may have ended its hold to report the interruption itself.
    let action = || {
        REQUESTED.store(true, Ordering::SeqCst);
        if HELD.load(Ordering::SeqCst) == 0 {
            if let Some(mut w) = WAKE.get() {
                let _ = w.write(&[1]);
            }
        }
    };
    // SAFETY: the action only stores an atomic and writes one byte to a socket, both
    // async-signal-safe.
    if unsafe { signal_hook_registry::register(libc::SIGINT, action) }.is_err() {
        return;
    }
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        while rx.read(&mut byte).is_ok_and(|n| n > 0) {
            // With `hold`, a Dekker pair: either this sees the hold (and main finishes the
            // work and exits 130), or the hold sees EXITING and waits for the exit.
            EXITING.store(true, Ordering::SeqCst);
            if HELD.load(Ordering::SeqCst) == 0 {
                let _ = writeln!(std::io::stderr(), "interrupted");
                std::process::exit(130);
            }
            EXITING.store(false, Ordering::SeqCst);
        }
    });
}

/// Whether Ctrl-C was pressed.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// While one lives, Ctrl-C waits for the work in hand to finish.
pub struct Hold(());

pub fn hold() -> Hold {
    HELD.fetch_add(1, Ordering::SeqCst);
    while EXITING.load(Ordering::SeqCst) {
        // xone is exiting for a Ctrl-C that came before this work began: it never begins.
        HELD.fetch_sub(1, Ordering::SeqCst);
        std::thread::park_timeout(std::time::Duration::from_millis(10));
        HELD.fetch_add(1, Ordering::SeqCst);
    }
    Hold(())
}

impl Drop for Hold {
    fn drop(&mut self) {
        HELD.fetch_sub(1, Ordering::SeqCst);
    }
}
