//! The bake's record: who ran what, and every look of the bake with what the judge saw and
//! concluded.
//!
//! A record is written as it happens, one [`Entry`] per journal record: the run's [`Start`],
//! then one [`Look`] per look of the bake, then the [`RunVerdict`], and later perhaps an
//! [`Approval`]. [`BakeRecord::apply`] rebuilds the record from those entries and refuses one
//! out of place (a look after the verdict, a look whose `t` does not grow), so a journal that
//! replays into a record is a consistent one.
//!
//! Field names are the JSON names and are stable; fields that may be missing are
//! `#[serde(default)]`, so a record written by an older version still reads. Times are whole
//! seconds since the Unix epoch (`at`, `started_at`); `t` is the judge's time, the seconds
//! of the bake at which an interval was judged, exactly as in `gatekeeper judge`'s input.

use serde::{Deserialize, Serialize};

/// Everything known about one bake of one canary run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BakeRecord {
    #[serde(flatten)]
    pub start: Start,
    /// The looks of the bake in the order they were taken.
    #[serde(default)]
    pub looks: Vec<Look>,
    /// The run's verdict once the bake ended; `None` while it goes on.
    #[serde(default)]
    pub verdict: Option<RunVerdict>,
    /// Who approved the promotion, when it was approved.
    #[serde(default)]
    pub approved_by: Option<Approval>,
}

/// What is known when the bake begins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Start {
    pub run_id: String,
    pub service: String,
    pub environment: String,
    /// The revision under test on the canary node.
    pub revision: String,
    /// The revision the rest of the fleet runs (and a rollback returns to).
    #[serde(default)]
    pub previous: Option<String>,
    /// The node that runs the canary (instance id or host).
    #[serde(default)]
    pub canary_node: Option<String>,
    /// Who started the run (caller ARN or `user@host`).
    pub started_by: String,
    /// Seconds since the Unix epoch.
    pub started_at: u64,
    /// The configuration compatibility check of the preflight; `None` when not configured.
    #[serde(default)]
    pub config_check: Option<ConfigCheck>,
    /// The CloudWatch alarms watched during the bake.
    #[serde(default)]
    pub alarms_watched: Vec<String>,
    /// How the judge was configured: what a replay of the export needs.
    pub judge: JudgeSpec,
    /// The planned bake: its length and the time between looks, seconds.
    #[serde(default)]
    pub bake_s: u64,
    #[serde(default)]
    pub interval_s: u64,
}

/// The approval of a promotion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The approver's ARN (or `user@host`).
    pub who: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
    /// `--reason`, when given.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The result of the configuration compatibility check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigCheck {
    pub result: CheckResult,
    /// In words, e.g. "rollback safe, mixed fleet safe, 2 warnings".
    #[serde(default)]
    pub summary: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckResult {
    Pass,
    Fail,
    /// Configured but not run (e.g. `--skip-config-check`).
    Skipped,
}

/// The judge's configuration as the bake used it, with every default resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeSpec {
    /// `sequential` or `mann-whitney`, as in `[canary.judge] method`.
    pub method: String,
    /// The run's alpha, shared equally by the metrics.
    pub alpha: f64,
    #[serde(default = "yes")]
    pub pass_early: bool,
    /// The run fails once the percentage of metrics not failed falls below this (the judge's
    /// `min_score`; 100 when the record predates it).
    #[serde(default = "all")]
    pub min_score: f64,
    pub metrics: Vec<MetricSpec>,
}

fn yes() -> bool {
    true
}

fn all() -> f64 {
    100.0
}

/// One `[[canary.judge.metrics]]` entry, defaults resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSpec {
    pub name: String,
    pub kind: Kind,
    #[serde(default)]
    pub direction: Direction,
    pub tolerance: f64,
    #[serde(default)]
    pub critical: bool,
    pub min_samples: u64,
}

/// What a metric measures (the judge's `kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Errors among requests (the `requests` and `errors` of each interval).
    Count,
    /// A continuous measurement (the `latency_ms` samples of each interval).
    Continuous,
}

/// Which way a change hurts (the judge's `direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    IncreaseIsBad,
    DecreaseIsBad,
}

impl Direction {
    /// +1 when an increase hurts, -1 when a decrease does.
    pub fn sign(self) -> f64 {
        match self {
            Direction::IncreaseIsBad => 1.0,
            Direction::DecreaseIsBad => -1.0,
        }
    }
}

