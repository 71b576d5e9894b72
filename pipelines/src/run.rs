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

use crate::config::{Kind, Pipeline, Stage};
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

/// Whether `run` is a pipeline run id (checked before it names an object in the store).
pub fn check_run_id(run: &str) -> Result<(), String> {
    if run.starts_with(RUN_PREFIX) && state::safe_segment(run) {
        Ok(())
    } else {
        Err(format!(
            "--run {run:?}: not a pipeline run id ({RUN_PREFIX}...)"
        ))
    }
}

/// The id of a run started at `stamp` (UTC, sortable) by process `pid`.
pub fn run_id(stamp: &str, pid: u32) -> String {
    format!("{RUN_PREFIX}{stamp}-{pid}")
}

/// Why an approval is refused (nothing is recorded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoApproval {
    #[error("stage {0} needs no approval")]
    NotNeeded(String),
    #[error("{who} may not approve stage {stage} (allowed: {allowed})")]
    NotAllowed {
        who: String,
        stage: String,
        allowed: String,
    },
}

/// Whether `who` (a principal ARN) may approve `stage`.
pub fn may_approve(stage: &Stage, who: &str) -> Result<(), NoApproval> {
    if stage.gates.approval.is_empty() {
        return Err(NoApproval::NotNeeded(stage.name.clone()));
    }
    if !crate::approval_allowed(&stage.gates.approval, who) {
        return Err(NoApproval::NotAllowed {
            who: who.to_string(),
            stage: stage.name.clone(),
            allowed: stage.gates.approval.join(", "),
        });
    }
    Ok(())
}

/// The prefix of the alarms a stage with `alarms_clean` needs out of ALARM.
pub fn alarm_prefix(pipeline: &Pipeline, stage: &Stage) -> String {
    format!("{}-{}-", pipeline.service, stage.environment)
}

/// Why a stage with `alarms_clean` may not run while `firing` are in ALARM.
pub fn alarms_refusal(stage: &str, firing: &[String]) -> Option<String> {
    (!firing.is_empty()).then(|| {
        format!(
            "stage {stage} needs its alarms clean, and {} in ALARM",
            firing.join(", ")
        )
    })
}

/// The stages of a kind `pipeline stage` does not run, and why.
pub const MAINTENANCE_NOT_RUN: &str = "maintenance stages are not run by `pipeline stage` yet: run `gatekeeper maintenance on|off` in the job";

/// The binary's own command line that runs `stage` of `run` on `revision`, its configuration
/// at `config`; `Err(why)` for a kind no command runs.
pub fn command_line(
    pipeline: &Pipeline,
    stage: &Stage,
    run: &str,
    config: &str,
    revision: &str,
) -> Result<Vec<String>, &'static str> {
    let argv: Vec<&str> = match stage.kind {
        Kind::Stack => vec!["stack", "deploy", "--config", config],
        Kind::Canary => vec!["canary", "run", "--config", config, "--revision", revision],
        Kind::Promote => {
            let reason = format!("pipeline {} run {run}", pipeline.name);
            let argv = ["promote", "--config", config, "--yes", "--reason"];
            return Ok(argv.iter().map(|a| a.to_string()).chain([reason]).collect());
        }
        Kind::Maintenance => return Err(MAINTENANCE_NOT_RUN),
    };
    Ok(argv.into_iter().map(str::to_string).collect())
}

/// How a stage's command ended, as the record that ends the stage.
pub fn stage_ended(stage: &str, argv: &[String], code: i32, at: u64) -> Record {
    if code == 0 {
        Record::StageDone {
            at,
            stage: stage.to_string(),
        }
    } else {
        Record::StageFailed {
            at,
            stage: stage.to_string(),
            reason: format!("`gatekeeper {}` exited {code}", argv.join(" ")),
        }
    }
}

