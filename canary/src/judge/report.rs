//! What the judge found: a typed report, serialisable to JSON and displayable as text.

use std::fmt;

use serde::Serialize;

use super::config::{Direction, Kind, Method, MetricConfig};
use super::{fmt_e, fmt_ratio, Tally};

/// The verdict of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Inconclusive,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// Where one metric stands: the record's type (`pending` while the bake goes on and the metric
/// has not decided).
pub use evidence::record::Status;

/// An interval for the canary/baseline ratio; `None` where it is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bounds {
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

/// The evidence on one metric.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricReport {
    pub name: String,
    pub kind: Kind,
    pub direction: Direction,
    pub critical: bool,
    pub status: Status,
    /// Why the metric stands where it does, in words.
    pub reason: String,
    /// t of the interval where the metric decided, when it decided before the bake end.
    pub decided_at: Option<f64>,
    /// Canary observations: requests (count) or latency samples (continuous).
    pub canary_samples: u64,
    pub baseline_samples: u64,
    pub min_samples: u64,
    /// Error rate (count) or geometric-mean latency in ms (continuous) of each group.
    pub canary_value: Option<f64>,
    pub baseline_value: Option<f64>,
    /// Estimated canary/baseline ratio: of error rates (count), of the median pairwise latency
    /// ratio (sequential continuous) or the Hodges-Lehmann shift (Mann-Whitney continuous).
    pub estimate: Option<f64>,
    /// Confidence bounds of that ratio: anytime-valid lower and upper bounds (sequential),
    /// or the Moses confidence interval (Mann-Whitney).
    pub interval: Option<Bounds>,
    /// Sequential: confidence level of each bound; Mann-Whitney: of the interval. 1 - the
    /// metric's alpha.
    pub level: f64,
    /// The ratio at which a regression begins (1 ± tolerance).
    pub threshold: f64,
    /// Sequential: e-value against "no regression beyond tolerance"; fails at 1/alpha.
    pub e_value: Option<f64>,
    /// Sequential: e-value against "a regression beyond tolerance"; passes early at 1/alpha.
    pub e_value_pass: Option<f64>,
    /// Sequential: the e-value that decided the metric, when it reached 1/alpha (against no
    /// regression when it failed, against a regression when it passed early); the evidence
    /// at that very sample, which later samples may have moved.
    pub decided_e_value: Option<f64>,
    /// Mann-Whitney: two-sided p-value.
    pub p_value: Option<f64>,
    /// The metric's share of the run's alpha.
    pub alpha: f64,
}

impl MetricReport {
    pub(crate) fn new(cfg: &MetricConfig, alpha: f64, tally: &Tally) -> Self {
        MetricReport {
            name: cfg.name.clone(),
            kind: cfg.kind,
            direction: cfg.direction,
            critical: cfg.critical,
            status: Status::Pending,
            reason: String::new(),
            decided_at: None,
            canary_samples: tally.canary,
            baseline_samples: tally.baseline,
            min_samples: cfg.min_samples(),
            canary_value: tally.canary_value(cfg.kind),
            baseline_value: tally.baseline_value(cfg.kind),
            estimate: None,
            interval: None,
            level: 1.0 - alpha,
            threshold: cfg.threshold_ratio(),
            e_value: None,
            e_value_pass: None,
            decided_e_value: None,
            p_value: None,
            alpha,
        }
    }

    /// "the canary's error rate" / "the canary's latency".
    pub(crate) fn what(&self) -> String {
        match self.kind {
            Kind::Count => format!("the canary's {}", self.name.replace('_', " ")),
            Kind::Continuous => format!("the canary's {}", self.name.replace('_', " ")),
        }
    }

