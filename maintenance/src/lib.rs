//! Maintenance mode: set the flag, wait for the queues to drain, run the hooks; and back.
//!
//! # Under the lock
//!
//! `maintenance on` first takes the service's lock in the state layer (the one lock that
//! canary, promote and maintenance share; purpose `maintenance`), then reads its journal
//! there, then acts. A second `on` at once is refused (exit 2) and runs nothing; a canary run
//! is refused while maintenance holds the lock. `on --force` takes the lock from a canary
//! *awaiting approval* (parked): that canary stays where it is and gets the lock back when
//! `maintenance off` lets go; a canary that is running is never preempted.
//!
//! A run's steps, each a record of its journal (`journal`), written when it completes:
//!
//! 1. `preflight`: report work in flight that maintenance would strand (see [`preflight`]).
//! 2. `flag-on`: write the SSM flag (enabled, message, until, who, when) and read it back.
//! 3. `drained`: wait until every selected queue reads zero, visible and in flight, on looks
//!    taken no sooner than `[maintenance] flag_ttl_seconds` after the flag was read back:
//!    services cache the flag that long, and until their caches expire they still accept
//!    work. Empty queues do not end the wait early.
//! 4. `hook-started`/`hook-done`: run each hook in order; the first failure stops the run.
//! 5. `done`: maintenance is on. The lock stays *parked* with the run (no process drives
//!    it, new canary runs are refused) until `maintenance off`.
//!
//! A rerun after an interruption (on this runner or another: the journal is in the state
//! layer) continues the run in the lock: hooks with a `hook-done` are not run again (a
//! database backup is not taken twice); a hook cut short is run again; the flag, the
//! preflight and the drain are cheap and idempotent and are checked again. The flag TTL is
//! counted from the `flag-on` record, so a resume waits only what is left of it.
//!
//! # `off` during `on`: no hook after the flag is off
//!
//! `maintenance off` does not take the lock from a running `on` (a fenced `on` could not
//! say when its running hook ended). It appends an `off` record to that run's journal, after
//! its last record, create-only. Every hook's start is gated by, in order: the lease still
//! held, the flag read back as on, and the `hook-started` record written create-only at the
//! run's next slot. Two writers can never both write a slot, so once `off`'s record is
//! written no `hook-started` can be, and `on` stops (parking the lock) before its next hook,
//! exiting 2 with "ended by maintenance off". A hook already running is let finish (killing
//! a migration half-way is worse); `off` waits for `on` to park the lock (or for its lease
//! to lapse, when it died), takes the lock, and only then clears the flag. So no hook starts
//! after `off` returned, and none runs while the flag is off. The drain and the flag TTL
//! wait watch the journal too, so `off` during the wait ends `on` within a poll interval.
//!
//! Nothing here prints; progress is reported through [`Event`]s.

pub mod buckets;
pub mod config;
pub mod journal;
pub mod plan;
pub mod preflight;
pub mod queues;
pub mod redrive;

use std::time::Duration;

use maintenance_flag::MaintenanceFlag;
use serde::Serialize;
use stacks::config::Config;
use state::lock::{wall_now, Claim, Keeper, LockInfo, LockState, Mode};
use state::{Holder, RunJournal, Scope, StateError};

use journal::{End, Progress, Record};

