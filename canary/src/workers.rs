//! Worker fleets: queue consumers behind no load balancer. Depooling a worker means stopping
//! its consumption (`depool_command <node>`, which returns once the node has finished what it
//! holds), repooling means starting it again (`repool_command <node>`). Work is shared by
//! count, not by weight, so the canary's weight is only recorded.
//!
//! A node in both roles at once (the canary node returning to production) is one consuming
//! process: it is started when it enters its first role and stopped when it leaves its last.
//!
//! Which node consumes in which role is kept in a small state file next to the journal,
//! written atomically after each command. A crash between a command and the write repeats the
//! command on resume: both commands must be idempotent.

use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::machine::Pool;
use crate::provider::{LoadBalancer, NodeHealth, ProviderError, Result};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    prod: Vec<String>,
    canary: Vec<String>,
    weight: u8,
}

/// The [`LoadBalancer`] of a worker fleet.
#[derive(Debug, Clone)]
pub struct WorkerPool {
    pub nodes: Vec<String>,
    pub depool_command: Vec<String>,
    pub repool_command: Vec<String>,
    /// Where the roles are kept; absent means every node consumes in production.
    pub state_file: PathBuf,
}

impl WorkerPool {
    fn load(&self) -> Result<State> {
        match std::fs::read(&self.state_file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                ProviderError::new(format!(
                    "{}: unreadable worker state: {e}",
                    self.state_file.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State {
                prod: self.nodes.clone(),
                ..State::default()
            }),
            Err(e) => Err(ProviderError::new(format!(
                "{}: {e}",
                self.state_file.display()
            ))),
        }
    }

    fn save(&self, state: &State) -> Result<()> {
        let fail =
            |e: std::io::Error| ProviderError::new(format!("{}: {e}", self.state_file.display()));
        if let Some(dir) = self.state_file.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = self.state_file.with_extension("tmp");
        let bytes = serde_json::to_vec_pretty(state).expect("state serializes");
        std::fs::write(&tmp, bytes).map_err(fail)?;
        std::fs::rename(&tmp, &self.state_file).map_err(fail)
    }

    fn list(state: &mut State, pool: Pool) -> &mut Vec<String> {
        match pool {
            Pool::Prod => &mut state.prod,
            Pool::Canary => &mut state.canary,
        }
    }
}

fn other(pool: Pool) -> Pool {
    match pool {
        Pool::Prod => Pool::Canary,
        Pool::Canary => Pool::Prod,
    }
}

#[async_trait]
impl LoadBalancer for WorkerPool {
    fn node_metrics_span_pools(&self) -> bool {
        true
    }

    async fn members(&self, pool: Pool) -> Result<Vec<NodeHealth>> {
        let mut state = self.load()?;
        Ok(Self::list(&mut state, pool)
            .iter()
            .map(|n| NodeHealth {
                node: n.clone(),
                state: "healthy".into(),
            })
            .collect())
    }

    async fn depool(&self, pool: Pool, nodes: &[String]) -> Result<()> {
        for node in nodes {
            let mut state = self.load()?;
            if !Self::list(&mut state, pool).contains(node) {
                continue;
            }
            // One process consumes in either role: it stops only when it leaves the last.
            if !Self::list(&mut state, other(pool)).contains(node) {
                crate::command::run(&self.depool_command, &[node]).await?;
            }
            Self::list(&mut state, pool).retain(|n| n != node);
            self.save(&state)?;
        }
        Ok(())
    }

    async fn repool(&self, pool: Pool, nodes: &[String]) -> Result<()> {
        for node in nodes {
            let mut state = self.load()?;
            if Self::list(&mut state, pool).contains(node) {
                continue;
            }
            if !Self::list(&mut state, other(pool)).contains(node) {
                crate::command::run(&self.repool_command, &[node]).await?;
            }
            let list = Self::list(&mut state, pool);
            list.push(node.clone());
            list.sort();
            self.save(&state)?;
        }
        Ok(())
    }

    async fn set_weight(&self, canary: u8) -> Result<()> {
        let mut state = self.load()?;
        state.weight = canary;
        self.save(&state)
    }

    async fn weight(&self) -> Result<u8> {
        Ok(self.load()?.weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(dir: &std::path::Path) -> WorkerPool {
        let log = dir.join("log");
        let script = |verb: &str| {
            vec![
                "sh".to_string(),
                "-c".to_string(),
                format!("echo {verb} \"$0\" >> {}", log.display()),
            ]
        };
        WorkerPool {
            nodes: vec!["w1".into(), "w2".into(), "w3".into()],
            depool_command: script("stop"),
            repool_command: script("start"),
            state_file: dir.join("svc.pool.json"),
        }
    }

    #[tokio::test]
    async fn moves_a_node_between_roles_once_and_records_it() {
        let dir = tempfile::tempdir().unwrap();
        let p = pool(dir.path());
        let names = |h: Vec<NodeHealth>| h.into_iter().map(|h| h.node).collect::<Vec<_>>();
        assert_eq!(
            names(p.members(Pool::Prod).await.unwrap()),
            ["w1", "w2", "w3"]
        );
        assert!(p.members(Pool::Canary).await.unwrap().is_empty());

        p.depool(Pool::Prod, &["w1".into()]).await.unwrap();
        // Repeated (as a resume does): no second command.
        p.depool(Pool::Prod, &["w1".into()]).await.unwrap();
        p.repool(Pool::Canary, &["w1".into()]).await.unwrap();
        p.repool(Pool::Canary, &["w1".into()]).await.unwrap();
        p.set_weight(5).await.unwrap();
        assert_eq!(names(p.members(Pool::Prod).await.unwrap()), ["w2", "w3"]);
        assert_eq!(names(p.members(Pool::Canary).await.unwrap()), ["w1"]);
        assert_eq!(p.weight().await.unwrap(), 5);

        // A second pool over the same file sees the same roles (a resumed process).
        let again = pool(dir.path());
        assert_eq!(names(again.members(Pool::Canary).await.unwrap()), ["w1"]);
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
        assert_eq!(log, "stop w1\nstart w1\n");
    }

    #[tokio::test]
    async fn returning_the_canary_to_production_keeps_it_consuming() {
        let dir = tempfile::tempdir().unwrap();
        let p = pool(dir.path());
        p.depool(Pool::Prod, &["w1".into()]).await.unwrap();
        p.repool(Pool::Canary, &["w1".into()]).await.unwrap();
        // Back to production first, then out of the canary role: never stopped.
        p.repool(Pool::Prod, &["w1".into()]).await.unwrap();
        p.depool(Pool::Canary, &["w1".into()]).await.unwrap();
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
        assert_eq!(log, "stop w1\nstart w1\n");
        // Out of both roles: stopped.
        p.depool(Pool::Prod, &["w1".into()]).await.unwrap();
        let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
        assert_eq!(log, "stop w1\nstart w1\nstop w1\n");
    }

    #[tokio::test]
    async fn a_failing_command_leaves_the_role_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = pool(dir.path());
        p.depool_command = vec!["sh".into(), "-c".into(), "exit 3".into()];
        let err = p.depool(Pool::Prod, &["w2".into()]).await.unwrap_err();
        assert!(err.to_string().contains("failed"), "{err}");
        let prod: Vec<String> = p
            .members(Pool::Prod)
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.node)
            .collect();
        assert_eq!(prod, ["w1", "w2", "w3"]);
    }
}
