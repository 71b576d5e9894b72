//! The sequential (anytime-valid) test of one metric.

use super::config::{Kind, MetricConfig};
use super::eprocess::{rate_ratio_cs, BettingMixture, OddsMixture};
use super::report::{Bounds, MetricReport, Status};
use super::{fmt_ratio, GroupData, Tally};

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
        /// Each canary sample judged, in the order it was ranked.
        ranked: Vec<Ranked>,
        /// Each interval's baseline samples as (ln latency, tie-break key), sorted; a ranked
        /// sample's `baseline` range points into it.
        baselines: Vec<(f64, u64)>,
        /// Intervals with latency seen so far: the seed of their tie-break keys.
        intervals: u64,
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

/// One canary latency sample as the sequential rank test saw it.
struct Ranked {
    /// ln latency and tie-break key.
    x: f64,
    key: u64,
    /// Its interval's sorted baseline samples in `baselines`.
    baseline: std::ops::Range<usize>,
    /// The interval's canary samples ranked before it, and how many of them are below it
    /// (all canary samples are shifted alike, so this does not depend on the shift tried).
    canary_before: usize,
    canary_below: usize,
}

impl Ranked {
    /// The sequential rank of the sample scaled down by `e^c`, in [0, 1]: the share of the
    /// samples before it (its interval's baseline, then the canary samples ranked earlier)
    /// that are below it.
    fn rank(&self, baselines: &[(f64, u64)], c: f64) -> f64 {
        let block = &baselines[self.baseline.clone()];
        let y = (self.x - c, self.key);
        let below = block.partition_point(|b| lex_less(*b, y));
        (below + self.canary_below) as f64 / (block.len() + self.canary_before) as f64
    }
}

/// Samples ordered by value, ties by their keys (pseudo-random, so ties break at random).
fn lex_cmp(a: &(f64, u64), b: &(f64, u64)) -> std::cmp::Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

fn lex_less(a: (f64, u64), b: (f64, u64)) -> bool {
    lex_cmp(&a, &b).is_lt()
}

/// The pseudo-random key of sample `i` of a group (0 baseline, 1 canary; 2 orders the canary's
/// samples) in the `interval`-th interval with latency.
fn key(interval: u64, group: u64, i: usize) -> u64 {
    mix(mix(interval ^ 0x6761_7465_6b65_6570) ^ mix((group << 32) ^ i as u64))
}

/// The order in which the `interval`-th interval's `n` canary samples are ranked.
fn canary_order(interval: u64, n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by_key(|i| key(interval, 2, *i));
    order
}

