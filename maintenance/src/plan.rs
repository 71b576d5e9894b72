//! The decisions of the `maintenance` and `redrive` commands that are not steps of a run:
//! what `on --dry-run` would do, what `off` does once the flag is cleared, how long `off`
//! waits for a running `on`, and the requests built from the configuration.

use std::time::Duration;

use maintenance_flag::MaintenanceFlag;
use serde::Serialize;
use stacks::config::Config;
use state::lock::{LockInfo, LockState};
use state::Scope;

use crate::buckets::Buckets;
use crate::preflight::InFlight;
use crate::redrive::{self, BatchRules};
use crate::{Clients, MaintenanceConfig, MaintenanceError, OffOutcome, OnRequest, Target};

/// What `maintenance on` would do with the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "lock", rename_all = "snake_case")]
pub enum LockPlan {
    /// Free or never taken: `on` would take it.
    Take,
    /// A maintenance run is in it: `on` would resume that run; `done` are its steps done.
    Resume { run: String, done: Vec<String> },
    /// Another purpose's run is in it: `on` would be refused (when `parked`, unless
    /// `--force`: a canary awaiting approval can be preempted, a running one never).
    Refused {
        state: LockState,
        purpose: String,
        run: String,
        parked: bool,
    },
}

/// The lock decision without the resumed run's steps (which need the journal).
pub fn lock_plan(lock: Option<&LockInfo>) -> LockPlan {
    match lock {
        Some(l) if l.state != LockState::Free && l.purpose == crate::PURPOSE => LockPlan::Resume {
            run: l.run_id.clone(),
            done: Vec::new(),
        },
        Some(l) if l.state != LockState::Free => LockPlan::Refused {
            state: l.state,
            purpose: l.purpose.clone(),
            run: l.run_id.clone(),
            parked: l.state == LockState::Parked,
        },
        _ => LockPlan::Take,
    }
}

/// What `maintenance on --dry-run` reports: everything `on` would look at, nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OnPlan {
    pub in_flight: Vec<InFlight>,
    /// Where the lock lives.
    pub lock_location: String,
    pub lock: LockPlan,
    pub flag_parameter: String,
    /// The flag now (`None`: the parameter does not exist).
    pub flag: Option<MaintenanceFlag>,
    /// Each queue to drain and its messages now.
    pub queues: Vec<(String, u64)>,
    /// `[maintenance] flag_ttl_seconds`.
    pub flag_ttl: Duration,
    /// Each hook's name and command line.
    pub hooks: Vec<(String, String)>,
}

/// Looks at everything `maintenance on` would, and changes nothing.
pub async fn plan_on(
    clients: &Clients<'_>,
    target: &Target,
    mconfig: &MaintenanceConfig,
    scope: &Scope,
) -> Result<OnPlan, MaintenanceError> {
    let in_flight = crate::preflight::in_flight(clients, &mconfig.in_flight).await?;
    let flag = crate::read_flag(clients.ssm, &target.flag_parameter).await?;
    let mut lock = lock_plan(crate::lock_info(scope).await?.as_ref());
    if let LockPlan::Resume { run, done } = &mut lock {
        *done = crate::progress(scope, run).await?.steps();
    }
    let mut queues = Vec::new();
    for q in &target.queues {
        let depth = crate::queues::depth(clients.sqs, q).await?;
        queues.push((q.clone(), depth.total()));
    }
    Ok(OnPlan {
        in_flight,
        lock_location: scope.location(),
        lock,
        flag_parameter: target.flag_parameter.clone(),
        flag,
        queues,
        flag_ttl: mconfig.flag_ttl(),
        hooks: mconfig
            .hooks
            .iter()
            .map(|h| (h.name.clone(), h.command.get_ref().join(" ")))
            .collect(),
    })
}

impl OnRequest {
    /// `maintenance on`'s request: `--timeout` over `[maintenance] drain_timeout_seconds`.
    pub fn new(
        message: &str,
        until: Option<&str>,
        who: String,
        timeout_seconds: Option<u64>,
        mconfig: &MaintenanceConfig,
    ) -> Self {
        OnRequest {
            message: message.to_string(),
            until: until.map(str::to_string),
            who,
            drain_timeout: timeout_seconds
                .map(Duration::from_secs)
                .unwrap_or(mconfig.drain_timeout()),
            poll_interval: mconfig.poll_interval(),
            flag_ttl: mconfig.flag_ttl(),
        }
    }
}

/// How long `off` lets a running `on` finish its hook: the longest hook timeout, and two
/// leases.
pub fn off_wait(mconfig: &MaintenanceConfig, lease_seconds: u64) -> Duration {
    let longest = mconfig
        .hooks
        .iter()
        .map(|h| h.timeout_seconds)
        .max()
        .unwrap_or(0);
    Duration::from_secs(longest + 2 * lease_seconds)
}

