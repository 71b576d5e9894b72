//! A pipeline run: its journal records and what they say, and whether a stage may go.
//!
//! A run is journaled in the state layer (one create-only object per record, fenced by the
//! pipeline's lock, like a canary run), so any runner continues it. Between stages the run is
//! *parked*: nobody drives it, and a new run of the same pipeline is refused until it ends.
//!
//! Pure: [`RunView::replay`] folds the records; [`RunView::may_run`] says whether a stage may
//! start now, or why not. The CLI takes the lock, checks, appends, and runs the stage.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Pipeline;
use crate::pin::Pin;

/// Pipeline run ids start with this, then the UTC start time, so they sort by time.
pub const RUN_PREFIX: &str = "pipeline-";

/// The lock's purpose of a pipeline run.
pub const PURPOSE: &str = "pipeline";

/// One journal record of a pipeline run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "kebab-case")]
pub enum Record {
    /// The run begins: its pinned revision and files, who started it.
    Start {
        at: u64,
        by: String,
        pin: Pin,
    },
    /// A stage's approval: who (principal ARN), why.
    Approved {
        at: u64,
        stage: String,
        who: String,
        #[serde(default)]
        reason: Option<String>,
    },
    StageStarted {
        at: u64,
        stage: String,
        by: String,
    },
    StageDone {
        at: u64,
        stage: String,
    },
    StageFailed {
        at: u64,
        stage: String,
        reason: String,
    },
    /// `pipeline abort`: no stage runs after it.
    Aborted {
        at: u64,
        by: String,
        #[serde(default)]
        reason: Option<String>,
    },
}

impl Record {
    pub fn at(&self) -> u64 {
        match self {
            Record::Start { at, .. }
            | Record::Approved { at, .. }
            | Record::StageStarted { at, .. }
            | Record::StageDone { at, .. }
            | Record::StageFailed { at, .. }
            | Record::Aborted { at, .. } => *at,
        }
    }
}

/// Where a stage stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum StageState {
    Pending,
    /// Started and not ended: running, or its runner died (a rerun continues it).
    Running {
        since: u64,
        by: String,
    },
    Done {
        at: u64,
    },
    Failed {
        at: u64,
        reason: String,
    },
}

/// An approval as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    pub who: String,
    pub at: u64,
    pub reason: Option<String>,
}

/// What a run's records say.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunView {
    pub started_at: u64,
    pub started_by: String,
    pub pin: Pin,
    pub stages: BTreeMap<String, StageState>,
    pub approvals: BTreeMap<String, Approval>,
    pub aborted: Option<(u64, String)>,
}

/// Why a stage may not run now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotYet {
    #[error("the run was aborted by {0}")]
    Aborted(String),
    #[error("stage {stage} needs {need}, which is {state}")]
    Needs {
        stage: String,
        need: String,
        state: &'static str,
    },
    #[error("stage {stage} needs an approval: `gatekeeper pipeline approve --stage {stage} --run {run} --reason ...` by one of: {who}")]
    Approval {
        stage: String,
        run: String,
        who: String,
    },
    #[error("stage {stage} soaks {soak}s after {after} ended: {left}s left")]
    Soak {
        stage: String,
        after: String,
        soak: u64,
        left: u64,
    },
    #[error("stage {stage} failed ({reason}): the run is over; start a new one")]
    Failed { stage: String, reason: String },
    #[error("no stage {0} in the pipeline")]
    Unknown(String),
}

/// A journal that is not a pipeline run's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("record {index}: {why}")]
pub struct Illegal {
    pub index: usize,
    pub why: String,
}

impl StageState {
    pub fn name(&self) -> &'static str {
        match self {
            StageState::Pending => "pending",
            StageState::Running { .. } => "running",
            StageState::Done { .. } => "done",
            StageState::Failed { .. } => "failed",
        }
    }
}

