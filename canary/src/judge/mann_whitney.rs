//! The fixed-horizon judge of one metric: Kayenta's two-sided Mann-Whitney U test with a
//! Hodges-Lehmann estimate and an effect threshold.
//!
//! The values compared are kept as counts per quantum of a relative 0.1% ([`Quanta`]), so a
//! metric holds at most a few thousand numbers per doubling its values span, however long the
//! bake; every statistic is computed from those weighted, sorted values in time linear in
//! their number (U, ties, the pairs beyond a shift) or that times the bisection steps (the
//! Hodges-Lehmann estimate and its interval).

use std::collections::BTreeMap;

/// Values with their multiplicities, sorted.
type Weighted = Vec<(f64, u64)>;

use super::config::{Kind, MetricConfig};
use super::report::{fmt_p, Bounds, MetricReport, Status};
use super::{fmt_ratio, GroupData, Tally};

const MIN_LATENCY_MS: f64 = 1e-3;

/// Values kept as counts per quantum: the f64 with its mantissa cut to 10 bits, a relative
/// resolution of 0.1% (2⁻¹⁰). Monotone in the value, so the order of values is kept; values
/// closer than that tie. The memory is bounded by the quanta the values span (1024 per
/// doubling), not by how many values there are.
#[derive(Debug, Clone, Default)]
pub(crate) struct Quanta(BTreeMap<u64, u64>);

const CUT_BITS: u32 = 52 - 10;

impl Quanta {
    /// Adds a value >= 0.
    pub(crate) fn add(&mut self, v: f64) {
        *self.0.entry(v.max(0.0).to_bits() >> CUT_BITS).or_insert(0) += 1;
    }

    /// Distinct quanta held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// (the quantum's middle value mapped by `f`, count), sorted by value; `f` increasing.
    pub(crate) fn weighted(&self, f: impl Fn(f64) -> f64) -> Vec<(f64, u64)> {
        self.0
            .iter()
            .map(|(q, n)| {
                let mid = f64::from_bits((q << CUT_BITS) | (1 << (CUT_BITS - 1)));
                (f(mid), *n)
            })
            .collect()
    }
}

pub(crate) struct MwMetric {
    cfg: MetricConfig,
    alpha: f64,
    pub(crate) tally: Tally,
    /// Values compared: per-interval error rates (count) or latency in ms (continuous).
    canary: Quanta,
    baseline: Quanta,
}

/// The outcome of one evaluation.
struct Test {
    p: f64,
    /// z > 0 when the canary's values are larger.
    z: f64,
    /// Whether more than half of the pairwise differences lie beyond the threshold, i.e. the
    /// Hodges-Lehmann estimate is beyond it.
    beyond: bool,
}

impl MwMetric {
    pub(crate) fn new(cfg: &MetricConfig, alpha: f64) -> Self {
        MwMetric {
            cfg: cfg.clone(),
            alpha,
            tally: Tally::default(),
            canary: Quanta::default(),
            baseline: Quanta::default(),
        }
    }

    pub(crate) fn observe(&mut self, baseline: &GroupData, canary: &GroupData) {
        self.tally.add(&self.cfg, baseline, canary);
        match self.cfg.kind {
            Kind::Count => {
                if canary.requests > 0 {
                    self.canary
                        .add(canary.errors as f64 / canary.requests as f64);
                }
                if baseline.requests > 0 {
                    self.baseline
                        .add(baseline.errors as f64 / baseline.requests as f64);
                }
            }
            Kind::Continuous => {
                for v in &canary.latency_ms {
                    self.canary.add(v.max(MIN_LATENCY_MS));
                }
                for v in &baseline.latency_ms {
                    self.baseline.add(v.max(MIN_LATENCY_MS));
                }
            }
        }
    }

