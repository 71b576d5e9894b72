//! The sequential (anytime-valid) test of one metric.

use super::config::{Kind, MetricConfig};
use super::eprocess::{BettingMixture, OddsMixture, RateBounds};
use super::grid::{Pending, ShiftGrid};
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
        /// What the bounds need of each interval's (traffic share of the canary, canary
        /// errors, errors).
        bounds: RateBounds,
    },
    Continuous {
        fail: BettingMixture,
        pass: BettingMixture,
        /// Intervals with latency seen so far: the seed of their tie-break keys.
        intervals: u64,
        /// Intervals not yet folded into `grid`: each one's sorted baseline ln latencies and
        /// its canary samples as ranked; at most [`HELD_SAMPLES`] samples.
        held: Vec<(Vec<f64>, Vec<Pending>)>,
        held_samples: usize,
        /// The tallies the estimate and the bounds are computed from.
        grid: ShiftGrid,
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
                    bounds: RateBounds::default(),
                }
            }
            // The null is on the mean rank of the shifted canary samples: ½ at the boundary.
            Kind::Continuous => Evidence::Continuous {
                fail: BettingMixture::new(side),
                pass: BettingMixture::new(-side),
                intervals: 0,
                held: Vec::new(),
                held_samples: 0,
                grid: ShiftGrid::default(),
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
            Evidence::Count { fail, pass, bounds } => {
                let total = baseline.requests + canary.requests;
                let errors = baseline.errors + canary.errors;
                if total > 0 && errors > 0 {
                    let rho = canary.requests as f64 / total as f64;
                    fail.update(rho, canary.errors, errors);
                    pass.update(rho, canary.errors, errors);
                    bounds.push(rho, canary.errors, errors);
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
                intervals,
                held,
                held_samples,
                grid,
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
                let mut base: Vec<(f64, u64)> = baseline
                    .latency_ms
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (ln(v), key(interval, 0, i)))
                    .collect();
                base.sort_unstable_by(lex_cmp);
                let samples: Vec<(f64, u64)> = canary_order(interval, canary.latency_ms.len())
                    .into_iter()
                    .map(|i| (ln(&canary.latency_ms[i]), key(interval, 1, i)))
                    .collect();
                let (ranks, pending) = sequential_ranks(&base, &samples, c0);
                for v in ranks {
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
                *held_samples += base.len() + pending.len();
                held.push((base.into_iter().map(|b| b.0).collect(), pending));
                if *held_samples > HELD_SAMPLES {
                    for (b, p) in held.drain(..) {
                        grid.fold(&b, &p, c0);
                    }
                    *held_samples = 0;
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
            Evidence::Count { bounds, .. } => {
                let (lo, hi) = bounds.bounds(self.alpha);
                (
                    self.tally.rate_ratio(),
                    Bounds {
                        lower: Some(lo.map_or(0.0, f64::exp)),
                        upper: hi.map(f64::exp),
                    },
                )
            }
            Evidence::Continuous {
                fail,
                pass,
                held,
                grid,
                ..
            } => {
                let c0 = self.cfg.threshold_ratio().ln();
                let mut grid = grid.clone();
                for (b, p) in held {
                    grid.fold(b, p, c0);
                }
                let Some((estimate, lower, upper)) = grid.estimate(c0, self.alpha) else {
                    return (
                        None,
                        Bounds {
                            lower: None,
                            upper: None,
                        },
                    );
                };
                // At the threshold itself the metric's own e-processes are exact: the one
                // betting on high ranks refutes shifts up to c0 when it holds 1/α, the one
                // betting on low ranks those from c0 up.
                let limit = (1.0 / self.alpha).ln();
                let (up, down) = match self.cfg.direction.sign() > 0.0 {
                    true => (fail, pass),
                    false => (pass, fail),
                };
                let lower = match lower {
                    Some(l) if up.log_e_value() >= limit => Some(l.max(c0)),
                    None if up.log_e_value() >= limit => Some(c0),
                    other => other,
                };
                let upper = match upper {
                    Some(u) if down.log_e_value() >= limit => Some(u.min(c0)),
                    None if down.log_e_value() >= limit => Some(c0),
                    other => other,
                };
                (
                    Some(estimate.exp()),
                    Bounds {
                        lower: Some(lower.map_or(0.0, f64::exp)),
                        upper: upper.map(f64::exp),
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

/// Samples (baseline and canary) held before they are folded into the grid: folding costs
/// a pass over the grid per canary sample, which short bakes never pay.
const HELD_SAMPLES: usize = 1 << 20;

/// The sequential ranks of an interval's canary samples, in the order they are ranked, each
/// scaled down by `e^c0`, among the interval's sorted baseline samples and the canary samples
/// ranked before it; and what the grid needs to rank them at other shifts. O(n log n): a
/// binary search in the baseline, and a Fenwick tree over the canary samples' order by value.
fn sequential_ranks(
    baseline: &[(f64, u64)],
    canary: &[(f64, u64)],
    c0: f64,
) -> (Vec<f64>, Vec<Pending>) {
    let mut by_value: Vec<usize> = (0..canary.len()).collect();
    by_value.sort_unstable_by(|a, b| lex_cmp(&canary[*a], &canary[*b]));
    let mut position = vec![0; canary.len()];
    for (p, i) in by_value.into_iter().enumerate() {
        position[i] = p;
    }
    // ranked[p]: the Fenwick tree of the positions of the canary samples ranked so far.
    let mut ranked = vec![0usize; canary.len() + 1];
    let mut ranks = Vec::with_capacity(canary.len());
    let mut pending = Vec::with_capacity(canary.len());
    for (j, &(x, key)) in canary.iter().enumerate() {
        let mut canary_below = 0;
        let mut p = position[j];
        while p > 0 {
            canary_below += ranked[p];
            p &= p - 1;
        }
        let mut p = position[j] + 1;
        while p < ranked.len() {
            ranked[p] += 1;
            p += p & p.wrapping_neg();
        }
        let below = baseline.partition_point(|b| lex_less(*b, (x - c0, key)));
        ranks.push((below + canary_below) as f64 / (baseline.len() + j) as f64);
        pending.push(Pending {
            x,
            canary_before: j,
            canary_below,
        });
    }
    (ranks, pending)
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
        // Tolerance 0.1: a canary sample of 110 ms sits at 100 ms among the baseline's.
        let c0 = 1.1f64.ln();
        let baseline = [(50f64.ln(), 1), (150f64.ln(), 2)];
        let canary = [(110f64.ln(), 3), (220f64.ln(), 4)];
        let (ranks, pending) = sequential_ranks(&baseline, &canary, c0);
        // The first ranked has only the baseline before it; the second also the first.
        assert_eq!(ranks, [0.5, 1.0]); // 100 within (50, 150); then 200 above 50, 150, 100
        assert_eq!(
            pending
                .iter()
                .map(|p| (p.canary_before, p.canary_below))
                .collect::<Vec<_>>(),
            [(0, 0), (1, 1)]
        );
        let (ranks, _) = sequential_ranks(&baseline, &[canary[1], canary[0]], c0);
        assert_eq!(ranks, [1.0, 1.0 / 3.0]); // 200 above both; then 100 above 50 only
    }

    #[test]
    fn a_long_bake_holds_a_bounded_number_of_samples() {
        let mut m = SeqMetric::new(&latency(), 0.05);
        let baseline: Vec<f64> = (0..1900).map(|i| 90.0 + (i % 21) as f64).collect();
        let canary: Vec<f64> = (0..100).map(|i| 91.0 + (i % 19) as f64).collect();
        let mut most = 0;
        for t in 0..1200 {
            m.observe(t as f64, &group(baseline.clone()), &group(canary.clone()));
            let Evidence::Continuous { held_samples, .. } = &m.evidence else {
                unreachable!()
            };
            most = most.max(*held_samples);
        }
        assert!(most <= HELD_SAMPLES, "{most} samples held");
        assert_eq!(m.tally.canary, 120_000);
        // Folded and held samples alike reach the report: within 1.10x, by a wide margin.
        let r = m.report(true);
        let b = r.interval.unwrap();
        assert!(b.upper.unwrap() < 1.1, "{b:?}");
        assert!((r.estimate.unwrap() - 1.0).abs() < 0.02, "{:?}", r.estimate);
    }

    #[test]
    fn the_grid_bounds_hold_the_exact_ones() {
        // Bounds from the folded grid are never narrower than the exact test's: the lower
        // bound of a clearly slower canary stays below its true ratio and above the tolerance.
        let mut m = SeqMetric::new(&latency(), 0.05);
        let baseline: Vec<f64> = (0..190).map(|i| 100.0 * (0.005 * i as f64).exp()).collect();
        let canary: Vec<f64> = (0..10).map(|i| 130.0 * (0.095 * i as f64).exp()).collect();
        for t in 0..20 {
            m.observe(t as f64, &group(baseline.clone()), &group(canary.clone()));
        }
        let r = m.report(false);
        let b = r.interval.unwrap();
        assert!(r.status == Status::Fail, "{:?}", r.status);
        let (lo, hi) = (b.lower.unwrap(), b.upper.unwrap());
        assert!(lo > 1.1 && lo < 1.3 && hi > 1.3, "{lo} .. {hi}");
    }
}
