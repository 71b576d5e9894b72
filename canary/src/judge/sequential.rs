//! The sequential (anytime-valid) test of one metric.

use super::config::{Kind, MetricConfig};
use super::eprocess::{rate_ratio_cs, BettingMixture, OddsMixture};
use super::report::{fmt_value, Bounds, MetricReport, Status};
use super::{fmt_e, fmt_ratio, GroupData, Tally};

/// Latencies below this (ms) count as this, so that a 0 ms sample has a logarithm.
const MIN_LATENCY_MS: f64 = 1e-3;

/// The evidence a metric accumulates, by kind.
enum Evidence {
    Count {
        /// Against "no regression": crossing 1/α fails the metric.
        fail: OddsMixture,
        /// Against "a regression": crossing 1/α lets the metric pass early.
        pass: OddsMixture,
        /// (traffic share of the canary, canary errors, errors) per interval.
        updates: Vec<(f64, u64, u64)>,
    },
    Continuous {
        fail: BettingMixture,
        pass: BettingMixture,
        /// Each canary sample judged: ln latency and its block in `blocks`.
        ranked: Vec<(f64, usize, usize)>,
        /// Blocks of ln baseline latencies, each sorted.
        blocks: Vec<f64>,
    },
}

pub(crate) struct SeqMetric {
    cfg: MetricConfig,
    alpha: f64,
    evidence: Evidence,
    /// The log e-value at which each e-process (against no regression, against a regression)
    /// first reached 1/α: checked after every update, each canary latency sample included.
    crossed: (Option<f64>, Option<f64>),
    pub(crate) tally: Tally,
    pub(crate) failed_at: Option<f64>,
    pub(crate) passed_at: Option<f64>,
}

/// The rank of `x` within a sorted block, in [0, 1], ties counting half.
fn rank(block: &[f64], x: f64) -> f64 {
    let below = block.partition_point(|b| *b < x);
    let at_or_below = block.partition_point(|b| *b <= x);
    (below as f64 + 0.5 * (at_or_below - below) as f64) / block.len() as f64
}

impl SeqMetric {
    pub(crate) fn new(cfg: &MetricConfig, alpha: f64) -> Self {
        let side = cfg.direction.sign();
        let evidence = match cfg.kind {
            // The null is on the log rate ratio itself.
            Kind::Count => {
                let s0 = cfg.threshold_ratio().ln();
                Evidence::Count {
                    fail: OddsMixture::new(s0, side),
                    pass: OddsMixture::new(s0, -side),
                    updates: Vec::new(),
                }
            }
            // The null is on the mean rank of the shifted canary samples: ½ at the boundary.
            Kind::Continuous => Evidence::Continuous {
                fail: BettingMixture::new(side),
                pass: BettingMixture::new(-side),
                ranked: Vec::new(),
                blocks: Vec::new(),
            },
        };
        SeqMetric {
            cfg: cfg.clone(),
            alpha,
            evidence,
            crossed: (None, None),
            tally: Tally::default(),
            failed_at: None,
            passed_at: None,
        }
    }

    pub(crate) fn min_samples(&self) -> u64 {
        self.cfg.min_samples()
    }

    pub(crate) fn observe(&mut self, t: f64, baseline: &GroupData, canary: &GroupData) {
        self.tally.add(&self.cfg, baseline, canary);
        let c0 = self.cfg.threshold_ratio().ln();
        let limit = (1.0 / self.alpha).ln();
        match &mut self.evidence {
            Evidence::Count {
                fail,
                pass,
                updates,
            } => {
                let total = baseline.requests + canary.requests;
                let errors = baseline.errors + canary.errors;
                if total > 0 && errors > 0 {
                    let rho = canary.requests as f64 / total as f64;
                    fail.update(rho, canary.errors, errors);
                    pass.update(rho, canary.errors, errors);
                    updates.push((rho, canary.errors, errors));
                    cross(
                        &mut self.crossed,
                        fail.e_value().ln(),
                        pass.e_value().ln(),
                        limit,
                    );
                }
            }
            Evidence::Continuous {
                fail,
                pass,
                ranked,
                blocks,
            } => {
                // Each canary sample gets its own block of the interval's baseline samples, in
                // arrival order, so that the ranks are independent.
                let (n, m) = (canary.latency_ms.len(), baseline.latency_ms.len());
                let k = m.checked_div(n).map_or(0, |k| k.max(1));
                let ln = |v: &f64| v.max(MIN_LATENCY_MS).ln();
                for (j, c) in canary.latency_ms.iter().enumerate() {
                    let Some(block) = baseline.latency_ms.get(j * k..(j + 1) * k) else {
                        break;
                    };
                    let start = blocks.len();
                    blocks.extend(block.iter().map(ln));
                    blocks[start..].sort_unstable_by(f64::total_cmp);
                    let x = ln(c);
                    let v = rank(&blocks[start..], x - c0);
                    fail.update(v);
                    pass.update(v);
                    ranked.push((x, start, k));
                    // Each sample is a bet of its own, so the e-processes are supermartingales
                    // sample by sample, and Ville's inequality bounds the chance that they ever
                    // reach 1/α at any sample, not just at an interval's end.
                    cross(
                        &mut self.crossed,
                        fail.log_e_value(),
                        pass.log_e_value(),
                        limit,
                    );
                }
            }
        }
        // A metric that passed is still tested for failure: the two e-processes are separate
        // tests, each valid on its own, and a regression shown after an early-looking pass
        // (one the run did not act on) is still a regression.
        if self.failed_at.is_none() && self.crossed.0.is_some() {
            self.failed_at = Some(t);
        }
        if self.failed_at.is_none()
            && self.passed_at.is_none()
            && self.crossed.1.is_some()
            && self.tally.canary >= self.cfg.min_samples()
        {
            self.passed_at = Some(t);
        }
    }

