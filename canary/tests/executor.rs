//! The executor end to end against in-memory providers: a load balancer with production and
//! canary pools and a weight, a deployer that remembers what each node runs, metrics that
//! record every window asked for, a lock that records every acquire/renew/release, and the
//! [`ManualClock`], so a 30-minute bake (and a 5-minute drain) runs in milliseconds.
//!
//! Every test drives a whole run through [`Executor::drive`] and checks where the fleet ended
//! (pools, revisions, weight, lock) and what the journal says, not what the code path was.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use canary::executor::{Executor, Progress, Providers, Settings};
use canary::journal::{Journal, MemoryJournal, Record};
use canary::judge::{default_metrics, JudgeConfig, Kind};
use canary::machine::{Action, Event, Machine, Mode, Next, Outcome, Plan, Pool};
use canary::provider::{
    Clock, Deployer, LoadBalancer, Lock, LockInfo, ManualClock, Metrics, NodeHealth, Preflight,
    ProviderError, Result, Sample,
};

/// 25 s past a minute, so that minute alignment is never free.
const T0: u64 = 1_700_000_005;
const NODES: [&str; 4] = ["n0", "n1", "n2", "n3"];
const CANARY_WEIGHT: u8 = 5;
const HOLDER: &str = "ci@runner-7 (pid 42)";
const CALLER: &str = "arn:aws:iam::111122223333:role/ci";

// ---------------------------------------------------------------------------------------------
// The fake load balancer

/// A target in one group.
#[derive(Debug, Clone, PartialEq)]
enum Slot {
    Healthy,
    /// Registered, healthy after this many more looks.
    Initial(u32),
    /// Deregistered, gone after this many more looks (`None`: never).
    Draining(Option<u32>),
}

#[derive(Debug, Default)]
struct LbState {
    prod: BTreeMap<String, Slot>,
    canary: BTreeMap<String, Slot>,
    weight: u8,
    /// Every `set_weight`, in order.
    weights: Vec<u8>,
}

struct FakeLb {
    state: Mutex<LbState>,
    /// Looks a deregistered node stays `draining` for (`None`: it never leaves).
    drain_polls: Option<u32>,
    /// Looks a registered node stays `initial` for.
    health_polls: u32,
    /// Raise this flag (a SIGTERM) at the n-th look that sees a node draining from production.
    signal_at_drain_look: Option<(u32, Arc<AtomicBool>)>,
    draining_looks: AtomicU32,
    /// Looks at a pool that saw a node not yet healthy after the signal was raised.
    unhealthy_looks_after_signal: AtomicU32,
    /// A worker fleet: the canary node's metrics before its repool are the old revision's.
    from_repool: bool,
}

impl FakeLb {
    fn new(nodes: &[&str]) -> Self {
        FakeLb {
            state: Mutex::new(LbState {
                prod: nodes
                    .iter()
                    .map(|n| (n.to_string(), Slot::Healthy))
                    .collect(),
                ..LbState::default()
            }),
            drain_polls: Some(2),
            health_polls: 1,
            signal_at_drain_look: None,
            draining_looks: AtomicU32::new(0),
            unhealthy_looks_after_signal: AtomicU32::new(0),
            from_repool: false,
        }
    }

    /// The nodes registered (healthy or on their way) in `pool`, not those leaving it.
    fn pooled(&self, pool: Pool) -> BTreeMap<String, Slot> {
        let s = self.state.lock().unwrap();
        let group = if pool == Pool::Prod {
            &s.prod
        } else {
            &s.canary
        };
        group
            .iter()
            .filter(|(_, slot)| !matches!(slot, Slot::Draining(_)))
            .map(|(n, slot)| (n.clone(), slot.clone()))
            .collect()
    }

    fn weight(&self) -> u8 {
        self.state.lock().unwrap().weight
    }

    fn weights(&self) -> Vec<u8> {
        self.state.lock().unwrap().weights.clone()
    }

    fn signalled(&self) -> bool {
        self.signal_at_drain_look
            .as_ref()
            .is_some_and(|(_, flag)| flag.load(Ordering::SeqCst))
    }
}

