//! The canary decides here: a pure state machine, state + event → next action.
//!
//! A run moves through three modes, each a fixed list of idempotent [`Action`]s:
//!
//! - **canary**: preflight, lock, depool the canary node from production, deploy, join the
//!   canary group at weight 0, wait healthy, smoke, set the canary weight, bake;
//! - **promote** (after approval): the rest of the fleet in waves (depool, drain, deploy,
//!   repool, healthy), then the canary node back to production, weights 100/0, unlock;
//! - **rollback** (a failed step, a failed bake, a signal or an abort): weight 0, the canary
//!   node out of the canary group, every node that may run the new revision redeployed with
//!   the previous one in waves, back in production, unlock.
//!
//! Nothing here performs I/O: the executor asks [`Machine::next`], performs the action,
//! journals, and feeds the result back with [`Machine::on`]. Replaying the journal through
//! [`Machine::replay`] rebuilds the same state after a crash; the action that had begun but
//! not completed is simply performed again (every action is idempotent).

use serde::{Deserialize, Serialize};

/// Which group of the load balancer (or, for workers, the fleet itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pool {
    Prod,
    Canary,
}

impl Pool {
    pub fn as_str(self) -> &'static str {
        match self {
            Pool::Prod => "prod",
            Pool::Canary => "canary",
        }
    }
}

/// One idempotent step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Checks that change nothing: config compat, revision present, no alarm, maintenance,
    /// every target healthy, lock free.
    Preflight,
    AcquireLock,
    /// Deregister from the pool (workers: stop consuming).
    Depool {
        pool: Pool,
        nodes: Vec<String>,
    },
    /// Wait until the nodes have left the pool, within the drain deadline.
    WaitDrained {
        pool: Pool,
        nodes: Vec<String>,
    },
    Deploy {
        nodes: Vec<String>,
        revision: String,
    },
    /// Register in the pool (workers: start consuming).
    Repool {
        pool: Pool,
        nodes: Vec<String>,
    },
    WaitHealthy {
        pool: Pool,
        nodes: Vec<String>,
    },
    Smoke {
        node: String,
        revision: String,
    },
    /// The listener's weighted forward: `canary` percent to the canary group.
    SetWeight {
        canary: u8,
    },
    Bake,
    ReleaseLock,
}

impl Action {
    /// A short name: `deploy`, `set-weight`... (used by the crash-test hook).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Preflight => "preflight",
            Action::AcquireLock => "acquire-lock",
            Action::Depool { .. } => "depool",
            Action::WaitDrained { .. } => "wait-drained",
            Action::Deploy { .. } => "deploy",
            Action::Repool { .. } => "repool",
            Action::WaitHealthy { .. } => "wait-healthy",
            Action::Smoke { .. } => "smoke",
            Action::SetWeight { .. } => "set-weight",
            Action::Bake => "bake",
            Action::ReleaseLock => "release-lock",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Preflight => write!(f, "preflight checks"),
            Action::AcquireLock => write!(f, "take the deploy lock"),
            Action::Depool { pool, nodes } => {
                write!(f, "depool {} from {}", nodes.join(","), pool.as_str())
            }
            Action::WaitDrained { pool, nodes } => {
                write!(
                    f,
                    "wait for {} to drain from {}",
                    nodes.join(","),
                    pool.as_str()
                )
            }
            Action::Deploy { nodes, revision } => {
                write!(f, "deploy {revision} to {}", nodes.join(","))
            }
            Action::Repool { pool, nodes } => {
                write!(f, "repool {} in {}", nodes.join(","), pool.as_str())
            }
            Action::WaitHealthy { pool, nodes } => {
                write!(
                    f,
                    "wait for {} healthy in {}",
                    nodes.join(","),
                    pool.as_str()
                )
            }
            Action::Smoke { node, revision } => write!(f, "smoke {node} on {revision}"),
            Action::SetWeight { canary } => {
                write!(
                    f,
                    "set listener weights {}/{canary} (prod/canary)",
                    100 - canary
                )
            }
            Action::Bake => write!(f, "bake"),
            Action::ReleaseLock => write!(f, "release the deploy lock"),
        }
    }
}

