//! The e-process both sequential tests share: a mixture of conditional binomial likelihood
//! ratios on a log rate ratio (see the module docs of [`crate::judge`]).
//!
//! Each update brings `n` events of which `x` fell to the canary, each independently with
//! probability `θ(s) = ρ·eˢ / (ρ·eˢ + 1 - ρ)`, where `ρ` is known when the update is made and
//! `s` is the unknown log rate ratio. Against the null `s ≤ s0` (or `s ≥ s0`) the mixture over
//! alternatives `s0 + δ` on one side of `s0` is a nonnegative supermartingale for every
//! member of the null, so Ville's inequality bounds the chance that it ever reaches `1/α`.

/// Spacing of the mixture's alternatives (log-ratio offsets beyond the null boundary); a
/// multiple of [`GRID_STEP`] so that confidence sequences can reuse a precomputed grid.
const OFFSET_STEP: f64 = 0.05;
/// Alternatives from one step to this far beyond the boundary (a ratio of e³ ≈ 20 times the
/// tolerated one).
const MAX_OFFSET: f64 = 3.0;
/// Scale of the half-normal mixing distribution over the offsets. Regressions a canary exists
/// to catch sit from just beyond the tolerance to a few times it (a 2x error rate against a
/// tolerated 1.2x is an offset of 0.51): most of the prior mass lies there, so the evidence
/// against the boundary is spent on them rather than on offsets a canary never needs (larger
/// regressions still fail quickly: their likelihood ratio grows far faster than their weight
/// falls).
const MIXING_SCALE: f64 = 0.5;
const GRID_STEP: f64 = 0.01;

/// The mixture's (offset, log weight) pairs, weights summing to one.
pub(crate) fn offsets() -> &'static [(f64, f64)] {
    static MIXTURE: std::sync::OnceLock<Vec<(f64, f64)>> = std::sync::OnceLock::new();
    MIXTURE.get_or_init(|| {
        let steps = (MAX_OFFSET / OFFSET_STEP).round() as i64;
        let deltas: Vec<f64> = (1..=steps).map(|k| k as f64 * OFFSET_STEP).collect();
        let log_w: Vec<f64> = deltas
            .iter()
            .map(|d| -0.5 * (d / MIXING_SCALE).powi(2))
            .collect();
        let total = log_sum_exp(log_w.iter().copied());
        deltas
            .into_iter()
            .zip(log_w)
            .map(|(d, w)| (d, w - total))
            .collect()
    })
}

/// `ln(ρ·eˢ + 1 - ρ)`, the log normaliser of `θ(s)`.
fn log_norm(rho: f64, s: f64) -> f64 {
    (rho * s.exp_m1()).ln_1p()
}

/// A one-sided mixture e-process against `H0: side·(s - s0) ≤ 0`.
#[derive(Debug, Clone)]
pub(crate) struct OddsMixture {
    s0: f64,
    alts: Vec<f64>,
    log_w: Vec<f64>,
    log_lr: Vec<f64>,
}

impl OddsMixture {
    /// `side` = +1: evidence that `s > s0`; -1: that `s < s0`.
    pub(crate) fn new(s0: f64, side: f64) -> Self {
        let alts: Vec<f64> = offsets().iter().map(|(d, _)| s0 + side * d).collect();
        let log_w = offsets().iter().map(|(_, w)| *w).collect();
        let log_lr = vec![0.0; alts.len()];
        OddsMixture {
            s0,
            alts,
            log_w,
            log_lr,
        }
    }

    pub(crate) fn update(&mut self, rho: f64, x: u64, n: u64) {
        if n == 0 || rho <= 0.0 || rho >= 1.0 {
            return;
        }
        let (x, n) = (x as f64, n as f64);
        let base = log_norm(rho, self.s0);
        for (lr, s) in self.log_lr.iter_mut().zip(&self.alts) {
            *lr += x * (s - self.s0) - n * (log_norm(rho, *s) - base);
        }
    }

    /// The e-value: the prior-weighted mean likelihood ratio.
    pub(crate) fn e_value(&self) -> f64 {
        log_sum_exp(self.log_lr.iter().zip(&self.log_w).map(|(l, w)| l + w)).exp()
    }
}

