//! The flows of `canary run|resume|abort` and `promote` (and their dry runs): take the lock,
//! read the run, decide with [`super`]'s pure functions, drive the machine through the
//! executor, and end with a [`Reply`]. Nothing here prints: progress and notices go through
//! [`Hooks`].

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context;
use state::lock::Mode as LockMode;
use state::{Holder, RunJournal};

use super::{Action, Decision, Over, Reply, RunReport};
use crate::executor::{Executor, Progress, Providers, Settings};
use crate::fenced::FencedLock;
use crate::journal::{self, Journal, MemoryJournal, Record, RunState, StateJournal};
use crate::machine::{Machine, Mode, Next, Outcome, Plan, Pool};
use crate::provider::{Clock, SystemClock};
use crate::session::{watch_signals, Notice, Session};

/// What the caller sees of a run as it goes.
pub trait Observer {
    /// Each step, wait, look of the bake and journal record.
    fn progress(&mut self, p: &Progress);
    /// The executor stopped: nothing more comes through `progress`.
    fn finished(&mut self) {}
}

/// How a flow reports while it runs.
pub struct Hooks<'a> {
    pub observer: &'a mut dyn Observer,
    /// A line for stderr.
    pub notice: Notice,
    /// Called at SIGINT/SIGTERM while a run is driven (not in a dry run): `true` at the second.
    pub on_signal: Arc<dyn Fn(bool) + Send + Sync>,
}

/// What `canary run` was asked.
#[derive(Debug, Clone)]
pub struct Request {
    pub revision: String,
    pub previous_revision: Option<String>,
    pub canary_node: Option<String>,
    pub auto_promote: bool,
    pub dry_run: bool,
}

/// `canary run`: checks the revision, plans, takes the lock and drives a new run.
pub async fn start(s: &Session, a: &Request, hooks: &mut Hooks<'_>) -> anyhow::Result<Reply> {
    // Checked before the first AWS request: the revision reaches the deployer's commands.
    s.config.check_revision("--revision", &a.revision)?;
    for note in s.config.unchecked_preflight(&a.revision) {
        (hooks.notice)(&format!("preflight: {note}"));
    }
    let now = SystemClock.now();
    let run_id = journal::new_run_id(now);
    if a.dry_run {
        let lock = FencedLock::new(s.scope.clone(), None);
        let plan = plan_run(s, a, &run_id).await?;
        let mut journal = MemoryJournal::default();
        let holder = "dry-run".to_string();
        journal
            .append(&Record::Start {
                at: now,
                holder: holder.clone(),
                plan: plan.clone(),
            })
            .await?;
        let settings = s.settings(holder, a.auto_promote, true);
        let mut m = Machine::new(plan);
        return drive(s, &mut m, &mut journal, &lock, settings, None, None, hooks).await;
    }
    // The lock first: a refused run writes nothing another command reads.
    let who = s.who().await;
    let keeper = match s.take(&run_id, &who, "canary run", LockMode::Fresh).await? {
        Ok(k) => k,
        Err(why) => return Ok(Reply::Refused(why)),
    };
    let generation = keeper.generation().await;
    let lock = FencedLock::new(s.scope.clone(), Some(keeper));
    let prepared = async {
        if let Some(why) = s
            .last_run()
            .await?
            .as_ref()
            .and_then(super::unfinished_refusal)
        {
            anyhow::bail!("{why}");
        }
        plan_run(s, a, &run_id).await
    }
    .await;
    let plan = match prepared {
        Ok(plan) => plan,
        Err(e) => {
            // Nothing was journaled or changed: free the lock for the next run.
            if let Err(le) = lock.set_down(false).await {
                (hooks.notice)(&format!("canary: {le}"));
            }
            return Err(e);
        }
    };
    let holder = Holder::this_process(&who, "canary run").to_string();
    let start = Begin {
        run_id: &run_id,
        generation,
        at: now,
        holder,
        auto_promote: a.auto_promote,
    };
    begin(s, &lock, start, plan, hooks).await
}

