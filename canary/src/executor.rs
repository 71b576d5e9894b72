//! The executor performs what the machine decides, through the providers, journaling every
//! action before (`began`) and after (`completed` / `failed`) it runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::journal::{Journal, Record};
use crate::judge::{Group, Interval, Judge, JudgeConfig, Verdict};
use crate::machine::{Action, Event, Machine, Mode, Next, Outcome, Pool};
use crate::provider::{
    Clock, Deployer, LoadBalancer, Lock, LockInfo, Metrics, Preflight, ProviderError, Sample,
};

/// Timing and behaviour of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub drain_timeout: Duration,
    pub health_timeout: Duration,
    pub poll: Duration,
    pub bake: Duration,
    pub interval: Duration,
    pub judge: JudgeConfig,
    /// Who runs this process (lock holder), e.g. the caller ARN or `user@host`.
    pub holder: String,
    pub lock_ttl: Duration,
    pub auto_promote: bool,
    /// Report every action without performing it.
    pub dry_run: bool,
    /// What the bake's evidence says of the run beyond its plan.
    pub evidence: crate::evidence::Context,
}

/// What the executor reports as it goes; the CLI renders it.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "progress", rename_all = "kebab-case")]
pub enum Progress {
    /// Written to the journal (the crash-test hook fires here).
    Journaled {
        mode: Mode,
        index: usize,
        action: Action,
        phase: &'static str,
    },
    Step {
        mode: Mode,
        index: usize,
        total: usize,
        action: Action,
        dry_run: bool,
    },
    Waiting {
        what: String,
        elapsed_s: u64,
        deadline_s: u64,
    },
    Waited {
        what: String,
        took_s: u64,
    },
    Bake {
        interval: u64,
        of: u64,
        baseline: Sample,
        canary: Sample,
        verdict: Option<Verdict>,
    },
    Approved {
        who: String,
    },
    Failed {
        action: Action,
        reason: String,
    },
    RollingBack {
        reason: String,
    },
}

/// The providers a run acts through.
pub struct Providers<'a> {
    pub lb: &'a dyn LoadBalancer,
    pub deployer: &'a dyn Deployer,
    pub metrics: &'a dyn Metrics,
    pub preflight: &'a dyn Preflight,
    pub lock: &'a dyn Lock,
    pub clock: &'a dyn Clock,
}

/// A journal write failed: the run stops where it is and `canary resume` picks it up.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the journal, stopped safely before the next action: {0}")]
pub struct JournalFailed(ProviderError);

pub struct Executor<'a> {
    pub providers: Providers<'a>,
    pub journal: &'a mut dyn Journal,
    pub settings: Settings,
    pub progress: &'a mut dyn FnMut(&Progress),
    /// Set by the first SIGTERM/SIGINT: stop at the next safe point and roll back.
    pub stop: Arc<AtomicBool>,
    /// When this process last took or extended the lock (seconds since the epoch); 0 has it
    /// extended at the first step of the run that holds it.
    pub lock_kept_at: u64,
}