pub use config::MaintenanceConfig;
pub use queues::{Depth, DrainOutcome};

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error("{operation} on {resource}: {message}")]
    Aws {
        operation: &'static str,
        resource: String,
        message: String,
    },
    #[error("queue {0} does not exist; check [[queues]] / [maintenance] queues in the configuration, or deploy the rails stack")]
    MissingQueue(String),
    #[error("[maintenance] queues: {0:?} is not the name of any [[queues]] entry")]
    UnknownQueue(String),
    #[error("SSM parameter {parameter} holds {found:?}, not the flag just written; another writer may be racing this one")]
    ReadBack { parameter: String, found: String },
    #[error("SSM parameter {parameter} does not hold a maintenance flag: {message}")]
    BadFlag { parameter: String, message: String },
    #[error("hook {name}: {message}")]
    Hook { name: String, message: String },
    #[error("in-flight command {command}: {message}")]
    InFlightCommand { command: String, message: String },
    #[error("journal {path}: {message}")]
    Journal { path: String, message: String },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "cannot tell the bucket names: set [maintenance] parking_lot_bucket and ingestion_bucket, \
         or [buckets] names, or deploy stack {stack} (its outputs name them)"
    )]
    NoBuckets { stack: String },
    #[error(transparent)]
    Stack(#[from] stack_deploy::DeployError),
    #[error(transparent)]
    Redrive(#[from] redrive::RedriveError),
    /// `maintenance off` ended the run this process drives.
    #[error("maintenance run {run} was ended by `maintenance off` ({who})")]
    EndedByOff { run: String, who: String },
}

/// Progress of a maintenance command, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Event {
    /// A run interrupted earlier is resumed; these steps are already done.
    Resumed {
        run: String,
        done: Vec<String>,
    },
    InFlight(Vec<preflight::InFlight>),
    FlagWritten(MaintenanceFlag),
    /// No queue counts as drained before this much longer has passed: services may still
    /// answer from the flag they cached before it was set.
    WaitingForFlagReaders {
        left: Duration,
    },
    Depths {
        depths: Vec<Depth>,
        waited: Duration,
    },
    HookStarted {
        name: String,
    },
    HookSkipped {
        name: String,
    },
    HookFinished {
        name: String,
        output: String,
    },
    /// `--force` took the lock from this parked run (a canary awaiting approval): it stays
    /// where it is and gets the lock back when maintenance is turned off.
    Preempted {
        run: String,
        purpose: String,
    },
    /// `off` asked the running `on` of `run` to stop before its next hook; `hook` runs now.
    StopRequested {
        run: String,
        hook: Option<String>,
    },
}

/// The service's queues and flag, resolved from both views of `gatekeeper.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub service: String,
    pub environment: String,
    pub flag_parameter: String,
    /// Work queues to drain, full names.
    pub queues: Vec<String>,
    /// Their dead-letter queues (shown, never drained).
    pub dlqs: Vec<String>,
}

/// Resolves the queues to drain: `[maintenance] queues` (short names of `[[queues]]`), every
/// queue named with `queue_prefix` (listed from SQS), or all `[[queues]]`.
pub async fn target(
    stack: &Config,
    config: &MaintenanceConfig,
    sqs: &aws_sdk_sqs::Client,
) -> Result<Target, MaintenanceError> {
    let (queues, dlqs) = if let Some(prefix) = &config.queue_prefix {
        let queues = queues::with_prefix(sqs, prefix.get_ref()).await?;
        let dlqs = queues
            .iter()
            .map(|q| match q.strip_suffix(".fifo") {
                Some(base) => format!("{base}-dlq.fifo"),
                None => format!("{q}-dlq"),
            })
            .collect();
        (queues, dlqs)
    } else {
        let mut chosen = Vec::new();
        match &config.queues {
            Some(names) => {
                for n in names {
                    let q = stack
                        .queues
                        .iter()
                        .find(|q| q.name.get_ref() == n.get_ref())
                        .ok_or_else(|| MaintenanceError::UnknownQueue(n.get_ref().clone()))?;
                    chosen.push(q);
                }
            }
            None => chosen.extend(stack.queues.iter()),
        }
        (
            chosen.iter().map(|q| stack.queue_name(q)).collect(),
            chosen.iter().map(|q| stack.dlq_name(q)).collect(),
        )
    };
    Ok(Target {
        service: stack.service().to_string(),
        environment: stack.environment().to_string(),
        flag_parameter: stack.flag_parameter(),
        queues,
        dlqs,
    })
}