/// What a new run's journal starts with.
struct Begin<'a> {
    run_id: &'a str,
    /// The deploy lock's generation the run holds.
    generation: u64,
    /// When it starts, seconds since the epoch.
    at: u64,
    holder: String,
    auto_promote: bool,
}

/// Starts a run's journal with its plan and drives the run from there.
async fn begin(
    s: &Session,
    lock: &FencedLock,
    b: Begin<'_>,
    plan: Plan,
    hooks: &mut Hooks<'_>,
) -> anyhow::Result<Reply> {
    let mut journal = StateJournal(RunJournal::create(&s.scope, b.run_id, b.generation)?);
    journal
        .append(&Record::Start {
            at: b.at,
            holder: b.holder.clone(),
            plan: plan.clone(),
        })
        .await?;
    let mut m = Machine::new(plan);
    let settings = s.settings(b.holder, b.auto_promote, false);
    drive(s, &mut m, &mut journal, lock, settings, None, None, hooks).await
}

/// The run's plan: the fleet, the canary node and the revision a rollback redeploys.
async fn plan_run(s: &Session, a: &Request, run_id: &str) -> anyhow::Result<Plan> {
    let c = &s.config.canary;
    let mut nodes = c.nodes.clone();
    if nodes.is_empty() {
        nodes =
            s.lb.members(Pool::Prod)
                .await?
                .into_iter()
                .map(|h| h.node)
                .collect();
        nodes.sort();
    }
    let canary_node = super::choose_node(
        &nodes,
        a.canary_node.as_deref(),
        c.canary_node.as_deref(),
        &s.prod_name,
    )
    .map_err(anyhow::Error::msg)?;
    let previous = match &a.previous_revision {
        Some(p) => p.clone(),
        None => s.deployer.current(&canary_node).await?.with_context(|| {
            format!(
                "cannot tell which revision {canary_node} runs (the rollback target): pass \
                 --previous-revision, or set canary.deployer.current in {}",
                s.config.file.display()
            )
        })?,
    };
    if previous == a.revision {
        anyhow::bail!(
            "{canary_node} already runs {}: nothing to deploy",
            a.revision
        );
    }
    Ok(Plan {
        run_id: run_id.to_string(),
        revision: a.revision.clone(),
        previous,
        canary_node,
        nodes,
        canary_weight: c.canary_weight,
        wave_size: c.wave_size,
        auto_promote: a.auto_promote,
        repair: false,
    })
}

/// A run this process took over: its state after the lock, its journal, and the lock.
struct Continued {
    run: RunState,
    journal: StateJournal,
    lock: FencedLock,
    holder: String,
}

/// Takes the lock for the current run (`resume`, `abort`, `promote`), then reads it: the lock
/// first, so that what is read cannot change underneath. `Ok(Err(why))`: refused (exit 2).
async fn take_over(
    s: &Session,
    command: &str,
    force: bool,
    notice: &Notice,
) -> anyhow::Result<Result<Option<Continued>, String>> {
    let run_id = match s.current_run_id().await? {
        Ok(Some(id)) => id,
        Ok(None) => return Ok(Ok(None)),
        Err(why) => return Ok(Err(why)),
    };
    let who = s.who().await;
    let keeper = match s
        .take(&run_id, &who, command, LockMode::Continue { force })
        .await?
    {
        Ok(k) => k,
        Err(why) => return Ok(Err(why)),
    };
    let generation = keeper.generation().await;
    let lock = FencedLock::new(s.scope.clone(), Some(keeper));
    let run = match journal::read_run(&s.scope, &run_id).await {
        Ok(Some(run)) => run,
        other => {
            // A run killed before its first record changed nothing; an unreadable one is not
            // ours to drive. Either way the lock is freed only in the first case.
            if let Err(e) = lock.set_down(other.is_err()).await {
                notice(&format!("canary: {e}"));
            }
            return match other {
                Ok(_) => Ok(Ok(None)),
                Err(e) => Err(e.into()),
            };
        }
    };
    let holder = Holder::this_process(&who, command).to_string();
    let next = run.records.len() as u64;
    let journal = StateJournal(RunJournal::continue_at(
        &s.scope, &run_id, next, generation,
    )?);
    Ok(Ok(Some(Continued {
        run,
        journal,
        lock,
        holder,
    })))
}

