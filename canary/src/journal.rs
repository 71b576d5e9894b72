//! The write-ahead journal: a run's records, each durable before the executor moves on. A run
//! starts with `start`; replaying its events through [`Machine::replay_checked`] rebuilds
//! where it stood and refuses an event that is illegal there, naming the record.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

#[cfg(test)]
use crate::machine::{Action, Mode};
use crate::machine::{Event, Machine, Outcome, Plan};
use crate::provider::{ProviderError, Result};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "kebab-case")]
pub enum Record {
    Start {
        at: u64,
        holder: String,
        plan: Plan,
    },
    Event {
        at: u64,
        #[serde(flatten)]
        event: Event,
    },
    Finish {
        at: u64,
        #[serde(flatten)]
        outcome: Outcome,
    },
    /// Another process took the run over (resume, abort, promote): who, with which lock
    /// generation (the envelope carries it).
    Took {
        at: u64,
        holder: String,
        command: String,
    },
    /// The bake's evidence: what the judge saw and concluded (see [`crate::evidence`]). Not a
    /// step of the run: replay leaves it to the evidence reader.
    Evidence {
        at: u64,
        entry: Box<evidence::Entry>,
    },
}

impl Record {
    /// When the record was written (seconds since the epoch).
    pub fn at(&self) -> u64 {
        match self {
            Record::Start { at, .. }
            | Record::Event { at, .. }
            | Record::Finish { at, .. }
            | Record::Took { at, .. }
            | Record::Evidence { at, .. } => *at,
        }
    }
}

/// Where records go. Appends are durable when they return.
#[async_trait]
pub trait Journal: Send {
    async fn append(&mut self, record: &Record) -> Result<()>;
}

/// The run's journal in the state layer: one object per record, each carrying the run id, its
/// sequence number and the lock generation of the writer (see the `state` crate).
pub struct StateJournal(pub state::RunJournal);

#[async_trait]
impl Journal for StateJournal {
    async fn append(&mut self, record: &Record) -> Result<()> {
        self.0
            .append(record.at(), record)
            .await
            .map(|_| ())
            .map_err(|e| ProviderError::new(e.to_string()))
    }
}

/// Records kept in memory (tests, `--dry-run`).
#[derive(Debug, Default)]
pub struct MemoryJournal(pub Vec<Record>);

#[async_trait]
impl Journal for MemoryJournal {
    async fn append(&mut self, record: &Record) -> Result<()> {
        self.0.push(record.clone());
        Ok(())
    }
}

/// The last run in a journal, rebuilt.
#[derive(Debug, Clone)]
pub struct RunState {
    pub holder: String,
    pub started_at: u64,
    pub machine: Machine,
    pub finished: Option<(u64, Outcome)>,
    pub records: Vec<Record>,
}

/// The run `records` describe (from its `start` on), replayed with every transition checked:
/// `Err((index, why))` names the first record that is illegal where the run stood.
pub fn replay(records: &[Record]) -> std::result::Result<Option<RunState>, (usize, String)> {
    let Some(first) = records.first() else {
        return Ok(None);
    };
    let Record::Start { at, holder, plan } = first else {
        return Err((0, "a run's first record must be `start`".into()));
    };
    let mut events = Vec::new();
    let mut index_of = Vec::new();
    let mut finished = None;
    for (i, r) in records.iter().enumerate().skip(1) {
        if finished.is_some() {
            return Err((i, "a record after the run's `finish`".into()));
        }
        match r {
            Record::Start { .. } => return Err((i, "a second `start` in one run".into())),
            Record::Event { event, .. } => {
                events.push(event.clone());
                index_of.push(i);
            }
            Record::Finish { at, outcome } => finished = Some((*at, outcome.clone())),
            Record::Took { .. } | Record::Evidence { .. } => {}
        }
    }
    let machine =
        Machine::replay_checked(plan.clone(), &events).map_err(|(e, why)| (index_of[e], why))?;
    Ok(Some(RunState {
        holder: holder.clone(),
        started_at: *at,
        machine,
        finished,
        records: records.to_vec(),
    }))
}