/// Now, as RFC 3339 in UTC.
#[expect(
    clippy::disallowed_methods,
    reason = "the flag's `when` is wall-clock time for people"
)]
pub fn now_rfc3339() -> String {
    aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// The flag as stored, or `None` when the parameter does not exist (maintenance never set,
/// which the contract counts as off): the one reader, [`maintenance_flag::read_stored`].
pub async fn read_flag(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
) -> Result<Option<MaintenanceFlag>, MaintenanceError> {
    maintenance_flag::read_stored(ssm, parameter)
        .await
        .map_err(|e| match e {
            maintenance_flag::ReadError::Invalid { parameter, message } => {
                MaintenanceError::BadFlag { parameter, message }
            }
            maintenance_flag::ReadError::Ssm { parameter, message } => MaintenanceError::Aws {
                operation: "GetParameter",
                resource: parameter,
                message,
            },
        })
}

/// Writes the flag and reads it back; the stored document must be the one written.
pub async fn write_flag(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
    flag: &MaintenanceFlag,
) -> Result<(), MaintenanceError> {
    ssm.put_parameter()
        .name(parameter)
        .value(flag.to_json())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .description("gatekeeper maintenance flag (JSON); see the README's flag contract")
        .send()
        .await
        .map_err(|e| MaintenanceError::Aws {
            operation: "PutParameter",
            resource: parameter.to_string(),
            message: aws_errors::message(&e),
        })?;
    match read_flag(ssm, parameter).await? {
        Some(stored) if &stored == flag => Ok(()),
        other => Err(MaintenanceError::ReadBack {
            parameter: parameter.to_string(),
            found: other.map(|f| f.to_json()).unwrap_or_default(),
        }),
    }
}

/// The lock's purpose for maintenance runs.
pub const PURPOSE: &str = "maintenance";

/// Where the lock and the journal live, and how the lock may be taken.
#[derive(Clone)]
pub struct Locking {
    pub scope: Scope,
    /// `[state] lease_seconds`.
    pub lease: u64,
    /// `--force`: take the lock from a parked run of another purpose (a canary awaiting
    /// approval; handed back when maintenance is turned off), or continue a maintenance run
    /// whose holder on another host stopped renewing its lease.
    pub force: bool,
}

/// What `maintenance on` was asked to do.
#[derive(Debug, Clone)]
pub struct OnRequest {
    pub message: String,
    pub until: Option<String>,
    /// The caller's identity (STS ARN), recorded in the flag, the lock and the journal.
    pub who: String,
    pub drain_timeout: Duration,
    pub poll_interval: Duration,
    /// `[maintenance] flag_ttl_seconds`: no hook runs before this long after the flag write.
    pub flag_ttl: Duration,
}

/// How `maintenance on` ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum OnOutcome {
    /// Flag set, queues drained, hooks run; the run stays parked in the lock until `off`.
    Done {
        run: String,
        flag: MaintenanceFlag,
        in_flight: Vec<preflight::InFlight>,
        waited: Duration,
    },
    /// Preflight found work in flight and `[maintenance.in_flight] refuse` is set; nothing changed.
    Refused { in_flight: Vec<preflight::InFlight> },
    /// The flag is on but the queues did not drain in time; hooks were not run.
    NotDrained {
        run: String,
        flag: MaintenanceFlag,
        waited: Duration,
        remaining: Vec<Depth>,
    },
    /// Another run holds the lock (a second `maintenance on`, a canary): nothing was done.
    Held { reason: String },
    /// The run already finished: maintenance is on, no hook runs again.
    AlreadyOn { run: String },
    /// `maintenance off` ended the run: no hook ran after it, these hooks were not run.
    Ended {
        run: String,
        who: String,
        not_run: Vec<String>,
    },
    /// The flag was found off (cleared by hand) before a hook: that hook and the rest were
    /// not run; `maintenance on` again sets it again and resumes the run.
    FlagCleared { run: String, hook: String },
}

/// A maintenance run this process drives: its lease on the lock and its journal.
struct Run {
    scope: Scope,
    id: String,
    keeper: Keeper,
    journal: RunJournal,
    progress: Progress,
}

enum Begun {
    Run(Box<Run>),
    Held(String),
}

impl Run {
    async fn check(&self) -> Result<(), MaintenanceError> {
        Ok(self.keeper.check(wall_now()).await?)
    }