    /// Distinct values held (both groups): what the metric's memory grows with.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.canary.len() + self.baseline.len()
    }

    /// The compared values, sorted: rates (count) or ln latency (continuous).
    fn values(&self) -> (Weighted, Weighted) {
        let f = match self.cfg.kind {
            Kind::Count => |v: f64| v,
            Kind::Continuous => f64::ln,
        };
        (self.canary.weighted(f), self.baseline.weighted(f))
    }

    /// The shift (difference canary - baseline) at which a regression begins.
    fn threshold_shift(&self) -> f64 {
        match self.cfg.kind {
            // Rates: the tolerated excess over the baseline's pooled rate.
            Kind::Count => {
                self.cfg.direction.sign()
                    * self.cfg.tolerance()
                    * self.tally.baseline_value(Kind::Count).unwrap_or(0.0)
            }
            Kind::Continuous => self.cfg.threshold_ratio().ln(),
        }
    }

    fn test(&self, x: &[(f64, u64)], y: &[(f64, u64)]) -> Option<Test> {
        if x.is_empty() || y.is_empty() {
            return None;
        }
        let (p, z) = mann_whitney(x, y);
        let c = self.threshold_shift();
        let (gt, eq) = count_beyond(x, y, c);
        let pairs = total(x) * total(y);
        let beyond = if self.cfg.direction.sign() > 0.0 {
            2 * gt > pairs
        } else {
            2 * (pairs - gt - eq) > pairs
        };
        Some(Test { p, z, beyond })
    }

    /// Whether the metric fails if the bake ended now.
    pub(crate) fn fails(&self) -> bool {
        if self.tally.lacks(self.cfg.min_samples()) {
            return false;
        }
        let (x, y) = self.values();
        self.test(&x, &y)
            .is_some_and(|t| t.p < self.alpha && t.z * self.cfg.direction.sign() > 0.0 && t.beyond)
    }

    pub(crate) fn min_samples(&self) -> u64 {
        self.cfg.min_samples()
    }

    /// A shift of the compared values as a canary/baseline ratio.
    fn to_ratio(&self, shift: f64) -> Option<f64> {
        match self.cfg.kind {
            Kind::Count => {
                let base = self.tally.baseline_value(Kind::Count).unwrap_or(0.0);
                (base > 0.0).then(|| (1.0 + shift / base).max(0.0))
            }
            Kind::Continuous => Some(shift.exp()),
        }
    }

    pub(crate) fn report(&self, at_end: bool) -> MetricReport {
        let mut r = MetricReport::new(&self.cfg, self.alpha, &self.tally);
        let (x, y) = self.values();
        let test = self.test(&x, &y);
        r.p_value = test.as_ref().map(|t| t.p);
        if test.is_some() {
            let (est, lo, hi) = hodges_lehmann(&x, &y, self.alpha);
            r.estimate = self.to_ratio(est);
            r.interval = Some(Bounds {
                lower: lo.and_then(|v| self.to_ratio(v)),
                upper: hi.and_then(|v| self.to_ratio(v)),
            });
        }
        let threshold = fmt_ratio(self.cfg.threshold_ratio());
        let what = r.what();
        if let Some(why) = r.lacking_data(at_end) {
            r.status = if at_end {
                Status::Inconclusive
            } else {
                Status::Pending
            };
            r.reason = why;
            return r;
        }
        if !at_end {
            r.status = Status::Pending;
            r.reason = "a fixed-horizon test decides at the bake end".to_string();
            return r;
        }
        let t = test.expect("data checked above");
        let significant = t.p < self.alpha && t.z * self.cfg.direction.sign() > 0.0;
        let estimate = fmt_ratio_opt(r.estimate);
        let bounds = r
            .bounds_words()
            .map(|b| format!(", {b}"))
            .unwrap_or_default();
        (r.status, r.reason) = match (significant, t.beyond) {
            (true, true) => (
                Status::Fail,
                format!(
                    "{what} is {} the baseline's: estimated {estimate}{bounds}, a significant \
                     difference (p = {} < {})",
                    r.beyond(),
                    fmt_p(t.p),
                    self.alpha
                ),
            ),
            (true, false) => (
                Status::Pass,
                format!(
                    "{what} differs significantly (p = {}) but its estimate {estimate}{bounds} is \
                     within the tolerated {threshold}",
                    fmt_p(t.p)
                ),
            ),
            (false, _) => (
                Status::Pass,
                format!(
                    "no significant difference in {what} (p = {} >= {}): estimated \
                     {estimate}{bounds}",
                    fmt_p(t.p),
                    self.alpha
                ),
            ),
        };
        r
    }
}

fn fmt_ratio_opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), fmt_ratio)
}

fn total(x: &[(f64, u64)]) -> u128 {
    x.iter().map(|(_, w)| *w as u128).sum()
}