    pub(crate) fn worse(&self) -> &'static str {
        match self.direction {
            Direction::IncreaseIsBad => "more",
            Direction::DecreaseIsBad => "less",
        }
    }

    /// "more than 1.20x" (an increase is bad) / "less than 0.80x".
    pub(crate) fn beyond(&self) -> String {
        format!("{} than {}", self.worse(), fmt_ratio(self.threshold))
    }

    /// "at most 1.20x" / "at least 0.80x": within the tolerance.
    pub(crate) fn within(&self) -> String {
        let bound = match self.direction {
            Direction::IncreaseIsBad => "at most",
            Direction::DecreaseIsBad => "at least",
        };
        format!("{bound} {}", fmt_ratio(self.threshold))
    }

    /// The confidence bounds in words: "between 1.26x and 3.16x (97.5% confidence)".
    pub(crate) fn bounds_words(&self) -> Option<String> {
        let b = self.interval?;
        let level = format!("{}% confidence", fmt_level(self.level));
        let lower = b.lower.filter(|l| *l > 0.0);
        Some(match (lower, b.upper) {
            (Some(l), Some(u)) => {
                format!("between {} and {} ({level})", fmt_ratio(l), fmt_ratio(u))
            }
            (Some(l), None) => format!("at least {} ({level})", fmt_ratio(l)),
            (None, Some(u)) => format!("at most {} ({level})", fmt_ratio(u)),
            (None, None) => "not bounded yet".to_string(),
        })
    }

    /// The bound that rules a regression out, when the metric's bounds do: the upper bound
    /// (an increase is bad) or the lower one.
    pub(crate) fn rules_out(&self) -> Option<String> {
        let b = self.interval?;
        match self.direction {
            Direction::IncreaseIsBad => b.upper.map(|u| format!("more than {}", fmt_ratio(u))),
            Direction::DecreaseIsBad => b
                .lower
                .filter(|l| *l > 0.0)
                .map(|l| format!("less than {}", fmt_ratio(l))),
        }
    }

    /// How much evidence the metric has, and how much deciding takes, in words.
    fn evidence_words(&self) -> Option<String> {
        if let Some(p) = self.p_value {
            return Some(format!(
                "p = {} (two-sided Mann-Whitney U); significant below {}",
                fmt_p(p),
                self.alpha
            ));
        }
        let needed = fmt_e(1.0 / self.alpha);
        let (e_fail, e_pass) = (self.e_value?, self.e_value_pass?);
        Some(match (self.status, self.decided_e_value) {
            (Status::Fail, Some(e)) => format!(
                "{} against \"{}\" when it failed; {needed} needed to fail (1/alpha)",
                fmt_e(e),
                self.within()
            ),
            (Status::Pass, Some(e)) => format!(
                "{} against \"{}\" when it passed; {needed} needed to pass early (1/alpha)",
                fmt_e(e),
                self.beyond()
            ),
            _ => format!(
                "{} of the {needed} needed to fail, {} of the {needed} needed to pass early",
                fmt_e(e_fail),
                fmt_e(e_pass)
            ),
        })
    }

    /// "5000 canary requests" / "800 canary samples".
    pub(crate) fn seen(&self) -> String {
        format!("{} canary {}", self.canary_samples, self.unit())
    }

    fn unit(&self) -> &'static str {
        match self.kind {
            Kind::Count => "requests",
            Kind::Continuous => "samples",
        }
    }

    /// Why the metric cannot pass yet for want of data, if it cannot.
    pub(crate) fn lacking_data(&self, at_end: bool) -> Option<String> {
        let what = match self.kind {
            Kind::Count => "requests",
            Kind::Continuous => "latency samples",
        };
        if self.canary_samples == 0 && self.baseline_samples == 0 {
            return Some(format!("no data: neither group reported any {what}"));
        }
        if self.canary_samples == 0 {
            return Some(format!("no data: the canary reported no {what}"));
        }
        if self.baseline_samples == 0 {
            return Some(format!("no data: the baseline reported no {what}"));
        }
        if self.canary_samples < self.min_samples {
            let verb = if at_end { "ended with" } else { "has" };
            return Some(format!(
                "not enough data: the canary {verb} {} of the {} {} needed (min_samples)",
                self.canary_samples,
                self.min_samples,
                self.unit()
            ));
        }
        None
    }
}

