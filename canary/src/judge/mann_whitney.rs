//! The fixed-horizon judge of one metric: Kayenta's two-sided Mann-Whitney U test with a
//! Hodges-Lehmann estimate and an effect threshold.

use super::config::{Kind, MetricConfig};
use super::report::{fmt_p, Bounds, MetricReport, Status};
use super::{fmt_ratio, GroupData, Tally};

const MIN_LATENCY_MS: f64 = 1e-3;

pub(crate) struct MwMetric {
    cfg: MetricConfig,
    alpha: f64,
    pub(crate) tally: Tally,
    /// Sorted values compared: per-interval error rates (count) or ln latency (continuous).
    canary: Vec<f64>,
    baseline: Vec<f64>,
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
            canary: Vec::new(),
            baseline: Vec::new(),
        }
    }

    pub(crate) fn observe(&mut self, baseline: &GroupData, canary: &GroupData) {
        self.tally.add(&self.cfg, baseline, canary);
        match self.cfg.kind {
            Kind::Count => {
                if canary.requests > 0 {
                    self.canary
                        .push(canary.errors as f64 / canary.requests as f64);
                }
                if baseline.requests > 0 {
                    self.baseline
                        .push(baseline.errors as f64 / baseline.requests as f64);
                }
            }
            Kind::Continuous => {
                let ln = |v: &f64| v.max(MIN_LATENCY_MS).ln();
                let sorted_ln = |v: &[f64]| {
                    let mut out: Vec<f64> = v.iter().map(ln).collect();
                    out.sort_unstable_by(f64::total_cmp);
                    out
                };
                self.canary.extend(sorted_ln(&canary.latency_ms));
                self.baseline.extend(sorted_ln(&baseline.latency_ms));
            }
        }
        // Sorted prefix + new values: the stable sort merges the runs in linear time.
        self.canary.sort_by(f64::total_cmp);
        self.baseline.sort_by(f64::total_cmp);
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

    fn test(&self) -> Option<Test> {
        let (n, m) = (self.canary.len(), self.baseline.len());
        if n == 0 || m == 0 {
            return None;
        }
        let (p, z) = mann_whitney(&self.canary, &self.baseline);
        let c = self.threshold_shift();
        let (gt, eq) = count_beyond(&self.canary, &self.baseline, c);
        let half = (n as f64) * (m as f64) / 2.0;
        let beyond = if self.cfg.direction.sign() > 0.0 {
            gt as f64 > half
        } else {
            ((n * m) as u64 - gt - eq) as f64 > half
        };
        Some(Test { p, z, beyond })
    }

    /// Whether the metric fails if the bake ended now.
    pub(crate) fn fails(&self) -> bool {
        !self.tally.lacks(self.cfg.min_samples())
            && self.test().is_some_and(|t| {
                t.p < self.alpha && t.z * self.cfg.direction.sign() > 0.0 && t.beyond
            })
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
        let test = self.test();
        r.p_value = test.as_ref().map(|t| t.p);
        if test.is_some() {
            let (est, lo, hi) = hodges_lehmann(&self.canary, &self.baseline, self.alpha);
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

/// Two-sided Mann-Whitney U test (normal approximation with tie correction) of sorted `x`
/// against sorted `y`: (p, z), z > 0 when `x` tends to be larger.
pub(crate) fn mann_whitney(x: &[f64], y: &[f64]) -> (f64, f64) {
    let (n, m) = (x.len() as f64, y.len() as f64);
    let (gt, eq) = count_beyond(x, y, 0.0);
    let u = gt as f64 + 0.5 * eq as f64;
    // Σ (t³ - t) over groups of tied values in the pooled sample.
    let mut ties = 0.0;
    let (mut i, mut j) = (0, 0);
    while i < x.len() || j < y.len() {
        let v = match (x.get(i), y.get(j)) {
            (Some(a), Some(b)) => a.min(*b),
            (Some(a), None) => *a,
            (None, Some(b)) => *b,
            (None, None) => unreachable!(),
        };
        let mut t = 0.0;
        while x.get(i) == Some(&v) {
            i += 1;
            t += 1.0;
        }
        while y.get(j) == Some(&v) {
            j += 1;
            t += 1.0;
        }
        ties += t * t * t - t;
    }
    let total = n + m;
    let var = n * m / 12.0 * ((total + 1.0) - ties / (total * (total - 1.0)).max(1.0));
    if var <= 0.0 {
        return (1.0, 0.0);
    }
    // Continuity correction of 0.5 towards the mean.
    let diff = u - n * m / 2.0;
    let z = (diff.abs() - 0.5).max(0.0).copysign(diff) / var.sqrt();
    (libm::erfc(z.abs() / std::f64::consts::SQRT_2), z)
}

/// Pairs (i, j) with `x[i] - y[j] > c`, and with `x[i] - y[j] == c`; both sorted.
pub(crate) fn count_beyond(x: &[f64], y: &[f64], c: f64) -> (u64, u64) {
    let (mut gt, mut eq) = (0u64, 0u64);
    let (mut below, mut at_or_below) = (0usize, 0usize);
    for xi in x {
        let v = xi - c;
        while below < y.len() && y[below] < v {
            below += 1;
        }
        at_or_below = at_or_below.max(below);
        while at_or_below < y.len() && y[at_or_below] <= v {
            at_or_below += 1;
        }
        gt += below as u64;
        eq += (at_or_below - below) as u64;
    }
    (gt, eq)
}

/// The k-th smallest (0-based) pairwise difference `x[i] - y[j]`, by bisection on its value.
fn kth_difference(x: &[f64], y: &[f64], k: u64) -> f64 {
    let mut lo = x[0] - y[y.len() - 1];
    let mut hi = x[x.len() - 1] - y[0];
    let total = (x.len() * y.len()) as u64;
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        // Differences <= mid.
        let (gt, _) = count_beyond(x, y, mid);
        if total - gt > k {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// Hodges-Lehmann estimate of the shift of `x` over `y`, with the (1-α) Moses confidence
/// interval (normal approximation); a bound is `None` when the samples are too small.
pub(crate) fn hodges_lehmann(x: &[f64], y: &[f64], alpha: f64) -> (f64, Option<f64>, Option<f64>) {
    let (n, m) = (x.len() as f64, y.len() as f64);
    let total = (x.len() * y.len()) as u64;
    let estimate = if total % 2 == 1 {
        kth_difference(x, y, total / 2)
    } else {
        0.5 * (kth_difference(x, y, total / 2 - 1) + kth_difference(x, y, total / 2))
    };
    let z = normal_quantile(1.0 - alpha / 2.0);
    let k = (n * m / 2.0 - z * (n * m * (n + m + 1.0) / 12.0).sqrt()).floor();
    if k < 1.0 {
        return (estimate, None, None);
    }
    let k = k as u64;
    (
        estimate,
        Some(kth_difference(x, y, k - 1)),
        Some(kth_difference(x, y, total - k)),
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

    #[test]
    fn counts_pairs_beyond_a_shift() {
        let x = [1.0, 2.0, 3.0];
        let y = [0.0, 1.0, 2.0];
        // Differences: 1,0,-1, 2,1,0, 3,2,1.
        assert_eq!(count_beyond(&x, &y, 0.0), (6, 2));
        assert_eq!(count_beyond(&x, &y, 1.0), (3, 3));
        assert_eq!(count_beyond(&x, &y, 5.0), (0, 0));
    }

    #[test]
    fn hodges_lehmann_is_the_median_pairwise_difference() {
        let x = [1.0, 2.0, 3.0];
        let y = [0.0, 1.0, 2.0];
        let (est, _, _) = hodges_lehmann(&x, &y, 0.05);
        assert!((est - 1.0).abs() < 1e-9, "{est}");
    }

    #[test]
    fn mann_whitney_matches_a_known_value() {
        // x entirely above y, n = m = 10: U = 100, z = (100 - 50 - 0.5)/sqrt(175) = 3.742.
        let x: Vec<f64> = (10..20).map(f64::from).collect();
        let y: Vec<f64> = (0..10).map(f64::from).collect();
        let (p, z) = mann_whitney(&x, &y);
        assert!((z - 3.7418).abs() < 1e-3, "z = {z}");
        assert!((p - 0.000183).abs() < 1e-5, "p = {p}");
        let (p, z) = mann_whitney(&y, &x);
        assert!(z < 0.0 && (p - 0.000183).abs() < 1e-5);
    }

    #[test]
    fn identical_constant_samples_are_not_significant() {
        let (p, z) = mann_whitney(&[0.0; 5], &[0.0; 7]);
        assert_eq!((p, z), (1.0, 0.0));
    }

    #[test]
    fn normal_quantile_inverts_the_cdf() {
        assert!((normal_quantile(0.975) - 1.959964).abs() < 1e-5);
        assert!(normal_quantile(0.5).abs() < 1e-9);
    }
}
