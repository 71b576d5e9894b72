//! The fenced lock: one object per scope, changed only by compare-and-swap.
//!
//! | operation | write | on a lost race |
//! |---|---|---|
//! | take a free, expired or absent lock | `If-Match` (absent: `If-None-Match: *`), generation + 1 | read again: now held, refused |
//! | renew | `If-Match`, same generation | read again: a newer generation means fenced |
//! | take over a dead holder's run | `If-Match`, generation + 1 | read again, decide again |
//! | release | `If-Match`, marked free, generation kept | fenced: nothing of ours to release |
//!
//! The object is never deleted, so generations only grow. A holder renews its lease every
//! `renew_every` seconds ([`Keeper`]); a lease not renewed for two of those belongs to a
//! holder that stopped, and one past `expires_at` may be taken by anyone.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::holder::{local_host, Holder, Liveness};
use crate::store::Etag;
use crate::{Result, Scope, StateError};

/// The format this build writes and reads; a newer one is refused, never guessed at.
pub const FORMAT: &str = "gatekeeper.lock/1";
const FORMAT_FAMILY: &str = "gatekeeper.lock/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LockState {
    /// A process drives a run and renews the lease.
    Held,
    /// A run is in flight but no process drives it (awaiting approval, halted): new runs are
    /// refused; `promote`, `resume` and `abort` of that run continue it.
    Parked,
    Free,
}

/// A run in flight that a preempting holder took the lock over from; handed back on release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedRun {
    pub run_id: String,
    pub purpose: String,
}

/// The lock object's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub format: String,
    /// The fencing token: larger for every acquisition.
    pub generation: u64,
    pub state: LockState,
    /// The run that holds it (or last held it).
    pub run_id: String,
    /// `canary`, `maintenance`, `pipeline`.
    pub purpose: String,
    pub holder: Holder,
    pub acquired_at: u64,
    pub renewed_at: u64,
    pub expires_at: u64,
    /// How often the holder renews (seconds).
    pub renew_every: u64,
    /// A parked run this holder preempted (`maintenance on --force` during a canary awaiting
    /// approval): the lock goes back to it on release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preempted: Option<ParkedRun>,
}

impl LockInfo {
    /// Held and not expired at `now`.
    pub fn live(&self, now: u64) -> bool {
        self.state == LockState::Held && now < self.expires_at
    }

    /// A run is in flight without a live driver: parked, or held past its lease (its holder
    /// stopped without parking it).
    pub fn parked(&self, now: u64) -> bool {
        self.state == LockState::Parked || (self.state == LockState::Held && !self.live(now))
    }

    /// Renewed within the last two renewal periods: its holder is still at work.
    pub fn being_renewed(&self, now: u64) -> bool {
        self.live(now) && now.saturating_sub(self.renewed_at) <= 2 * self.renew_every.max(1)
    }
}

/// What a command asks the lock for.
#[derive(Debug, Clone)]
pub struct Claim {
    pub run_id: String,
    pub purpose: String,
    pub holder: Holder,
    /// The lease's length (seconds); renewed every third of it.
    pub ttl: u64,
}

/// How a command may take the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A new run: only a free or absent lock.
    Fresh,
    /// A new run that may also take the lock from a *parked* run of another purpose (never
    /// from a live holder), handing it back on release: `maintenance on --force`.
    Preempt,
    /// Continue `Claim::run_id` (resume, abort, promote): also from a holder of that run that
    /// is dead on this host, or, with `force`, one on another host that stopped renewing.
    Continue { force: bool },
}

/// Why the lock was not taken; its text is for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub key: String,
    pub info: LockInfo,
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// The lock as this process holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    pub info: LockInfo,
    pub etag: Etag,
}

impl Lease {
    pub fn generation(&self) -> u64 {
        self.info.generation
    }
}

/// Reads the lock: `None` when it was never taken.
pub async fn read(scope: &Scope) -> Result<Option<(LockInfo, Etag)>> {
    let key = scope.lock_key();
    let Some((body, etag)) = scope.store.get(&key).await? else {
        return Ok(None);
    };
    Ok(Some((parse(&scope.store.describe(&key), &body)?, etag)))
}