/// One look of the bake: the interval the judge was fed, and where every metric stood after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Look {
    /// 1-based number of the look, of `of` planned.
    pub index: u32,
    #[serde(default)]
    pub of: u32,
    /// The judge's `t` of this interval, seconds into the bake.
    pub t: f64,
    /// When the look was taken, seconds since the Unix epoch.
    pub at: u64,
    /// The metrics window read, `[start, end)` in seconds since the epoch; `None` when no
    /// minute had completed since the last look, so the judge was fed nothing at this look.
    #[serde(default)]
    pub window: Option<Window>,
    /// The canary's weight on the listener, percent (as `canary_weight`).
    pub configured_weight: f64,
    /// The canary's actual share of the window's requests, percent; `None` without requests.
    #[serde(default)]
    pub canary_share: Option<f64>,
    /// What each group reported for the window: exactly what the judge was fed.
    pub groups: Groups,
    /// Every metric after this look, in the judge's order.
    #[serde(default)]
    pub metrics: Vec<MetricLook>,
    /// The watched alarms' states at this look.
    #[serde(default)]
    pub alarms: Vec<AlarmState>,
}

/// `[start, end)`, seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: u64,
    pub end: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Groups {
    pub baseline: GroupLook,
    pub canary: GroupLook,
}

/// One group's interval, in the judge's input terms.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupLook {
    pub requests: u64,
    pub errors: u64,
    /// Latency samples, or one per-interval aggregate (a p99 or an average), ms.
    #[serde(default)]
    pub latency_ms: Vec<f64>,
}

impl Groups {
    /// The canary's share of the requests, percent; `None` when neither group had any.
    pub fn canary_share(&self) -> Option<f64> {
        let total = self.baseline.requests + self.canary.requests;
        (total > 0).then(|| 100.0 * self.canary.requests as f64 / total as f64)
    }
}

/// Where one metric stood after a look; the judge's `MetricReport` at that look.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricLook {
    pub name: String,
    pub status: Status,
    /// Running error rate (count, a fraction) or geometric-mean latency (continuous, ms) of
    /// each group over the bake so far.
    #[serde(default)]
    pub canary_value: Option<f64>,
    #[serde(default)]
    pub baseline_value: Option<f64>,
    /// Canary observations so far: requests (count) or latency samples (continuous).
    #[serde(default)]
    pub canary_samples: u64,
    #[serde(default)]
    pub baseline_samples: u64,
    /// Estimated canary/baseline ratio, and its anytime-valid bounds (`upper: None` is
    /// unbounded).
    #[serde(default)]
    pub estimate: Option<f64>,
    #[serde(default)]
    pub lower: Option<f64>,
    #[serde(default)]
    pub upper: Option<f64>,
    /// The ratio at which a regression begins (1 ± tolerance).
    pub threshold: f64,
    /// Evidence against "no regression beyond tolerance": the metric fails when it reaches
    /// `e_threshold`.
    #[serde(default)]
    pub e_value: Option<f64>,
    /// Evidence against "a regression beyond tolerance": the metric may pass early when it
    /// reaches `e_threshold`.
    #[serde(default)]
    pub e_value_pass: Option<f64>,
    /// 1 / the metric's alpha.
    pub e_threshold: f64,
    /// The judge's `t` at which the metric decided, when it has.
    #[serde(default)]
    pub decided_at: Option<f64>,
    /// Why the metric stands where it does, in the judge's words.
    #[serde(default)]
    pub reason: String,
}

/// Where a metric stands (the judge's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    Inconclusive,
    /// The bake goes on and the metric has not decided yet.
    Pending,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Inconclusive => "inconclusive",
            Status::Pending => "pending",
        }
    }
}

/// A watched alarm's state at a look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmState {
    pub name: String,
    /// CloudWatch's state: `OK`, `ALARM` or `INSUFFICIENT_DATA`.
    pub state: String,
}

impl AlarmState {
    pub fn firing(&self) -> bool {
        self.state == "ALARM"
    }
}