/// `canary resume` and `canary abort`: take the run over and drive it as the decision table
/// says; an ended run whose fleet disagrees is repaired.
pub async fn resume(
    s: &Session,
    action: Action,
    force: bool,
    hooks: &mut Hooks<'_>,
) -> anyhow::Result<Reply> {
    let command = action.command();
    let Continued {
        run,
        mut journal,
        lock,
        holder,
    } = match take_over(s, command, force, &hooks.notice).await? {
        Ok(Some(t)) => t,
        Ok(None) => return Ok(Reply::Said(no_run_in_flight(s))),
        Err(why) => return Ok(Reply::Refused(why)),
    };
    let mut m = run.machine.clone();
    let plan = m.plan().clone();
    if super::is_over(&run) {
        // The journal says the run is over; the world may not agree (a node left in the
        // canary group, a weight not 0): then a repair run puts it back.
        let canary_members = s.lb.members(Pool::Canary).await?;
        let weight = s.lb.weight().await.unwrap_or(0);
        let outcome = super::outcome_text(super::outcome_of(&run));
        if let Over::Done { close } = super::over(&run, canary_members.is_empty(), weight) {
            if close {
                // Stopped before the lock: nothing changed; close the run.
                let reason = "interrupted before anything changed".into();
                let outcome = Outcome::Refused { reason };
                journal
                    .append(&Record::Finish {
                        at: SystemClock.now(),
                        outcome,
                    })
                    .await?;
            }
            lock.set_down(false).await?;
            return Ok(Reply::Said(format!(
                "run {} is over: {outcome}",
                plan.run_id
            )));
        }
        let left: Vec<String> = canary_members.into_iter().map(|h| h.node).collect();
        let left = if left.is_empty() {
            "nothing".to_string()
        } else {
            left.join(", ")
        };
        (hooks.notice)(&format!(
            "canary: run {} is over ({outcome}) but {left} left in the canary group at weight \
             {weight}: repairing",
            plan.run_id,
        ));
        return repair(s, &plan, lock, holder, hooks).await;
    }
    let at = SystemClock.now();
    journal
        .append(&Record::Took {
            at,
            holder: holder.clone(),
            command: command.into(),
        })
        .await?;
    let settings = s.settings(holder, false, false);
    let abort = match super::decide(action, m.mode(), &m.next(), plan.auto_promote) {
        Decision::Abort(reason) => Some(reason),
        Decision::AwaitApproval => {
            lock.set_down(true).await?;
            return Ok(Reply::Said(format!(
                "run {} passed its canary and awaits approval: `gatekeeper promote` or `gatekeeper canary abort`",
                plan.run_id
            )));
        }
        Decision::Approve | Decision::Continue => None,
    };
    drive(s, &mut m, &mut journal, &lock, settings, None, abort, hooks).await
}

fn no_run_in_flight(s: &Session) -> String {
    format!("no canary run in flight in {}", s.scope.location())
}

fn no_run(s: &Session) -> String {
    format!(
        "no canary run in {}: `gatekeeper canary run` first",
        s.scope.location()
    )
}