impl RunView {
    /// Folds `records`; `None` for an empty run. A record out of place is an error naming it.
    pub fn replay(pipeline: &Pipeline, records: &[Record]) -> Result<Option<RunView>, Illegal> {
        let Some(first) = records.first() else {
            return Ok(None);
        };
        let Record::Start { at, by, pin } = first else {
            return Err(Illegal {
                index: 0,
                why: "a run's first record must be `start`".into(),
            });
        };
        let mut view = RunView {
            started_at: *at,
            started_by: by.clone(),
            pin: pin.clone(),
            stages: pipeline
                .stages
                .iter()
                .map(|s| (s.name.clone(), StageState::Pending))
                .collect(),
            approvals: BTreeMap::new(),
            aborted: None,
        };
        for (index, r) in records.iter().enumerate().skip(1) {
            let illegal = |why: String| Illegal { index, why };
            if view.aborted.is_some() {
                return Err(illegal("a record after `aborted`".into()));
            }
            let stage_of = |view: &mut RunView, name: &str| {
                if view.stages.contains_key(name) {
                    Ok(())
                } else {
                    Err(illegal(format!("no stage {name} in the pipeline")))
                }
            };
            match r {
                Record::Start { .. } => return Err(illegal("a second `start`".into())),
                Record::Approved {
                    at,
                    stage,
                    who,
                    reason,
                } => {
                    stage_of(&mut view, stage)?;
                    view.approvals.insert(
                        stage.clone(),
                        Approval {
                            who: who.clone(),
                            at: *at,
                            reason: reason.clone(),
                        },
                    );
                }
                Record::StageStarted { at, stage, by } => {
                    stage_of(&mut view, stage)?;
                    match &view.stages[stage] {
                        StageState::Pending | StageState::Running { .. } => {}
                        other => {
                            return Err(illegal(format!(
                                "stage {stage} started again after it was {}",
                                other.name()
                            )))
                        }
                    }
                    view.stages.insert(
                        stage.clone(),
                        StageState::Running {
                            since: *at,
                            by: by.clone(),
                        },
                    );
                }
                Record::StageDone { at, stage } | Record::StageFailed { at, stage, .. } => {
                    stage_of(&mut view, stage)?;
                    if !matches!(view.stages[stage], StageState::Running { .. }) {
                        return Err(illegal(format!("stage {stage} ended without starting")));
                    }
                    let state = match r {
                        Record::StageFailed { reason, .. } => StageState::Failed {
                            at: *at,
                            reason: reason.clone(),
                        },
                        _ => StageState::Done { at: *at },
                    };
                    view.stages.insert(stage.clone(), state);
                }
                Record::Aborted { at, by, .. } => view.aborted = Some((*at, by.clone())),
            }
        }
        Ok(Some(view))
    }

    /// Every stage done.
    pub fn finished(&self) -> bool {
        self.stages
            .values()
            .all(|s| matches!(s, StageState::Done { .. }))
    }

    /// A stage failed, or the run was aborted: nothing more runs.
    pub fn ended(&self) -> bool {
        self.aborted.is_some()
            || self.finished()
            || self
                .stages
                .values()
                .any(|s| matches!(s, StageState::Failed { .. }))
    }