/// What `maintenance off` does once `off` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterOff {
    /// The flag was not cleared (the lock is held, or `on` is still running): nothing more.
    NotCleared,
    /// Cleared; `--no-redrive`: the parking lot waits for a later `gatekeeper redrive`.
    LeaveParkingLot,
    /// Cleared: redrive the parking lot, listing it no sooner than `list_after` (when every
    /// service has noticed the flag is off and stopped parking uploads).
    Redrive { list_after: tokio::time::Instant },
}

pub fn after_off(outcome: &OffOutcome, redrive: bool) -> AfterOff {
    match outcome {
        OffOutcome::Cleared { .. } if !redrive => AfterOff::LeaveParkingLot,
        OffOutcome::Cleared { cleared, .. } => AfterOff::Redrive {
            list_after: cleared.noticed_by,
        },
        OffOutcome::Held { .. } | OffOutcome::StillRunning { .. } => AfterOff::NotCleared,
    }
}

/// Copies in flight: `--concurrency` over `[maintenance] concurrency`, at least one.
pub fn concurrency(flag: Option<usize>, mconfig: &MaintenanceConfig) -> usize {
    flag.unwrap_or(*mconfig.concurrency.get_ref()).max(1)
}

/// The object redrive of a service: its buckets, its batch rules (`[maintenance.batches]`
/// under the service's prefix).
pub fn redrive_request(
    config: &Config,
    mconfig: &MaintenanceConfig,
    buckets: &Buckets,
    concurrency: usize,
    dry_run: bool,
    list_after: Option<tokio::time::Instant>,
) -> redrive::Request {
    let mut request = redrive::Request::new(
        &buckets.parking_lot,
        &buckets.ingestion,
        BatchRules::from_config(mconfig.batches(), &config.prefix()),
    );
    request.concurrency = concurrency;
    request.dry_run = dry_run;
    request.list_after = list_after;
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cleared;

    fn lock(state: LockState, purpose: &str) -> LockInfo {
        serde_json::from_value(serde_json::json!({
            "format": "1", "generation": 3, "state": state, "run_id": "r-1", "purpose": purpose,
            "holder": state::Holder::this_process("me", "test"),
            "acquired_at": 0, "renewed_at": 0, "expires_at": 0, "renew_every": 10,
        }))
        .unwrap()
    }

    #[test]
    fn on_resumes_its_own_run_and_is_refused_by_another() {
        assert_eq!(lock_plan(None), LockPlan::Take);
        assert_eq!(
            lock_plan(Some(&lock(LockState::Free, "canary"))),
            LockPlan::Take
        );
        assert_eq!(
            lock_plan(Some(&lock(LockState::Parked, "maintenance"))),
            LockPlan::Resume {
                run: "r-1".into(),
                done: vec![]
            }
        );
        let refused = |state| match lock_plan(Some(&lock(state, "canary"))) {
            LockPlan::Refused { parked, .. } => parked,
            other => panic!("{other:?}"),
        };
        assert!(
            refused(LockState::Parked),
            "a parked canary: unless --force"
        );
        assert!(!refused(LockState::Held), "a running canary: never");
    }

    #[test]
    fn off_redrives_after_the_flag_ttl_only_when_cleared() {
        let at = tokio::time::Instant::now() + Duration::from_secs(30);
        let cleared = OffOutcome::Cleared {
            cleared: Cleared {
                flag: MaintenanceFlag {
                    enabled: false,
                    message: String::new(),
                    until: None,
                    who: None,
                    when: None,
                },
                noticed_by: at,
            },
            run: "r".into(),
            handed_back: None,
        };
        assert_eq!(
            after_off(&cleared, true),
            AfterOff::Redrive { list_after: at }
        );
        assert_eq!(after_off(&cleared, false), AfterOff::LeaveParkingLot);
        let held = OffOutcome::Held {
            reason: "canary".into(),
        };
        assert_eq!(after_off(&held, true), AfterOff::NotCleared);
        let running = OffOutcome::StillRunning {
            run: "r".into(),
            hook: None,
        };
        assert_eq!(after_off(&running, false), AfterOff::NotCleared);
    }

    #[test]
    fn off_waits_for_the_longest_hook_and_two_leases() {
        let m = crate::config::parse(
            std::path::Path::new("g.toml"),
            "[[maintenance.hooks]]\nname = \"a\"\ncommand = [\"true\"]\ntimeout_seconds = 30\n\
             [[maintenance.hooks]]\nname = \"b\"\ncommand = [\"true\"]\ntimeout_seconds = 90\n",
        )
        .unwrap();
        assert_eq!(off_wait(&m, 20), Duration::from_secs(130));
        assert_eq!(
            off_wait(&MaintenanceConfig::default(), 20),
            Duration::from_secs(40)
        );
    }

    #[test]
    fn the_concurrency_flag_wins_and_is_at_least_one() {
        let m = MaintenanceConfig::default();
        assert_eq!(concurrency(Some(3), &m), 3);
        assert_eq!(concurrency(Some(0), &m), 1);
        assert_eq!(concurrency(None, &m), *m.concurrency.get_ref());
    }
}