/// Parses a lock object, refusing anything that is not a lock of a format this build knows.
pub fn parse(key: &str, body: &[u8]) -> Result<LockInfo> {
    let value = crate::check_format(
        key,
        body,
        (FORMAT, FORMAT_FAMILY),
        "lock",
        ": remove or move it only if you know what wrote it",
    )?;
    serde_json::from_value(value).map_err(|e| StateError::Foreign {
        key: key.to_string(),
        message: format!("unreadable lock: {e}"),
    })
}

fn body(info: &LockInfo) -> Vec<u8> {
    serde_json::to_vec_pretty(info).expect("lock info serializes")
}

const RACE_ROUNDS: usize = 16;

/// Takes the lock for `claim` as `mode` allows, or says why not.
pub async fn acquire(scope: &Scope, claim: &Claim, mode: Mode, now: u64) -> Result<Lease> {
    let key = scope.lock_key();
    let renew_every = (claim.ttl / 3).max(1);
    let fresh = |generation: u64| LockInfo {
        format: FORMAT.into(),
        generation,
        state: LockState::Held,
        run_id: claim.run_id.clone(),
        purpose: claim.purpose.clone(),
        holder: claim.holder.clone(),
        acquired_at: now,
        renewed_at: now,
        expires_at: now + claim.ttl,
        renew_every,
        preempted: None,
    };
    for _ in 0..RACE_ROUNDS {
        match read(scope).await? {
            None => {
                let info = fresh(1);
                if let Some(etag) = scope.store.put_new(&key, &body(&info)).await? {
                    return Ok(Lease { key, info, etag });
                }
            }
            Some((current, etag)) => {
                if current.state == LockState::Held
                    && current.run_id == claim.run_id
                    && current.holder.same_process(&claim.holder)
                {
                    return Ok(Lease {
                        key,
                        info: current,
                        etag,
                    });
                }
                if let Some(reason) = refusal(&current, claim, mode, now) {
                    return Err(StateError::Held(Box::new(Refusal {
                        key: scope.store.describe(&key),
                        info: current,
                        reason,
                    })));
                }
                let mut info = fresh(current.generation + 1);
                info.preempted = if current.parked(now) && current.run_id != claim.run_id {
                    Some(ParkedRun {
                        run_id: current.run_id.clone(),
                        purpose: current.purpose.clone(),
                    })
                } else {
                    // Continuing a run keeps what it had preempted.
                    current
                        .preempted
                        .clone()
                        .filter(|_| current.run_id == claim.run_id)
                };
                if let Some(etag) = scope.store.put_if(&key, &body(&info), &etag).await? {
                    return Ok(Lease { key, info, etag });
                }
            }
        }
        // Lost a race: read again and decide again.
    }
    Err(StateError::Conflict {
        key: scope.store.describe(&key),
        message: "the lock kept changing under this command: run it again".into(),
    })
}

/// Why `claim` may not take `current` at `now`, if it may not.
pub fn refusal(current: &LockInfo, claim: &Claim, mode: Mode, now: u64) -> Option<String> {
    let who = &current.holder;
    if current.state == LockState::Free {
        return None;
    }
    if current.parked(now) {
        return match mode {
            Mode::Continue { .. } if current.run_id == claim.run_id => None,
            Mode::Preempt if current.purpose != claim.purpose => None,
            _ => Some(format!(
                "{} run {} is in flight with no process driving it (last driven by {who}): \
                 finish it first (`{}`)",
                current.purpose,
                current.run_id,
                next_commands(&current.purpose)
            )),
        };
    }
    let until = current.expires_at.saturating_sub(now);
    if current.run_id != claim.run_id {
        return Some(format!(
            "held by {who} for {} run {} (generation {}), for {until}s more unless renewed",
            current.purpose, current.run_id, current.generation
        ));
    }
    let Mode::Continue { force } = mode else {
        return Some(format!("run {} already holds it ({who})", current.run_id));
    };
    match who.liveness(&claim.holder.host) {
        Liveness::Dead => None,
        Liveness::Alive => Some(format!(
            "run {} is still being driven by pid {} on this host ({who}): wait for it, or stop \
             it (SIGTERM rolls back at the next safe point)",
            current.run_id, who.pid
        )),
        Liveness::Unknown if current.being_renewed(now) => Some(format!(
            "run {} is held by {who}, on a host this one cannot check, and its lease was renewed \
             {}s ago: that runner is alive; --force is refused while it keeps renewing",
            current.run_id,
            now.saturating_sub(current.renewed_at)
        )),
        Liveness::Unknown if force => None,
        Liveness::Unknown => Some(format!(
            "run {} is held by {who}, on a host this one cannot check; it stopped renewing {}s \
             ago and expires in {until}s: wait, or if that runner is gone take the run over \
             with --force",
            current.run_id,
            now.saturating_sub(current.renewed_at)
        )),
    }
}

