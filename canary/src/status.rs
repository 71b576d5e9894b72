//! Where a service's canary stands, as typed values the CLI renders: who holds the lock, the
//! listener's weights, the current or last run, each node's group and revision, the bake so
//! far (`canary status`); and the service's last runs (`canary history`).

use serde::Serialize;
use state::lock::{LockInfo, LockState};

use crate::journal::{self, RunState};
use crate::machine::{Mode, Outcome};

#[derive(Debug, Serialize)]
pub struct StatusReport {
    /// The lock object as it is (`state`: held, parked or free; `generation`...).
    pub lock: Option<LockInfo>,
    pub lock_object: String,
    pub canary_weight: Option<u8>,
    pub run: Option<RunSummary>,
    /// The run's nodes: which group each is in, its health there, the revision it runs.
    pub nodes: Vec<NodeLine>,
    /// The bake's evidence so far: the last look, the verdict once reached.
    pub bake: Option<BakeSummary>,
    /// Where the lock and the journals are, for messages.
    #[serde(skip)]
    pub location: String,
}

#[derive(Debug, Serialize)]
pub struct NodeLine {
    pub node: String,
    /// `prod`, `canary` or `none` (depooled).
    pub group: &'static str,
    pub health: Option<String>,
    pub revision: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct BakeSummary {
    pub look: u32,
    pub of: u32,
    pub verdict: Option<&'static str>,
    pub metrics: Vec<evidence::record::MetricLook>,
}

#[derive(Debug, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub holder: String,
    pub started_at: String,
    pub revision: String,
    pub previous: String,
    pub canary_node: String,
    pub mode: Mode,
    pub state: String,
    pub approved_by: Option<String>,
    pub outcome: Option<Outcome>,
}

impl RunSummary {
    pub fn of(r: RunState) -> RunSummary {
        let p = r.machine.plan();
        RunSummary {
            run_id: p.run_id.clone(),
            holder: r.holder.clone(),
            started_at: journal::rfc3339(r.started_at),
            revision: p.revision.clone(),
            previous: p.previous.clone(),
            canary_node: p.canary_node.clone(),
            mode: r.machine.mode(),
            state: crate::run::state_text(&r),
            approved_by: r.machine.approved_by().map(str::to_string),
            outcome: r.finished.map(|f| f.1),
        }
    }
}

/// A node's group and health there: the production group first.
pub fn group_of(
    node: &str,
    prod: &[crate::provider::NodeHealth],
    canary: &[crate::provider::NodeHealth],
) -> (&'static str, Option<String>) {
    let find = |members: &[crate::provider::NodeHealth]| {
        members
            .iter()
            .find(|h| h.node == node)
            .map(|h| h.state.clone())
    };
    match (find(prod), find(canary)) {
        (Some(h), _) => ("prod", Some(h)),
        (None, Some(h)) => ("canary", Some(h)),
        (None, None) => ("none", None),
    }
}

/// The bake's evidence so far, when the run began a bake.
pub fn bake_summary(r: &RunState) -> Option<BakeSummary> {
    crate::evidence::bake_record(&r.records)
        .ok()
        .flatten()
        .map(|b| BakeSummary {
            look: b.looks.last().map_or(0, |l| l.index),
            of: b.looks.last().map_or(0, |l| l.of),
            verdict: b.verdict.as_ref().map(|v| v.outcome.as_str()),
            metrics: b
                .looks
                .last()
                .map(|l| l.metrics.clone())
                .unwrap_or_default(),
        })
}

/// One run of `canary history`.
#[derive(Debug, Serialize)]
pub struct HistoryLine {
    pub run_id: String,
    pub revision: String,
    pub previous: String,
    pub outcome: String,
    pub started_by: String,
    pub started_at: String,
    /// Seconds from the run's start to its last record.
    pub duration_s: u64,
    pub approved_by: Option<String>,
}

impl HistoryLine {
    pub fn of(id: &str, run: &RunState) -> HistoryLine {
        let last_at = run
            .records
            .iter()
            .map(journal::Record::at)
            .max()
            .unwrap_or(run.started_at);
        let p = run.machine.plan();
        HistoryLine {
            run_id: id.to_string(),
            revision: p.revision.clone(),
            previous: p.previous.clone(),
            outcome: crate::run::state_text(run),
            started_by: run.holder.clone(),
            started_at: journal::rfc3339(run.started_at),
            duration_s: last_at.saturating_sub(run.started_at),
            approved_by: run.machine.approved_by().map(str::to_string),
        }
    }
}

/// Whether the lock names a canary run in flight (held or parked).
pub fn canary_run_of(lock: &LockInfo) -> Option<&str> {
    (lock.state != LockState::Free && lock.purpose == "canary").then_some(lock.run_id.as_str())
}

#[cfg(feature = "aws")]
mod gather {
    use super::*;
    use crate::machine::Pool;
    use crate::session::Session;

    impl StatusReport {
        /// Reads the lock, the weights, the run the lock names (else the newest), each
        /// node's group and revision, and the bake so far.
        pub async fn gather(s: &Session) -> anyhow::Result<StatusReport> {
            let lock = state::lock::read(&s.scope).await?.map(|(l, _)| l);
            let weight = s.lb.weight().await.ok();
            let run = match lock.as_ref().and_then(canary_run_of) {
                Some(id) => journal::read_run(&s.scope, id).await?,
                None => None,
            };
            let run = match run {
                Some(r) => Some(r),
                None => s.last_run().await?,
            };
            let mut nodes = Vec::new();
            let mut bake = None;
            if let Some(r) = &run {
                let prod = s.lb.members(Pool::Prod).await.unwrap_or_default();
                let canary_group = s.lb.members(Pool::Canary).await.unwrap_or_default();
                for node in &r.machine.plan().nodes {
                    let (group, health) = group_of(node, &prod, &canary_group);
                    nodes.push(NodeLine {
                        node: node.clone(),
                        group,
                        health,
                        revision: s.deployer.current(node).await.ok().flatten(),
                    });
                }
                bake = bake_summary(r);
            }
            Ok(StatusReport {
                lock,
                lock_object: s.scope.store().describe(&s.scope.lock_key()),
                canary_weight: weight,
                run: run.map(RunSummary::of),
                nodes,
                bake,
                location: s.scope.location(),
            })
        }
    }

    /// The service's last `limit` canary runs, newest first.
    pub async fn history(s: &Session, limit: usize) -> anyhow::Result<Vec<HistoryLine>> {
        let runs = s.scope.runs().await?;
        let mut lines = Vec::new();
        for id in runs
            .iter()
            .rev()
            .filter(|r| r.starts_with(journal::RUN_PREFIX))
            .take(limit)
        {
            if let Some(run) = journal::read_run(&s.scope, id).await? {
                lines.push(HistoryLine::of(id, &run));
            }
        }
        Ok(lines)
    }
}

#[cfg(feature = "aws")]
pub use gather::history;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::NodeHealth;

    fn health(node: &str, state: &str) -> NodeHealth {
        NodeHealth {
            node: node.into(),
            state: state.into(),
        }
    }

    #[test]
    fn a_node_is_in_prod_else_canary_else_none() {
        let prod = [health("a", "healthy")];
        let canary = [health("a", "draining"), health("b", "initial")];
        assert_eq!(
            group_of("a", &prod, &canary),
            ("prod", Some("healthy".into()))
        );
        assert_eq!(
            group_of("b", &prod, &canary),
            ("canary", Some("initial".into()))
        );
        assert_eq!(group_of("c", &prod, &canary), ("none", None));
    }
}
