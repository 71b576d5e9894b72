//! Driving a pipeline run through the fenced state layer: start, approve, run a stage, abort.
//!
//! Each step takes the pipeline's lock for its run, reads the run back, decides with
//! [`RunView`], appends its records, and parks the run again (or frees the lock once the run
//! is over). What touches the world beyond the state store comes from the
//! program through [`Host`]: the time, the alarms, the canary's last run, running a stage's
//! command, and the hook called after each record. Every step returns what it did, for the
//! program to render; nothing here prints.

use std::path::Path;

use state::lock::{Claim, Keeper, Mode};
use state::{Holder, RunJournal, Scope, StateError};

use crate::config::{Kind, Pipeline, Stage};
use crate::pin::Pin;
use crate::run::{self, CanaryRun, Record, RunView, PURPOSE, RUN_PREFIX};

/// An error of the program's side of a step.
pub type HostError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a run needs from the program driving it.
#[async_trait::async_trait(?Send)]
pub trait Host {
    /// Now, in seconds since the epoch.
    fn now(&self) -> u64;
    /// Called right after record `seq` (0-based) of the run is journaled.
    fn journaled(&self, seq: u64);
    /// The names of the alarms starting with `prefix` that are in ALARM.
    async fn alarms_firing(&self, prefix: &str) -> Result<Vec<String>, HostError>;
    /// The last canary run of the service configured in `config`.
    async fn canary_run(&self, config: &Path) -> Result<Option<CanaryRun>, HostError>;
    /// Runs the program's own command `argv`: its exit code and standard output.
    async fn run(&self, argv: &[String]) -> Result<(i32, String), HostError>;
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{location}/runs/{run}: {why}")]
    Illegal {
        location: String,
        run: String,
        why: run::Illegal,
    },
    #[error("no run {run} in {location}")]
    NoRun { run: String, location: String },
    #[error("no pipeline run in {0}")]
    NoRuns(String),
    #[error("run {0} is over: nothing to approve")]
    Over(String),
    #[error(transparent)]
    Host(HostError),
}

/// What `stage`/`resume` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageReport {
    /// Every stage is done: nothing to resume.
    Finished,
    AlreadyDone(String),
    /// A gate, the pin or the lock refused: nothing was changed.
    Refused(String),
    /// The stage's kind is not run here: the stage failed.
    NotRun {
        stage: String,
        why: String,
    },
    /// The stage's command ran (or had already done its work): how it ended.
    Ran {
        stage: String,
        kind: Kind,
        revision: String,
        code: i32,
        stdout: String,
    },
}

/// What `abort` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortReport {
    Refused(String),
    AlreadyOver,
    /// The canaries' `canary abort` output, and their exit code ([`run::abort_code`]).
    Aborted {
        stdout: String,
        code: i32,
    },
}

/// A run's journal from a given record on; calls [`Host::journaled`] after each append.
struct Journal<'h, H: Host> {
    inner: RunJournal,
    host: &'h H,
}

impl<H: Host> Journal<'_, H> {
    async fn append(&mut self, record: &Record) -> Result<(), Error> {
        let seq = self.inner.append(record.at(), record).await?;
        self.host.journaled(seq);
        Ok(())
    }
}

/// A pipeline's runs as `who` drives them.
pub struct Driver<'a, H: Host> {
    pub pipeline: &'a Pipeline,
    pub scope: &'a Scope,
    /// The caller's principal ARN.
    pub who: String,
    pub host: &'a H,
}

impl<'a, H: Host> Driver<'a, H> {
    /// Reads `run` back, every record checked.
    pub async fn read(&self, run: &str) -> Result<(Vec<Record>, RunView), Error> {
        let envelopes: Vec<state::Envelope<Record>> = state::journal::read(self.scope, run).await?;
        let records: Vec<Record> = envelopes.into_iter().map(|e| e.record).collect();
        let view = RunView::replay(self.pipeline, &records)
            .map_err(|why| Error::Illegal {
                location: self.scope.location(),
                run: run.to_string(),
                why,
            })?
            .ok_or_else(|| Error::NoRun {
                run: run.to_string(),
                location: self.scope.location(),
            })?;
        Ok((records, view))
    }