/// The commands that move a parked run of `purpose` on.
fn next_commands(purpose: &str) -> &'static str {
    match purpose {
        "canary" => "gatekeeper promote`, `gatekeeper canary resume` or `gatekeeper canary abort",
        "maintenance" => "gatekeeper maintenance on` to resume it or `gatekeeper maintenance off",
        "pipeline" => "gatekeeper pipeline resume` or `gatekeeper pipeline abort",
        _ => "gatekeeper status",
    }
}

/// Extends the lease; a newer generation in the object means this process was fenced.
pub async fn renew(scope: &Scope, lease: &mut Lease, now: u64) -> Result<()> {
    for _ in 0..RACE_ROUNDS {
        let mut info = lease.info.clone();
        info.renewed_at = now;
        info.expires_at = now + (lease.info.expires_at - lease.info.renewed_at);
        if let Some(etag) = scope
            .store
            .put_if(&lease.key, &body(&info), &lease.etag)
            .await?
        {
            lease.info = info;
            lease.etag = etag;
            return Ok(());
        }
        let current = read(scope).await?;
        match current {
            Some((c, etag))
                if c.generation == lease.info.generation
                    && c.state == LockState::Held
                    && c.holder.same_process(&lease.info.holder) =>
            {
                // Our own earlier write (a retry that had landed): carry on from it.
                lease.etag = etag;
                lease.info = c;
            }
            other => return Err(fenced(scope, lease, other.map(|c| c.0))),
        }
    }
    Err(StateError::Conflict {
        key: scope.store.describe(&lease.key),
        message: "the lock kept changing under this command".into(),
    })
}

/// Marks the lock free (generation kept). Fenced when another generation holds it.
pub async fn release(scope: &Scope, lease: &Lease, now: u64) -> Result<()> {
    set_down(scope, lease, now, false).await
}

/// Leaves the run in flight with no process driving it (awaiting approval, halted): new
/// runs stay refused, and `promote`, `resume` or `abort` of this run take it from here.
pub async fn park(scope: &Scope, lease: &Lease, now: u64) -> Result<()> {
    set_down(scope, lease, now, true).await
}

async fn set_down(scope: &Scope, lease: &Lease, now: u64, parked: bool) -> Result<()> {
    let mut lease = lease.clone();
    for _ in 0..RACE_ROUNDS {
        let mut info = lease.info.clone();
        info.state = LockState::Free;
        info.renewed_at = now;
        info.expires_at = now;
        if let Some(parked) = info.preempted.take() {
            // Hand the lock back to the run this holder preempted.
            info.state = LockState::Parked;
            info.run_id = parked.run_id;
            info.purpose = parked.purpose;
        }
        if parked {
            info.state = LockState::Parked;
            info.run_id = lease.info.run_id.clone();
            info.purpose = lease.info.purpose.clone();
            info.preempted = lease.info.preempted.clone();
        }
        if scope
            .store
            .put_if(&lease.key, &body(&info), &lease.etag)
            .await?
            .is_some()
        {
            return Ok(());
        }
        match read(scope).await? {
            Some((c, etag))
                if c.generation == lease.info.generation
                    && c.holder.same_process(&lease.info.holder) =>
            {
                if c.state != LockState::Held {
                    return Ok(());
                }
                lease.etag = etag;
                lease.info = c;
            }
            other => return Err(fenced(scope, &lease, other.map(|c| c.0))),
        }
    }
    Err(StateError::Conflict {
        key: scope.store.describe(&lease.key),
        message: "the lock kept changing under this command".into(),
    })
}

fn fenced(scope: &Scope, lease: &Lease, current: Option<LockInfo>) -> StateError {
    StateError::Fenced {
        key: scope.store.describe(&lease.key),
        ours: lease.info.generation,
        theirs: current.map(|c| c.generation).unwrap_or(0),
    }
}