#[async_trait]
impl LoadBalancer for FakeLb {
    async fn members(&self, pool: Pool) -> Result<Vec<NodeHealth>> {
        let signalled = self.signalled();
        let mut s = self.state.lock().unwrap();
        let group = if pool == Pool::Prod {
            &mut s.prod
        } else {
            &mut s.canary
        };
        let mut out = Vec::new();
        let mut gone = Vec::new();
        let mut draining = false;
        let mut unhealthy = false;
        for (node, slot) in group.iter_mut() {
            let state = match slot {
                Slot::Healthy => "healthy",
                Slot::Initial(0) => {
                    *slot = Slot::Healthy;
                    "healthy"
                }
                Slot::Initial(k) => {
                    *k -= 1;
                    unhealthy = true;
                    "initial"
                }
                Slot::Draining(Some(0)) => {
                    gone.push(node.clone());
                    continue;
                }
                Slot::Draining(k) => {
                    if let Some(k) = k {
                        *k -= 1;
                    }
                    draining = true;
                    "draining"
                }
            };
            out.push(NodeHealth {
                node: node.clone(),
                state: state.to_string(),
            });
        }
        for node in gone {
            group.remove(&node);
        }
        drop(s);
        if signalled && unhealthy {
            self.unhealthy_looks_after_signal
                .fetch_add(1, Ordering::SeqCst);
        }
        if draining && pool == Pool::Prod {
            let looks = self.draining_looks.fetch_add(1, Ordering::SeqCst) + 1;
            if let Some((at, flag)) = &self.signal_at_drain_look {
                if looks == *at {
                    flag.store(true, Ordering::SeqCst);
                }
            }
        }
        Ok(out)
    }

    async fn depool(&self, pool: Pool, nodes: &[String]) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        let group = if pool == Pool::Prod {
            &mut s.prod
        } else {
            &mut s.canary
        };
        for n in nodes {
            if let Some(slot) = group.get_mut(n) {
                if !matches!(slot, Slot::Draining(_)) {
                    *slot = Slot::Draining(self.drain_polls);
                }
            }
        }
        Ok(())
    }

    async fn repool(&self, pool: Pool, nodes: &[String]) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        let group = if pool == Pool::Prod {
            &mut s.prod
        } else {
            &mut s.canary
        };
        for n in nodes {
            match group.get(n) {
                Some(Slot::Healthy | Slot::Initial(_)) => {}
                // Registering a draining or absent target starts it over.
                _ => {
                    group.insert(n.clone(), Slot::Initial(self.health_polls));
                }
            }
        }
        Ok(())
    }

    async fn set_weight(&self, canary: u8) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        s.weight = canary;
        s.weights.push(canary);
        Ok(())
    }

    async fn weight(&self) -> Result<u8> {
        Ok(self.weight())
    }

    fn judged_from_repool(&self) -> bool {
        self.from_repool
    }
}

// ---------------------------------------------------------------------------------------------
// The fake deployer

struct FakeDeployer {
    clock: Arc<ManualClock>,
    revisions: Mutex<BTreeMap<String, String>>,
    /// Every deploy: (nodes, revision, clock when it began).
    log: Mutex<Vec<(Vec<String>, String, u64)>>,
    /// A deploy of this revision fails (and leaves its nodes half-deployed).
    fail_revision: Option<String>,
    /// How long a deploy takes (the clock advances by it).
    takes: Duration,
}

impl FakeDeployer {
    fn new(clock: Arc<ManualClock>, nodes: &[&str], running: &str) -> Self {
        FakeDeployer {
            clock,
            revisions: Mutex::new(
                nodes
                    .iter()
                    .map(|n| (n.to_string(), running.to_string()))
                    .collect(),
            ),
            log: Mutex::new(Vec::new()),
            fail_revision: None,
            takes: Duration::ZERO,
        }
    }

    fn revisions(&self) -> BTreeMap<String, String> {
        self.revisions.lock().unwrap().clone()
    }

    fn log(&self) -> Vec<(Vec<String>, String)> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(n, r, _)| (n.clone(), r.clone()))
            .collect()
    }
}

#[async_trait]
impl Deployer for FakeDeployer {
    async fn deploy(&self, nodes: &[String], revision: &str) -> Result<()> {
        self.log
            .lock()
            .unwrap()
            .push((nodes.to_vec(), revision.to_string(), self.clock.now()));
        self.clock.sleep(self.takes).await;
        let failed = self.fail_revision.as_deref() == Some(revision);
        let mut revisions = self.revisions.lock().unwrap();
        for n in nodes {
            let now = if failed {
                format!("half of {revision}")
            } else {
                revision.to_string()
            };
            revisions.insert(n.clone(), now);
        }
        if failed {
            return Err(ProviderError::new(format!(
                "deployment d-42 of {revision} to {} failed: ApplicationStart script exited 1",
                nodes.join(",")
            )));
        }
        Ok(())
    }

    async fn current(&self, node: &str) -> Result<Option<String>> {
        Ok(self.revisions.lock().unwrap().get(node).cloned())
    }