/// Everything fixed when a run starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub run_id: String,
    pub revision: String,
    /// What the fleet ran before: the revision a rollback redeploys.
    pub previous: String,
    pub canary_node: String,
    /// Every node of the fleet, the canary node included.
    pub nodes: Vec<String>,
    pub canary_weight: u8,
    pub wave_size: usize,
    /// Promote without waiting for `promote` once the canary passes. A run that crashed
    /// while awaiting its automatic approval is rolled back by `resume`, never promoted.
    #[serde(default)]
    pub auto_promote: bool,
    /// A repair: a run that only rolls back what an ended run left behind (a node in the
    /// canary group, a weight not 0). It starts in rollback mode, holding the lock.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repair: bool,
}

#[cfg(test)]
impl Plan {
    /// A two-node plan (`a` the canary, `b`) from v1 to v2, for the crate's unit tests.
    pub(crate) fn example(run_id: &str) -> Plan {
        Plan {
            run_id: run_id.into(),
            revision: "v2".into(),
            previous: "v1".into(),
            canary_node: "a".into(),
            nodes: vec!["a".into(), "b".into()],
            canary_weight: 5,
            wave_size: 1,
            auto_promote: false,
            repair: false,
        }
    }
}

impl Plan {
    /// The other nodes in promotion waves.
    pub fn waves(&self) -> Vec<Vec<String>> {
        let rest: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| **n != self.canary_node)
            .cloned()
            .collect();
        rest.chunks(self.wave_size.max(1))
            .map(<[String]>::to_vec)
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Canary,
    Promote,
    Rollback,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Canary => "canary",
            Mode::Promote => "promote",
            Mode::Rollback => "rollback",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Preflight or the lock refused: nothing was changed.
    Refused { reason: String },
    /// The whole fleet runs the new revision, weights 100/0.
    Promoted,
    /// The fleet is back on the previous revision, weights 100/0.
    RolledBack { reason: String },
}

/// What the executor should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Do {
        index: usize,
        action: Action,
    },
    /// The canary passed: wait for `promote` (or `--auto-promote`).
    AwaitApproval,
    /// A step of a rollback or promotion failed: safe to retry with `canary resume`.
    Halted {
        reason: String,
    },
    Finished(Outcome),
}

/// Inputs to the machine; the journal records exactly these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    Began {
        mode: Mode,
        index: usize,
        action: Action,
    },
    Completed {
        mode: Mode,
        index: usize,
    },
    Failed {
        mode: Mode,
        index: usize,
        reason: String,
    },
    Approved {
        who: String,
    },
    /// A signal or `canary abort`: roll back from wherever the run is.
    Abort {
        reason: String,
    },
}

/// The state of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Machine {
    plan: Plan,
    mode: Mode,
    /// Actions of the current mode completed.
    done: usize,
    /// Nodes whose deploy of the new revision has begun (they may run it).
    touched: Vec<String>,
    /// Whether anything has changed (the lock was taken).
    locked: bool,
    approved_by: Option<String>,
    reason: Option<String>,
    halted: Option<String>,
    outcome: Option<Outcome>,
    /// The step whose `began` is the last event, until it completes or fails.
    #[serde(skip)]
    began: Option<(Mode, usize)>,
}

impl Machine {
    pub fn new(plan: Plan) -> Self {
        let repair = plan.repair;
        let m = Machine {
            plan,
            mode: Mode::Canary,
            done: 0,
            touched: Vec::new(),
            locked: false,
            approved_by: None,
            reason: None,
            halted: None,
            outcome: None,
            began: None,
        };
        if repair {
            let mut m = m;
            m.locked = true;
            m.touched = vec![m.plan.canary_node.clone()];
            m.start_rollback("repairing what an ended run left in the canary group");
            return m;
        }
        m
    }

    /// Rebuilds a run from its journaled events, refusing the first event that is illegal
    /// where it stands (steno's saga log does the same): `Err((index, why))`. A halted step
    /// is retried.
    pub fn replay_checked<'a>(
        plan: Plan,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> Result<Self, (usize, String)> {
        let mut m = Machine::new(plan);
        for (i, e) in events.into_iter().enumerate() {
            m.check(e).map_err(|why| (i, why))?;
            m.on(e);
        }
        m.halted = None;
        Ok(m)
    }