/// SplitMix64: the tie-break keys and the canary's shuffle, a fixed stream so that a replay
/// decides the same way every time.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
                baselines: Vec::new(),
                intervals: 0,
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
                baselines,
                intervals,
            } => {
                if baseline.latency_ms.is_empty() || canary.latency_ms.is_empty() {
                    return self.settle(t);
                }
                // Sequential ranks (Rényi): the interval's baseline samples come first, then
                // the canary's in a pseudo-random order, and each canary sample is ranked among
                // all the samples before it. If the shifted canary samples and the baseline's
                // are exchangeable, these ranks are independent and uniform, whatever order
                // the samples came in and however the load moved within the interval.
                let ln = |v: &f64| v.max(MIN_LATENCY_MS).ln();
                let interval = *intervals;
                *intervals += 1;
                let key = |group: u64, i: usize| key(interval, group, i);
                let start = baselines.len();
                baselines.extend(
                    baseline
                        .latency_ms
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (ln(v), key(0, i))),
                );
                baselines[start..].sort_unstable_by(lex_cmp);
                let range = start..baselines.len();
                // The canary samples ranked so far in this interval, sorted.
                let mut earlier: Vec<(f64, u64)> = Vec::with_capacity(canary.latency_ms.len());
                for i in canary_order(interval, canary.latency_ms.len()) {
                    let (x, k) = (ln(&canary.latency_ms[i]), key(1, i));
                    let at = earlier.partition_point(|e| lex_less(*e, (x, k)));
                    let sample = Ranked {
                        x,
                        key: k,
                        baseline: range.clone(),
                        canary_before: earlier.len(),
                        canary_below: at,
                    };
                    earlier.insert(at, (x, k));
                    let v = sample.rank(baselines, c0);
                    ranked.push(sample);
                    fail.update(v);
                    pass.update(v);
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
        self.settle(t);
    }

    /// Records the first decision each e-process reached, at interval `t`.
    fn settle(&mut self, t: f64) {
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
            Evidence::Continuous {
                ranked, baselines, ..
            } => {
                if ranked.is_empty() {
                    return (
                        None,
                        Bounds {
                            lower: None,
                            upper: None,
                        },
                    );
                }
                let ranks = |c: f64| ranked.iter().map(move |r| r.rank(baselines, c));
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
        let what = r.what();
        let estimate = r.estimate.map(fmt_ratio);
        let estimated = estimate
            .as_ref()
            .map(|e| format!("estimated {e}"))
            .unwrap_or_else(|| "no estimate".to_string());
        if let Some(t) = self.failed_at {
            r.status = Status::Fail;
            r.decided_at = Some(t);
            r.decided_e_value = self.crossed.0.map(f64::exp);
            // The bound that clears the tolerance, when the final evidence still shows it.
            let clear = r
                .interval
                .and_then(|b| match self.cfg.direction.sign() > 0.0 {
                    true => b
                        .lower
                        .filter(|l| *l > r.threshold)
                        .map(|l| format!(", at least {}", fmt_ratio(l))),
                    false => b
                        .upper
                        .filter(|u| *u < r.threshold)
                        .map(|u| format!(", at most {}", fmt_ratio(u))),
                });
            r.reason = format!(
                "{what} is {} the baseline's ({estimated}{})",
                r.beyond(),
                clear.unwrap_or_default()
            );
        } else if let Some(t) = self.passed_at {
            r.status = Status::Pass;
            r.decided_at = Some(t);
            r.decided_e_value = self.crossed.1.map(f64::exp);
            r.reason = format!(
                "{what} is {} the baseline's ({estimated}; rules out {})",
                r.within(),
                r.rules_out().unwrap_or_else(|| r.beyond())
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
            let rules_out = r
                .rules_out()
                .map(|b| format!("; rules out {b}"))
                .unwrap_or_default();
            r.reason = format!(
                "no evidence that {what} is {} the baseline's after {} ({estimated}{rules_out})",
                r.beyond(),
                r.seen(),
            );
        } else {
            r.status = Status::Pending;
            r.reason = format!("no decision yet after {} ({estimated})", r.seen());
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

#[cfg(test)]
mod tests {
    use super::super::config::Direction;
    use super::*;

    fn latency() -> MetricConfig {
        MetricConfig {
            name: "latency".into(),
            kind: Kind::Continuous,
            direction: Direction::IncreaseIsBad,
            tolerance: Some(0.1),
            critical: true,
            min_samples: Some(50),
        }
    }

    fn group(latency_ms: Vec<f64>) -> GroupData {
        GroupData {
            requests: latency_ms.len() as u64,
            errors: 0,
            latency_ms,
        }
    }

    /// 100 canary samples against 1900 baseline ones near 100 ms: the `n` ranked first at
    /// `first`, the others at `rest`.
    fn split_interval(n: usize, first: f64, rest: f64) -> SeqMetric {
        let order = canary_order(0, 100);
        let mut canary = vec![rest; 100];
        for (j, i) in order[..n].iter().enumerate() {
            canary[*i] = first + (j % 3) as f64;
        }
        let baseline = (0..1900).map(|i| 90.0 + (i % 21) as f64).collect();
        let mut m = SeqMetric::new(&latency(), 0.05);
        m.observe(60.0, &group(baseline), &group(canary));
        m
    }

    #[test]
    fn latency_evidence_reached_within_an_interval_fails_it() {
        // By the interval's end the bets have lost again, but after the 30th sample ranked the
        // evidence was overwhelming.
        let m = split_interval(30, 1000.0, 1.0);
        assert_eq!(m.failed_at, Some(60.0));
        let (e_fail, _) = m.e_values();
        assert!(
            e_fail < 1.0,
            "the e-value at the end has fallen back: {e_fail}"
        );
        let r = m.report(false);
        assert!(r.reason.contains("more than 1.10x"), "{}", r.reason);
        // The evidence reported is the evidence that decided, not where it ended.
        assert!(
            r.decided_e_value.unwrap() >= 20.0,
            "{:?}",
            r.decided_e_value
        );
        // The same samples the other way round: the evidence against a regression comes
        // first, and the slow samples after it never get there.
        let m = split_interval(70, 1.0, 1000.0);
        assert_eq!((m.failed_at, m.passed_at), (None, Some(60.0)));
    }

    #[test]
    fn canary_samples_are_ranked_in_a_fixed_shuffled_order() {
        let order = canary_order(3, 50);
        assert_eq!(order, canary_order(3, 50), "a replay ranks the same way");
        assert_ne!(
            order,
            canary_order(4, 50),
            "each interval has its own order"
        );
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_ne!(order, sorted);
    }

    #[test]
    fn sequential_ranks_count_the_baseline_and_the_canary_ranked_before() {
        let mut m = SeqMetric::new(&latency(), 0.05);
        // Tolerance 0.1: a canary sample of 110 ms sits at 100 ms among the baseline's.
        m.observe(60.0, &group(vec![50.0, 150.0]), &group(vec![110.0, 220.0]));
        let Evidence::Continuous {
            ranked, baselines, ..
        } = &m.evidence
        else {
            unreachable!()
        };
        let first = canary_order(0, 2)[0];
        let c0 = m.cfg.threshold_ratio().ln();
        let ranks: Vec<f64> = ranked.iter().map(|r| r.rank(baselines, c0)).collect();
        // The first ranked has only the baseline before it; the second also the first.
        let expected = if first == 0 {
            [0.5, 1.0] // 100 within (50, 150); then 200 above 50, 150 and 100
        } else {
            [1.0, 1.0 / 3.0] // 200 above both; then 100 above 50 only
        };
        assert_eq!(ranks, expected);
    }
}