fn log_sum_exp(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = values.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + values.map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// Log of the one-sided mixture martingale (alternatives `s + side·δ`) at candidate `s`.
fn one_sided_log_m(x: f64, g: impl Fn(f64) -> f64, s: f64, side: f64) -> f64 {
    let base = g(s);
    let terms: Vec<f64> = offsets()
        .iter()
        .map(|(d, w)| (side * d, w))
        .map(|(d, w)| w + x * d - (g(s + d) - base))
        .collect();
    log_sum_exp(terms.into_iter())
}

/// Updates held before they are folded into the grid of [`RateBounds`]: the grid costs one
/// logarithm per point and update, which short bakes never pay.
const HELD_UPDATES: usize = 4096;

/// What the rate-ratio bounds need from the updates `(ρ, x, n)`, in memory that does not grow
/// with the bake: the canary's errors `x` and, on a grid of log ratios `s`,
/// `G(s) = Σ n·ln(ρ·eˢ + 1 - ρ)`, folded in batches.
#[derive(Debug, Clone, Default)]
pub(crate) struct RateBounds {
    x: f64,
    /// G on the grid; empty until the first fold.
    g: Vec<f64>,
    held: Vec<(f64, u64, u64)>,
}

/// The grid's reach: candidates within ±RANGE and the mixture's offsets beyond them.
const RANGE: f64 = 6.0;

fn grid_steps() -> i64 {
    ((RANGE + MAX_OFFSET) / GRID_STEP).round() as i64
}

impl RateBounds {
    pub(crate) fn push(&mut self, rho: f64, x: u64, n: u64) {
        if rho <= 0.0 || rho >= 1.0 {
            return;
        }
        self.x += x as f64;
        self.held.push((rho, x, n));
        if self.held.len() >= HELD_UPDATES {
            Self::fold(&mut self.g, &self.held);
            self.held.clear();
        }
    }

    fn fold(g: &mut Vec<f64>, updates: &[(f64, u64, u64)]) {
        let steps = grid_steps();
        if g.is_empty() {
            *g = vec![0.0; (2 * steps + 1) as usize];
        }
        for (k, gk) in (-steps..=steps).zip(g.iter_mut()) {
            let s = k as f64 * GRID_STEP;
            *gk += updates
                .iter()
                .map(|(rho, _, n)| *n as f64 * log_norm(*rho, s))
                .sum::<f64>();
        }
    }

    /// Anytime-valid confidence bounds for the log rate ratio `s`, each at level 1-α: the
    /// lower bound inverts the test the metric fails on (at `s0` it is that very e-process),
    /// the upper bound the test it passes early on. So a metric fails exactly when its lower
    /// bound clears the threshold. `None` when unbounded within ±6 (a ratio of e⁶ ≈ 400).
    pub(crate) fn bounds(&self, alpha: f64) -> (Option<f64>, Option<f64>) {
        if self.g.is_empty() && self.held.is_empty() {
            return (None, None);
        }
        let mut grid = self.g.clone();
        Self::fold(&mut grid, &self.held);
        let steps = grid_steps();
        let g = |s: f64| {
            let k = ((s / GRID_STEP).round() as i64 + steps).clamp(0, 2 * steps) as usize;
            grid[k]
        };
        let limit = (1.0 / alpha).ln();
        let inner = (RANGE / GRID_STEP).round() as i64;
        let candidates = || (-inner..=inner).map(|k| k as f64 * GRID_STEP);
        let lower = candidates().find(|s| one_sided_log_m(self.x, g, *s, 1.0) < limit);
        let upper = candidates()
            .rev()
            .find(|s| one_sided_log_m(self.x, g, *s, -1.0) < limit);
        (lower.filter(|s| *s > -RANGE), upper.filter(|s| *s < RANGE))
    }
}

/// The bounds of [`RateBounds`] for a list of updates.
#[cfg(test)]
pub(crate) fn rate_ratio_cs(updates: &[(f64, u64, u64)], alpha: f64) -> (Option<f64>, Option<f64>) {
    let mut b = RateBounds::default();
    for (rho, x, n) in updates {
        b.push(*rho, *x, *n);
    }
    b.bounds(alpha)
}

/// Bets of the rank e-process: `1 + λ·(v - ½)` stays positive for `v` in [0, 1] and |λ| < 2.
pub(crate) const BETS: [f64; 9] = [0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 1.9];

/// A mixture of betting martingales on values `v` in [0, 1] whose mean is at most ½ (side
/// +1) or at least ½ (side -1) under the null: for each bet λ the wealth `Π (1 + λ(v - ½))`
/// is a nonnegative supermartingale under the null, and so is their average.
#[derive(Debug, Clone)]
pub(crate) struct BettingMixture {
    lambdas: Vec<f64>,
    log_wealth: Vec<f64>,
}

impl BettingMixture {
    pub(crate) fn new(side: f64) -> Self {
        BettingMixture {
            lambdas: BETS.iter().map(|l| side * l).collect(),
            log_wealth: vec![0.0; BETS.len()],
        }
    }

    pub(crate) fn update(&mut self, v: f64) {
        for (w, l) in self.log_wealth.iter_mut().zip(&self.lambdas) {
            *w += (l * (v - 0.5)).ln_1p();
        }
    }

    pub(crate) fn e_value(&self) -> f64 {
        self.log_e_value().exp()
    }

    pub(crate) fn log_e_value(&self) -> f64 {
        let w = -(self.log_wealth.len() as f64).ln();
        log_sum_exp(self.log_wealth.iter().map(|l| l + w))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canary_share_matching_its_traffic_share_gives_no_evidence() {
        // 5% of traffic, 5% of the errors: exactly the null ratio 1.
        let mut up = OddsMixture::new(0.0, 1.0);
        for _ in 0..100 {
            up.update(0.05, 5, 100);
        }
        assert!(up.e_value() < 1.0, "e = {}", up.e_value());
    }

    #[test]
    fn twice_the_share_of_errors_builds_evidence() {
        let mut up = OddsMixture::new(0.2_f64.ln_1p(), 1.0);
        let mut down = OddsMixture::new(0.2_f64.ln_1p(), -1.0);
        for _ in 0..20 {
            // 5% of traffic, ~9.5% of errors: rate ratio 2.
            up.update(0.05, 19, 200);
            down.update(0.05, 19, 200);
        }
        assert!(up.e_value() > 1000.0, "e = {}", up.e_value());
        assert!(down.e_value() < 1e-3, "e = {}", down.e_value());
    }

    #[test]
    fn updates_without_information_change_nothing() {
        let mut up = OddsMixture::new(0.0, 1.0);
        up.update(0.0, 0, 10);
        up.update(1.0, 10, 10);
        up.update(0.3, 0, 0);
        assert!((up.e_value() - 1.0).abs() < 1e-12, "e = {}", up.e_value());
    }

    #[test]
    fn rate_ratio_cs_covers_the_truth_and_narrows() {
        let few = [(0.5, 10, 20)];
        let many: Vec<_> = (0..50).map(|_| (0.5, 10, 20)).collect();
        let (lo1, hi1) = rate_ratio_cs(&few, 0.05);
        let (lo2, hi2) = rate_ratio_cs(&many, 0.05);
        let (lo2, hi2) = (lo2.unwrap(), hi2.unwrap());
        assert!(lo2 < 0.0 && hi2 > 0.0, "[{lo2}, {hi2}] must cover 0");
        assert!(hi2 - lo2 < 0.5, "[{lo2}, {hi2}] too wide after 1000 events");
        assert!(lo1.unwrap() < lo2 && hi1.unwrap() > hi2);
    }

    #[test]
    fn the_mixture_weights_sum_to_one_and_favour_moderate_regressions() {
        let total: f64 = offsets().iter().map(|(_, w)| w.exp()).sum();
        assert!((total - 1.0).abs() < 1e-12, "total weight {total}");
        let weight = |lo: f64, hi: f64| -> f64 {
            offsets()
                .iter()
                .filter(|(d, _)| *d >= lo && *d <= hi)
                .map(|(_, w)| w.exp())
                .sum()
        };
        // Offsets up to 1 (ratios up to e times the tolerated one) hold most of the mass.
        assert!(weight(0.0, 1.0) > 0.9, "{}", weight(0.0, 1.0));
        assert!(weight(1.5, 3.0) > 0.0);
    }

    #[test]
    fn rate_ratio_cs_without_data_is_unbounded() {
        assert_eq!(rate_ratio_cs(&[], 0.05), (None, None));
    }

    #[test]
    fn betting_on_a_fair_coin_loses_and_on_a_biased_one_wins() {
        let mut up = BettingMixture::new(1.0);
        let mut down = BettingMixture::new(-1.0);
        for i in 0..400 {
            // Values averaging 0.6.
            let v = if i % 5 < 3 { 1.0 } else { 0.0 };
            up.update(v);
            down.update(v);
        }
        assert!(up.e_value() > 100.0, "e = {}", up.e_value());
        assert!(down.e_value() < 0.05, "e = {}", down.e_value());
        let mut fair = BettingMixture::new(1.0);
        for i in 0..400 {
            fair.update(if i % 2 == 0 { 1.0 } else { 0.0 });
        }
        assert!(fair.e_value() < 1.0, "e = {}", fair.e_value());
    }
}