    /// Whether stage `name` may run at `now` (its needs done, approved when it must be, soaked);
    /// `Ok(true)` when it is already done (a rerun does nothing).
    pub fn may_run(
        &self,
        pipeline: &Pipeline,
        run_id: &str,
        name: &str,
        now: u64,
    ) -> Result<bool, NotYet> {
        let stage = pipeline
            .stage(name)
            .ok_or_else(|| NotYet::Unknown(name.to_string()))?;
        if let Some((_, by)) = &self.aborted {
            return Err(NotYet::Aborted(by.clone()));
        }
        for (other, state) in &self.stages {
            if let StageState::Failed { reason, .. } = state {
                return Err(NotYet::Failed {
                    stage: other.clone(),
                    reason: reason.clone(),
                });
            }
        }
        if matches!(self.stages.get(name), Some(StageState::Done { .. })) {
            return Ok(true);
        }
        let mut last_need: Option<(&str, u64)> = None;
        for need in &stage.needs {
            match self.stages.get(need) {
                Some(StageState::Done { at }) => {
                    if last_need.is_none_or(|(_, t)| *at > t) {
                        last_need = Some((need, *at));
                    }
                }
                other => {
                    return Err(NotYet::Needs {
                        stage: name.to_string(),
                        need: need.clone(),
                        state: other.map_or("unknown", StageState::name),
                    })
                }
            }
        }
        if !stage.gates.approval.is_empty() && !self.approvals.contains_key(name) {
            return Err(NotYet::Approval {
                stage: name.to_string(),
                run: run_id.to_string(),
                who: stage.gates.approval.join(", "),
            });
        }
        if let (Some(soak), Some((after, done))) = (stage.gates.soak_seconds, last_need) {
            let waited = now.saturating_sub(done);
            if waited < soak {
                return Err(NotYet::Soak {
                    stage: name.to_string(),
                    after: after.to_string(),
                    soak,
                    left: soak - waited,
                });
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline() -> (tempfile::TempDir, Pipeline) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("staging.toml"),
            "service = \"photos\"\nenvironment = \"staging\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("prod.toml"),
            "service = \"photos\"\nenvironment = \"prod\"\n",
        )
        .unwrap();
        let text = "service = \"photos\"\n\
             [[pipeline.stages]]\nname = \"staging\"\nconfig = \"staging.toml\"\nkind = \"stack\"\n\
             [[pipeline.stages]]\nname = \"canary\"\nconfig = \"prod.toml\"\nkind = \"canary\"\n\
             needs = [\"staging\"]\napproval = [\"arn:aws:iam::123456789012:role/rm\"]\nsoak_seconds = 600\n";
        let file = dir.path().join("pipeline.toml");
        std::fs::write(&file, text).unwrap();
        let p = crate::config::load(&file).unwrap();
        (dir, p)
    }

    fn start(p: &Pipeline) -> Record {
        Record::Start {
            at: 1000,
            by: "ci".into(),
            pin: Pin::compute(p, "v2").unwrap(),
        }
    }

    #[test]
    fn a_stage_waits_for_its_needs_its_approval_and_its_soak() {
        let (_d, p) = pipeline();
        let mut records = vec![start(&p)];
        let view = |r: &[Record]| RunView::replay(&p, r).unwrap().unwrap();
        let why = view(&records)
            .may_run(&p, "run", "canary", 2000)
            .unwrap_err();
        assert!(matches!(why, NotYet::Needs { .. }), "{why}");
        records.push(Record::StageStarted {
            at: 1100,
            stage: "staging".into(),
            by: "ci".into(),
        });
        records.push(Record::StageDone {
            at: 1200,
            stage: "staging".into(),
        });
        let why = view(&records)
            .may_run(&p, "run", "canary", 2000)
            .unwrap_err();
        assert!(matches!(why, NotYet::Approval { .. }), "{why}");
        records.push(Record::Approved {
            at: 1300,
            stage: "canary".into(),
            who: "arn:aws:iam::123456789012:role/rm".into(),
            reason: None,
        });
        let why = view(&records)
            .may_run(&p, "run", "canary", 1500)
            .unwrap_err();
        assert_eq!(
            why.to_string(),
            "stage canary soaks 600s after staging ended: 300s left"
        );
        assert_eq!(view(&records).may_run(&p, "run", "canary", 1800), Ok(false));
        assert_eq!(
            view(&records).may_run(&p, "run", "staging", 1800),
            Ok(true),
            "done"
        );
    }

    #[test]
    fn a_failed_stage_or_an_abort_ends_the_run() {
        let (_d, p) = pipeline();
        let mut records = vec![
            start(&p),
            Record::StageStarted {
                at: 1100,
                stage: "staging".into(),
                by: "ci".into(),
            },
            Record::StageFailed {
                at: 1200,
                stage: "staging".into(),
                reason: "exit 1".into(),
            },
        ];
        let v = RunView::replay(&p, &records).unwrap().unwrap();
        assert!(v.ended());
        assert!(matches!(
            v.may_run(&p, "run", "staging", 2000),
            Err(NotYet::Failed { .. })
        ));
        records.truncate(2);
        records.push(Record::Aborted {
            at: 1300,
            by: "rm".into(),
            reason: None,
        });
        let v = RunView::replay(&p, &records).unwrap().unwrap();
        assert!(matches!(
            v.may_run(&p, "run", "canary", 2000),
            Err(NotYet::Aborted(_))
        ));
    }

    #[test]
    fn records_out_of_place_are_refused_naming_the_record() {
        let (_d, p) = pipeline();
        let done_first = [
            start(&p),
            Record::StageDone {
                at: 1,
                stage: "staging".into(),
            },
        ];
        assert_eq!(RunView::replay(&p, &done_first).unwrap_err().index, 1);
        let unknown = [
            start(&p),
            Record::StageStarted {
                at: 1,
                stage: "nope".into(),
                by: "x".into(),
            },
        ];
        assert!(RunView::replay(&p, &unknown)
            .unwrap_err()
            .why
            .contains("no stage nope"));
        let no_start = [Record::StageDone {
            at: 1,
            stage: "staging".into(),
        }];
        assert_eq!(RunView::replay(&p, &no_start).unwrap_err().index, 0);
    }
}
