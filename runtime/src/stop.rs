//! How a run stops on a signal. The first SIGINT or SIGTERM cancels the run: what has finished is
//! reported (the rest as interrupted), the services are stopped as usual, and tbt exits with
//! 128 + the signal (130, 143). A second signal stops at once: every process group tbt started
//! — services and exec triggers, each registered here while it runs ([`Registered`]) — is
//! killed, and tbt exits without reports.

use rustix::process::{Pid, Signal, kill_process_group};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};
use tokio::sync::watch;

/// SIGINT's number.
pub const SIGINT: i32 = 2;
/// SIGTERM's number.
pub const SIGTERM: i32 = 15;

/// The process groups of running services and exec triggers.
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// The first signal received (0: none).
static SIGNALLED: AtomicI32 = AtomicI32::new(0);

/// A process group registered while it runs; dropping it unregisters it.
#[derive(Debug)]
pub struct Registered(i32);

impl Registered {
    /// Registers `group` (a child that leads its own group: its pid).
    pub fn new(group: Pid) -> Registered {
        let id = group.as_raw_nonzero().get();
        GROUPS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(id);
        Registered(id)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut groups = GROUPS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(i) = groups.iter().position(|&g| g == self.0) {
            groups.swap_remove(i);
        }
    }
}

/// Kills every registered process group (SIGKILL).
pub fn kill_all() {
    let groups = GROUPS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for &g in groups.iter() {
        if let Some(pid) = Pid::from_raw(g) {
            // ESRCH (already gone) is fine.
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }
}

/// The first signal that stopped the run, if one did.
pub fn signalled() -> Option<i32> {
    match SIGNALLED.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Waits for SIGINT or SIGTERM: the first sets `cancel` (and [`signalled`]), `announce` says so;
/// the second kills every registered group and exits with 128 + its number. Returns if the
/// signals cannot be watched.
pub async fn watch_signals(cancel: watch::Sender<bool>, announce: impl Fn(i32)) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let next = async |int: &mut tokio::signal::unix::Signal,
                      term: &mut tokio::signal::unix::Signal| {
        tokio::select! {
            _ = int.recv() => SIGINT,
            _ = term.recv() => SIGTERM,
        }
    };
    let first = next(&mut int, &mut term).await;
    SIGNALLED.store(first, Ordering::SeqCst);
    let _ = cancel.send(true);
    announce(first);
    let second = next(&mut int, &mut term).await;
    kill_all();
    std::process::exit(128 + second);
}