    async fn smoke(&self, _node: &str, _revision: &str) -> Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The fake metrics

struct FakeMetrics {
    clock: Arc<ManualClock>,
    /// Every `window(start, end)` asked for, with the clock at the time.
    windows: Mutex<Vec<(u64, u64, u64)>>,
    /// Per minute of traffic.
    baseline: Sample,
    canary: Sample,
    /// `alarms_firing` answers this alarm from its n-th call on (preflight makes the first).
    alarm_from_look: Option<(usize, String)>,
    alarm_looks: AtomicUsize,
}

impl FakeMetrics {
    fn new(clock: Arc<ManualClock>) -> Self {
        FakeMetrics {
            clock,
            windows: Mutex::new(Vec::new()),
            baseline: per_minute(19_000, 95, 120.0),
            canary: per_minute(1_000, 5, 120.0),
            alarm_from_look: None,
            alarm_looks: AtomicUsize::new(0),
        }
    }

    fn windows(&self) -> Vec<(u64, u64, u64)> {
        self.windows.lock().unwrap().clone()
    }
}

fn per_minute(requests: u64, errors: u64, latency_ms: f64) -> Sample {
    Sample {
        requests,
        errors,
        latency_ms: Some(latency_ms),
    }
}

fn scaled(s: &Sample, minutes: u64) -> Sample {
    Sample {
        requests: s.requests * minutes,
        errors: s.errors * minutes,
        latency_ms: s.latency_ms,
    }
}

#[async_trait]
impl Metrics for FakeMetrics {
    async fn window(&self, start: u64, end: u64) -> Result<(Sample, Sample)> {
        self.windows
            .lock()
            .unwrap()
            .push((start, end, self.clock.now()));
        let minutes = end.saturating_sub(start) / 60;
        Ok((
            scaled(&self.baseline, minutes),
            scaled(&self.canary, minutes),
        ))
    }