    /// Whether `event` may follow where the run stands. The executor writes only legal
    /// events; an illegal one in a journal is a second writer's, or not ours.
    pub fn check(&self, event: &Event) -> Result<(), String> {
        if let Some(o) = &self.outcome {
            return Err(format!(
                "the run is already over ({o:?}): nothing may follow"
            ));
        }
        let here = |mode: &Mode, index: &usize| {
            if *mode == self.mode && *index == self.done {
                Ok(())
            } else {
                Err(format!(
                    "{} step {} where the run stands at {} step {}",
                    mode.as_str(),
                    index + 1,
                    self.mode.as_str(),
                    self.done + 1
                ))
            }
        };
        match event {
            Event::Began {
                mode,
                index,
                action,
            } => {
                here(mode, index)?;
                let expected = self.actions(self.mode).get(self.done).cloned();
                if expected.as_ref() != Some(action) {
                    return Err(format!(
                        "began `{action}` where the plan's next step is {}",
                        expected
                            .map(|a| format!("`{a}`"))
                            .unwrap_or_else(|| "approval".into())
                    ));
                }
                Ok(())
            }
            Event::Completed { mode, index } | Event::Failed { mode, index, .. } => {
                here(mode, index)?;
                if self.began != Some((*mode, *index)) {
                    return Err(format!(
                        "{} step {} ended without having begun",
                        mode.as_str(),
                        index + 1
                    ));
                }
                Ok(())
            }
            Event::Approved { .. } => {
                if self.mode == Mode::Canary && self.done == self.actions(Mode::Canary).len() {
                    Ok(())
                } else {
                    Err(format!(
                        "approved while the run is at {} step {}, not awaiting approval",
                        self.mode.as_str(),
                        self.done + 1
                    ))
                }
            }
            Event::Abort { .. } => Ok(()),
        }
    }

