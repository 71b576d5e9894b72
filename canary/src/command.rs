//! The `command` deployer: any tool (ansible, scap, ssh, a script) run with the node and the
//! revision as its last arguments. Every command step runs through [`command_step`]: with a
//! deadline (`[canary.timeouts]`), after which its whole process group is stopped.

use std::time::Duration;

use async_trait::async_trait;

use crate::config::StepTimeouts;
use crate::provider::{Deployer, ProviderError, Result};

/// Runs `argv... <extra...>` with the default deadline of a command step
/// ([`StepTimeouts::default`]'s `deploy_seconds`).
pub async fn run(argv: &[String], extra: &[&str]) -> Result<String> {
    run_for(argv, extra, StepTimeouts::default().deploy()).await
}

/// Runs `argv... <extra...>` and returns its stdout; a non-zero exit is an error naming the
/// command and quoting the end of its stderr; past `timeout` the command and everything it
/// started is stopped and the error says so.
pub async fn run_for(argv: &[String], extra: &[&str], timeout: Duration) -> Result<String> {
    let step = command_step::Step::new(argv, extra, timeout);
    let out = command_step::run(&step)
        .await
        .map_err(|e| ProviderError::new(e.to_string()))?;
    if !out.status.success() {
        let tail = out.stderr_tail(3);
        return Err(ProviderError::new(format!(
            "`{}` failed ({}){}",
            step.shown(),
            out.status,
            if tail.is_empty() {
                String::new()
            } else {
                format!(": {tail}")
            }
        )));
    }
    Ok(out.stdout)
}

/// Deploys with `command <node> <revision>`, one node at a time.
#[derive(Debug, Clone)]
pub struct CommandDeployer {
    pub command: Vec<String>,
    /// `current <node>` prints the node's revision.
    pub current: Vec<String>,
    /// `smoke <node> <revision>` exits 0 when the node works.
    pub smoke: Vec<String>,
}

impl CommandDeployer {
    /// This deployer with the deadlines of `[canary.timeouts]` (without it, the defaults).
    pub fn with_timeouts(self, timeouts: StepTimeouts) -> TimedCommandDeployer {
        TimedCommandDeployer {
            steps: self,
            timeouts,
        }
    }
}

/// A [`CommandDeployer`] whose steps have the configured deadlines.
#[derive(Debug, Clone)]
pub struct TimedCommandDeployer {
    pub steps: CommandDeployer,
    pub timeouts: StepTimeouts,
}

#[async_trait]
impl Deployer for TimedCommandDeployer {
    async fn deploy(&self, nodes: &[String], revision: &str) -> Result<()> {
        for node in nodes {
            run_for(
                &self.steps.command,
                &[node, revision],
                self.timeouts.deploy(),
            )
            .await?;
        }
        Ok(())
    }

    async fn current(&self, node: &str) -> Result<Option<String>> {
        if self.steps.current.is_empty() {
            return Ok(None);
        }
        let out = run_for(&self.steps.current, &[node], self.timeouts.current()).await?;
        let rev = out.trim();
        Ok((!rev.is_empty()).then(|| rev.to_string()))
    }

    async fn smoke(&self, node: &str, revision: &str) -> Result<()> {
        if self.steps.smoke.is_empty() {
            return Ok(());
        }
        run_for(&self.steps.smoke, &[node, revision], self.timeouts.smoke())
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl Deployer for CommandDeployer {
    async fn deploy(&self, nodes: &[String], revision: &str) -> Result<()> {
        let timed = self.clone().with_timeouts(StepTimeouts::default());
        timed.deploy(nodes, revision).await
    }

    async fn current(&self, node: &str) -> Result<Option<String>> {
        let timed = self.clone().with_timeouts(StepTimeouts::default());
        timed.current(node).await
    }

    async fn smoke(&self, node: &str, revision: &str) -> Result<()> {
        let timed = self.clone().with_timeouts(StepTimeouts::default());
        timed.smoke(node, revision).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_with_node_and_revision_and_reports_failures() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let script = format!("echo \"$1 $2\" >> {}", log.display());
        let d = CommandDeployer {
            command: vec!["sh".into(), "-c".into(), script, "deploy".into()],
            current: vec!["sh".into(), "-c".into(), "echo v1-$1".into(), "cur".into()],
            smoke: vec![
                "sh".into(),
                "-c".into(),
                "echo broken >&2; exit 3".into(),
                "smoke".into(),
            ],
        };
        d.deploy(&["a".into(), "b".into()], "v2").await.unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "a v2\nb v2\n");
        assert_eq!(d.current("a").await.unwrap().as_deref(), Some("v1-a"));
        let err = d.smoke("a", "v2").await.unwrap_err().to_string();
        assert!(err.contains("failed (exit status: 3): broken"), "{err}");
    }

    /// A deployer that hangs (and started a child of its own) is stopped at its deadline with
    /// everything it started, and the error names the step and the key.
    #[tokio::test]
    async fn a_hanging_deployer_is_stopped_with_its_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let script = format!(
            "sleep 1000 & echo $! >> {p}; echo $$ >> {p}; sleep 1000",
            p = pids.display()
        );
        let d = CommandDeployer {
            command: vec!["sh".into(), "-c".into(), script, "deploy".into()],
            current: vec![],
            smoke: vec![],
        }
        .with_timeouts(StepTimeouts {
            deploy_seconds: 1,
            ..StepTimeouts::default()
        });
        let err = d
            .deploy(&["n1".into()], "v2")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("still running after 1s (timeout_seconds)"),
            "{err}"
        );
        assert!(err.contains("n1 v2"), "{err}");
        let pids: Vec<i32> = std::fs::read_to_string(&pids)
            .unwrap()
            .lines()
            .map(|l| l.trim().parse().unwrap())
            .collect();
        assert_eq!(pids.len(), 2);
        let gone = |pid: i32| match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        };
        for _ in 0..50 {
            if pids.iter().all(|&p| gone(p)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for p in pids {
            assert!(gone(p), "process {p} of the deployer outlived its timeout");
        }
    }
}