    async fn alarms_firing(&self) -> Result<Vec<String>> {
        let look = self.alarm_looks.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(match &self.alarm_from_look {
            Some((from, name)) if look >= *from => vec![name.clone()],
            _ => Vec::new(),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The fake lock and preflight

#[derive(Debug, Clone, PartialEq)]
enum LockOp {
    Acquire { now: u64, expires_at: u64 },
    Renew { now: u64, expires_at: u64 },
    Release { now: u64 },
}

struct FakeLock {
    clock: Arc<ManualClock>,
    held: Mutex<Option<LockInfo>>,
    ops: Mutex<Vec<LockOp>>,
}

impl FakeLock {
    fn new(clock: Arc<ManualClock>) -> Self {
        FakeLock {
            clock,
            held: Mutex::new(None),
            ops: Mutex::new(Vec::new()),
        }
    }

    fn ops(&self) -> Vec<LockOp> {
        self.ops.lock().unwrap().clone()
    }

    fn held(&self) -> Option<LockInfo> {
        self.held.lock().unwrap().clone()
    }
}

#[async_trait]
impl Lock for FakeLock {
    async fn acquire(&self, info: &LockInfo, now: u64) -> Result<()> {
        let mut held = self.held.lock().unwrap();
        if let Some(h) = held.as_ref() {
            if h.run_id != info.run_id && h.expires_at > now {
                return Err(ProviderError::new(format!("lock held by {}", h.holder)));
            }
        }
        *held = Some(info.clone());
        self.ops.lock().unwrap().push(LockOp::Acquire {
            now: self.clock.now(),
            expires_at: info.expires_at,
        });
        Ok(())
    }

    async fn renew(&self, info: &LockInfo) -> Result<()> {
        let mut held = self.held.lock().unwrap();
        match held.as_mut() {
            Some(h) if h.run_id == info.run_id => {
                h.expires_at = info.expires_at;
                self.ops.lock().unwrap().push(LockOp::Renew {
                    now: self.clock.now(),
                    expires_at: info.expires_at,
                });
                Ok(())
            }
            _ => Err(ProviderError::new("the deploy lock disappeared")),
        }
    }

    async fn release(&self, run_id: &str) -> Result<()> {
        let mut held = self.held.lock().unwrap();
        if held.as_ref().is_some_and(|h| h.run_id == run_id) {
            *held = None;
        }
        self.ops.lock().unwrap().push(LockOp::Release {
            now: self.clock.now(),
        });
        Ok(())
    }

    async fn holder(&self) -> Result<Option<LockInfo>> {
        Ok(self.held())
    }
}

struct FakePreflight;

#[async_trait]
impl Preflight for FakePreflight {
    async fn revision_exists(&self, _revision: &str) -> Result<()> {
        Ok(())
    }
    async fn maintenance_ok(&self) -> Result<()> {
        Ok(())
    }
    async fn config_compatible(&self, _revision: &str, _previous: &str) -> Result<()> {
        Ok(())
    }
    async fn caller(&self) -> Result<String> {
        Ok(CALLER.to_string())
    }
}

// ---------------------------------------------------------------------------------------------
// The harness

struct Fleet {
    clock: Arc<ManualClock>,
    lb: FakeLb,
    deployer: FakeDeployer,
    metrics: FakeMetrics,
    lock: FakeLock,
    stop: Arc<AtomicBool>,
}

impl Fleet {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::at(T0));
        Fleet {
            lb: FakeLb::new(&NODES),
            deployer: FakeDeployer::new(clock.clone(), &NODES, "v1"),
            metrics: FakeMetrics::new(clock.clone()),
            lock: FakeLock::new(clock.clone()),
            stop: Arc::new(AtomicBool::new(false)),
            clock,
        }
    }

    /// Panics unless the fleet is whole on `revision`: every node healthy in production, the
    /// canary group empty, the canary weight 0, the lock free.
    fn assert_safe_on(&self, revision: &str) {
        let prod = self.lb.pooled(Pool::Prod);
        let all: BTreeSet<String> = NODES.iter().map(|n| n.to_string()).collect();
        assert_eq!(
            prod.keys().cloned().collect::<BTreeSet<_>>(),
            all,
            "every node back in production"
        );
        assert!(
            prod.values().all(|s| *s == Slot::Healthy),
            "every node healthy in production: {prod:?}"
        );
        assert!(
            self.lb.pooled(Pool::Canary).is_empty(),
            "the canary group is empty: {:?}",
            self.lb.pooled(Pool::Canary)
        );
        assert_eq!(self.lb.weight(), 0, "the canary weight is back to 0");
        let revisions = self.deployer.revisions();
        assert!(
            revisions.values().all(|r| r == revision),
            "every node on {revision}: {revisions:?}"
        );
        assert_eq!(self.lock.held(), None, "the lock is released");
        assert!(
            matches!(self.lock.ops().last(), Some(LockOp::Release { .. })),
            "the last lock call is a release: {:?}",
            self.lock.ops()
        );
    }
}

fn plan() -> Plan {
    Plan {
        run_id: "run-1".into(),
        revision: "v2".into(),
        previous: "v1".into(),
        canary_node: "n0".into(),
        nodes: NODES.iter().map(|n| n.to_string()).collect(),
        canary_weight: CANARY_WEIGHT,
        wave_size: 2,
        auto_promote: true,
        repair: false,
    }
}

/// The default judge as `canary::config` makes it for a bake read once per interval: the
/// latency metric needs as many aggregates as the bake can give (at most 10).
fn judge(intervals: u64) -> JudgeConfig {
    let mut metrics = default_metrics();
    for m in &mut metrics {
        if m.kind == Kind::Continuous {
            m.min_samples = Some(intervals.min(10));
        }
    }
    JudgeConfig {
        metrics,
        ..JudgeConfig::default()
    }
}

fn settings() -> Settings {
    let bake = 1800;
    let interval = 60;
    Settings {
        drain_timeout: Duration::from_secs(300),
        health_timeout: Duration::from_secs(300),
        poll: Duration::from_secs(5),
        bake: Duration::from_secs(bake),
        interval: Duration::from_secs(interval),
        judge: judge(bake / interval),
        holder: HOLDER.into(),
        lock_ttl: Duration::from_secs(bake + 3600),
        auto_promote: true,
        dry_run: false,
        evidence: Default::default(),
    }
}

struct Run {
    next: Next,
    machine: Machine,
    records: Vec<Record>,
    progress: Vec<Progress>,
}

impl Run {
    /// The journaled events with their times.
    fn events(&self) -> Vec<(u64, Event)> {
        self.records
            .iter()
            .filter_map(|r| match r {
                Record::Event { at, event } => Some((*at, event.clone())),
                _ => None,
            })
            .collect()
    }

    /// When the first step `name` of `mode` began, and its `completed`/`failed` event with
    /// the time it was journaled.
    fn step(&self, mode: Mode, name: &str) -> (u64, (u64, Event)) {
        let events = self.events();
        let (i, began_at, index) = events
            .iter()
            .enumerate()
            .find_map(|(i, (at, e))| match e {
                Event::Began {
                    mode: m,
                    index,
                    action,
                } if *m == mode && action.name() == name => Some((i, *at, *index)),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {name} began in {mode:?}: {events:#?}"));
        let end = events[i + 1..]
            .iter()
            .find(|(_, e)| match e {
                Event::Completed { mode: m, index: j }
                | Event::Failed {
                    mode: m, index: j, ..
                } => *m == mode && *j == index,
                _ => false,
            })
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {mode:?} never ended: {events:#?}"));
        (began_at, end)
    }

    fn failures(&self, mode: Mode) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|(_, e)| match e {
                Event::Failed {
                    mode: m, reason, ..
                } if m == mode => Some(reason),
                _ => None,
            })
            .collect()
    }

    fn rolled_back_because(&self) -> String {
        match &self.next {
            Next::Finished(Outcome::RolledBack { reason }) => reason.clone(),
            other => panic!(
                "expected a finished rollback, got {other:?}; journal: {:#?}",
                self.events()
            ),
        }
    }

    fn finish(&self) -> Option<&Outcome> {
        match self.records.last() {
            Some(Record::Finish { outcome, .. }) => Some(outcome),
            _ => None,
        }
    }
}

async fn run(f: &Fleet, plan: Plan, settings: Settings) -> Run {
    let mut journal = MemoryJournal::default();
    journal
        .append(&Record::Start {
            at: f.clock.now(),
            holder: settings.holder.clone(),
            plan: plan.clone(),
        })
        .await
        .unwrap();
    let mut progress = Vec::new();
    let mut on_progress = |p: &Progress| progress.push(p.clone());
    let mut machine = Machine::new(plan);
    let next = {
        let mut ex = Executor {
            providers: Providers {
                lb: &f.lb,
                deployer: &f.deployer,
                metrics: &f.metrics,
                preflight: &FakePreflight,
                lock: &f.lock,
                clock: f.clock.as_ref(),
            },
            journal: &mut journal,
            settings,
            progress: &mut on_progress,
            stop: f.stop.clone(),
            lock_kept_at: 0,
        };
        ex.drive(&mut machine)
            .await
            .expect("the journal never fails")
    };
    Run {
        next,
        machine,
        records: journal.0,
        progress,
    }
}

/// Panics if the lock could have lapsed at any point between its acquisition and release:
/// every renew and the release must come strictly before the expiry then in force.
fn assert_lock_never_lapsed(ops: &[LockOp]) {
    let Some(LockOp::Acquire {
        now: acquired,
        expires_at,
    }) = ops.first()
    else {
        panic!("the first lock call is an acquire: {ops:?}");
    };
    assert!(expires_at > acquired, "{ops:?}");
    let mut expiry = *expires_at;
    for op in &ops[1..] {
        match op {
            LockOp::Acquire { .. } => panic!("acquired twice: {ops:?}"),
            LockOp::Renew { now, expires_at } => {
                assert!(
                    *now < expiry,
                    "the lock lapsed at {expiry} and was only renewed at {now}: {ops:?}"
                );
                assert!(*expires_at > *now, "renewed into the past: {ops:?}");
                expiry = *expires_at;
            }
            LockOp::Release { now } => {
                assert!(
                    *now < expiry,
                    "the lock lapsed at {expiry} before the release at {now}: {ops:?}"
                );
            }
        }
    }
    assert!(
        matches!(ops.last(), Some(LockOp::Release { .. })),
        "released at the end: {ops:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The tests

/// 1. A healthy canary with auto_promote promotes the whole fleet.
#[tokio::test]
async fn a_healthy_canary_with_auto_promote_promotes_the_whole_fleet() {
    let f = Fleet::new();
    let r = run(&f, plan(), settings()).await;

    assert_eq!(
        r.next,
        Next::Finished(Outcome::Promoted),
        "{:#?}",
        r.events()
    );
    assert_eq!(r.finish(), Some(&Outcome::Promoted), "journaled finish");
    assert_eq!(r.machine.approved_by(), Some(CALLER), "approval recorded");
    f.assert_safe_on("v2");
    // The canary really took traffic at its weight before the weight went back to 0.
    assert_eq!(f.lb.weights(), vec![CANARY_WEIGHT, 0]);
    // The canary node first, then the rest in waves of two; nothing rolled back.
    assert_eq!(
        f.deployer.log(),
        vec![
            (vec!["n0".to_string()], "v2".to_string()),
            (vec!["n1".to_string(), "n2".to_string()], "v2".to_string()),
            (vec!["n3".to_string()], "v2".to_string()),
        ]
    );
    assert!(r.failures(Mode::Canary).is_empty() && r.failures(Mode::Promote).is_empty());
    assert!(
        !r.progress
            .iter()
            .any(|p| matches!(p, Progress::RollingBack { .. })),
        "never rolled back"
    );
    // The bake was judged on real windows and the judge passed.
    assert!(!f.metrics.windows().is_empty());
    assert_lock_never_lapsed(&f.lock.ops());
    // The journal keeps the bake's evidence: a look per window read, then the pass.
    let record = canary::evidence::bake_record(&r.records)
        .unwrap()
        .expect("a bake record");
    assert_eq!(record.start.revision, "v2");
    assert_eq!(record.looks.len(), f.metrics.windows().len());
    assert!(record.looks.iter().all(|l| l.window.is_some()));
    let verdict = record.verdict.expect("a verdict");
    assert_eq!(verdict.outcome, evidence::record::Outcome::Pass);
    assert!(verdict.decided_at.is_some(), "{verdict:?}");
    let last = record.looks.last().unwrap();
    assert_eq!(last.metrics.len(), record.start.judge.metrics.len());
    assert!(last.groups.canary.requests > 0);
}

/// 2. A canary whose error rate is far above the baseline's is rolled back, fast.
#[tokio::test]
async fn bad_canary_metrics_roll_back_to_the_previous_revision() {
    let mut f = Fleet::new();
    // 10% errors on the canary against 0.5% on the baseline.
    f.metrics.canary = per_minute(1_000, 100, 120.0);
    let r = run(&f, plan(), settings()).await;

    let reason = r.rolled_back_because();
    assert!(reason.starts_with("judge: fail"), "{reason}");
    assert!(reason.contains("error_rate"), "{reason}");
    f.assert_safe_on("v1");
    // Only the canary node ever ran v2, and it was put back on v1.
    assert_eq!(
        f.deployer.log(),
        vec![
            (vec!["n0".to_string()], "v2".to_string()),
            (vec!["n0".to_string()], "v1".to_string()),
        ]
    );
    assert_eq!(f.lb.weights(), vec![CANARY_WEIGHT, 0]);
    // A critical metric fails at once: far fewer windows than the 30 of the whole bake.
    let windows = f.metrics.windows().len();
    assert!((1..10).contains(&windows), "{windows} windows read");
    assert!(r.failures(Mode::Rollback).is_empty());
    assert_lock_never_lapsed(&f.lock.ops());
    let record = canary::evidence::bake_record(&r.records)
        .unwrap()
        .expect("a bake record");
    let verdict = record.verdict.expect("a verdict");
    assert_eq!(verdict.outcome, evidence::record::Outcome::Fail);
    assert_eq!(verdict.metric.as_deref(), Some("error_rate"));
    assert_eq!(verdict.decided_at, Some(record.looks.last().unwrap().t));
}

/// 3. The bake's windows tile whole minutes: contiguous, minute-aligned, each minute once,
/// from the minute before the bake began to the minute under way at its end.
#[tokio::test]
async fn bake_windows_are_contiguous_whole_minutes_read_once() {
    let f = Fleet::new();
    let mut s = settings();
    s.bake = Duration::from_secs(600);
    s.interval = Duration::from_secs(20);
    s.judge = judge(600 / 60);
    // Look all 30 times: no early pass.
    s.judge.pass_early = false;
    let r = run(&f, plan(), s).await;
    assert_eq!(
        r.next,
        Next::Finished(Outcome::Promoted),
        "{:#?}",
        r.events()
    );

    let (bake_start, (bake_end, end)) = r.step(Mode::Canary, "bake");
    assert!(matches!(end, Event::Completed { .. }), "{end:?}");
    assert_eq!(bake_end, bake_start + 600, "the whole bake was looked at");
    let windows = f.metrics.windows();
    assert!(windows.len() >= 10, "{windows:?}");
    for (start, end, now) in &windows {
        assert!(
            start % 60 == 0 && end % 60 == 0,
            "minute-aligned: {windows:?}"
        );
        assert!(end > start, "non-empty: {windows:?}");
        assert!(
            *end <= now.div_ceil(60) * 60,
            "no window reaches past the minute under way: {windows:?}"
        );
    }
    for pair in windows.windows(2) {
        assert_eq!(pair[0].1, pair[1].0, "contiguous: {windows:?}");
    }
    // Only the last look reads the minute still under way.
    for (_, end, now) in &windows[..windows.len() - 1] {
        assert!(
            end <= now,
            "only complete minutes before the end: {windows:?}"
        );
    }
    let mut minutes = Vec::new();
    for (start, end, _) in &windows {
        minutes.extend((*start..*end).step_by(60));
    }
    let distinct: BTreeSet<u64> = minutes.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        minutes.len(),
        "a minute read twice: {windows:?}"
    );
    assert_eq!(
        windows[0].0,
        (bake_start / 60 - 1) * 60,
        "the first window starts the minute before the bake's"
    );
    assert_eq!(
        windows.last().unwrap().1,
        bake_end.div_ceil(60) * 60,
        "the last window ends with the minute under way at the end"
    );
}

/// 3b. A node judged from its repool (a worker keeps its metric series in both roles): no
/// window reaches back before the repool; the first starts at the first whole minute after
/// it, and a bake too short to reach that minute waits for it to begin.
#[tokio::test]
async fn a_worker_bake_reads_nothing_from_before_the_repool() {
    for (bake, interval) in [(600, 20), (0, 0)] {
        let mut f = Fleet::new();
        f.lb.from_repool = true;
        let mut s = settings();
        s.bake = Duration::from_secs(bake);
        s.interval = Duration::from_secs(interval);
        s.judge = judge((bake / 60).max(1));
        s.judge.pass_early = false;
        let r = run(&f, plan(), s).await;
        assert_eq!(
            r.next,
            Next::Finished(Outcome::Promoted),
            "{:#?}",
            r.events()
        );
        let (_, (repooled, end)) = r.step(Mode::Canary, "repool");
        assert!(matches!(end, Event::Completed { .. }), "{end:?}");
        let windows = f.metrics.windows();
        assert!(!windows.is_empty(), "bake {bake}: {windows:?}");
        assert_eq!(
            windows[0].0,
            repooled.div_ceil(60) * 60,
            "bake {bake}: the first whole minute after the repool: {windows:?}"
        );
        for (start, end, _) in &windows {
            assert!(
                *start >= repooled && end > start,
                "bake {bake}: {windows:?}"
            );
        }
    }
}

/// 4. A drain that never completes fails at drain_timeout, naming the setting, and the run
/// rolls back to a whole fleet on the previous revision.
#[tokio::test]
async fn a_drain_that_never_completes_fails_at_drain_timeout_and_rolls_back() {
    let mut f = Fleet::new();
    f.lb.drain_polls = None;
    let s = settings();
    let timeout = s.drain_timeout.as_secs();
    let poll = s.poll.as_secs();
    let r = run(&f, plan(), s).await;

    let (began, (ended, end)) = r.step(Mode::Canary, "wait-drained");
    let Event::Failed { reason, .. } = end else {
        panic!("the drain wait did not fail: {end:?}");
    };
    assert!(reason.contains("drain_timeout_seconds"), "{reason}");
    assert!(
        reason.contains("n0 draining"),
        "names the stuck node: {reason}"
    );
    let waited = ended - began;
    assert!(
        (timeout..timeout + poll + 1).contains(&waited),
        "waited {waited}s for a {timeout}s deadline"
    );
    let why = r.rolled_back_because();
    assert!(why.contains("drain_timeout_seconds"), "{why}");
    // Nothing was deployed: the node was never touched, only put back.
    assert!(f.deployer.log().is_empty(), "{:?}", f.deployer.log());
    f.assert_safe_on("v1");
    assert!(r.failures(Mode::Rollback).is_empty());
}

/// 5. A signal during a drain wait ends the wait at once and rolls back; the rollback's own
/// waits run to completion although the signal stays raised.
#[tokio::test]
async fn a_signal_ends_a_drain_wait_at_once_but_not_the_rollbacks_waits() {
    let mut f = Fleet::new();
    f.lb.drain_polls = None;
    // The rollback's repool takes four looks to turn healthy, with the signal still raised.
    f.lb.health_polls = 4;
    f.lb.signal_at_drain_look = Some((3, f.stop.clone()));
    let s = settings();
    let timeout = s.drain_timeout.as_secs();
    let r = run(&f, plan(), s).await;
    assert!(f.stop.load(Ordering::SeqCst), "the signal was raised");

    let (began, (ended, end)) = r.step(Mode::Canary, "wait-drained");
    let Event::Failed { reason, .. } = end else {
        panic!("the drain wait was not interrupted: {end:?}");
    };
    assert!(reason.contains("interrupted by a signal"), "{reason}");
    assert!(
        !reason.contains("drain_timeout_seconds"),
        "a signal is not a timeout to raise: {reason}"
    );
    assert!(
        ended - began < 30 && ended - began < timeout,
        "the wait ended {}s in, with the deadline at {timeout}s",
        ended - began
    );
    let why = r.rolled_back_because();
    assert!(why.contains("interrupted by a signal"), "{why}");
    // The rollback waited for the node to be healthy again, through looks that saw it not yet
    // healthy after the signal, and completed every step.
    let (_, (_, end)) = r.step(Mode::Rollback, "wait-healthy");
    assert!(matches!(end, Event::Completed { .. }), "{end:?}");
    assert!(
        f.lb.unhealthy_looks_after_signal.load(Ordering::SeqCst) >= 2,
        "the rollback's wait went on looking"
    );
    assert!(
        r.failures(Mode::Rollback).is_empty(),
        "{:?}",
        r.failures(Mode::Rollback)
    );
    assert!(f.deployer.log().is_empty());
    f.assert_safe_on("v1");
}

/// 6a. With a lock TTL far shorter than the run, the lock is renewed between steps (each
/// step here shorter than half the TTL) and never lapses from acquisition to release.
#[tokio::test]
async fn the_lock_is_renewed_across_a_run_much_longer_than_its_ttl() {
    let mut f = Fleet::new();
    // Each deploy takes 50 s, each drain about 40 s, each repool 10 s to turn healthy.
    f.deployer.takes = Duration::from_secs(50);
    f.lb.drain_polls = Some(8);
    f.lb.health_polls = 2;
    let mut s = settings();
    s.lock_ttl = Duration::from_secs(120);
    s.bake = Duration::from_secs(300);
    s.judge = judge(5);
    s.judge.pass_early = false;
    let ttl = s.lock_ttl.as_secs();
    let r = run(&f, plan(), s).await;
    assert_eq!(
        r.next,
        Next::Finished(Outcome::Promoted),
        "{:#?}",
        r.events()
    );
    f.assert_safe_on("v2");

    let ops = f.lock.ops();
    let (acquired, released) = match (ops.first(), ops.last()) {
        (Some(LockOp::Acquire { now: a, .. }), Some(LockOp::Release { now: b })) => (*a, *b),
        _ => panic!("{ops:?}"),
    };
    assert!(
        released - acquired > 4 * ttl,
        "the run outlived the TTL many times: {}s",
        released - acquired
    );
    // Renewed outside the bake too (the promotion alone is longer than the TTL).
    let (_, (bake_end, _)) = r.step(Mode::Canary, "bake");
    assert!(
        ops.iter()
            .any(|op| matches!(op, LockOp::Renew { now, .. } if *now > bake_end)),
        "renewed during the promotion: {ops:?}"
    );
    assert_lock_never_lapsed(&ops);
}

/// 6b. One step longer than the lock's TTL: a drain wait of about 300 s under a 120 s lock.
#[tokio::test]
async fn the_lock_is_renewed_during_a_drain_wait_longer_than_its_ttl() {
    let mut f = Fleet::new();
    // 60 looks of 5 s: the canary node takes about 300 s to drain.
    f.lb.drain_polls = Some(60);
    let mut s = settings();
    s.lock_ttl = Duration::from_secs(120);
    s.drain_timeout = Duration::from_secs(600);
    s.bake = Duration::from_secs(300);
    s.judge = judge(5);
    s.judge.pass_early = false;
    let r = run(&f, plan(), s).await;
    assert_eq!(
        r.next,
        Next::Finished(Outcome::Promoted),
        "{:#?}",
        r.events()
    );
    let (began, (ended, _)) = r.step(Mode::Canary, "wait-drained");
    assert!(ended - began > 120, "the drain outlasted the TTL");
    assert_lock_never_lapsed(&f.lock.ops());
}

/// 7. An alarm going into ALARM during the bake rolls back, naming the alarm.
#[tokio::test]
async fn an_alarm_during_the_bake_rolls_back_naming_it() {
    let mut f = Fleet::new();
    // Preflight looks once; the bake looks at every interval: the third look of the bake
    // sees the alarm.
    f.metrics.alarm_from_look = Some((4, "photos-prod-5xx".into()));
    let r = run(&f, plan(), settings()).await;

    let reason = r.rolled_back_because();
    assert!(reason.contains("photos-prod-5xx"), "{reason}");
    assert!(reason.contains("ALARM"), "{reason}");
    let (_, (_, end)) = r.step(Mode::Canary, "bake");
    assert!(matches!(end, Event::Failed { .. }), "{end:?}");
    // Two looks were judged; the third stopped at the alarm, before reading its window.
    assert_eq!(f.metrics.windows().len(), 2, "{:?}", f.metrics.windows());
    assert_eq!(f.metrics.alarm_looks.load(Ordering::SeqCst), 4);
    f.assert_safe_on("v1");
    let record = canary::evidence::bake_record(&r.records)
        .unwrap()
        .expect("a bake record");
    assert_eq!(record.looks.len(), 2);
    let verdict = record.verdict.expect("a verdict");
    assert_eq!(verdict.outcome, evidence::record::Outcome::Aborted);
    assert!(verdict.reason.contains("photos-prod-5xx"), "{verdict:?}");
    assert_eq!(
        f.deployer.log().last(),
        Some(&(vec!["n0".to_string()], "v1".to_string()))
    );
}

/// 8. A failed deploy of the canary rolls back, redeploying the previous revision on the
/// half-deployed node.
#[tokio::test]
async fn a_failed_deploy_rolls_back() {
    let mut f = Fleet::new();
    f.deployer.fail_revision = Some("v2".into());
    let r = run(&f, plan(), settings()).await;

    let reason = r.rolled_back_because();
    assert!(reason.contains("deployment d-42 of v2"), "{reason}");
    let (_, (_, end)) = r.step(Mode::Canary, "deploy");
    assert!(matches!(end, Event::Failed { .. }), "{end:?}");
    assert_eq!(
        f.deployer.log(),
        vec![
            (vec!["n0".to_string()], "v2".to_string()),
            (vec!["n0".to_string()], "v1".to_string()),
        ]
    );
    // The canary never took traffic, and nothing was baked.
    assert!(
        !f.lb.weights().contains(&CANARY_WEIGHT),
        "{:?}",
        f.lb.weights()
    );
    assert!(f.metrics.windows().is_empty());
    assert!(
        !r.events().iter().any(|(_, e)| matches!(
            e,
            Event::Began {
                action: Action::Bake,
                ..
            }
        )),
        "never baked"
    );
    f.assert_safe_on("v1");
    assert!(r.failures(Mode::Rollback).is_empty());
}