/// `promote` after its confirmation: approve the passed canary (recording who, and
/// `reason` in the evidence) and promote the fleet in waves.
pub async fn promote(
    s: &Session,
    reason: Option<String>,
    hooks: &mut Hooks<'_>,
) -> anyhow::Result<Reply> {
    let Continued {
        run,
        mut journal,
        lock,
        holder,
    } = match take_over(s, "promote", false, &hooks.notice).await? {
        Ok(Some(t)) => t,
        Ok(None) => return Ok(Reply::Refused(no_run(s))),
        Err(why) => return Ok(Reply::Refused(why)),
    };
    let mut m = run.machine.clone();
    if let Some(why) = super::promote_refusal(&run) {
        // Not ours to change: put the lock back as it was found.
        lock.set_down(run.finished.is_none() && m.in_flight())
            .await?;
        return Ok(Reply::Refused(why));
    }
    let who = s.who().await;
    let at = SystemClock.now();
    let command = "promote".to_string();
    journal
        .append(&Record::Took {
            at,
            holder: holder.clone(),
            command,
        })
        .await?;
    let now = SystemClock.now();
    let verdict_recorded = crate::evidence::bake_record(&run.records)
        .ok()
        .flatten()
        .is_some_and(|r| r.verdict.is_some());
    if verdict_recorded {
        let approval = evidence::record::Approval {
            who: who.clone(),
            at: now,
            reason,
        };
        let entry = Box::new(evidence::Entry::Approval(approval));
        journal.append(&Record::Evidence { at: now, entry }).await?;
    }
    let settings = s.settings(holder, false, false);
    drive(
        s,
        &mut m,
        &mut journal,
        &lock,
        settings,
        Some(who),
        None,
        hooks,
    )
    .await
}

/// What `resume`, `abort` or `promote` would do to the current run, decided as they decide
/// it from the run's journal, the lock and the fleet (all read for real), then every action
/// reported and none performed: no lock is taken and nothing is journaled. Refusals are the
/// real command's; otherwise it never reports an outcome.
pub async fn preview(s: &Session, action: Action, hooks: &mut Hooks<'_>) -> anyhow::Result<Reply> {
    let run_id = match s.current_run_id().await? {
        Ok(Some(id)) => id,
        Ok(None) if action == Action::Promote => return Ok(Reply::Refused(no_run(s))),
        Ok(None) => return Ok(Reply::Said(no_run_in_flight(s))),
        Err(why) => return Ok(Reply::Refused(why)),
    };
    if let Some((lock, _)) = state::lock::read(&s.scope).await? {
        // The refusal the command would meet taking the lock, decided by the same rule.
        let claim = s.claim(&run_id, &s.who().await, action.command());
        let mode = LockMode::Continue { force: false };
        if let Some(why) = state::lock::refusal(&lock, &claim, mode, SystemClock.now()) {
            return Ok(Reply::Refused(format!("the deploy lock {why}")));
        }
    }
    let Some(run) = journal::read_run(&s.scope, &run_id).await? else {
        return Ok(Reply::Said(format!(
            "run {run_id} has no record: nothing to do"
        )));
    };
    let mut m = run.machine.clone();
    let over = super::is_over(&run);
    if action == Action::Promote {
        if let Some(why) = super::promote_refusal(&run) {
            return Ok(Reply::Refused(why));
        }
    }
    let (approve, abort) = if over {
        let canary_members = s.lb.members(Pool::Canary).await?;
        let weight = s.lb.weight().await.unwrap_or(0);
        let outcome = super::outcome_text(super::outcome_of(&run));
        if let Over::Done { .. } = super::over(&run, canary_members.is_empty(), weight) {
            return Ok(Reply::Said(format!(
                "run {run_id} is over: {outcome}; nothing to do"
            )));
        }
        // The real command repairs: a rollback journaled as a run of its own.
        (hooks.notice)(&format!(
            "dry run: run {run_id} is over ({outcome}) but the fleet is not: it would repair"
        ));
        m = Machine::new(super::repair_plan(m.plan(), format!("{run_id}-repair")));
        (None, None)
    } else {
        match super::decide(action, m.mode(), &m.next(), m.plan().auto_promote) {
            Decision::Approve => (Some(s.who().await), None),
            Decision::Abort(reason) => (None, Some(reason)),
            Decision::AwaitApproval => {
                return Ok(Reply::Said(format!(
                    "run {run_id} passed its canary and awaits approval: `gatekeeper promote` or \
                     `gatekeeper canary abort`; resume has nothing to do"
                )));
            }
            Decision::Continue => (None, None),
        }
    };
    let lock = FencedLock::new(s.scope.clone(), None);
    let mut journal = MemoryJournal::default();
    let settings = s.settings("dry-run".into(), false, true);
    drive(
        s,
        &mut m,
        &mut journal,
        &lock,
        settings,
        approve,
        abort,
        hooks,
    )
    .await
}

