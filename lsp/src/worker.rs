//! The compile thread: compilations run, and are freed, on one dedicated thread.
//!
//! Keeping both on one thread lets the allocator (mimalloc in the `tbt` binary keeps freed
//! memory per thread) reuse a freed compilation's pages for the next one; spread over a pool of
//! blocking threads, each thread kept its own copy and the server's memory grew several-fold.
//! The async side never waits on the thread except through a oneshot channel.

use std::sync::OnceLock;
use std::sync::mpsc::{Sender, TryRecvError, channel};

/// Work for the thread: a compilation someone waits for, or freeing memory, which waits until
/// no compilation is queued.
enum Job {
    Run(Box<dyn FnOnce() + Send>),
    Drop(Box<dyn FnOnce() + Send>),
}

fn sender() -> Option<&'static Sender<Job>> {
    static WORKER: OnceLock<Option<Sender<Job>>> = OnceLock::new();
    WORKER
        .get_or_init(|| {
            let (tx, rx) = channel::<Job>();
            std::thread::Builder::new()
                .name("tbt-lsp-compile".into())
                .spawn(move || {
                    let mut drops: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
                    loop {
                        // Compilations first: memory is freed when nothing else is queued.
                        let job = match rx.try_recv() {
                            Ok(j) => j,
                            Err(TryRecvError::Disconnected) => break,
                            Err(TryRecvError::Empty) => {
                                if let Some(d) = drops.pop() {
                                    d();
                                    continue;
                                }
                                match rx.recv() {
                                    Ok(j) => j,
                                    Err(_) => break,
                                }
                            }
                        };
                        match job {
                            // A compiler panic fails that one request (its channel closes),
                            // not the thread.
                            Job::Run(f) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
                            }
                            // At most one compilation waits to be freed: memory stays
                            // bounded when edits keep the thread busy.
                            Job::Drop(f) => {
                                for d in drops.drain(..) {
                                    d();
                                }
                                drops.push(f);
                            }
                        }
                    }
                })
                .map_err(|e| eprintln!("tbt lsp: cannot start the compile thread: {e}"))
                .ok()?;
            Some(tx)
        })
        .as_ref()
}

/// Runs `f` on the compile thread and waits for its result without blocking the runtime;
/// `None` when it panicked or the thread could not be started.
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    sender()?
        .send(Job::Run(Box::new(move || {
            let _ = tx.send(f());
        })))
        .ok()?;
    rx.await.ok()
}

/// Drops `value` on the compile thread (where it was most likely allocated), without waiting.
pub fn drop_there<T: Send + 'static>(value: T) {
    if let Some(tx) = sender() {
        let _ = tx.send(Job::Drop(Box::new(move || drop(value))));
    }
}
