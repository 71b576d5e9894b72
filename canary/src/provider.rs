//! The narrow traits the executor acts through. One AWS implementation each lives in
//! [`crate::aws`]; [`crate::command`] has the command deployer and the worker-fleet pool.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::machine::Pool;

/// A provider call that failed; the message names the resource to look at.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProviderError(pub String);

impl ProviderError {
    pub fn new(message: impl Into<String>) -> Self {
        ProviderError(message.into())
    }
}

pub type Result<T> = std::result::Result<T, ProviderError>;

/// Health of one node in one pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeHealth {
    pub node: String,
    /// `healthy`, `initial`, `unhealthy`, `draining`, `unused`...
    pub state: String,
}

/// Where traffic goes: the production and canary groups, or a worker fleet.
#[async_trait]
pub trait LoadBalancer: Send + Sync {
    /// The nodes registered in the pool (any state but gone).
    async fn members(&self, pool: Pool) -> Result<Vec<NodeHealth>>;
    async fn depool(&self, pool: Pool, nodes: &[String]) -> Result<()>;
    async fn repool(&self, pool: Pool, nodes: &[String]) -> Result<()>;
    /// The listener's weighted forward: `canary` percent to the canary group.
    async fn set_weight(&self, canary: u8) -> Result<()>;
    /// The canary weight the listener has now.
    async fn weight(&self) -> Result<u8>;
    /// Whether the canary's metrics before its repool belong to the old revision: true where
    /// a node keeps its metric identity in both roles (a worker's per-node series), so the
    /// bake judges only whole minutes after the repool. A canary target group has no traffic
    /// before the repool, so its bake may read the minute before.
    fn judged_from_repool(&self) -> bool {
        false
    }
}

/// Puts a revision on nodes.
#[async_trait]
pub trait Deployer: Send + Sync {
    /// Deploys and returns once the nodes run `revision` (or the deploy failed).
    async fn deploy(&self, nodes: &[String], revision: &str) -> Result<()>;
    /// The revision a node runs, when the deployer can tell.
    async fn current(&self, node: &str) -> Result<Option<String>>;
    /// Smoke-tests a node after deploy; `Ok` when there is no smoke test.
    async fn smoke(&self, node: &str, revision: &str) -> Result<()>;
}

/// Requests, errors and latency of both groups over one window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub requests: u64,
    pub errors: u64,
    /// One aggregate latency for the window, when there was traffic.
    pub latency_ms: Option<f64>,
}

#[async_trait]
pub trait Metrics: Send + Sync {
    /// Both groups over `[start, end)` (seconds since the epoch, whole minutes): (baseline,
    /// canary), one aggregate each.
    async fn window(&self, start: u64, end: u64) -> Result<(Sample, Sample)>;
    /// Alarms of the service (by name prefix) in ALARM now.
    async fn alarms_firing(&self) -> Result<Vec<String>>;
}

/// Checks that change nothing, before anything does.
#[async_trait]
pub trait Preflight: Send + Sync {
    /// The revision can be fetched by the deployer.
    async fn revision_exists(&self, revision: &str) -> Result<()>;
    /// The maintenance flag is as the configuration requires.
    async fn maintenance_ok(&self) -> Result<()>;
    /// The configuration change that comes with `revision` is backward compatible with what
    /// `previous` runs on, in both directions (the config-compat gate).
    async fn config_compatible(&self, revision: &str, previous: &str) -> Result<()>;
    /// Who is acting (recorded with an approval).
    async fn caller(&self) -> Result<String>;
}

/// Who holds the deploy lock, until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub holder: String,
    pub run_id: String,
    pub acquired_at: u64,
    pub expires_at: u64,
}

#[async_trait]
pub trait Lock: Send + Sync {
    /// Takes the lock for `info`, or fails naming the holder. Taking a lock the same run
    /// already holds succeeds (idempotent); an expired lock is taken over.
    async fn acquire(&self, info: &LockInfo, now: u64) -> Result<()>;
    /// Extends the lock this run holds.
    async fn renew(&self, info: &LockInfo) -> Result<()>;
    /// Releases the lock if this run holds it (idempotent).
    async fn release(&self, run_id: &str) -> Result<()>;
    async fn holder(&self) -> Result<Option<LockInfo>>;
    /// Ok while this process still holds the lock; an error once another holder has taken
    /// it over (fenced) or its lease ran out. Checked before every action.
    async fn check(&self) -> Result<()> {
        Ok(())
    }
}

/// Time, injected so a 30-minute bake runs instantly in tests: the state layer's one clock.
pub use state::clock::{Clock, ManualClock, SystemClock};