/// Reads run `run_id` from the state layer, every envelope and transition checked; an error
/// names the object.
pub async fn read_run(
    scope: &state::Scope,
    run_id: &str,
) -> std::result::Result<Option<RunState>, state::StateError> {
    let envelopes: Vec<state::Envelope<Record>> = state::journal::read(scope, run_id).await?;
    let records: Vec<Record> = envelopes.iter().map(|e| e.record.clone()).collect();
    match replay(&records) {
        Ok(Some(run)) if run.machine.plan().run_id != run_id => Err(state::StateError::Illegal {
            key: format!("{}/runs/{run_id}/00000000.json", scope.location()),
            message: format!(
                "the run's plan names run {}, not {run_id}",
                run.machine.plan().run_id
            ),
        }),
        Ok(run) => Ok(run),
        Err((i, why)) => Err(state::StateError::Illegal {
            key: format!("{}/runs/{run_id}/{i:08}.json", scope.location()),
            message: why,
        }),
    }
}

/// The newest canary run of the scope, if any.
pub async fn last_run(
    scope: &state::Scope,
) -> std::result::Result<Option<RunState>, state::StateError> {
    let runs = scope.runs().await?;
    for run in runs.iter().rev() {
        if run.starts_with(RUN_PREFIX) {
            return read_run(scope, run).await;
        }
    }
    Ok(None)
}

/// Canary run ids start with this, then the UTC start time, so they sort by time.
pub const RUN_PREFIX: &str = "canary-";

/// A new canary run id: `canary-20261204T101500Z-<pid>`.
pub fn new_run_id(now: u64) -> String {
    format!("{RUN_PREFIX}{}-{}", utc_stamp(now), std::process::id())
}

/// `2026-12-04T10:15:00Z` for seconds since the epoch.
pub fn rfc3339(at: u64) -> String {
    let s = utc_stamp(at);
    format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    )
}

/// `20261204T101500Z` for seconds since the epoch (the state layer's).
pub use state::clock::utc_stamp;

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan::example("r")
    }

    #[test]
    fn replay_refuses_illegal_records_by_index() {
        let start = Record::Start {
            at: 1,
            holder: "me".into(),
            plan: plan(),
        };
        let began = |index, action| Record::Event {
            at: 2,
            event: Event::Began {
                mode: Mode::Canary,
                index,
                action,
            },
        };
        let done = |index| Record::Event {
            at: 3,
            event: Event::Completed {
                mode: Mode::Canary,
                index,
            },
        };
        let ok = [start.clone(), began(0, Action::Preflight), done(0)];
        let run = replay(&ok).unwrap().unwrap();
        assert_eq!(run.holder, "me");
        // A step completed twice (a second writer's record).
        let twice = [ok.to_vec(), vec![done(0)]].concat();
        let (i, why) = replay(&twice).unwrap_err();
        assert_eq!(i, 3, "{why}");
        // A step out of order, an approval that was not due, a second start.
        let skip = [start.clone(), began(1, Action::AcquireLock)];
        assert_eq!(replay(&skip).unwrap_err().0, 1);
        let approve = [
            start.clone(),
            Record::Event {
                at: 2,
                event: Event::Approved { who: "x".into() },
            },
        ];
        assert!(replay(&approve)
            .unwrap_err()
            .1
            .contains("not awaiting approval"));
        assert_eq!(replay(&[start.clone(), start]).unwrap_err().0, 1);
    }

    #[test]
    fn run_ids_sort_by_utc_start_time() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1_796_379_300), "20261204T101500Z");
        assert_eq!(rfc3339(1_796_379_300), "2026-12-04T10:15:00Z");
        assert!(new_run_id(1_796_379_300) < new_run_id(1_796_379_301));
    }
}