    /// Rebuilds a run from its journaled events. A halted step is retried.
    pub fn replay<'a>(plan: Plan, events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut m = Machine::new(plan);
        for e in events {
            m.on(e);
        }
        m.halted = None;
        m
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }
    pub fn mode(&self) -> Mode {
        self.mode
    }
    pub fn approved_by(&self) -> Option<&str> {
        self.approved_by.as_deref()
    }
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }
    /// Why the run is rolling back, when it is.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The actions of `mode`, in order.
    pub fn actions(&self, mode: Mode) -> Vec<Action> {
        let p = &self.plan;
        let c = vec![p.canary_node.clone()];
        match mode {
            Mode::Canary => vec![
                Action::Preflight,
                Action::AcquireLock,
                Action::Depool {
                    pool: Pool::Prod,
                    nodes: c.clone(),
                },
                Action::WaitDrained {
                    pool: Pool::Prod,
                    nodes: c.clone(),
                },
                Action::Deploy {
                    nodes: c.clone(),
                    revision: p.revision.clone(),
                },
                Action::Repool {
                    pool: Pool::Canary,
                    nodes: c.clone(),
                },
                Action::WaitHealthy {
                    pool: Pool::Canary,
                    nodes: c.clone(),
                },
                Action::Smoke {
                    node: p.canary_node.clone(),
                    revision: p.revision.clone(),
                },
                Action::SetWeight {
                    canary: p.canary_weight,
                },
                Action::Bake,
            ],
            Mode::Promote => {
                let mut a = Vec::new();
                for wave in p.waves() {
                    push_wave(&mut a, &wave, &p.revision);
                }
                a.extend([
                    Action::Repool {
                        pool: Pool::Prod,
                        nodes: c.clone(),
                    },
                    Action::WaitHealthy {
                        pool: Pool::Prod,
                        nodes: c.clone(),
                    },
                    Action::SetWeight { canary: 0 },
                    Action::Depool {
                        pool: Pool::Canary,
                        nodes: c.clone(),
                    },
                    Action::ReleaseLock,
                ]);
                a
            }
            Mode::Rollback => {
                let mut a = vec![
                    Action::SetWeight { canary: 0 },
                    Action::Depool {
                        pool: Pool::Canary,
                        nodes: c.clone(),
                    },
                ];
                // The canary node (already out of production) first, then the touched waves.
                if self.touched.contains(&p.canary_node) {
                    a.push(Action::Deploy {
                        nodes: c.clone(),
                        revision: p.previous.clone(),
                    });
                }
                a.extend([
                    Action::Repool {
                        pool: Pool::Prod,
                        nodes: c.clone(),
                    },
                    Action::WaitHealthy {
                        pool: Pool::Prod,
                        nodes: c.clone(),
                    },
                ]);
                for wave in p.waves() {
                    let wave: Vec<String> = wave
                        .into_iter()
                        .filter(|n| self.touched.contains(n))
                        .collect();
                    if !wave.is_empty() {
                        push_wave(&mut a, &wave, &p.previous);
                    }
                }
                a.push(Action::ReleaseLock);
                a
            }
        }
    }

    /// What to do now.
    pub fn next(&self) -> Next {
        if let Some(outcome) = &self.outcome {
            return Next::Finished(outcome.clone());
        }
        if let Some(reason) = &self.halted {
            return Next::Halted {
                reason: reason.clone(),
            };
        }
        let actions = self.actions(self.mode);
        match actions.get(self.done) {
            Some(action) => Next::Do {
                index: self.done,
                action: action.clone(),
            },
            None => match self.mode {
                Mode::Canary => Next::AwaitApproval,
                // `on` sets the outcome when the last action completes.
                Mode::Promote | Mode::Rollback => unreachable!("outcome set on completion"),
            },
        }
    }

    /// Feeds one event. Events for another mode or index than the current one are stale
    /// (a replayed journal from an older mode) and ignored.
    pub fn on(&mut self, event: &Event) {
        if self.outcome.is_some() {
            return;
        }
        match event {
            Event::Began {
                mode,
                index,
                action,
            } => {
                if *mode == self.mode && *index == self.done {
                    self.began = Some((*mode, *index));
                    if let Action::Deploy { nodes, revision } = action {
                        if *revision == self.plan.revision {
                            for n in nodes {
                                if !self.touched.contains(n) {
                                    self.touched.push(n.clone());
                                }
                            }
                        }
                    }
                    if matches!(action, Action::AcquireLock) {
                        // Taking the lock may have succeeded before a crash.
                        self.locked = true;
                    }
                }
            }
            Event::Completed { mode, index } => {
                if *mode != self.mode || *index != self.done {
                    return;
                }
                self.began = None;
                self.done += 1;
                self.halted = None;
                let len = self.actions(self.mode).len();
                if self.done == len {
                    match self.mode {
                        Mode::Canary => {}
                        Mode::Promote => self.outcome = Some(Outcome::Promoted),
                        Mode::Rollback => {
                            self.outcome = Some(Outcome::RolledBack {
                                reason: self.reason.clone().unwrap_or_default(),
                            })
                        }
                    }
                }
            }
            Event::Failed {
                mode,
                index,
                reason,
            } => {
                if *mode != self.mode || *index != self.done {
                    return;
                }
                self.began = None;
                match self.mode {
                    Mode::Canary if !self.locked || self.done == 0 => {
                        self.outcome = Some(Outcome::Refused {
                            reason: reason.clone(),
                        });
                    }
                    Mode::Canary if self.done == 1 => {
                        // The lock was not ours to take: nothing changed.
                        self.locked = false;
                        self.outcome = Some(Outcome::Refused {
                            reason: reason.clone(),
                        });
                    }
                    Mode::Canary | Mode::Promote => self.start_rollback(reason),
                    Mode::Rollback => self.halted = Some(reason.clone()),
                }
            }
            Event::Approved { who } => {
                if self.mode == Mode::Canary && self.done == self.actions(Mode::Canary).len() {
                    self.approved_by = Some(who.clone());
                    self.mode = Mode::Promote;
                    self.done = 0;
                }
            }
            Event::Abort { reason } => match self.mode {
                Mode::Canary if !self.locked => {
                    self.outcome = Some(Outcome::Refused {
                        reason: reason.clone(),
                    })
                }
                Mode::Canary | Mode::Promote => self.start_rollback(reason),
                Mode::Rollback => {}
            },
        }
    }

    fn start_rollback(&mut self, reason: &str) {
        self.began = None;
        self.mode = Mode::Rollback;
        self.done = 0;
        self.halted = None;
        self.reason = Some(reason.to_string());
    }

    /// Whether the run holds the lock and changed something (so `resume`/`abort` apply).
    pub fn in_flight(&self) -> bool {
        self.outcome.is_none() && self.locked
    }
}

