//! The journal of a maintenance run, kept in the state layer (`<scope>/runs/<run>/<seq>.json`,
//! one create-only object per record, see the `state` crate), and its replay.
//!
//! A run's records, in the order they may come:
//!
//! | record | after |
//! |---|---|
//! | `started` | first |
//! | `preflight` | `started` (again in a resumed run) |
//! | `flag-on` | `preflight` (again when a resumed run writes the flag again) |
//! | `drained` | `flag-on` |
//! | `hook-started {name}` | `drained`; never for a hook already done |
//! | `hook-done {name}` | right after its `hook-started` |
//! | `done` | `drained`, no hook between its start and its end |
//! | `refused` | before `flag-on` |
//! | `failed {error}` | before `flag-on`: nothing was changed |
//! | `off {who}` | anything but `off`; first, for an `off` with no run to end |
//!
//! Replay refuses any other order, naming the record's object. A hook that has a
//! `hook-started` but no `hook-done` was cut short (the process died): a resumed run runs it
//! again; hooks with a `hook-done` are never run again.

use serde::{Deserialize, Serialize};
use state::{Envelope, Scope};

use super::MaintenanceError;

/// One record of a maintenance run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Record {
    Started {
        who: String,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<String>,
        /// The parked run (a canary awaiting approval) this run took the lock from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        preempted: Option<String>,
    },
    Preflight,
    FlagOn,
    Drained,
    HookStarted {
        name: String,
    },
    HookDone {
        name: String,
    },
    Done,
    Refused,
    Failed {
        error: String,
    },
    Off {
        who: String,
    },
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Done,
    Refused,
    Failed,
    Off { who: String },
}

/// What a run's records say, replayed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub records: u64,
    pub started: bool,
    pub preflight: bool,
    /// When the flag was last written (seconds since the epoch, the record's `at`).
    pub flag_on_at: Option<u64>,
    pub drained: bool,
    pub hooks_done: Vec<String>,
    /// A hook started and not (yet) done.
    pub in_hook: Option<String>,
    pub end: Option<End>,
}

impl Progress {
    /// Applies one record, or says why it may not come now.
    pub fn apply(&mut self, at: u64, record: &Record) -> Result<(), String> {
        use Record::*;
        let ended = |p: &Progress| match &p.end {
            Some(End::Done) if matches!(record, Off { .. }) => None,
            Some(e) => Some(format!("the run already ended ({e:?})")),
            None => None,
        };
        if let Some(why) = ended(self) {
            return Err(why);
        }
        if let Some(h) = &self.in_hook {
            let ok = match record {
                HookDone { name } => name == h,
                // Only a new process continues a run whose hook was cut short.
                Preflight | Off { .. } => true,
                _ => false,
            };
            if !ok {
                return Err(format!("hook {h} started and is not done"));
            }
        }
        match record {
            Started { .. } if self.records == 0 => self.started = true,
            Started { .. } => return Err("a run starts once, with its first record".into()),
            Off { .. } => {
                if let Some(End::Off { .. }) = self.end {
                    return Err("the run was already turned off".into());
                }
            }
            _ if !self.started => return Err("the run has no `started` record".into()),
            Preflight => {
                self.preflight = true;
                self.in_hook = None;
            }
            FlagOn if self.preflight => self.flag_on_at = Some(at),
            FlagOn => return Err("the flag was set before the preflight".into()),
            Drained if self.flag_on_at.is_some() => self.drained = true,
            Drained => return Err("drained before the flag was set".into()),
            HookStarted { name } if !self.drained => {
                return Err(format!("hook {name} started before the queues drained"))
            }
            HookStarted { name } if self.hooks_done.contains(name) => {
                return Err(format!("hook {name} was already done in this run"))
            }
            HookStarted { name } => self.in_hook = Some(name.clone()),
            HookDone { name } if self.in_hook.as_deref() == Some(name) => {
                self.in_hook = None;
                self.hooks_done.push(name.clone());
            }
            HookDone { name } => return Err(format!("hook {name} is done but never started")),
            Done if self.drained => {}
            Done => return Err("done before the queues drained".into()),
            Refused | Failed { .. } if self.flag_on_at.is_some() => {
                return Err("the flag was already set: a run that changed it is not refused".into())
            }
            Refused | Failed { .. } => {}
        }
        match record {
            Done => self.end = Some(End::Done),
            Refused => self.end = Some(End::Refused),
            Failed { .. } => self.end = Some(End::Failed),
            Off { who } => {
                self.in_hook = None;
                self.end = Some(End::Off { who: who.clone() });
            }
            _ => {}
        }
        self.records += 1;
        Ok(())
    }

    /// The steps done, for people: `preflight`, `flag-on`, `drained`, `hook:<name>`.
    pub fn steps(&self) -> Vec<String> {
        let mut steps = Vec::new();
        if self.preflight {
            steps.push("preflight".to_string());
        }
        if self.flag_on_at.is_some() {
            steps.push("flag-on".into());
        }
        if self.drained {
            steps.push("drained".into());
        }
        steps.extend(self.hooks_done.iter().map(|h| format!("hook:{h}")));
        steps
    }
}

