//! Worker fleets: queue consumers behind no load balancer. Depooling a worker means stopping
//! its consumption (`depool_command <node>`, which returns once the node has finished what it
//! holds), repooling means starting it again (`repool_command <node>`). Work is shared by
//! count, not by weight, so the canary's weight is only recorded.
//!
//! A node in both roles at once (the canary node returning to production) is one consuming
//! process: it is started when it enters its first role and stopped when it leaves its last.
//!
//! Which node consumes in which role is kept in the state layer beside the runs
//! (`<scope>/docs/worker-roles.json`, in S3 when `[state] url` is set), so that a run resumed
//! on another runner knows the roles; it is written with compare-and-swap after each command.
//! A crash between a command and the write repeats the command on resume: both commands must
//! be idempotent.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::StepTimeouts;
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
    /// Where the roles are kept; no document means every node consumes in production.
    pub state: state::Scope,
}

/// The roles document's name in the state layer.
pub const ROLES: &str = "worker-roles.json";

impl WorkerPool {
    async fn load(&self) -> Result<(State, Option<state::Etag>)> {
        let fail = |e: state::StateError| ProviderError::new(e.to_string());
        match self.state.read_doc(ROLES).await.map_err(fail)? {
            Some((bytes, etag)) => serde_json::from_slice(&bytes)
                .map(|s| (s, Some(etag)))
                .map_err(|e| {
                    ProviderError::new(format!(
                        "{}/docs/{ROLES}: unreadable worker roles: {e}",
                        self.state.location()
                    ))
                }),
            None => Ok((
                State {
                    prod: self.nodes.clone(),
                    ..State::default()
                },
                None,
            )),
        }
    }

    async fn save(&self, state: &State, over: Option<&state::Etag>) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(state).expect("state serializes");
        self.state
            .write_doc(ROLES, &bytes, over)
            .await
            .map(|_| ())
            .map_err(|e| ProviderError::new(e.to_string()))
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

impl WorkerPool {
    /// This pool with the deadlines of `[canary.timeouts]` for its commands (without it, the
    /// defaults).
    pub fn with_timeouts(self, timeouts: StepTimeouts) -> TimedWorkerPool {
        TimedWorkerPool {
            pool: self,
            timeouts,
        }
    }

    fn timed(&self) -> TimedWorkerPool {
        self.clone().with_timeouts(StepTimeouts::default())
    }
}

/// A [`WorkerPool`] whose depool and repool commands have the configured deadlines.
#[derive(Debug, Clone)]
pub struct TimedWorkerPool {
    pub pool: WorkerPool,
    pub timeouts: StepTimeouts,
}

#[async_trait]
impl LoadBalancer for TimedWorkerPool {
    fn judged_from_repool(&self) -> bool {
        true
    }

    async fn members(&self, pool: Pool) -> Result<Vec<NodeHealth>> {
        let (mut state, _) = self.pool.load().await?;
        Ok(WorkerPool::list(&mut state, pool)
            .iter()
            .map(|n| NodeHealth {
                node: n.clone(),
                state: "healthy".into(),
            })
            .collect())
    }

    async fn depool(&self, pool: Pool, nodes: &[String]) -> Result<()> {
        let this = &self.pool;
        for node in nodes {
            let (mut state, etag) = this.load().await?;
            if !WorkerPool::list(&mut state, pool).contains(node) {
                continue;
            }
            // One process consumes in either role: it stops only when it leaves the last.
            if !WorkerPool::list(&mut state, other(pool)).contains(node) {
                crate::command::run_for(&this.depool_command, &[node], self.timeouts.depool())
                    .await?;
            }
            WorkerPool::list(&mut state, pool).retain(|n| n != node);
            this.save(&state, etag.as_ref()).await?;
        }
        Ok(())
    }

    async fn repool(&self, pool: Pool, nodes: &[String]) -> Result<()> {
        let this = &self.pool;
        for node in nodes {
            let (mut state, etag) = this.load().await?;
            if WorkerPool::list(&mut state, pool).contains(node) {
                continue;
            }
            if !WorkerPool::list(&mut state, other(pool)).contains(node) {
                crate::command::run_for(&this.repool_command, &[node], self.timeouts.repool())
                    .await?;
            }
            let list = WorkerPool::list(&mut state, pool);
            list.push(node.clone());
            list.sort();
            this.save(&state, etag.as_ref()).await?;
        }
        Ok(())
    }

    async fn set_weight(&self, canary: u8) -> Result<()> {
        let (mut state, etag) = self.pool.load().await?;
        state.weight = canary;
        self.pool.save(&state, etag.as_ref()).await
    }

    async fn weight(&self) -> Result<u8> {
        Ok(self.pool.load().await?.0.weight)
    }
}

#[async_trait]
impl LoadBalancer for WorkerPool {
    fn judged_from_repool(&self) -> bool {
        true
    }

    async fn members(&self, pool: Pool) -> Result<Vec<NodeHealth>> {
        self.timed().members(pool).await
    }

    async fn depool(&self, pool: Pool, nodes: &[String]) -> Result<()> {
        self.timed().depool(pool, nodes).await
    }

    async fn repool(&self, pool: Pool, nodes: &[String]) -> Result<()> {
        self.timed().repool(pool, nodes).await
    }

    async fn set_weight(&self, canary: u8) -> Result<()> {
        self.timed().set_weight(canary).await
    }

    async fn weight(&self) -> Result<u8> {
        self.timed().weight().await
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
            state: state::Scope::new(
                std::sync::Arc::new(state::local::LocalStore::new(dir.join("state"))),
                "gatekeeper",
                "svc-prod",
            )
            .unwrap(),
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

        // A second pool over the same state sees the same roles (a resumed process).
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

    #[tokio::test]
    async fn a_depool_command_past_its_deadline_fails_and_leaves_the_role_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = pool(dir.path());
        p.depool_command = vec!["sh".into(), "-c".into(), "sleep 1000".into()];
        let p = p.with_timeouts(StepTimeouts {
            depool_seconds: 1,
            ..StepTimeouts::default()
        });
        let err = p.depool(Pool::Prod, &["w2".into()]).await.unwrap_err();
        assert!(err.to_string().contains("still running after 1s"), "{err}");
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