/// The judge's report at one point of the bake.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `Some` once decided: early (a critical failure, or every metric passed early) or at
    /// the bake end.
    pub verdict: Option<Verdict>,
    /// t of the interval where the verdict was reached; `None` while undecided or when
    /// inconclusive.
    pub decided_at: Option<f64>,
    /// The metric whose failure failed the run.
    pub decided_by: Option<String>,
    /// Why, in words.
    pub reason: String,
    pub method: Method,
    pub alpha: f64,
    /// Intervals judged (one interval = one `t`, both groups).
    pub intervals: usize,
    /// t of the last interval judged.
    pub last_t: Option<f64>,
    pub metrics: Vec<MetricReport>,
}

pub(crate) fn fmt_value(kind: Kind, v: Option<f64>) -> String {
    match (kind, v) {
        (_, None) => "-".to_string(),
        (Kind::Count, Some(v)) => format!("{:.3}%", v * 100.0),
        (Kind::Continuous, Some(v)) => format!("{v:.1} ms"),
    }
}

/// A confidence level in percent: "97.5".
pub(crate) fn fmt_level(level: f64) -> String {
    let pct = format!("{:.2}", level * 100.0);
    pct.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn fmt_t(t: f64) -> String {
    if t.fract() == 0.0 && t.abs() < 1e15 {
        format!("{}", t as i64)
    } else {
        format!("{t}")
    }
}

/// A p-value for people: 4 decimals, scientific when smaller.
pub(crate) fn fmt_p(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = self.verdict.map_or("undecided", Verdict::as_str);
        write!(f, "verdict: {verdict}")?;
        if let Some(t) = self.decided_at {
            write!(f, " at t={}", fmt_t(t))?;
        }
        if let Some(by) = &self.decided_by {
            write!(f, ", decided by {by}")?;
        }
        writeln!(f)?;
        writeln!(f, "why: {}", self.reason)?;
        writeln!(
            f,
            "judged: {} intervals{}, {} method, alpha {} ({} per metric)",
            self.intervals,
            self.last_t
                .map(|t| format!(" up to t={}", fmt_t(t)))
                .unwrap_or_default(),
            self.method.as_str(),
            self.alpha,
            self.metrics.first().map_or(self.alpha, |m| m.alpha)
        )?;
        for m in &self.metrics {
            let kind = match m.kind {
                Kind::Count => "count",
                Kind::Continuous => "continuous",
            };
            let critical = if m.critical { ", critical" } else { "" };
            writeln!(f)?;
            write!(f, "{} ({kind}{critical}): {}", m.name, m.status.as_str())?;
            if let Some(t) = m.decided_at {
                write!(f, " at t={}", fmt_t(t))?;
            }
            writeln!(f)?;
            writeln!(f, "  {}", m.reason)?;
            writeln!(
                f,
                "  canary     {} over {} {}",
                fmt_value(m.kind, m.canary_value),
                m.canary_samples,
                m.unit()
            )?;
            writeln!(
                f,
                "  baseline   {} over {} {}",
                fmt_value(m.kind, m.baseline_value),
                m.baseline_samples,
                m.unit()
            )?;
            if let Some(e) = m.estimate {
                write!(f, "  estimate   {} the baseline's", fmt_ratio(e))?;
                if let Some(bounds) = m.bounds_words() {
                    write!(f, ", {bounds}")?;
                }
                writeln!(f)?;
            }
            writeln!(f, "  tolerated  {} the baseline's", m.within())?;
            if let Some(evidence) = m.evidence_words() {
                writeln!(f, "  evidence   {evidence}")?;
            }
        }
        Ok(())
    }
}
