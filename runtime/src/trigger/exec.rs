//! The exec trigger: runs a program with `TRACEPARENT`/`TRACESTATE` in its environment.
//!
//! Why it exists: CLIs, batch jobs and scripts instrumented with OpenTelemetry pick the trace
//! context up from the environment. The program runs in its own process group so that, on
//! timeout or cancellation, everything it started is killed with it.
//!
//! What it must not do: go through a shell (arguments are passed as a list, never re-split or
//! expanded), let output grow without bound (each stream keeps at most [`MAX_CAPTURE`] bytes and
//! the rest is drained and dropped so the program never blocks on a full pipe), or leave processes
//! behind after a timeout.

use super::{
    ExecOutput, ExecSpec, MAX_CAPTURE, Response, TraceContext, TriggerError, TriggerOutcome,
};
use rustix::process::{Pid, Signal, kill_process_group};
use std::os::unix::process::ExitStatusExt as _;
use std::process::Stdio;
use std::time::{Instant, SystemTime};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::Command;

/// Kills the program's whole process group when dropped, unless the program finished.
struct GroupKiller {
    group: Option<Pid>,
    /// Known to [`crate::stop`] while it runs, so a second signal kills it too.
    registered: Option<crate::stop::Registered>,
}

impl GroupKiller {
    fn disarm(&mut self) {
        self.group = None;
        self.registered = None;
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if let Some(group) = self.group {
            // The group may be gone already; nothing useful to do about an error.
            let _ = kill_process_group(group, Signal::KILL);
        }
    }
}

/// Reads everything, keeping the first [`MAX_CAPTURE`] bytes. Returns the bytes and whether some
/// were dropped.
async fn read_bounded<R: AsyncRead + Unpin>(reader: Option<R>) -> (Vec<u8>, bool) {
    let Some(mut reader) = reader else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_CAPTURE - kept.len();
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
    (kept, truncated)
}

fn spawn_error(spec: &ExecSpec, e: &std::io::Error) -> TriggerError {
    match e.kind() {
        std::io::ErrorKind::NotFound => TriggerError::ProgramNotFound {
            program: spec.program.clone(),
        },
        std::io::ErrorKind::PermissionDenied => TriggerError::Spawn {
            program: spec.program.clone(),
            reason: "permission denied (is it executable?)".to_owned(),
        },
        _ => TriggerError::Spawn {
            program: spec.program.clone(),
            reason: e.to_string(),
        },
    }
}

pub(super) async fn fire(
    spec: &ExecSpec,
    ctx: &TraceContext,
) -> Result<TriggerOutcome, TriggerError> {
    if spec.program.is_empty() {
        return Err(TriggerError::ProgramNotFound {
            program: String::new(),
        });
    }
    let mut command = Command::new(&spec.program);
    for var in crate::service::cargo_package_vars() {
        command.env_remove(var);
    }
    command
        .args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .env("TRACEPARENT", ctx.traceparent())
        .env("TRACESTATE", ctx.tracestate())
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = &spec.cwd {
        // Checked here because spawning reports a missing directory as a missing program.
        if !cwd.is_dir() {
            return Err(TriggerError::Spawn {
                program: spec.program.clone(),
                reason: format!("working directory {} does not exist", cwd.display()),
            });
        }
        command.current_dir(cwd);
    }

    let started = SystemTime::now();
    let clock = Instant::now();
    let mut child = command.spawn().map_err(|e| spawn_error(spec, &e))?;
    // With process_group(0) the child leads a group whose id is its pid.
    let group = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw);
    let mut killer = GroupKiller {
        group,
        registered: group.map(crate::stop::Registered::new),
    };
    let stdin = child.stdin.take();
    let input = spec.stdin.clone().unwrap_or_default();
    let write_input = async move {
        if let Some(mut stdin) = stdin {
            // A program that exits without reading its input is not an error.
            let _ = stdin.write_all(input.as_bytes()).await;
            let _ = stdin.shutdown().await;
        }
    };
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let run = async {
        let (status, (out, out_cut), (err, err_cut), ()) = tokio::join!(
            child.wait(),
            read_bounded(stdout),
            read_bounded(stderr),
            write_input
        );
        (status, out, err, out_cut || err_cut)
    };
    let Ok((status, stdout, stderr, truncated)) = tokio::time::timeout(spec.timeout, run).await
    else {
        // `killer` kills the group (grandchildren too) when dropped; kill_on_drop reaps the child.
        drop(killer);
        let _ = child.start_kill();
        return Err(TriggerError::TimedOut {
            after: spec.timeout,
            target: format!("`{}`", spec.program),
        });
    };
    killer.disarm();
    let status = status.map_err(|e| TriggerError::Spawn {
        program: spec.program.clone(),
        reason: format!("could not wait for it: {e}"),
    })?;
    Ok(TriggerOutcome {
        started,
        duration: clock.elapsed(),
        response: Response::Exec(ExecOutput {
            exit_code: status.code(),
            signal: status.signal(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            truncated,
        }),
    })
}
