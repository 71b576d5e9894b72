//! Runs one command step (a deployer, a smoke test, a depool or repool command, a revision
//! check, an in-flight or liveness command, a maintenance hook) with a deadline.
//!
//! The command runs in a process group of its own. When the deadline passes, or the caller
//! stops waiting (the future is dropped), the whole group is stopped: `SIGTERM`, then `SIGKILL`
//! after a grace period, so a script's children (an `ssh`, a `sleep`, a background job) do not
//! outlive the step. The command gets no standard input; its output is collected.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{kill_process_group, test_kill_process_group, Pid, Signal};
use tokio::io::AsyncReadExt;

/// How long a stopped group has between `SIGTERM` and `SIGKILL`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// One command to run: `argv` followed by `extra` (the node, the revision...).
#[derive(Debug, Clone)]
pub struct Step<'a> {
    pub argv: &'a [String],
    pub extra: &'a [&'a str],
    pub timeout: Duration,
    /// Between `SIGTERM` and `SIGKILL` to the group on timeout.
    pub grace: Duration,
}

impl<'a> Step<'a> {
    pub fn new(argv: &'a [String], extra: &'a [&'a str], timeout: Duration) -> Step<'a> {
        Step {
            argv,
            extra,
            timeout,
            grace: DEFAULT_GRACE,
        }
    }

    /// The whole command line, as messages show it.
    pub fn shown(&self) -> String {
        let mut all: Vec<&str> = self.argv.iter().map(String::as_str).collect();
        all.extend_from_slice(self.extra);
        all.join(" ")
    }
}

/// What a finished command left.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The last `n` lines of standard error, joined with ` / ` (for one-line messages).
    pub fn stderr_tail(&self, n: usize) -> String {
        tail(&self.stderr, n).join(" / ")
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().rev().take(n).collect();
    lines.into_iter().rev().collect()
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("empty command")]
    Empty,
    #[error("`{command}`: cannot run: {error}")]
    Spawn {
        command: String,
        error: std::io::Error,
    },
    #[error("`{command}` still running after {}s (timeout_seconds): stopped with its process group", .timeout.as_secs_f64())]
    TimedOut { command: String, timeout: Duration },
    #[error("`{command}`: {error}")]
    Io {
        command: String,
        error: std::io::Error,
    },
}

/// Runs the step to its end or its deadline. A non-zero exit is not an error here: the caller
/// reads [`Output::status`].
pub async fn run(step: &Step<'_>) -> Result<Output, StepError> {
    let (program, args) = step.argv.split_first().ok_or(StepError::Empty)?;
    let command = step.shown();
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .args(step.extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|error| StepError::Spawn {
            command: command.clone(),
            error,
        })?;
    // The group's id is the child's pid (`process_group(0)`).
    let mut group = Group(child.id().and_then(|id| Pid::from_raw(id as i32)));
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let finished = async {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        // The pipes close when every process holding them is gone: a background child of the
        // command keeps the step running, and is stopped with it at the deadline.
        let (status, o, e) = tokio::join!(
            child.wait(),
            stdout.read_to_end(&mut out),
            stderr.read_to_end(&mut err)
        );
        let io = |error| StepError::Io {
            command: command.clone(),
            error,
        };
        let status = status.map_err(io)?;
        o.map_err(io)?;
        e.map_err(io)?;
        Ok(Output {
            status,
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
        })
    };
    match tokio::time::timeout(step.timeout, finished).await {
        Ok(result) => {
            // The command ended and closed its output: what it started on purpose (a daemon
            // with its own output) is its business.
            group.disarm();
            result
        }
        Err(_) => {
            group.stop(step.grace).await;
            Err(StepError::TimedOut {
                command,
                timeout: step.timeout,
            })
        }
    }
}

/// A command's process group; killed when dropped, so a step whose caller stops waiting
/// leaves nothing running.
struct Group(Option<Pid>);

impl Group {
    fn disarm(&mut self) {
        self.0 = None;
    }

    fn alive(&self) -> bool {
        self.0
            .is_some_and(|pid| test_kill_process_group(pid).is_ok())
    }

    fn kill(&self) {
        if let Some(pid) = self.0 {
            let _ = kill_process_group(pid, Signal::KILL);
        }
    }

    /// `SIGTERM`, then `SIGKILL` once `grace` has passed with any process of the group left.
    async fn stop(&self, grace: Duration) {
        let Some(pid) = self.0 else { return };
        let _ = kill_process_group(pid, Signal::TERM);
        let deadline = tokio::time::Instant::now() + grace;
        while self.alive() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.kill();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into(), "step".into()]
    }

    fn gone(pid: i32) -> bool {
        // A zombie is still "there" for kill(2) until reaped; /proc tells the state.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        }
    }

    #[tokio::test]
    async fn output_and_status_are_returned() {
        let argv = sh("echo \"$1 $2\"; echo warn >&2; exit 3");
        let out = run(&Step::new(&argv, &["a", "v2"], Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(out.stdout, "a v2\n");
        assert_eq!(out.stderr_tail(3), "warn");
        assert_eq!(out.status.code(), Some(3));
    }

    #[tokio::test]
    async fn a_step_past_its_deadline_is_stopped_with_its_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        // A deployer that never ends and leaves a grandchild behind, which ignores SIGTERM.
        let script = format!(
            "sh -c 'trap \"\" TERM; echo $$ >> {p}; while :; do sleep 1; done' & echo $$ >> {p}; sleep 1000",
            p = pids.display()
        );
        let argv = sh(&script);
        let mut step = Step::new(&argv, &[], Duration::from_millis(700));
        step.grace = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let err = run(&step).await.unwrap_err();
        assert!(matches!(err, StepError::TimedOut { .. }), "{err}");
        assert!(err.to_string().contains("still running after"), "{err}");
        let waited = started.elapsed();
        assert!(waited < Duration::from_secs(5), "stopped in {waited:?}");
        let pids: Vec<i32> = std::fs::read_to_string(&pids)
            .unwrap()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        assert_eq!(pids.len(), 2, "the step and its grandchild started");
        // Reaped by init shortly after SIGKILL.
        for _ in 0..50 {
            if pids.iter().all(|&p| gone(p)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for p in pids {
            assert!(gone(p), "process {p} of the step's group is still running");
        }
    }

    #[tokio::test]
    async fn a_dropped_step_leaves_nothing_running() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let script = format!(
            "sleep 1000 & echo $! >> {p}; echo $$ >> {p}; wait",
            p = pids.display()
        );
        let argv = sh(&script);
        let step = Step::new(&argv, &[], Duration::from_secs(100));
        let _ = tokio::time::timeout(Duration::from_millis(500), run(&step)).await;
        let pids: Vec<i32> = std::fs::read_to_string(&pids)
            .unwrap()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        for _ in 0..50 {
            if pids.iter().all(|&p| gone(p)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for p in pids {
            assert!(gone(p), "process {p} outlived its dropped step");
        }
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_error_naming_it() {
        let argv = vec!["/nonexistent/deployer".to_string()];
        let err = run(&Step::new(&argv, &["n1"], Duration::from_secs(1)))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`/nonexistent/deployer n1`: cannot run"),
            "{err}"
        );
    }
}