/// Replays checked envelopes; an illegal record is an error naming its object.
pub fn replay(location: &str, records: &[Envelope<Record>]) -> Result<Progress, MaintenanceError> {
    let mut p = Progress::default();
    for env in records {
        p.apply(env.at, &env.record)
            .map_err(|message| MaintenanceError::Journal {
                path: format!("{location}{:08}.json", env.seq),
                message: format!("{} refused: {message}", step_name(&env.record)),
            })?;
    }
    Ok(p)
}

/// Reads and replays a run.
pub async fn load(scope: &Scope, run: &str) -> Result<Progress, MaintenanceError> {
    let records = state::journal::read::<Record>(scope, run).await?;
    let location = state::RunJournal::create(scope, run, 0)?.location();
    replay(&location, &records)
}

/// The record's step as the journal spells it.
pub fn step_name(r: &Record) -> String {
    match r {
        Record::HookStarted { name } => format!("hook-started {name}"),
        Record::HookDone { name } => format!("hook-done {name}"),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.get("step").and_then(|s| s.as_str()).map(str::to_string))
            .unwrap_or_default(),
    }
}

/// A new run's id: `maintenance-<UTC stamp>-<pid>` (run ids sort by start time), and `-<n>`
/// for the n-th further run this process starts.
pub fn new_run_id(now: u64) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static STARTED: AtomicU32 = AtomicU32::new(0);
    let id = format!("maintenance-{}-{}", utc_stamp(now), std::process::id());
    match STARTED.fetch_add(1, Ordering::Relaxed) {
        0 => id,
        n => format!("{id}-{n}"),
    }
}

/// `20261204T101500Z` for seconds since the epoch (the state layer's).
pub use state::clock::utc_stamp;

#[cfg(test)]
mod tests {
    use super::*;

    fn env(seq: u64, record: Record) -> Envelope<Record> {
        Envelope {
            format: state::journal::FORMAT.into(),
            run: "r".into(),
            seq,
            generation: 1,
            at: 100 + seq,
            record,
        }
    }

    fn started() -> Record {
        Record::Started {
            who: "me".into(),
            message: String::new(),
            until: None,
            preempted: None,
        }
    }

    fn hook(started: bool, name: &str) -> Record {
        if started {
            Record::HookStarted { name: name.into() }
        } else {
            Record::HookDone { name: name.into() }
        }
    }

    #[test]
    fn a_run_cut_in_a_hook_resumes_and_runs_only_that_hook_again() {
        let mut records = vec![
            started(),
            Record::Preflight,
            Record::FlagOn,
            Record::Drained,
            hook(true, "backup"),
            hook(false, "backup"),
            hook(true, "migrate"),
            // A new process resumed the run.
            Record::Preflight,
            Record::FlagOn,
            Record::Drained,
            hook(true, "migrate"),
            hook(false, "migrate"),
            Record::Done,
            Record::Off { who: "me".into() },
        ];
        let envs: Vec<_> = records
            .drain(..)
            .enumerate()
            .map(|(i, r)| env(i as u64, r))
            .collect();
        let p = replay("runs/r/", &envs).unwrap();
        assert_eq!(p.hooks_done, ["backup", "migrate"]);
        assert_eq!(p.flag_on_at, Some(108));
        assert_eq!(p.end, Some(End::Off { who: "me".into() }));
    }

    #[test]
    fn illegal_transitions_are_refused_naming_the_record() {
        for (records, says) in [
            (vec![Record::Preflight], "00000000.json: preflight refused"),
            (
                vec![started(), Record::Preflight, Record::Drained],
                "00000002.json: drained refused",
            ),
            (
                vec![
                    started(),
                    Record::Preflight,
                    Record::FlagOn,
                    Record::Drained,
                    hook(true, "a"),
                    Record::Done,
                ],
                "00000005.json: done refused: hook a started",
            ),
            (
                vec![
                    started(),
                    Record::Preflight,
                    Record::FlagOn,
                    Record::Drained,
                    hook(true, "a"),
                    hook(false, "a"),
                    hook(true, "a"),
                ],
                "00000006.json: hook-started a refused: hook a was already done",
            ),
            (
                vec![
                    started(),
                    Record::Off { who: "x".into() },
                    Record::Preflight,
                ],
                "00000002.json: preflight refused: the run already ended",
            ),
            (
                vec![
                    started(),
                    Record::Preflight,
                    Record::FlagOn,
                    Record::Refused,
                ],
                "00000003.json: refused refused: the flag was already set",
            ),
        ] {
            let envs: Vec<_> = records
                .into_iter()
                .enumerate()
                .map(|(i, r)| env(i as u64, r))
                .collect();
            let e = replay("runs/r/", &envs).unwrap_err().to_string();
            assert!(e.contains(says), "{e}\nwanted: {says}");
        }
    }

    #[test]
    fn run_ids_sort_by_time() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1_796_380_200), "20261204T103000Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
    }
}