fn push_wave(a: &mut Vec<Action>, wave: &[String], revision: &str) {
    let nodes = wave.to_vec();
    a.extend([
        Action::Depool {
            pool: Pool::Prod,
            nodes: nodes.clone(),
        },
        Action::WaitDrained {
            pool: Pool::Prod,
            nodes: nodes.clone(),
        },
        Action::Deploy {
            nodes: nodes.clone(),
            revision: revision.to_string(),
        },
        Action::Repool {
            pool: Pool::Prod,
            nodes: nodes.clone(),
        },
        Action::WaitHealthy {
            pool: Pool::Prod,
            nodes,
        },
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(nodes: usize, wave: usize) -> Plan {
        Plan {
            run_id: "r1".into(),
            revision: "v2".into(),
            previous: "v1".into(),
            canary_node: "n0".into(),
            nodes: (0..nodes).map(|i| format!("n{i}")).collect(),
            canary_weight: 5,
            wave_size: wave,
            auto_promote: false,
            repair: false,
        }
    }

    /// Drives the machine with every action succeeding; returns the events.
    fn run_until(m: &mut Machine, stop: impl Fn(&Next) -> bool) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            let next = m.next();
            if stop(&next) {
                return events;
            }
            let Next::Do { index, action } = next else {
                return events;
            };
            let mode = m.mode();
            for e in [
                Event::Began {
                    mode,
                    index,
                    action,
                },
                Event::Completed { mode, index },
            ] {
                m.on(&e);
                events.push(e);
            }
        }
    }

    /// Where every node is, and on which revision, after applying the actions of `events`.
    #[derive(Debug, Default, PartialEq)]
    struct World {
        prod: std::collections::BTreeSet<String>,
        canary: std::collections::BTreeSet<String>,
        revision: std::collections::BTreeMap<String, String>,
        weight: u8,
        locked: bool,
    }

    impl World {
        fn fleet(p: &Plan) -> Self {
            World {
                prod: p.nodes.iter().cloned().collect(),
                revision: p.nodes.iter().map(|n| (n.clone(), "v1".into())).collect(),
                ..World::default()
            }
        }
        fn apply(&mut self, a: &Action) {
            match a {
                Action::AcquireLock => self.locked = true,
                Action::ReleaseLock => self.locked = false,
                Action::Depool { pool, nodes } => {
                    let set = if *pool == Pool::Prod {
                        &mut self.prod
                    } else {
                        &mut self.canary
                    };
                    for n in nodes {
                        set.remove(n);
                    }
                }
                Action::Repool { pool, nodes } => {
                    let set = if *pool == Pool::Prod {
                        &mut self.prod
                    } else {
                        &mut self.canary
                    };
                    set.extend(nodes.iter().cloned());
                }
                Action::Deploy { nodes, revision } => {
                    for n in nodes {
                        self.revision.insert(n.clone(), revision.clone());
                    }
                }
                Action::SetWeight { canary } => self.weight = *canary,
                _ => {}
            }
        }
        fn safe_on(&self, p: &Plan, rev: &str) -> bool {
            self.prod.len() == p.nodes.len()
                && self.canary.is_empty()
                && self.weight == 0
                && !self.locked
                && self.revision.values().all(|r| r == rev)
        }
    }

    #[test]
    fn happy_path_waits_for_approval_then_promotes_in_waves() {
        let p = plan(5, 2);
        let mut m = Machine::new(p.clone());
        run_until(&mut m, |_| false);
        assert_eq!(m.next(), Next::AwaitApproval);
        m.on(&Event::Approved {
            who: "arn:me".into(),
        });
        assert_eq!(m.mode(), Mode::Promote);
        let promote = m.actions(Mode::Promote);
        // two waves of two plus the canary node's return
        assert_eq!(promote.len(), 2 * 5 + 5);
        run_until(&mut m, |_| false);
        assert_eq!(m.next(), Next::Finished(Outcome::Promoted));
    }

    #[test]
    fn failed_preflight_refuses_without_touching_anything() {
        let mut m = Machine::new(plan(3, 1));
        m.on(&Event::Failed {
            mode: Mode::Canary,
            index: 0,
            reason: "alarm photos-prod-5xx is in ALARM".into(),
        });
        assert!(matches!(m.next(), Next::Finished(Outcome::Refused { .. })));
    }

    #[test]
    fn a_held_lock_refuses_and_is_not_released() {
        let mut m = Machine::new(plan(3, 1));
        run_until(&mut m, |n| matches!(n, Next::Do { index: 1, .. }));
        m.on(&Event::Began {
            mode: Mode::Canary,
            index: 1,
            action: Action::AcquireLock,
        });
        m.on(&Event::Failed {
            mode: Mode::Canary,
            index: 1,
            reason: "held by ci-42".into(),
        });
        assert!(matches!(m.next(), Next::Finished(Outcome::Refused { .. })));
    }

    #[test]
    fn failed_bake_rolls_the_canary_back() {
        let p = plan(3, 1);
        let mut m = Machine::new(p.clone());
        let events = run_until(&mut m, |n| {
            matches!(
                n,
                Next::Do {
                    action: Action::Bake,
                    ..
                }
            )
        });
        let Next::Do { index, .. } = m.next() else {
            panic!()
        };
        m.on(&Event::Failed {
            mode: Mode::Canary,
            index,
            reason: "error_rate failed".into(),
        });
        let rollback = m.actions(Mode::Rollback);
        assert!(rollback.contains(&Action::Deploy {
            nodes: vec!["n0".into()],
            revision: "v1".into()
        }));
        run_until(&mut m, |_| false);
        assert_eq!(
            m.next(),
            Next::Finished(Outcome::RolledBack {
                reason: "error_rate failed".into()
            })
        );
        let _ = events;
    }

    /// A crash after any event, then resume (replay + drive to the end; a pending canary is
    /// aborted, as `canary resume` does), always leaves the fleet safe on one revision.
    #[test]
    fn crash_at_any_point_then_resume_ends_safe() {
        let p = plan(4, 2);
        // Record the full promoted run's events.
        let mut full = Machine::new(p.clone());
        let mut all = run_until(&mut full, |_| false);
        let approve = Event::Approved { who: "me".into() };
        full.on(&approve);
        all.push(approve);
        all.extend(run_until(&mut full, |_| false));
        for cut in 0..=all.len() {
            // Crashing after "began" means the action may or may not have happened: apply it.
            let mut world = World::fleet(&p);
            for e in &all[..cut] {
                if let Event::Began { action, .. } = e {
                    world.apply(action);
                }
            }
            let mut m = Machine::replay(p.clone(), &all[..cut]);
            if m.mode() == Mode::Canary && !m.in_flight() {
                // Nothing changed before the lock: nothing to resume.
                assert_eq!(world, World::fleet(&p), "cut {cut}");
                continue;
            }
            if m.mode() == Mode::Canary {
                m.on(&Event::Abort {
                    reason: "resumed".into(),
                });
            }
            loop {
                match m.next() {
                    Next::Do { index, action } => {
                        world.apply(&action);
                        let mode = m.mode();
                        m.on(&Event::Began {
                            mode,
                            index,
                            action,
                        });
                        m.on(&Event::Completed { mode, index });
                    }
                    Next::Finished(outcome) => {
                        let rev = if outcome == Outcome::Promoted {
                            "v2"
                        } else {
                            "v1"
                        };
                        assert!(world.safe_on(&p, rev), "cut {cut}: {outcome:?} {world:?}");
                        break;
                    }
                    other => panic!("cut {cut}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn abort_during_promotion_rolls_every_touched_node_back() {
        let p = plan(5, 2);
        let mut m = Machine::new(p.clone());
        run_until(&mut m, |_| false);
        m.on(&Event::Approved { who: "me".into() });
        // first wave deployed, then abort
        run_until(&mut m, |n| matches!(n, Next::Do { index: 5, .. }));
        m.on(&Event::Abort {
            reason: "SIGTERM".into(),
        });
        let deploys: Vec<Action> = m
            .actions(Mode::Rollback)
            .into_iter()
            .filter(|a| matches!(a, Action::Deploy { .. }))
            .collect();
        assert_eq!(
            deploys,
            vec![
                Action::Deploy {
                    nodes: vec!["n0".into()],
                    revision: "v1".into()
                },
                Action::Deploy {
                    nodes: vec!["n1".into(), "n2".into()],
                    revision: "v1".into()
                },
            ]
        );
    }

    #[test]
    fn a_failed_rollback_step_halts_and_resume_retries_it() {
        let p = plan(2, 1);
        let mut m = Machine::new(p.clone());
        let mut events = run_until(&mut m, |n| matches!(n, Next::Do { index: 3, .. }));
        let abort = Event::Abort {
            reason: "SIGINT".into(),
        };
        m.on(&abort);
        events.push(abort);
        let fail = Event::Failed {
            mode: Mode::Rollback,
            index: 0,
            reason: "throttled".into(),
        };
        m.on(&fail);
        events.push(fail);
        assert!(matches!(m.next(), Next::Halted { .. }));
        let resumed = Machine::replay(p, &events);
        assert!(matches!(
            resumed.next(),
            Next::Do {
                index: 0,
                action: Action::SetWeight { canary: 0 }
            }
        ));
    }
}