/// The canary a stage's configuration last ran, as far as a rerun of the stage cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryRun {
    pub id: String,
    pub revision: String,
    /// Not finished, and waiting for its promotion to be approved.
    pub awaiting_approval: bool,
    /// Finished, promoted.
    pub promoted: bool,
}

/// A stage rerun after its runner died: when the canary it started already waits for
/// approval on `revision` (or a promote stage's canary is promoted), what to say instead of
/// running it again.
pub fn already(kind: Kind, last: &CanaryRun, revision: &str) -> Option<String> {
    if last.revision != revision {
        return None;
    }
    let id = &last.id;
    match kind {
        Kind::Canary if last.awaiting_approval => Some(format!(
            "canary {id} of {revision} already awaits approval\n"
        )),
        Kind::Canary | Kind::Promote if last.promoted => {
            Some(format!("canary {id} of {revision} already promoted\n"))
        }
        _ => None,
    }
}

/// The exit code of `pipeline abort` from the `canary abort` codes of its stages: 2 (nothing
/// to roll back) counts as success.
pub fn abort_code(codes: impl IntoIterator<Item = i32>) -> i32 {
    codes
        .into_iter()
        .map(|c| if c == 2 { 0 } else { c })
        .max()
        .unwrap_or(0)
}

impl RunView {
    /// The stage `resume` continues: the first (in order) not done, in flight or not.
    pub fn next_stage<'p>(&self, pipeline: &'p Pipeline) -> Option<&'p Stage> {
        pipeline
            .ordered()
            .into_iter()
            .find(|s| !matches!(self.stages.get(&s.name), Some(StageState::Done { .. })))
    }

    /// Whether stage `name` was started and has not ended (its runner may have died).
    pub fn in_flight(&self, name: &str) -> bool {
        matches!(self.stages.get(name), Some(StageState::Running { .. }))
    }

    /// The canary stages `pipeline abort` rolls back: started (in flight, or done and awaiting
    /// their promotion), in order.
    pub fn canaries_started<'p>(&self, pipeline: &'p Pipeline) -> Vec<&'p Stage> {
        pipeline
            .ordered()
            .into_iter()
            .filter(|s| {
                s.kind == Kind::Canary
                    && !matches!(self.stages.get(&s.name), Some(StageState::Pending))
            })
            .collect()
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

    #[test]
    fn resume_takes_the_first_stage_not_done_and_abort_the_started_canaries() {
        let (_d, p) = pipeline();
        let mut records = vec![start(&p)];
        let view = |r: &[Record]| RunView::replay(&p, r).unwrap().unwrap();
        assert_eq!(view(&records).next_stage(&p).unwrap().name, "staging");
        assert!(view(&records).canaries_started(&p).is_empty());
        records.push(Record::StageStarted {
            at: 1100,
            stage: "staging".into(),
            by: "ci".into(),
        });
        assert!(view(&records).in_flight("staging"));
        assert_eq!(view(&records).next_stage(&p).unwrap().name, "staging");
        records.push(Record::StageDone {
            at: 1200,
            stage: "staging".into(),
        });
        assert_eq!(view(&records).next_stage(&p).unwrap().name, "canary");
        records.push(Record::StageStarted {
            at: 1300,
            stage: "canary".into(),
            by: "ci".into(),
        });
        let started: Vec<_> = view(&records)
            .canaries_started(&p)
            .iter()
            .map(|s| s.name.clone())
            .collect();
        assert_eq!(started, ["canary"]);
        records.push(Record::StageDone {
            at: 1400,
            stage: "canary".into(),
        });
        assert!(view(&records).next_stage(&p).is_none());
        assert_eq!(
            view(&records).canaries_started(&p).len(),
            1,
            "done: awaits promotion"
        );
    }

    #[test]
    fn each_kind_runs_its_own_command_on_the_pinned_revision() {
        let (_d, mut p) = pipeline();
        let canary = p.stage("canary").unwrap().clone();
        let argv = command_line(&p, &canary, "pipeline-1", "prod.toml", "v2").unwrap();
        assert_eq!(
            argv,
            ["canary", "run", "--config", "prod.toml", "--revision", "v2"]
        );
        let staging = p.stage("staging").unwrap().clone();
        let argv = command_line(&p, &staging, "pipeline-1", "s.toml", "v2").unwrap();
        assert_eq!(argv, ["stack", "deploy", "--config", "s.toml"]);
        p.name = "main".into();
        let promote = Stage {
            kind: Kind::Promote,
            ..canary.clone()
        };
        let argv = command_line(&p, &promote, "pipeline-1", "prod.toml", "v2").unwrap();
        let reason = "pipeline main run pipeline-1";
        assert_eq!(
            argv,
            [
                "promote",
                "--config",
                "prod.toml",
                "--yes",
                "--reason",
                reason
            ]
        );
        let maintenance = Stage {
            kind: Kind::Maintenance,
            ..canary
        };
        assert_eq!(
            command_line(&p, &maintenance, "pipeline-1", "prod.toml", "v2"),
            Err(MAINTENANCE_NOT_RUN)
        );
    }

    #[test]
    fn a_stage_ends_done_on_zero_else_failed_naming_its_command() {
        let argv = ["stack", "deploy"].map(String::from);
        assert_eq!(
            stage_ended("staging", &argv, 0, 7),
            Record::StageDone {
                at: 7,
                stage: "staging".into()
            }
        );
        assert_eq!(
            stage_ended("staging", &argv, 2, 7),
            Record::StageFailed {
                at: 7,
                stage: "staging".into(),
                reason: "`gatekeeper stack deploy` exited 2".into()
            }
        );
        assert_eq!(abort_code([2, 0]), 0, "2: nothing to roll back");
        assert_eq!(abort_code([1, 2]), 1);
        assert_eq!(abort_code([]), 0);
    }

    #[test]
    fn a_rerun_skips_a_canary_that_already_waits_or_is_promoted_on_the_same_revision() {
        let mut last = CanaryRun {
            id: "c1".into(),
            revision: "v2".into(),
            awaiting_approval: true,
            promoted: false,
        };
        let note = already(Kind::Canary, &last, "v2").unwrap();
        assert_eq!(note, "canary c1 of v2 already awaits approval\n");
        assert_eq!(already(Kind::Promote, &last, "v2"), None, "promote runs");
        assert_eq!(already(Kind::Canary, &last, "v3"), None, "another revision");
        last.awaiting_approval = false;
        last.promoted = true;
        let note = already(Kind::Promote, &last, "v2").unwrap();
        assert_eq!(note, "canary c1 of v2 already promoted\n");
        assert!(already(Kind::Canary, &last, "v2").is_some());
        last.promoted = false;
        assert_eq!(
            already(Kind::Canary, &last, "v2"),
            None,
            "finished otherwise"
        );
    }

    #[test]
    fn approvals_and_run_ids_are_checked() {
        let (_d, p) = pipeline();
        let canary = p.stage("canary").unwrap();
        assert_eq!(
            may_approve(canary, "arn:aws:iam::123456789012:role/rm"),
            Ok(())
        );
        let no = may_approve(canary, "arn:aws:iam::123456789012:role/dev").unwrap_err();
        assert_eq!(
            no.to_string(),
            "arn:aws:iam::123456789012:role/dev may not approve stage canary \
             (allowed: arn:aws:iam::123456789012:role/rm)"
        );
        let staging = p.stage("staging").unwrap();
        assert_eq!(
            may_approve(staging, "x").unwrap_err().to_string(),
            "stage staging needs no approval"
        );
        assert_eq!(
            run_id("20260101T000000Z", 42),
            "pipeline-20260101T000000Z-42"
        );
        assert!(check_run_id("pipeline-20260101T000000Z-42").is_ok());
        assert!(check_run_id("canary-1").is_err());
        assert!(check_run_id("pipeline-../x").is_err());
        assert_eq!(alarms_refusal("s", &[]), None);
    }
}