    fn e_values(&self) -> (f64, f64) {
        match &self.evidence {
            Evidence::Count { fail, pass, .. } => (fail.e_value(), pass.e_value()),
            Evidence::Continuous { fail, pass, .. } => (fail.e_value(), pass.e_value()),
        }
    }

    /// Estimate and confidence sequence of the canary/baseline ratio.
    fn estimate(&self) -> (Option<f64>, Bounds) {
        match &self.evidence {
            Evidence::Count { updates, .. } => {
                let (lo, hi) = rate_ratio_cs(updates, self.alpha);
                (
                    self.tally.rate_ratio(),
                    Bounds {
                        lower: Some(lo.map_or(0.0, f64::exp)),
                        upper: hi.map(f64::exp),
                    },
                )
            }
            Evidence::Continuous { ranked, blocks, .. } => {
                if ranked.is_empty() {
                    return (
                        None,
                        Bounds {
                            lower: None,
                            upper: None,
                        },
                    );
                }
                let ranks = |c: f64| {
                    ranked
                        .iter()
                        .map(move |(x, start, k)| rank(&blocks[*start..start + k], x - c))
                };
                let mean = |c: f64| ranks(c).sum::<f64>() / ranked.len() as f64;
                // The shift that centres the ranks: a Hodges-Lehmann-style estimate.
                let estimate = bisect(|c| mean(c) > 0.5);
                // One-sided bounds at 1-α each, inverting the very tests the metric fails and
                // passes on: the lower bound from bets on larger ranks (their wealth falls as
                // the candidate shift grows), the upper from the mirror.
                let limit = (1.0 / self.alpha).ln();
                let log_e = |c: f64, side: f64| {
                    let mut e = BettingMixture::new(side);
                    for v in ranks(c) {
                        e.update(v);
                    }
                    e.log_e_value()
                };
                let lower = (log_e(-SHIFT_RANGE, 1.0) >= limit)
                    .then(|| bisect(|c| log_e(c, 1.0) >= limit).exp());
                let upper = (log_e(SHIFT_RANGE, -1.0) >= limit)
                    .then(|| bisect(|c| log_e(c, -1.0) < limit).exp());
                (
                    Some(estimate.exp()),
                    Bounds {
                        lower: Some(lower.unwrap_or(0.0)),
                        upper,
                    },
                )
            }
        }
    }

    pub(crate) fn report(&self, at_end: bool) -> MetricReport {
        let mut r = MetricReport::new(&self.cfg, self.alpha, &self.tally);
        let (estimate, ci) = self.estimate();
        r.estimate = estimate;
        r.interval = (self.tally.canary > 0 && self.tally.baseline > 0).then_some(ci);
        let (e_fail, e_pass) = self.e_values();
        r.e_value = Some(e_fail.min(1e300));
        r.e_value_pass = Some(e_pass.min(1e300));
        let limit = 1.0 / self.alpha;
        let threshold = fmt_ratio(self.cfg.threshold_ratio());
        let what = r.what();
        if let Some(t) = self.failed_at {
            r.status = Status::Fail;
            r.decided_at = Some(t);
            r.reason = format!(
                "{what} ({}) is {} than {threshold} the baseline's ({}): estimated {}, e-value \
                 {} >= {}",
                fmt_value(r.kind, r.canary_value),
                r.worse(),
                fmt_value(r.kind, r.baseline_value),
                r.estimate.map_or_else(|| "-".to_string(), fmt_ratio),
                fmt_e(self.crossed.0.map_or(e_fail, f64::exp)),
                fmt_e(limit)
            );
        } else if let Some(t) = self.passed_at {
            r.status = Status::Pass;
            r.decided_at = Some(t);
            r.reason = format!(
                "the confidence sequence excludes a regression: {what} is within {threshold} the \
                 baseline's (e-value against a regression {} >= {})",
                fmt_e(self.crossed.1.map_or(e_pass, f64::exp)),
                fmt_e(limit)
            );
        } else if let Some(why) = r.lacking_data(at_end) {
            r.status = if at_end {
                Status::Inconclusive
            } else {
                Status::Pending
            };
            r.reason = why;
        } else if at_end {
            r.status = Status::Pass;
            r.reason = format!(
                "no evidence that {what} is {} than {threshold} the baseline's after {}: \
                 e-value {} < {}",
                r.worse(),
                r.seen(),
                fmt_e(e_fail),
                fmt_e(limit)
            );
        } else {
            r.status = Status::Pending;
            r.reason = format!(
                "no decision yet: e-value {} of {} needed to fail",
                fmt_e(e_fail),
                fmt_e(limit)
            );
        }
        r
    }
}

/// Records the log e-values at which the e-processes first reach `limit` (a log).
fn cross(crossed: &mut (Option<f64>, Option<f64>), fail: f64, pass: f64, limit: f64) {
    if crossed.0.is_none() && fail >= limit {
        crossed.0 = Some(fail);
    }
    if crossed.1.is_none() && pass >= limit {
        crossed.1 = Some(pass);
    }
}

/// Log shifts searched for estimates and bounds: ratios from e⁻⁸ to e⁸.
const SHIFT_RANGE: f64 = 8.0;

/// The boundary of a predicate true below some point and false above it, in ±SHIFT_RANGE.
fn bisect(below: impl Fn(f64) -> bool) -> f64 {
    let (mut lo, mut hi) = (-SHIFT_RANGE, SHIFT_RANGE);
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if below(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}
