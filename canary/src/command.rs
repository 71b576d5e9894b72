//! The `command` deployer: any tool (ansible, scap, ssh, a script) run with the node and the
//! revision as its last arguments.

use async_trait::async_trait;

use crate::provider::{Deployer, ProviderError, Result};

/// Runs `argv... <extra...>` and returns its stdout; a non-zero exit is an error naming the
/// command and quoting the end of its stderr.
pub async fn run(argv: &[String], extra: &[&str]) -> Result<String> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| ProviderError::new("empty command"))?;
    let shown = || {
        let mut all: Vec<&str> = argv.iter().map(String::as_str).collect();
        all.extend_from_slice(extra);
        all.join(" ")
    };
    let out = tokio::process::Command::new(program)
        .args(args)
        .args(extra)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| ProviderError::new(format!("`{}`: cannot run: {e}", shown())))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(ProviderError::new(format!(
            "`{}` failed ({}){}",
            shown(),
            out.status,
            if tail.is_empty() {
                String::new()
            } else {
                format!(": {}", tail.join(" / "))
            }
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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

#[async_trait]
impl Deployer for CommandDeployer {
    async fn deploy(&self, nodes: &[String], revision: &str) -> Result<()> {
        for node in nodes {
            run(&self.command, &[node, revision]).await?;
        }
        Ok(())
    }

    async fn current(&self, node: &str) -> Result<Option<String>> {
        if self.current.is_empty() {
            return Ok(None);
        }
        let out = run(&self.current, &[node]).await?;
        let rev = out.trim();
        Ok((!rev.is_empty()).then(|| rev.to_string()))
    }

    async fn smoke(&self, node: &str, revision: &str) -> Result<()> {
        if self.smoke.is_empty() {
            return Ok(());
        }
        run(&self.smoke, &[node, revision]).await.map(|_| ())
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
}