/// A repair run: rolls back what an ended run left behind, journaled as a run of its own.
async fn repair(
    s: &Session,
    ended: &Plan,
    lock: FencedLock,
    holder: String,
    hooks: &mut Hooks<'_>,
) -> anyhow::Result<Reply> {
    // The repair is journaled as a run of its own, under the lock this process took for the
    // ended run: no moment passes with the lock free. Interrupted, it is found again the
    // same way (the lock still names the ended run, and the world still disagrees).
    let now = SystemClock.now();
    let run_id = format!("{}-repair", journal::new_run_id(now));
    let generation = lock
        .generation()
        .await
        .context("the deploy lock was lost before the repair")?;
    let plan = super::repair_plan(ended, run_id.clone());
    let start = Begin {
        run_id: &run_id,
        generation,
        at: now,
        holder,
        auto_promote: false,
    };
    begin(s, &lock, start, plan, hooks).await
}

/// Drives `m` to its next resting point, reporting progress, then parks or frees the lock.
#[allow(clippy::too_many_arguments)]
async fn drive(
    s: &Session,
    m: &mut Machine,
    journal: &mut dyn Journal,
    lock: &FencedLock,
    settings: Settings,
    approve: Option<String>,
    abort: Option<&str>,
    hooks: &mut Hooks<'_>,
) -> anyhow::Result<Reply> {
    let stop = Arc::new(AtomicBool::new(false));
    let dry_run = settings.dry_run;
    if !dry_run {
        watch_signals(stop.clone(), hooks.on_signal.clone());
    }
    // A fresh run begins with the preflight; a dry run of it says the checks passed.
    let fresh = m.mode() == Mode::Canary && matches!(m.next(), Next::Do { index: 0, .. });
    let notifier = (!dry_run)
        .then(|| s.notifier(m, hooks.notice.clone()))
        .flatten();
    if let Some(n) = &notifier {
        if fresh {
            n.send(crate::notify::Change::Started);
        }
    }
    let observer = &mut *hooks.observer;
    let mut on_progress = |p: &Progress| {
        observer.progress(p);
        if let (Some(n), Some(change)) = (&notifier, crate::notify::Change::from_progress(p)) {
            n.send(change);
        }
    };
    let metrics = s.metrics_for(m.plan());
    let mut ex = Executor {
        providers: Providers {
            lb: s.lb.as_ref(),
            deployer: s.deployer.as_ref(),
            metrics: &metrics,
            preflight: &s.preflight,
            lock,
            clock: &SystemClock,
        },
        journal,
        settings,
        progress: &mut on_progress,
        stop: stop.clone(),
        lock_kept_at: 0,
    };
    let driven = async {
        if let Some(who) = approve {
            ex.approve(m, &who).await?;
        }
        if let Some(reason) = abort {
            ex.abort(m, reason).await?;
        }
        ex.drive(m).await
    }
    .await;
    drop(ex);
    hooks.observer.finished();
    // A run still in flight (awaiting approval, halted, stopped) is parked: nothing new
    // starts over it, and any runner continues it. A finished run frees the lock.
    let in_flight = !matches!(driven, Ok(Next::Finished(_)));
    if let Err(e) = lock.set_down(in_flight && m.in_flight()).await {
        (hooks.notice)(&format!("canary: {e}"));
    }
    if let Some(n) = notifier {
        if let Some(change) = driven
            .as_ref()
            .ok()
            .and_then(crate::notify::Change::from_next)
        {
            n.send(change);
        }
        n.finish().await;
    }
    let next = driven?;
    let mut report = RunReport::new(m, &next);
    if dry_run {
        report = report.dry_run(&next, fresh);
    }
    Ok(Reply::Driven { report, next })
}