impl Executor<'_> {
    async fn record(&mut self, event: Event) -> Result<(), JournalFailed> {
        let at = self.providers.clock.now();
        self.journal
            .append(&Record::Event {
                at,
                event: event.clone(),
            })
            .await
            .map_err(JournalFailed)
    }

    /// Runs the machine until it finishes, halts, or waits for approval.
    pub async fn drive(&mut self, m: &mut Machine) -> Result<Next, JournalFailed> {
        loop {
            let next = m.next();
            match next {
                Next::Do { index, action } => {
                    let mode = m.mode();
                    if self.stop.load(Ordering::SeqCst) && mode != Mode::Rollback {
                        let e = Event::Abort {
                            reason: "interrupted by a signal".into(),
                        };
                        self.record(e.clone()).await?;
                        m.on(&e);
                        self.rolling_back(m);
                        continue;
                    }
                    let total = m.actions(mode).len();
                    (self.progress)(&Progress::Step {
                        mode,
                        index,
                        total,
                        action: action.clone(),
                        dry_run: self.settings.dry_run,
                    });
                    let began = Event::Began {
                        mode,
                        index,
                        action: action.clone(),
                    };
                    self.record(began.clone()).await?;
                    m.on(&began);
                    (self.progress)(&Progress::Journaled {
                        mode,
                        index,
                        action: action.clone(),
                        phase: "began",
                    });
                    let result = if self.settings.dry_run {
                        // A dry run makes every read-only check for real, and nothing else.
                        match action {
                            Action::Preflight => self.preflight(m).await,
                            _ => Ok(()),
                        }
                    } else {
                        match self.keep_lock(m, &action).await {
                            Ok(()) => self.perform(m, &action).await,
                            Err(e) => Err(e),
                        }
                    };
                    let (event, phase) = match result {
                        Ok(()) => (Event::Completed { mode, index }, "completed"),
                        Err(e) => {
                            (self.progress)(&Progress::Failed {
                                action: action.clone(),
                                reason: e.0.clone(),
                            });
                            (
                                Event::Failed {
                                    mode,
                                    index,
                                    reason: e.0,
                                },
                                "failed",
                            )
                        }
                    };
                    self.record(event.clone()).await?;
                    m.on(&event);
                    (self.progress)(&Progress::Journaled {
                        mode,
                        index,
                        action,
                        phase,
                    });
                    if mode != Mode::Rollback && m.mode() == Mode::Rollback {
                        self.rolling_back(m);
                    }
                }
                Next::AwaitApproval => {
                    if !(self.settings.auto_promote || self.settings.dry_run) {
                        return Ok(Next::AwaitApproval);
                    }
                    let who = if self.settings.dry_run {
                        "dry-run".to_string()
                    } else {
                        match self.providers.preflight.caller().await {
                            Ok(who) => who,
                            Err(e) => {
                                let e = Event::Abort {
                                    reason: format!("cannot record the approval: {e}"),
                                };
                                self.record(e.clone()).await?;
                                m.on(&e);
                                self.rolling_back(m);
                                continue;
                            }
                        }
                    };
                    self.approve(m, &who).await?;
                }
                Next::Halted { .. } => return Ok(next),
                Next::Finished(ref outcome) => {
                    let at = self.providers.clock.now();
                    self.journal
                        .append(&Record::Finish {
                            at,
                            outcome: outcome.clone(),
                        })
                        .await
                        .map_err(JournalFailed)?;
                    return Ok(next);
                }
            }
        }
    }

    /// Records an approval (who, and when in the journal) and moves to promotion.
    pub async fn approve(&mut self, m: &mut Machine, who: &str) -> Result<(), JournalFailed> {
        let e = Event::Approved {
            who: who.to_string(),
        };
        self.record(e.clone()).await?;
        m.on(&e);
        (self.progress)(&Progress::Approved {
            who: who.to_string(),
        });
        Ok(())
    }

    /// Records an abort: the next `drive` rolls back from wherever the run is.
    pub async fn abort(&mut self, m: &mut Machine, reason: &str) -> Result<(), JournalFailed> {
        let e = Event::Abort {
            reason: reason.to_string(),
        };
        self.record(e.clone()).await?;
        m.on(&e);
        self.rolling_back(m);
        Ok(())
    }

    /// Before a step: confirms this process still holds the lock (a holder fenced by a
    /// takeover stops here, before it acts), then extends it if it is due (see
    /// [`Executor::renew_if_due`]). A rollback goes on: putting the fleet back is never held
    /// up by the lock, and a fenced writer is stopped by the journal itself.
    async fn keep_lock(&mut self, m: &Machine, action: &Action) -> Result<(), ProviderError> {
        if let Err(e) = self.providers.lock.check().await {
            if m.mode() != Mode::Rollback {
                return Err(e);
            }
        }
        if !m.in_flight() || matches!(action, Action::AcquireLock | Action::ReleaseLock) {
            return Ok(());
        }
        self.renew_if_due(m).await
    }

    /// Sleeps `d` in steps of at most a second, ending early at the first signal: a signal is
    /// acted on within a second, whatever the interval. Returns whether it was stopped.
    async fn sleep_unless_stopped(&self, m: &Machine, d: Duration) -> bool {
        let clock = self.providers.clock;
        let mut left = d;
        loop {
            if self.stop.load(Ordering::SeqCst) && m.mode() != Mode::Rollback {
                return true;
            }
            if left.is_zero() {
                return false;
            }
            let step = left.min(Duration::from_secs(1));
            clock.sleep(step).await;
            left -= step;
        }
    }

    /// Extends the lock once half its time has passed since it was last taken or extended:
    /// before every step, and at every look of a wait, so that no drain, deploy, wait or
    /// promotion outlives it (the bake extends it at every look). A rollback goes on if the
    /// lock cannot be extended: putting the fleet back is never held up by it.
    async fn renew_if_due(&mut self, m: &Machine) -> Result<(), ProviderError> {
        let now = self.providers.clock.now();
        let ttl = self.settings.lock_ttl.as_secs();
        if self.settings.dry_run || now.saturating_sub(self.lock_kept_at) < ttl / 2 {
            return Ok(());
        }
        let renewed = self
            .providers
            .lock
            .renew(&LockInfo {
                holder: self.settings.holder.clone(),
                run_id: m.plan().run_id.clone(),
                acquired_at: now,
                expires_at: now + ttl,
            })
            .await;
        match renewed {
            Ok(()) => {
                self.lock_kept_at = now;
                Ok(())
            }
            Err(_) if m.mode() == Mode::Rollback => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn rolling_back(&mut self, m: &Machine) {
        if m.mode() == Mode::Rollback {
            (self.progress)(&Progress::RollingBack {
                reason: m.reason().unwrap_or_default().to_string(),
            });
        }
    }

    async fn perform(&mut self, m: &Machine, action: &Action) -> Result<(), ProviderError> {
        let p = &self.providers;
        let plan = m.plan();
        match action {
            Action::Preflight => self.preflight(m).await,
            Action::AcquireLock => {
                let now = p.clock.now();
                p.lock
                    .acquire(
                        &LockInfo {
                            holder: self.settings.holder.clone(),
                            run_id: plan.run_id.clone(),
                            acquired_at: now,
                            expires_at: now + self.settings.lock_ttl.as_secs(),
                        },
                        now,
                    )
                    .await?;
                self.lock_kept_at = now;
                Ok(())
            }
            Action::Depool { pool, nodes } => p.lb.depool(*pool, nodes).await,
            Action::WaitDrained { pool, nodes } => {
                let what = format!("{} to drain from {}", nodes.join(","), pool.as_str());
                let deadline = self.settings.drain_timeout;
                self.wait(m, &what, deadline, *pool, nodes, |members, nodes| {
                    nodes
                        .iter()
                        .all(|n| members.iter().all(|h| h.node != *n || h.state == "unused"))
                })
                .await
                .map_err(|e| timed_out_hint(e, "drain_timeout_seconds"))
            }
            Action::Deploy { nodes, revision } => p.deployer.deploy(nodes, revision).await,
            Action::Repool { pool, nodes } => p.lb.repool(*pool, nodes).await,
            Action::WaitHealthy { pool, nodes } => {
                let what = format!("{} healthy in {}", nodes.join(","), pool.as_str());
                let deadline = self.settings.health_timeout;
                self.wait(m, &what, deadline, *pool, nodes, |members, nodes| {
                    nodes
                        .iter()
                        .all(|n| members.iter().any(|h| h.node == *n && h.state == "healthy"))
                })
                .await
                .map_err(|e| timed_out_hint(e, "health_timeout_seconds"))
            }
            Action::Smoke { node, revision } => p.deployer.smoke(node, revision).await,
            Action::SetWeight { canary } => p.lb.set_weight(*canary).await,
            Action::Bake => self.bake(m).await,
            Action::ReleaseLock => p.lock.release(&plan.run_id).await,
        }
    }

    async fn preflight(&mut self, m: &Machine) -> Result<(), ProviderError> {
        let p = &self.providers;
        let plan = m.plan();
        p.preflight
            .config_compatible(&plan.revision, &plan.previous)
            .await?;
        p.preflight.revision_exists(&plan.revision).await?;
        let firing = p.metrics.alarms_firing().await?;
        if !firing.is_empty() {
            return Err(ProviderError::new(format!(
                "alarm {} is in ALARM: fix it or wait before deploying",
                firing.join(", ")
            )));
        }
        p.preflight.maintenance_ok().await?;
        let members = p.lb.members(Pool::Prod).await?;
        for node in &plan.nodes {
            match members.iter().find(|h| h.node == *node) {
                Some(h) if h.state == "healthy" => {}
                Some(h) => {
                    return Err(ProviderError::new(format!(
                        "node {node} is {} in the production group: every node must be healthy",
                        h.state
                    )))
                }
                None => {
                    return Err(ProviderError::new(format!(
                        "node {node} is not in the production group: a previous run left it out? \
                         run `gatekeeper canary resume` or repool it"
                    )))
                }
            }
        }
        let canary = p.lb.members(Pool::Canary).await?;
        if let Some(h) = canary.first() {
            return Err(ProviderError::new(format!(
                "node {} is already in the canary group: another canary is running or was left behind",
                h.node
            )));
        }
        if let Some(holder) = p.lock.holder().await? {
            if holder.run_id != plan.run_id && holder.expires_at > p.clock.now() {
                return Err(ProviderError::new(format!(
                    "the deploy lock is held by {} (run {}) until {}",
                    holder.holder, holder.run_id, holder.expires_at
                )));
            }
        }
        Ok(())
    }

    async fn wait(
        &mut self,
        m: &Machine,
        what: &str,
        deadline: Duration,
        pool: Pool,
        nodes: &[String],
        done: impl Fn(&[crate::provider::NodeHealth], &[String]) -> bool,
    ) -> Result<(), ProviderError> {
        let clock = self.providers.clock;
        let start = clock.now();
        loop {
            // The first signal stops a wait at once (the run then rolls back); a rollback's
            // own waits go on, so that the fleet is put back whole.
            if self.stop.load(Ordering::SeqCst) && m.mode() != Mode::Rollback {
                return Err(ProviderError::new(format!(
                    "interrupted by a signal while waiting for {what}"
                )));
            }
            self.renew_if_due(m).await?;
            let members = self.providers.lb.members(pool).await?;
            let elapsed = clock.now().saturating_sub(start);
            if done(&members, nodes) {
                (self.progress)(&Progress::Waited {
                    what: what.to_string(),
                    took_s: elapsed,
                });
                return Ok(());
            }
            if elapsed >= deadline.as_secs() {
                let states: Vec<String> = members
                    .iter()
                    .filter(|h| nodes.contains(&h.node))
                    .map(|h| format!("{} {}", h.node, h.state))
                    .collect();
                return Err(ProviderError::new(format!(
                    "waited {elapsed}s for {what}: still {}",
                    if states.is_empty() {
                        "absent".to_string()
                    } else {
                        states.join(", ")
                    }
                )));
            }
            (self.progress)(&Progress::Waiting {
                what: what.to_string(),
                elapsed_s: elapsed,
                deadline_s: deadline.as_secs(),
            });
            self.sleep_unless_stopped(m, self.settings.poll.max(Duration::from_secs(1)))
                .await;
        }
    }

    async fn bake(&mut self, m: &Machine) -> Result<(), ProviderError> {
        let s = &self.settings;
        let interval = s.interval.as_secs();
        let n = s.bake.as_secs().checked_div(interval).unwrap_or(1).max(1);
        let from_repool = self.providers.lb.judged_from_repool();
        let mut from = first_window_start(self.providers.clock.now(), from_repool);
        let mut judge = Judge::new(&s.judge).map_err(|e| ProviderError::new(e.to_string()))?;
        let lock_info = LockInfo {
            holder: s.holder.clone(),
            run_id: m.plan().run_id.clone(),
            acquired_at: 0,
            expires_at: 0,
        };
        let ttl = s.lock_ttl.as_secs();
        let started = self.providers.clock.now();
        let entry = crate::evidence::start(
            m.plan(),
            &s.evidence,
            &s.judge,
            s.bake.as_secs(),
            interval,
            started,
        );
        self.evidence(started, entry).await?;
        for i in 1..=n {
            let clock = self.providers.clock;
            if self
                .sleep_unless_stopped(m, Duration::from_secs(interval))
                .await
            {
                let why = "interrupted by a signal during the bake";
                self.evidence(clock.now(), crate::evidence::aborted(why, clock.now()))
                    .await?;
                return Err(ProviderError::new(why));
            }
            let firing = self.providers.metrics.alarms_firing().await?;
            if !firing.is_empty() {
                let why = format!(
                    "alarm {} went into ALARM during the bake",
                    firing.join(", ")
                );
                self.evidence(clock.now(), crate::evidence::aborted(&why, clock.now()))
                    .await?;
                return Err(ProviderError::new(why));
            }
            // A bake judged from the repool reads at least the minute after it: a bake shorter
            // than the time to that minute waits for it to begin (at most a minute).
            let now = clock.now();
            if i == n && from_repool && now <= from {
                let wait = Duration::from_secs(from + 1 - now);
                (self.progress)(&Progress::Waiting {
                    what: "the first whole minute after the repool".to_string(),
                    elapsed_s: 0,
                    deadline_s: wait.as_secs(),
                });
                if self.sleep_unless_stopped(m, wait).await {
                    let why = "interrupted by a signal during the bake";
                    self.evidence(clock.now(), crate::evidence::aborted(why, clock.now()))
                        .await?;
                    return Err(ProviderError::new(why));
                }
            }
            let now = clock.now();
            // Each minute of CloudWatch data is judged once: a minute read twice would count
            // its errors twice and void the judge's false-alarm bound.
            let mut window_read = None;
            let (baseline, canary) = match next_window(from, now, i == n) {
                Some((start, end)) => {
                    window_read = Some((start, end));
                    let window = self.providers.metrics.window(start, end).await?;
                    from = end;
                    let t = (i * interval.max(1)) as f64;
                    for (group, sample) in
                        [(Group::Baseline, &window.0), (Group::Canary, &window.1)]
                    {
                        let mut iv = Interval::counts(t, group, sample.requests, sample.errors);
                        iv.latency_ms = sample.latency_ms.into_iter().collect();
                        judge
                            .observe(&iv)
                            .map_err(|e| ProviderError::new(format!("bake metrics: {e}")))?;
                    }
                    window
                }
                // No minute has completed since the last read: nothing new to judge.
                None => (Sample::default(), Sample::default()),
            };
            self.providers
                .lock
                .renew(&LockInfo {
                    acquired_at: now,
                    expires_at: now + ttl,
                    ..lock_info.clone()
                })
                .await?;
            self.lock_kept_at = now;
            let verdict = judge.verdict(i == n);
            let report = judge.report(i == n);
            let look = crate::evidence::look(crate::evidence::LookInput {
                index: i,
                of: n,
                t: (i * interval.max(1)) as f64,
                at: now,
                window: window_read,
                baseline: &baseline,
                canary: &canary,
                weight: m.plan().canary_weight,
                firing: &[],
                report: &report,
            });
            self.evidence(now, look).await?;
            if let Some(v) = verdict {
                self.evidence(now, crate::evidence::verdict(v, &report, now))
                    .await?;
            }
            (self.progress)(&Progress::Bake {
                interval: i,
                of: n,
                baseline,
                canary,
                verdict,
            });
            match verdict {
                None => {}
                Some(Verdict::Pass) => return Ok(()),
                Some(v) => {
                    return Err(ProviderError::new(format!(
                        "judge: {}: {}",
                        v.as_str(),
                        report.reason
                    )));
                }
            }
        }
        let why = "judge: no verdict at the end of the bake";
        let now = self.providers.clock.now();
        self.evidence(now, crate::evidence::aborted(why, now))
            .await?;
        Err(ProviderError::new(why))
    }

    /// Appends an entry of the bake's evidence to the run's journal.
    async fn evidence(&mut self, at: u64, entry: evidence::Entry) -> Result<(), ProviderError> {
        if self.settings.dry_run {
            return Ok(());
        }
        self.journal
            .append(&Record::Evidence {
                at,
                entry: Box::new(entry),
            })
            .await
    }
}

/// An outcome's exit code: 0 promoted or awaiting approval, 1 otherwise.
pub fn succeeded(next: &Next) -> bool {
    matches!(
        next,
        Next::AwaitApproval | Next::Finished(Outcome::Promoted)
    )
}

/// A wait that ran out of time names the setting that bounds it; any other failure (a
/// signal, an AWS error) is left as it is.
fn timed_out_hint(e: ProviderError, key: &str) -> ProviderError {
    if e.0.starts_with("waited ") {
        ProviderError::new(format!("{e} (raise {key})"))
    } else {
        e
    }
}

/// CloudWatch answers in whole-minute buckets.
const BUCKET_SECONDS: u64 = 60;

/// Where the bake's first window starts.
///
/// A canary target group: the minute before the one the bake began in, so the minute in which
/// the canary's weight was set is judged too, and a bake of length zero still has a minute to
/// read. Before the weight was set the canary group had no traffic, which the judge's observed
/// traffic share accounts for.
///
/// A node judged from its repool (a worker, whose metrics carry its name in both roles): the
/// first whole minute after the bake began, so nothing the node did on the old revision, before
/// it was depooled, reaches the judge.
fn first_window_start(bake_start: u64, from_repool: bool) -> u64 {
    if from_repool {
        bake_start.div_ceil(BUCKET_SECONDS) * BUCKET_SECONDS
    } else {
        (bake_start / BUCKET_SECONDS).saturating_sub(1) * BUCKET_SECONDS
    }
}

/// The next window `[from, to)` of the bake to read, in whole minutes, or `None` when no minute
/// has completed since `from`. Windows never overlap, so no datapoint is judged twice. Only
/// complete minutes are read, except at the bake's last look, which also takes the minute under
/// way (no later read could judge it).
fn next_window(from: u64, now: u64, last: bool) -> Option<(u64, u64)> {
    let to = if last {
        now.div_ceil(BUCKET_SECONDS) * BUCKET_SECONDS
    } else {
        now / BUCKET_SECONDS * BUCKET_SECONDS
    };
    (to > from).then_some((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bake_windows_tile_whole_minutes_without_overlap() {
        // A bake that began at 12:00:50, looked at every 20 s for 4 minutes.
        let start = 43_250;
        let mut from = first_window_start(start, false);
        assert_eq!(from, 43_140, "the minute before the bake's own");
        assert_eq!(
            first_window_start(start, true),
            43_260,
            "a worker's bake: the first whole minute after the repool"
        );
        assert_eq!(first_window_start(43_200, true), 43_200, "already whole");
        let mut read = Vec::new();
        let looks: Vec<u64> = (1..=12).map(|k| start + 20 * k).collect();
        for (k, now) in looks.iter().enumerate() {
            if let Some((a, b)) = next_window(from, *now, k + 1 == looks.len()) {
                assert_eq!(a, from);
                assert!(a % 60 == 0 && b % 60 == 0 && b > a, "[{a}, {b})");
                assert!(b <= now.div_ceil(60) * 60);
                read.push((a, b));
                from = b;
            }
        }
        // Contiguous, each minute once, up to and including the minute under way at the end.
        for pair in read.windows(2) {
            assert_eq!(pair[0].1, pair[1].0);
        }
        assert_eq!(read.first().unwrap().0, 43_140);
        assert_eq!(read.last().unwrap().1, (start + 240).div_ceil(60) * 60);
        // Looks within a minute that is still under way read nothing.
        assert_eq!(next_window(43_260, 43_290, false), None);
        assert_eq!(next_window(43_260, 43_290, true), Some((43_260, 43_320)));
    }

    #[test]
    fn a_zero_length_bake_reads_the_minute_before_and_the_one_under_way() {
        let start = 43_205;
        let from = first_window_start(start, false);
        assert_eq!(next_window(from, start, true), Some((43_140, 43_260)));
    }
}