    /// `run`, else the newest run of the pipeline, and what its records say.
    pub async fn view(&self, run: Option<&str>) -> Result<(String, RunView), Error> {
        let run = match run {
            Some(r) => r.to_string(),
            None => self
                .scope
                .runs()
                .await?
                .into_iter()
                .rfind(|r| r.starts_with(RUN_PREFIX))
                .ok_or_else(|| Error::NoRuns(self.scope.location()))?,
        };
        let (_, view) = self.read(&run).await?;
        Ok((run, view))
    }

    /// Takes the pipeline's lock for `run`: `Ok(Err(why))` when refused.
    async fn take(
        &self,
        run: &str,
        command: &str,
        mode: Mode,
    ) -> Result<Result<Keeper, String>, Error> {
        let claim = Claim {
            run_id: run.to_string(),
            purpose: PURPOSE.into(),
            holder: Holder::this_process(&self.who, command),
            ttl: self.pipeline.state.lease_seconds(),
        };
        match state::lock::acquire(self.scope, &claim, mode, self.host.now()).await {
            Ok(lease) => Ok(Ok(Keeper::start(self.scope, lease))),
            Err(StateError::Held(r)) => Ok(Err(r.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// The run's journal after its `records` records, written as `keeper`'s generation.
    async fn after(
        &self,
        run: &str,
        records: usize,
        keeper: &Keeper,
    ) -> Result<Journal<'a, H>, Error> {
        let generation = keeper.generation().await;
        Ok(Journal {
            inner: RunJournal::continue_at(self.scope, run, records as u64, generation)?,
            host: self.host,
        })
    }

    /// Starts run `run` pinned to `pin` and parks it; `Ok(Err(why))` when the lock refuses.
    pub async fn start(&self, run: &str, pin: Pin) -> Result<Result<(), String>, Error> {
        let keeper = match self.take(run, "pipeline run", Mode::Fresh).await? {
            Ok(k) => k,
            Err(why) => return Ok(Err(why)),
        };
        let mut journal = Journal {
            inner: RunJournal::create(self.scope, run, keeper.generation().await)?,
            host: self.host,
        };
        let start = Record::Start {
            at: self.host.now(),
            by: self.who.clone(),
            pin,
        };
        journal.append(&start).await?;
        keeper.park(self.host.now()).await?;
        Ok(Ok(()))
    }

    /// Records the caller's approval of `stage` with `reason`; `Ok(Err(why))` when refused
    /// (nothing recorded).
    pub async fn approve(
        &self,
        run: &str,
        stage: &Stage,
        reason: &str,
    ) -> Result<Result<(), String>, Error> {
        if let Err(no) = run::may_approve(stage, &self.who) {
            return Ok(Err(no.to_string()));
        }
        let keeper = match self
            .take(run, "pipeline approve", Mode::Continue { force: false })
            .await?
        {
            Ok(k) => k,
            Err(why) => return Ok(Err(why)),
        };
        let result = async {
            let (records, view) = self.read(run).await?;
            if view.ended() {
                return Err(Error::Over(run.to_string()));
            }
            let mut journal = self.after(run, records.len(), &keeper).await?;
            let approved = Record::Approved {
                at: self.host.now(),
                stage: stage.name.clone(),
                who: self.who.clone(),
                reason: Some(reason.to_string()),
            };
            journal.append(&approved).await
        }
        .await;
        keeper.park(self.host.now()).await?;
        result.map(Ok)
    }

    /// Runs stage `name` of `run` (without a name: the stage in flight, else the next one),
    /// then parks the run, or frees the lock once the run is over.
    pub async fn stage(&self, run: &str, name: Option<&str>) -> Result<StageReport, Error> {
        let continuing = Mode::Continue { force: false };
        let keeper = match self.take(run, "pipeline stage", continuing).await? {
            Ok(k) => k,
            Err(why) => return Ok(StageReport::Refused(why)),
        };
        let result = self.stage_under_lock(run, name, &keeper).await;
        let over = self
            .read(run)
            .await
            .map(|(_, v)| v.ended())
            .unwrap_or(false);
        if over {
            keeper.release(self.host.now()).await?;
        } else {
            keeper.park(self.host.now()).await?;
        }
        result
    }

    async fn stage_under_lock(
        &self,
        run: &str,
        name: Option<&str>,
        keeper: &Keeper,
    ) -> Result<StageReport, Error> {
        let (records, view) = self.read(run).await?;
        let name = match name {
            Some(n) => n.to_string(),
            None => match view.next_stage(self.pipeline) {
                Some(s) => s.name.clone(),
                None => return Ok(StageReport::Finished),
            },
        };
        let now = self.host.now();
        match view.may_run(self.pipeline, run, &name, now) {
            Ok(true) => return Ok(StageReport::AlreadyDone(name)),
            Ok(false) => {}
            Err(why) => return Ok(StageReport::Refused(why.to_string())),
        }
        if let Err(changed) = view.pin.check(self.pipeline) {
            return Ok(StageReport::Refused(changed.to_string()));
        }
        let stage = self.pipeline.stage(&name).expect("may_run checked it");
        let config = self.pipeline.stage_config_path(stage);
        if stage.gates.alarms_clean {
            let prefix = run::alarm_prefix(self.pipeline, stage);
            let firing = self
                .host
                .alarms_firing(&prefix)
                .await
                .map_err(Error::Host)?;
            if let Some(why) = run::alarms_refusal(&name, &firing) {
                return Ok(StageReport::Refused(why));
            }
        }
        let mut journal = self.after(run, records.len(), keeper).await?;
        if !view.in_flight(&name) {
            let started = Record::StageStarted {
                at: now,
                stage: name.clone(),
                by: self.who.clone(),
            };
            journal.append(&started).await?;
        }
        let revision = &view.pin.revision;
        let config_arg = config.display().to_string();
        let argv = match run::command_line(self.pipeline, stage, run, &config_arg, revision) {
            Ok(argv) => argv,
            Err(why) => {
                let failed = Record::StageFailed {
                    at: self.host.now(),
                    stage: name.clone(),
                    reason: why.into(),
                };
                journal.append(&failed).await?;
                let why = why.to_string();
                return Ok(StageReport::NotRun { stage: name, why });
            }
        };
        let done_before = match stage.kind {
            Kind::Canary | Kind::Promote => self
                .host
                .canary_run(&config)
                .await
                .map_err(Error::Host)?
                .and_then(|last| run::already(stage.kind, &last, revision)),
            _ => None,
        };
        let (code, stdout) = match done_before {
            Some(note) => (0, note),
            None => {
                keeper.check(self.host.now()).await?;
                self.host.run(&argv).await.map_err(Error::Host)?
            }
        };
        let ended = run::stage_ended(&name, &argv, code, self.host.now());
        journal.append(&ended).await?;
        Ok(StageReport::Ran {
            stage: name,
            kind: stage.kind,
            revision: revision.clone(),
            code,
            stdout,
        })
    }

    /// Rolls back the canaries the run started and ends the run, freeing the lock.
    pub async fn abort(&self, run: &str) -> Result<AbortReport, Error> {
        let continuing = Mode::Continue { force: false };
        let keeper = match self.take(run, "pipeline abort", continuing).await? {
            Ok(k) => k,
            Err(why) => return Ok(AbortReport::Refused(why)),
        };
        let result = async {
            let (records, view) = self.read(run).await?;
            if view.ended() {
                return Ok(AbortReport::AlreadyOver);
            }
            let mut stdout = String::new();
            let mut codes = Vec::new();
            for stage in view.canaries_started(self.pipeline) {
                let config = self.pipeline.stage_config_path(stage).display().to_string();
                let argv = ["canary", "abort", "--config", &config].map(str::to_string);
                let (code, out) = self.host.run(&argv).await.map_err(Error::Host)?;
                stdout.push_str(&out);
                codes.push(code);
            }
            let mut journal = self.after(run, records.len(), &keeper).await?;
            let aborted = Record::Aborted {
                at: self.host.now(),
                by: self.who.clone(),
                reason: None,
            };
            journal.append(&aborted).await?;
            let code = run::abort_code(codes);
            Ok(AbortReport::Aborted { stdout, code })
        }
        .await;
        keeper.release(self.host.now()).await?;
        result
    }
}