/// Two-sided Mann-Whitney U test (normal approximation with tie correction) of sorted,
/// weighted `x` against sorted, weighted `y`: (p, z), z > 0 when `x` tends to be larger.
pub(crate) fn mann_whitney(x: &[(f64, u64)], y: &[(f64, u64)]) -> (f64, f64) {
    let (n, m) = (total(x) as f64, total(y) as f64);
    let (gt, eq) = count_beyond(x, y, 0.0);
    let u = gt as f64 + 0.5 * eq as f64;
    // Σ (t³ - t) over groups of tied values in the pooled sample.
    let mut ties = 0.0;
    let (mut i, mut j) = (0, 0);
    while i < x.len() || j < y.len() {
        let v = match (x.get(i), y.get(j)) {
            (Some(a), Some(b)) => a.0.min(b.0),
            (Some(a), None) => a.0,
            (None, Some(b)) => b.0,
            (None, None) => unreachable!(),
        };
        let mut t = 0.0;
        while let Some((_, w)) = x.get(i).filter(|a| a.0 == v) {
            i += 1;
            t += *w as f64;
        }
        while let Some((_, w)) = y.get(j).filter(|b| b.0 == v) {
            j += 1;
            t += *w as f64;
        }
        ties += t * t * t - t;
    }
    let all = n + m;
    let var = n * m / 12.0 * ((all + 1.0) - ties / (all * (all - 1.0)).max(1.0));
    if var <= 0.0 {
        return (1.0, 0.0);
    }
    // Continuity correction of 0.5 towards the mean.
    let diff = u - n * m / 2.0;
    let z = (diff.abs() - 0.5).max(0.0).copysign(diff) / var.sqrt();
    (libm::erfc(z.abs() / std::f64::consts::SQRT_2), z)
}

/// Pairs (i, j), counted with their weights, with `x[i] - y[j] > c`, and with
/// `x[i] - y[j] == c`; both sorted.
pub(crate) fn count_beyond(x: &[(f64, u64)], y: &[(f64, u64)], c: f64) -> (u128, u128) {
    let (mut gt, mut eq) = (0u128, 0u128);
    // Weights of y below, and at or below, the current x - c.
    let (mut below, mut at_or_below) = (0usize, 0usize);
    let (mut w_below, mut w_at_or_below) = (0u128, 0u128);
    for (xi, wx) in x {
        let v = xi - c;
        while below < y.len() && y[below].0 < v {
            w_below += y[below].1 as u128;
            below += 1;
        }
        if at_or_below < below {
            (at_or_below, w_at_or_below) = (below, w_below);
        }
        while at_or_below < y.len() && y[at_or_below].0 <= v {
            w_at_or_below += y[at_or_below].1 as u128;
            at_or_below += 1;
        }
        gt += *wx as u128 * w_below;
        eq += *wx as u128 * (w_at_or_below - w_below);
    }
    (gt, eq)
}