/// Keeps a lease renewed on a timer while a command works, and remembers if it was lost.
///
/// Renewal runs on its own task, so a long step (a deploy, a drain) never lets the lease
/// lapse; [`Keeper::check`] before every action turns a lost lease into an error, so a
/// fenced process stops before it acts again.
pub struct Keeper {
    scope: Scope,
    shared: Arc<tokio::sync::Mutex<Kept>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

struct Kept {
    lease: Lease,
    lost: Option<StateError>,
}

/// Seconds since the epoch: the keeper renews on wall time, whatever clock a run uses.
pub fn wall_now() -> u64 {
    crate::clock::Clock::now(&crate::clock::SystemClock)
}

impl Keeper {
    /// Starts renewing `lease` every `renew_every` seconds.
    pub fn start(scope: &Scope, lease: Lease) -> Keeper {
        let every = Duration::from_secs(lease.info.renew_every.max(1));
        let shared = Arc::new(tokio::sync::Mutex::new(Kept { lease, lost: None }));
        let task = {
            let shared = shared.clone();
            let scope = scope.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    let mut kept = shared.lock().await;
                    if kept.lost.is_some() {
                        return;
                    }
                    let mut lease = kept.lease.clone();
                    match renew(&scope, &mut lease, wall_now()).await {
                        Ok(()) => kept.lease = lease,
                        Err(e @ StateError::Fenced { .. }) => {
                            kept.lost = Some(e);
                            return;
                        }
                        // A passing failure: the next tick tries again; `check` tells once
                        // the lease has run out.
                        Err(_) => {}
                    }
                }
            })
        };
        Keeper {
            scope: scope.clone(),
            shared,
            task: Some(task),
        }
    }

    /// A keeper that holds `lease` without a timer (dry runs, tests with a manual clock).
    pub fn without_timer(scope: &Scope, lease: Lease) -> Keeper {
        Keeper {
            scope: scope.clone(),
            shared: Arc::new(tokio::sync::Mutex::new(Kept { lease, lost: None })),
            task: None,
        }
    }

    /// The lease as last renewed.
    pub async fn lease(&self) -> Lease {
        self.shared.lock().await.lease.clone()
    }

    pub async fn generation(&self) -> u64 {
        self.shared.lock().await.lease.info.generation
    }

    /// Ok while this process holds the lock; an error once it was fenced or ran out.
    pub async fn check(&self, now: u64) -> Result<()> {
        let kept = self.shared.lock().await;
        if let Some(e) = &kept.lost {
            return Err(e.clone());
        }
        if now >= kept.lease.info.expires_at {
            return Err(StateError::Conflict {
                key: self.scope.store.describe(&kept.lease.key),
                message: format!(
                    "the lease ran out at {} without being renewed: stopped before acting",
                    kept.lease.info.expires_at
                ),
            });
        }
        Ok(())
    }

    /// Renews now (before a step that must not start on a stale lease).
    pub async fn renew_now(&self, now: u64) -> Result<()> {
        let mut kept = self.shared.lock().await;
        if let Some(e) = &kept.lost {
            return Err(e.clone());
        }
        let mut lease = kept.lease.clone();
        match renew(&self.scope, &mut lease, now).await {
            Ok(()) => {
                kept.lease = lease;
                Ok(())
            }
            Err(e) => {
                if matches!(e, StateError::Fenced { .. }) {
                    kept.lost = Some(e.clone());
                }
                Err(e)
            }
        }
    }

    /// Stops renewing and marks the lock free.
    pub async fn release(mut self, now: u64) -> Result<()> {
        self.stop();
        let kept = self.shared.lock().await;
        if let Some(e) = &kept.lost {
            return Err(e.clone());
        }
        release(&self.scope, &kept.lease, now).await
    }

    /// Stops renewing and parks the run (see [`park`]).
    pub async fn park(mut self, now: u64) -> Result<()> {
        self.stop();
        let kept = self.shared.lock().await;
        if let Some(e) = &kept.lost {
            return Err(e.clone());
        }
        park(&self.scope, &kept.lease, now).await
    }

    fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// This host's name, as holders record it.
pub fn host() -> String {
    local_host()
}