/// How the bake ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunVerdict {
    pub outcome: Outcome,
    /// The metric that decided: the failing one, or the one that was last to pass.
    #[serde(default)]
    pub metric: Option<String>,
    /// The judge's `t` of the deciding interval (`decided_at` of `gatekeeper judge`).
    #[serde(default)]
    pub decided_at: Option<f64>,
    /// Seconds since the epoch at which the bake ended.
    #[serde(default)]
    pub at: Option<u64>,
    /// Why, in words (the judge's reason, or what stopped the bake).
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    Fail,
    Inconclusive,
    /// The bake stopped before the judge decided: an alarm, a signal, an error.
    Aborted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Inconclusive => "inconclusive",
            Outcome::Aborted => "aborted",
        }
    }
}

/// One journal record of the bake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum Entry {
    Start(Start),
    Look(Look),
    Verdict(RunVerdict),
    Approval(Approval),
}

/// An entry out of place.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("bake record: the first entry must be `start`, got `{0}`")]
    NoStart(&'static str),
    #[error("bake record: a second `start` entry")]
    Restarted,
    #[error("bake record: look {index} at t={t} after the verdict")]
    LookAfterVerdict { index: u32, t: f64 },
    #[error("bake record: look {index} at t={t} does not follow t={last}")]
    LookOutOfOrder { index: u32, t: f64, last: f64 },
    #[error("bake record: a second verdict")]
    SecondVerdict,
    #[error("bake record: an approval before the verdict")]
    ApprovalBeforeVerdict,
}

impl Entry {
    /// The entry's kind as its JSON tag names it: `start`, `look`, `verdict`, `approval`.
    pub fn name(&self) -> &'static str {
        match self {
            Entry::Start(_) => "start",
            Entry::Look(_) => "look",
            Entry::Verdict(_) => "verdict",
            Entry::Approval(_) => "approval",
        }
    }
}

impl BakeRecord {
    pub fn new(start: Start) -> Self {
        BakeRecord {
            start,
            looks: Vec::new(),
            verdict: None,
            approved_by: None,
        }
    }

    /// Rebuilds a record from its journal entries, in order.
    pub fn from_entries<I: IntoIterator<Item = Entry>>(entries: I) -> Result<Self, RecordError> {
        let mut it = entries.into_iter();
        let mut record = match it.next() {
            Some(Entry::Start(s)) => BakeRecord::new(s),
            Some(other) => return Err(RecordError::NoStart(other.name())),
            None => return Err(RecordError::NoStart("nothing")),
        };
        for e in it {
            record.apply(e)?;
        }
        Ok(record)
    }

    /// Adds one entry, refusing one out of place.
    pub fn apply(&mut self, entry: Entry) -> Result<(), RecordError> {
        match entry {
            Entry::Start(_) => Err(RecordError::Restarted),
            Entry::Look(look) => self.push(look),
            Entry::Verdict(v) => {
                if self.verdict.is_some() {
                    return Err(RecordError::SecondVerdict);
                }
                self.verdict = Some(v);
                Ok(())
            }
            Entry::Approval(a) => {
                if self.verdict.is_none() {
                    return Err(RecordError::ApprovalBeforeVerdict);
                }
                self.approved_by = Some(a);
                Ok(())
            }
        }
    }

    /// Appends a look; its `t` must follow the last look's.
    pub fn push(&mut self, look: Look) -> Result<(), RecordError> {
        if self.verdict.is_some() {
            return Err(RecordError::LookAfterVerdict {
                index: look.index,
                t: look.t,
            });
        }
        if let Some(last) = self.looks.last() {
            if look.t.total_cmp(&last.t).is_le() {
                return Err(RecordError::LookOutOfOrder {
                    index: look.index,
                    t: look.t,
                    last: last.t,
                });
            }
        }
        self.looks.push(look);
        Ok(())
    }

    /// The metric's spec, by name.
    pub fn spec(&self, metric: &str) -> Option<&MetricSpec> {
        self.start.judge.metrics.iter().find(|m| m.name == metric)
    }

    /// The last look, where every metric ended up.
    pub fn last_look(&self) -> Option<&Look> {
        self.looks.last()
    }
}

impl Look {
    /// A look with its canary share computed from the groups.
    pub fn new(index: u32, t: f64, at: u64, configured_weight: f64, groups: Groups) -> Self {
        Look {
            index,
            of: 0,
            t,
            at,
            window: None,
            configured_weight,
            canary_share: groups.canary_share(),
            groups,
            metrics: Vec::new(),
            alarms: Vec::new(),
        }
    }

    /// The metric's state after this look, by name.
    pub fn metric(&self, name: &str) -> Option<&MetricLook> {
        self.metrics.iter().find(|m| m.name == name)
    }
}