/// The k-th smallest (0-based) pairwise difference `x[i] - y[j]`, by bisection on its value.
fn kth_difference(x: &[(f64, u64)], y: &[(f64, u64)], k: u128) -> f64 {
    let mut lo = x[0].0 - y[y.len() - 1].0;
    let mut hi = x[x.len() - 1].0 - y[0].0;
    let pairs = total(x) * total(y);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        // Differences <= mid.
        let (gt, _) = count_beyond(x, y, mid);
        if pairs - gt > k {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// Hodges-Lehmann estimate of the shift of `x` over `y`, with the (1-α) Moses confidence
/// interval (normal approximation); a bound is `None` when the samples are too small.
pub(crate) fn hodges_lehmann(
    x: &[(f64, u64)],
    y: &[(f64, u64)],
    alpha: f64,
) -> (f64, Option<f64>, Option<f64>) {
    let (n, m) = (total(x) as f64, total(y) as f64);
    let pairs = total(x) * total(y);
    let estimate = if pairs % 2 == 1 {
        kth_difference(x, y, pairs / 2)
    } else {
        0.5 * (kth_difference(x, y, pairs / 2 - 1) + kth_difference(x, y, pairs / 2))
    };
    let z = normal_quantile(1.0 - alpha / 2.0);
    let k = (n * m / 2.0 - z * (n * m * (n + m + 1.0) / 12.0).sqrt()).floor();
    if k < 1.0 {
        return (estimate, None, None);
    }
    let k = k as u128;
    (
        estimate,
        Some(kth_difference(x, y, k - 1)),
        Some(kth_difference(x, y, pairs - k)),
    )
}

/// Φ⁻¹(p) by bisection on the normal tail.
pub(crate) fn normal_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (-40.0_f64, 40.0_f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        let cdf = 0.5 * libm::erfc(-mid / std::f64::consts::SQRT_2);
        if cdf < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each value once.
    fn once(v: &[f64]) -> Vec<(f64, u64)> {
        v.iter().map(|v| (*v, 1)).collect()
    }

    #[test]
    fn counts_pairs_beyond_a_shift() {
        let x = once(&[1.0, 2.0, 3.0]);
        let y = once(&[0.0, 1.0, 2.0]);
        // Differences: 1,0,-1, 2,1,0, 3,2,1.
        assert_eq!(count_beyond(&x, &y, 0.0), (6, 2));
        assert_eq!(count_beyond(&x, &y, 1.0), (3, 3));
        assert_eq!(count_beyond(&x, &y, 5.0), (0, 0));
        // Weights count as repeated values.
        let x2 = [(1.0, 2), (3.0, 1)];
        assert_eq!(
            count_beyond(&x2, &y, 0.0),
            count_beyond(&once(&[1.0, 1.0, 3.0]), &y, 0.0)
        );
    }

    #[test]
    fn hodges_lehmann_is_the_median_pairwise_difference() {
        let x = once(&[1.0, 2.0, 3.0]);
        let y = once(&[0.0, 1.0, 2.0]);
        let (est, _, _) = hodges_lehmann(&x, &y, 0.05);
        assert!((est - 1.0).abs() < 1e-9, "{est}");
    }

    #[test]
    fn mann_whitney_matches_a_known_value() {
        // x entirely above y, n = m = 10: U = 100, z = (100 - 50 - 0.5)/sqrt(175) = 3.742.
        let x: Vec<f64> = (10..20).map(f64::from).collect();
        let y: Vec<f64> = (0..10).map(f64::from).collect();
        let (p, z) = mann_whitney(&once(&x), &once(&y));
        assert!((z - 3.7418).abs() < 1e-3, "z = {z}");
        assert!((p - 0.000183).abs() < 1e-5, "p = {p}");
        let (p, z) = mann_whitney(&once(&y), &once(&x));
        assert!(z < 0.0 && (p - 0.000183).abs() < 1e-5);
    }

    #[test]
    fn identical_constant_samples_are_not_significant() {
        let (p, z) = mann_whitney(&[(0.0, 5)], &[(0.0, 7)]);
        assert_eq!((p, z), (1.0, 0.0));
    }

    #[test]
    fn normal_quantile_inverts_the_cdf() {
        assert!((normal_quantile(0.975) - 1.959964).abs() < 1e-5);
        assert!(normal_quantile(0.5).abs() < 1e-9);
    }

    #[test]
    fn quanta_keep_the_order_within_a_relative_tenth_of_a_percent() {
        let mut q = Quanta::default();
        for v in [100.0, 100.05, 100.3, 0.0, 2.5e6, 100.01] {
            q.add(v);
        }
        let w = q.weighted(|v| v);
        // 100, 100.01 and 100.05 share a quantum; 100.3 does not.
        assert_eq!(w.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [1, 3, 1, 1]);
        assert!(w.windows(2).all(|p| p[0].0 < p[1].0));
        assert!(w.iter().all(|(v, _)| *v == 0.0 || (0.0..3e6).contains(v)));
        assert!((w[1].0 / 100.0 - 1.0).abs() < 1e-3, "{}", w[1].0);
    }

    #[test]
    fn a_metric_holds_quanta_not_values() {
        use super::super::config::{default_metrics, Direction};
        let cfg = default_metrics()
            .into_iter()
            .find(|m| m.kind == Kind::Continuous)
            .unwrap();
        assert_eq!(cfg.direction, Direction::IncreaseIsBad);
        let mut m = MwMetric::new(&cfg, 0.025);
        // A million samples between 50 and 200 ms: two doublings, at most ~2k quanta.
        for i in 0..1000 {
            let group = |k: u64| GroupData {
                requests: 1000,
                errors: 0,
                latency_ms: (0..1000)
                    .map(|j| 50.0 * 4f64.powf(((i * 1000 + j) * k % 999_983) as f64 / 999_983.0))
                    .collect(),
            };
            m.observe(&group(7), &group(13));
        }
        assert!(m.held() <= 2 * 2 * 1025, "{} quanta held", m.held());
        assert_eq!(m.tally.canary, 1_000_000);
    }
}
