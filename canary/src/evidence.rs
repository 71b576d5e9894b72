//! The bake's evidence as the run writes it: the `evidence` crate's record entries built from
//! this crate's judge, written into the run's journal as [`Record::Evidence`] (so it lives in
//! the state layer with the run, readable from any runner), and read back into a
//! [`BakeRecord`].
//!
//! A bake that is run again in the same run (a resumed run bakes from its start) writes a new
//! `start` entry; the record read back is the last bake's.
//!
//! [`Record::Evidence`]: crate::journal::Record::Evidence

use evidence::record::{
    AlarmState, BakeRecord, ConfigCheck, GroupLook, Groups, JudgeSpec, Look, MetricLook,
    MetricSpec, Outcome, RunVerdict, Start, Window,
};
use evidence::Entry;

use crate::journal::Record;
use crate::judge::{JudgeConfig, MetricReport, Report, Verdict};
use crate::machine::Plan;
use crate::provider::Sample;

/// What the run knows about itself beyond its plan, for the bake's `start` entry.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub service: String,
    pub environment: String,
    /// Who started the run (caller ARN or `user@host`).
    pub started_by: String,
    /// What the bake watches: alarm names or name prefixes.
    pub alarms_watched: Vec<String>,
    /// The preflight's configuration compatibility check, when configured.
    pub config_check: Option<ConfigCheck>,
}

/// The judge's configuration as a record keeps it, every default resolved.
pub fn spec(config: &JudgeConfig) -> JudgeSpec {
    JudgeSpec {
        method: config.method.as_str().to_string(),
        alpha: config.alpha,
        pass_early: config.pass_early,
        min_score: config.min_score,
        metrics: config
            .metrics
            .iter()
            .map(|m| MetricSpec {
                name: m.name.clone(),
                kind: m.kind,
                direction: m.direction,
                tolerance: m.tolerance(),
                critical: m.critical,
                min_samples: m.min_samples(),
            })
            .collect(),
    }
}

/// The bake's first entry.
pub fn start(
    plan: &Plan,
    context: &Context,
    judge: &JudgeConfig,
    bake_s: u64,
    interval_s: u64,
    at: u64,
) -> Entry {
    Entry::Start(Start {
        run_id: plan.run_id.clone(),
        service: context.service.clone(),
        environment: context.environment.clone(),
        revision: plan.revision.clone(),
        previous: Some(plan.previous.clone()),
        canary_node: Some(plan.canary_node.clone()),
        started_by: context.started_by.clone(),
        started_at: at,
        config_check: context.config_check.clone(),
        alarms_watched: context.alarms_watched.clone(),
        judge: spec(judge),
        bake_s,
        interval_s,
    })
}

/// The judge's report on one metric, as a look records it.
pub fn metric_look(m: &MetricReport) -> MetricLook {
    MetricLook {
        name: m.name.clone(),
        status: m.status,
        canary_value: m.canary_value,
        baseline_value: m.baseline_value,
        canary_samples: m.canary_samples,
        baseline_samples: m.baseline_samples,
        estimate: m.estimate,
        lower: m.interval.and_then(|b| b.lower),
        upper: m.interval.and_then(|b| b.upper),
        threshold: m.threshold,
        e_value: m.e_value,
        e_value_pass: m.e_value_pass,
        e_threshold: 1.0 / m.alpha,
        decided_at: m.decided_at,
        reason: m.reason.clone(),
    }
}

fn group(s: &Sample) -> GroupLook {
    GroupLook {
        requests: s.requests,
        errors: s.errors,
        latency_ms: s.latency_ms.into_iter().collect(),
    }
}

/// What one look of the bake saw and where every metric stood after it.
pub struct LookInput<'a> {
    pub index: u64,
    pub of: u64,
    pub t: f64,
    pub at: u64,
    /// `None` when no minute had completed since the last look.
    pub window: Option<(u64, u64)>,
    pub baseline: &'a Sample,
    pub canary: &'a Sample,
    pub weight: u8,
    /// Watched alarms in ALARM at this look.
    pub firing: &'a [String],
    pub report: &'a Report,
}

pub fn look(input: LookInput<'_>) -> Entry {
    let groups = Groups {
        baseline: group(input.baseline),
        canary: group(input.canary),
    };
    let mut look = Look::new(
        u32::try_from(input.index).unwrap_or(u32::MAX),
        input.t,
        input.at,
        f64::from(input.weight),
        groups,
    );
    look.of = u32::try_from(input.of).unwrap_or(u32::MAX);
    look.window = input.window.map(|(start, end)| Window { start, end });
    look.metrics = input.report.metrics.iter().map(metric_look).collect();
    look.alarms = input
        .firing
        .iter()
        .map(|name| AlarmState {
            name: name.clone(),
            state: "ALARM".into(),
        })
        .collect();
    Entry::Look(look)
}

/// The verdict the judge reached.
pub fn verdict(v: Verdict, report: &Report, at: u64) -> Entry {
    Entry::Verdict(RunVerdict {
        outcome: match v {
            Verdict::Pass => Outcome::Pass,
            Verdict::Fail => Outcome::Fail,
            Verdict::Inconclusive => Outcome::Inconclusive,
        },
        metric: report.decided_by.clone().or_else(|| {
            // A pass: the metric that was last to decide.
            report
                .metrics
                .iter()
                .filter(|m| m.decided_at.is_some())
                .max_by(|a, b| {
                    a.decided_at
                        .partial_cmp(&b.decided_at)
                        .unwrap_or(std::cmp::Ordering::Equal)
                })
                .map(|m| m.name.clone())
        }),
        decided_at: report.decided_at,
        at: Some(at),
        reason: report.reason.clone(),
    })
}

/// The bake stopped before the judge decided (an alarm, a signal, an error).
pub fn aborted(reason: &str, at: u64) -> Entry {
    Entry::Verdict(RunVerdict {
        outcome: Outcome::Aborted,
        metric: None,
        decided_at: None,
        at: Some(at),
        reason: reason.to_string(),
    })
}

/// The bake's record of `run`; an error naming the run when it never began a bake or its
/// evidence cannot be read.
pub fn record_of(run: &crate::journal::RunState) -> anyhow::Result<BakeRecord> {
    use anyhow::Context as _;
    let id = &run.machine.plan().run_id;
    bake_record(&run.records)
        .with_context(|| format!("run {id}: its bake's evidence"))?
        .with_context(|| format!("run {id} has no bake: it ended before the canary took traffic"))
}

/// The bake's record from a run's journal: the last bake's entries; `None` when the run has not
/// begun a bake. An entry out of place is an error naming it.
pub fn bake_record(
    records: &[Record],
) -> Result<Option<BakeRecord>, evidence::record::RecordError> {
    let mut current: Option<BakeRecord> = None;
    for r in records {
        let Record::Evidence { entry, .. } = r else {
            continue;
        };
        match (&mut current, entry.as_ref()) {
            (_, Entry::Start(s)) => current = Some(BakeRecord::new(s.clone())),
            (Some(record), e) => record.apply(e.clone())?,
            (None, e) => return Err(evidence::record::RecordError::NoStart(e.name())),
        }
    }
    Ok(current)
}