    /// Appends `record` under the lease; a slot taken by `maintenance off` ends the run.
    async fn append(&mut self, record: Record) -> Result<(), MaintenanceError> {
        let now = wall_now();
        self.check().await?;
        let mut next = self.progress.clone();
        next.apply(now, &record)
            .map_err(|message| MaintenanceError::Journal {
                path: self.journal.location(),
                message: format!("{} refused: {message}", journal::step_name(&record)),
            })?;
        match self.journal.append(now, &record).await {
            Ok(_) => {
                self.progress = next;
                Ok(())
            }
            Err(e @ (StateError::Conflict { .. } | StateError::Fenced { .. })) => {
                Err(self.ended_by_off().await?.unwrap_or(e.into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `Some(EndedByOff)` when the run's journal now ends with `off`.
    async fn ended_by_off(&self) -> Result<Option<MaintenanceError>, MaintenanceError> {
        let p = journal::load(&self.scope, &self.id).await?;
        Ok(match p.end {
            Some(End::Off { who }) => Some(MaintenanceError::EndedByOff {
                run: self.id.clone(),
                who,
            }),
            _ => None,
        })
    }

    /// Resolves (with an error) once this process may no longer act: the lease was lost,
    /// or another writer (`maintenance off`) appended to the run.
    async fn watch(&self, every: Duration) -> MaintenanceError {
        loop {
            tokio::time::sleep(every).await;
            if let Err(e) = self.check().await {
                return e;
            }
            match state::journal::read::<Record>(&self.scope, &self.id).await {
                Ok(records) if records.len() as u64 > self.journal.next_seq() => {
                    return match self.ended_by_off().await {
                        Ok(Some(e)) => e,
                        Ok(None) => MaintenanceError::Journal {
                            path: self.journal.location(),
                            message: "another writer appended to this run: stopped".into(),
                        },
                        Err(e) => e,
                    };
                }
                // A passing read failure: the next look tries again.
                _ => {}
            }
        }
    }
}

/// Takes the lock for `command`: a maintenance run in flight is continued (`Continue`),
/// else a new run starts (`Fresh`, or `Preempt` with `--force`).
async fn begin(
    lock: &Locking,
    who: &str,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Result<Begun, MaintenanceError> {
    let scope = &lock.scope;
    let mut last = String::new();
    for _ in 0..4 {
        let now = wall_now();
        let current = state::lock::read(scope).await?;
        let continuing = current
            .as_ref()
            .filter(|(i, _)| i.state != LockState::Free && i.purpose == PURPOSE)
            .map(|(i, _)| i.run_id.clone());
        let (run_id, mode) = match &continuing {
            Some(run) => (run.clone(), Mode::Continue { force: lock.force }),
            None if lock.force => (journal::new_run_id(now), Mode::Preempt),
            None => (journal::new_run_id(now), Mode::Fresh),
        };
        let claim = Claim {
            run_id: run_id.clone(),
            purpose: PURPOSE.into(),
            holder: Holder::this_process(who, "maintenance on"),
            ttl: lock.lease,
        };
        let lease = match state::lock::acquire(scope, &claim, mode, now).await {
            Ok(lease) => lease,
            Err(StateError::Held(r)) => {
                // A maintenance run began meanwhile: decide again, as its continuation.
                let raced = continuing.is_none()
                    && r.info.purpose == PURPOSE
                    && r.info.state != LockState::Free;
                if raced && last != r.info.run_id {
                    last = r.info.run_id.clone();
                    continue;
                }
                let mut reason = r.to_string();
                if !lock.force && r.info.parked(now) && r.info.purpose != PURPOSE {
                    reason.push_str(&format!(
                        "; or `gatekeeper maintenance on --force`, which leaves {} run {} where it \
                         is (no step of it is taken) and hands it the lock back at `maintenance \
                         off`",
                        r.info.purpose, r.info.run_id
                    ));
                }
                return Ok(Begun::Held(reason));
            }
            Err(e) => return Err(e.into()),
        };
        if continuing.is_none() {
            if let Some(p) = &lease.info.preempted {
                on_event(Event::Preempted {
                    run: p.run_id.clone(),
                    purpose: p.purpose.clone(),
                });
            }
        }
        let generation = lease.generation();
        let progress = if continuing.is_some() {
            match journal::load(scope, &run_id).await {
                Ok(p) => p,
                Err(e) => {
                    // Leave the run as it was found.
                    let _ = state::lock::park(scope, &lease, wall_now()).await;
                    return Err(e);
                }
            }
        } else {
            Progress::default()
        };
        if matches!(progress.end, Some(End::Refused | End::Failed)) {
            // A run that changed nothing and ended without letting go: free it, start anew.
            state::lock::release(scope, &lease, wall_now()).await?;
            continue;
        }
        let journal = RunJournal::continue_at(scope, &run_id, progress.records, generation)?;
        return Ok(Begun::Run(Box::new(Run {
            scope: scope.clone(),
            id: run_id,
            keeper: Keeper::start(scope, lease),
            journal,
            progress,
        })));
    }
    Err(MaintenanceError::State(StateError::Conflict {
        key: scope.lock_key(),
        message: "the lock kept changing under this command: run it again".into(),
    }))
}

/// `maintenance on` under the lock, journaled in the state layer and resumable (see the
/// module docs).
pub async fn on(
    clients: &Clients<'_>,
    target: &Target,
    config: &MaintenanceConfig,
    lock: &Locking,
    request: &OnRequest,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Result<OnOutcome, MaintenanceError> {
    let mut run = match begin(lock, &request.who, on_event).await? {
        Begun::Run(run) => run,
        Begun::Held(reason) => return Ok(OnOutcome::Held { reason }),
    };
    let early = match &run.progress.end {
        Some(End::Done) => Some(OnOutcome::AlreadyOn {
            run: run.id.clone(),
        }),
        Some(End::Off { who }) => Some(OnOutcome::Ended {
            run: run.id.clone(),
            who: who.clone(),
            not_run: not_run(config, &run.progress),
        }),
        _ => None,
    };
    if let Some(outcome) = early {
        run.keeper.park(wall_now()).await?;
        return Ok(outcome);
    }
    if run.progress.records == 0 {
        let preempted = run.keeper.lease().await.info.preempted.map(|p| p.run_id);
        let started = Record::Started {
            who: request.who.clone(),
            message: request.message.clone(),
            until: request.until.clone(),
            preempted,
        };
        if let Err(e) = run.append(started).await {
            let _ = run.keeper.release(wall_now()).await;
            return Err(e);
        }
    } else {
        on_event(Event::Resumed {
            run: run.id.clone(),
            done: run.progress.steps(),
        });
    }
    let result = drive(clients, target, config, &mut run, request, on_event).await;
    let changed = run.progress.flag_on_at.is_some();
    match result {
        Ok(outcome @ OnOutcome::Refused { .. }) => {
            run.keeper.release(wall_now()).await?;
            Ok(outcome)
        }
        Ok(outcome) => {
            run.keeper.park(wall_now()).await?;
            Ok(outcome)
        }
        Err(MaintenanceError::EndedByOff { run: id, who }) => {
            let not_run = not_run(config, &run.progress);
            // `off` waits for this park before it clears the flag.
            run.keeper.park(wall_now()).await?;
            Ok(OnOutcome::Ended {
                run: id,
                who,
                not_run,
            })
        }
        Err(e) if !changed => {
            let _ = run
                .append(Record::Failed {
                    error: e.to_string(),
                })
                .await;
            let _ = run.keeper.release(wall_now()).await;
            Err(e)
        }
        Err(e) => {
            // The flag is on: the run stays in flight for `on` to resume or `off` to end.
            let _ = run.keeper.park(wall_now()).await;
            Err(e)
        }
    }
}

/// The hooks a run ended by `off` did not run. A hook still `in_hook` in this process's
/// progress ran to its end: only its `hook-done` record lost its slot to `off`'s.
fn not_run(config: &MaintenanceConfig, progress: &Progress) -> Vec<String> {
    config
        .hooks
        .iter()
        .map(|h| h.name.clone())
        .filter(|h| !progress.hooks_done.contains(h) && progress.in_hook.as_ref() != Some(h))
        .collect()
}

async fn drive(
    clients: &Clients<'_>,
    target: &Target,
    config: &MaintenanceConfig,
    run: &mut Run,
    request: &OnRequest,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Result<OnOutcome, MaintenanceError> {
    // Every queue must exist before anything changes: a typo is not a drained queue.
    for q in &target.queues {
        queues::depth(clients.sqs, q).await?;
    }
    let in_flight = preflight::in_flight(clients, &config.in_flight).await?;
    on_event(Event::InFlight(in_flight.clone()));
    if !in_flight.is_empty() && config.in_flight.refuse && run.progress.flag_on_at.is_none() {
        run.append(Record::Refused).await?;
        return Ok(OnOutcome::Refused { in_flight });
    }
    run.append(Record::Preflight).await?;

    // A resumed run keeps the flag it wrote, so `when` tells when maintenance began.
    let current = read_flag(clients.ssm, &target.flag_parameter).await?;
    let (flag, noticed_by) = match (current, run.progress.flag_on_at) {
        (Some(f), Some(at)) if f.enabled => (f, noticed_by(Some(at), request.flag_ttl)),
        _ => {
            let flag = MaintenanceFlag {
                enabled: true,
                message: request.message.clone(),
                until: request.until.clone(),
                who: Some(request.who.clone()),
                when: Some(now_rfc3339()),
            };
            run.check().await?;
            write_flag(clients.ssm, &target.flag_parameter, &flag).await?;
            let noticed_by = tokio::time::Instant::now() + request.flag_ttl;
            // Written again in a resumed run (someone cleared it): the TTL starts again too.
            run.append(Record::FlagOn).await?;
            (flag, noticed_by)
        }
    };
    on_event(Event::FlagWritten(flag.clone()));
    let left = noticed_by.saturating_duration_since(tokio::time::Instant::now());
    if !left.is_zero() {
        on_event(Event::WaitingForFlagReaders { left });
    }

    // The wait ends early when `off` ends the run or the lease is lost.
    let outcome = tokio::select! {
        outcome = queues::drain_after(
            clients.sqs,
            &target.queues,
            request.drain_timeout,
            request.poll_interval,
            noticed_by,
            on_event,
        ) => outcome?,
        stop = run.watch(request.poll_interval) => return Err(stop),
    };
    let waited = match outcome {
        DrainOutcome::Drained { waited } => waited,
        DrainOutcome::TimedOut { waited, remaining } => {
            return Ok(OnOutcome::NotDrained {
                run: run.id.clone(),
                flag,
                waited,
                remaining,
            })
        }
    };
    run.append(Record::Drained).await?;

    for hook in &config.hooks {
        if run.progress.hooks_done.contains(&hook.name) {
            on_event(Event::HookSkipped {
                name: hook.name.clone(),
            });
            continue;
        }
        // The gate of every hook: the lease still ours, the flag still on, and the
        // `hook-started` record written create-only: once `off` has written its record no
        // such write succeeds, so no hook starts after `off` (see the module docs).
        run.check().await?;
        let on = read_flag(clients.ssm, &target.flag_parameter)
            .await?
            .is_some_and(|f| f.enabled);
        if !on {
            if let Some(e) = run.ended_by_off().await? {
                return Err(e);
            }
            return Ok(OnOutcome::FlagCleared {
                run: run.id.clone(),
                hook: hook.name.clone(),
            });
        }
        run.append(Record::HookStarted {
            name: hook.name.clone(),
        })
        .await?;
        on_event(Event::HookStarted {
            name: hook.name.clone(),
        });
        let output = preflight::run_hook(hook).await?;
        run.append(Record::HookDone {
            name: hook.name.clone(),
        })
        .await?;
        on_event(Event::HookFinished {
            name: hook.name.clone(),
            output,
        });
    }
    run.append(Record::Done).await?;
    Ok(OnOutcome::Done {
        run: run.id.clone(),
        flag,
        in_flight,
        waited,
    })
}

/// When every service has noticed a flag read back at `at` (seconds since the epoch, from
/// the journal): `ttl` after it, counted from now as far as it has not passed. An unknown
/// time, or one in the future (the clock moved back), waits the whole TTL from now.
fn noticed_by(at: Option<u64>, ttl: Duration) -> tokio::time::Instant {
    let since = at
        .and_then(|at| wall_now().checked_sub(at))
        .map(Duration::from_secs)
        .unwrap_or(Duration::ZERO);
    tokio::time::Instant::now() + ttl.saturating_sub(since)
}

/// The flag `off` wrote, and when services have noticed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleared {
    pub flag: MaintenanceFlag,
    /// The flag TTL after the write was read back: until then a service may still answer
    /// from its cached flag and park uploads (see `redrive::Request::list_after`).
    pub noticed_by: tokio::time::Instant,
}

/// How `maintenance off` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffOutcome {
    /// The flag is off; `run` was ended; the lock went back to `handed_back` (a canary
    /// run preempted by `maintenance on --force`) or is free.
    Cleared {
        cleared: Cleared,
        run: String,
        handed_back: Option<String>,
    },
    /// Another run holds the lock (a canary): nothing was done.
    Held { reason: String },
    /// The run was ended (no hook starts again) but its `on` is still running `hook` past
    /// the wait: the flag is still on; `maintenance off` again clears it once `on` stops.
    StillRunning { run: String, hook: Option<String> },
}

/// Appends `off` to a run another process drives, after its last record (create-only:
/// either this record or that process's next one takes a slot, never both). Returns the
/// hook the run is in, if any.
async fn ask_to_stop(
    scope: &Scope,
    run: &str,
    generation: u64,
    who: &str,
) -> Result<Option<String>, MaintenanceError> {
    for _ in 0..16 {
        let progress = journal::load(scope, run).await?;
        if matches!(progress.end, Some(End::Off { .. })) {
            return Ok(progress.in_hook);
        }
        let record = Record::Off {
            who: who.to_string(),
        };
        let mut j = RunJournal::continue_at(scope, run, progress.records, generation)?;
        match j.append(wall_now(), &record).await {
            Ok(_) => return Ok(progress.in_hook),
            // The run wrote its next record first: read again, append after it.
            Err(StateError::Conflict { .. } | StateError::Fenced { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(MaintenanceError::State(StateError::Conflict {
        key: scope.lock_key(),
        message: format!("run {run} kept appending: run `maintenance off` again"),
    }))
}

/// `maintenance off`: ends the maintenance run in flight (asking a running `on` to stop
/// before its next hook and waiting up to `wait` for it), then, holding the lock, clears the
/// flag (keeping who turned it off, and when), reads it back, and lets the lock go.
pub async fn off(
    ssm: &aws_sdk_ssm::Client,
    target: &Target,
    lock: &Locking,
    who: &str,
    flag_ttl: Duration,
    wait: Duration,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Result<OffOutcome, MaintenanceError> {
    let scope = &lock.scope;
    let mut asked: Option<(String, Option<String>, tokio::time::Instant)> = None;
    let mut raced = false;
    loop {
        let now = wall_now();
        let current = state::lock::read(scope).await?;
        let ours = current
            .as_ref()
            .filter(|(i, _)| i.state != LockState::Free && i.purpose == PURPOSE)
            .map(|(i, _)| i.clone());
        let (run_id, mode) = match &ours {
            Some(i) => (i.run_id.clone(), Mode::Continue { force: lock.force }),
            None if lock.force => (journal::new_run_id(now), Mode::Preempt),
            None => (journal::new_run_id(now), Mode::Fresh),
        };
        if let Some(info) = ours.as_ref().filter(|i| i.live(now)) {
            if asked.as_ref().is_none_or(|(r, _, _)| r != &info.run_id) {
                let hook = ask_to_stop(scope, &info.run_id, info.generation, who).await?;
                on_event(Event::StopRequested {
                    run: info.run_id.clone(),
                    hook: hook.clone(),
                });
                asked = Some((
                    info.run_id.clone(),
                    hook,
                    tokio::time::Instant::now() + wait,
                ));
            }
        }
        let claim = Claim {
            run_id: run_id.clone(),
            purpose: PURPOSE.into(),
            holder: Holder::this_process(who, "maintenance off"),
            ttl: lock.lease,
        };
        let lease = match state::lock::acquire(scope, &claim, mode, now).await {
            Ok(lease) => lease,
            Err(StateError::Held(r)) => {
                if let Some((run, hook, until)) = &asked {
                    if &r.info.run_id == run && r.info.state == LockState::Held {
                        if tokio::time::Instant::now() >= *until {
                            return Ok(OffOutcome::StillRunning {
                                run: run.clone(),
                                hook: hook.clone(),
                            });
                        }
                        tokio::time::sleep(Duration::from_millis(250)).await;
                        continue;
                    }
                }
                if ours.is_none() && r.info.purpose == PURPOSE && !raced {
                    raced = true;
                    continue;
                }
                return Ok(OffOutcome::Held {
                    reason: r.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let keeper = Keeper::start(scope, lease.clone());
        let progress = if ours.is_some() {
            journal::load(scope, &run_id).await?
        } else {
            Progress::default()
        };
        if !matches!(progress.end, Some(End::Off { .. })) {
            let record = Record::Off {
                who: who.to_string(),
            };
            let mut next = progress.clone();
            next.apply(now, &record)
                .map_err(|message| MaintenanceError::Journal {
                    path: run_id.clone(),
                    message,
                })?;
            RunJournal::continue_at(scope, &run_id, progress.records, lease.generation())?
                .append(wall_now(), &record)
                .await?;
        }
        let flag = MaintenanceFlag {
            enabled: false,
            message: String::new(),
            until: None,
            who: Some(who.to_string()),
            when: Some(now_rfc3339()),
        };
        keeper.check(wall_now()).await?;
        write_flag(ssm, &target.flag_parameter, &flag).await?;
        let noticed_by = tokio::time::Instant::now() + flag_ttl;
        keeper.release(wall_now()).await?;
        return Ok(OffOutcome::Cleared {
            cleared: Cleared { flag, noticed_by },
            run: run_id,
            handed_back: lease.info.preempted.map(|p| p.run_id),
        });
    }
}

/// The lock as it stands, for `status` and dry runs.
pub async fn lock_info(scope: &Scope) -> Result<Option<LockInfo>, MaintenanceError> {
    Ok(state::lock::read(scope).await?.map(|(i, _)| i))
}

/// A maintenance run's progress, for dry runs.
pub async fn progress(scope: &Scope, run: &str) -> Result<Progress, MaintenanceError> {
    journal::load(scope, run).await
}

/// What `maintenance status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub parameter: String,
    /// `None`: the parameter does not exist (maintenance was never turned on).
    pub flag: Option<MaintenanceFlag>,
    pub queues: Vec<Depth>,
    pub dead_letter_queues: Vec<Depth>,
    pub parking_lot_bucket: String,
    pub parking_lot_objects: u64,
}

pub async fn status(
    clients: &Clients<'_>,
    target: &Target,
    parking_lot_bucket: &str,
) -> Result<Status, MaintenanceError> {
    let flag = read_flag(clients.ssm, &target.flag_parameter).await?;
    let mut queues = Vec::new();
    for q in &target.queues {
        queues.push(queues::depth(clients.sqs, q).await?);
    }
    let mut dead_letter_queues = Vec::new();
    for q in &target.dlqs {
        if queues::url(clients.sqs, q).await?.is_some() {
            dead_letter_queues.push(queues::depth(clients.sqs, q).await?);
        }
    }
    let parking_lot_objects = preflight::count_objects(clients.s3, parking_lot_bucket, "").await?;
    Ok(Status {
        parameter: target.flag_parameter.clone(),
        flag,
        queues,
        dead_letter_queues,
        parking_lot_bucket: parking_lot_bucket.to_string(),
        parking_lot_objects,
    })
}

/// The clients maintenance uses, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct Clients<'a> {
    pub ssm: &'a aws_sdk_ssm::Client,
    pub sqs: &'a aws_sdk_sqs::Client,
    pub s3: &'a aws_sdk_s3::Client,
    /// Where `[maintenance.in_flight] objects_prefix` is looked for.
    pub ingestion_bucket: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_ttl_counts_from_the_journaled_read_back() {
        let ttl = Duration::from_secs(30);
        let left = |at: Option<u64>| {
            noticed_by(at, ttl).saturating_duration_since(tokio::time::Instant::now())
        };
        assert!(left(Some(1_600_000_000)).is_zero(), "long past");
        assert!(
            left(None) > Duration::from_secs(29),
            "unknown: the whole TTL"
        );
        assert!(left(Some(wall_now() + 3600)) > Duration::from_secs(29));
        let rest = left(Some(wall_now() - 10));
        assert!(
            rest > Duration::from_secs(18) && rest <= Duration::from_secs(20),
            "{rest:?}"
        );
    }
}
