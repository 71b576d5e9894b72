//! The latency metric's estimate and confidence bounds on a grid of shifts, kept in memory
//! that does not grow with the bake.
//!
//! The bounds invert the rank test at every candidate shift `c` of ln latency: the wealth of
//! the bets on the ranks of the canary samples scaled down by `eᶜ`. Keeping every sample to
//! recompute those ranks would hold the whole bake in memory, so the ranks are instead
//! tallied, as each interval is folded in, on a fixed grid of shifts around the threshold
//! (steps of 0.01, a 1% ratio): for each shift, how many samples had each rank, rounded to a
//! 1/1024 level. Both roundings are made against the test: the rank is counted from a lattice
//! point below the scaled sample (for the lower bound's bets on high ranks) or above it (for
//! the upper bound's bets on low ranks), and its level rounded down or up the same way, so a
//! wealth computed from the tallies is never above the exact one and the bounds are never
//! narrower than the exact test's, at most about one step wider.

use super::eprocess::BETS;

/// Grid step in ln ratio, and lattice step of the baseline counts.
pub(crate) const STEP: f64 = 0.01;
/// Grid points below and above the threshold: ratios from e⁻¹ to e¹ times it.
const BELOW: i64 = 100;
const ABOVE: i64 = 100;
/// Rank levels: a rank v is tallied as ⌊v·LEVELS⌋ or ⌈v·LEVELS⌉.
const LEVELS: usize = 1024;

fn points() -> usize {
    (BELOW + ABOVE + 1) as usize
}

/// One canary sample to fold: its ln latency, and its rank's canary part.
pub(crate) struct Pending {
    pub(crate) x: f64,
    /// Canary samples ranked before it in its interval, and how many of them were below it.
    pub(crate) canary_before: usize,
    pub(crate) canary_below: usize,
}

/// The tallies: for every grid shift, counts of the rounded-down and rounded-up rank levels.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShiftGrid {
    /// `(point * 2 + side) * (LEVELS + 1) + level`; empty until the first fold.
    counts: Vec<u64>,
    samples: u64,
}

impl ShiftGrid {
    fn at(point: usize, side: usize, level: usize) -> usize {
        (point * 2 + side) * (LEVELS + 1) + level
    }

    /// Folds one interval: its baseline's ln latencies, sorted, and its canary samples;
    /// `c0` is the threshold's shift, the grid's centre.
    pub(crate) fn fold(&mut self, baseline: &[f64], canary: &[Pending], c0: f64) {
        if baseline.is_empty() || canary.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; points() * 2 * (LEVELS + 1)];
        }
        // below[j]: baseline samples below the lattice point (lo + j)·STEP.
        let lo = (baseline[0] / STEP).floor() as i64;
        let hi = (baseline[baseline.len() - 1] / STEP).floor() as i64 + 1;
        let mut below = Vec::with_capacity((hi - lo + 1) as usize);
        let mut i = 0;
        for m in lo..=hi {
            let p = m as f64 * STEP;
            while i < baseline.len() && baseline[i] < p {
                i += 1;
            }
            below.push(i as u64);
        }
        let n = baseline.len() as u64;
        let count_below = |m: i64| -> u64 {
            if m <= lo {
                0
            } else if m > hi {
                n
            } else {
                below[(m - lo) as usize]
            }
        };
        for s in canary {
            // The scaled sample x - c0 - k·STEP lies in [(m0 - k)·STEP, (m0 - k + 1)·STEP).
            let m0 = ((s.x - c0) / STEP).floor() as i64;
            let scale = LEVELS as f64 / (n + s.canary_before as u64) as f64;
            let canary_below = s.canary_below as u64;
            for (point, k) in (-BELOW..=ABOVE).enumerate() {
                let m = m0 - k;
                let low = (count_below(m) + canary_below) as f64 * scale;
                let high = (count_below(m + 1) + canary_below) as f64 * scale;
                let down = ((low - 1e-9).floor().max(0.0) as usize).min(LEVELS);
                let up = ((high + 1e-9).ceil() as usize).min(LEVELS);
                self.counts[Self::at(point, 0, down)] += 1;
                self.counts[Self::at(point, 1, up)] += 1;
            }
        }
        self.samples += canary.len() as u64;
    }

    /// ln of the bets' mixture wealth at grid point `point`, from the levels rounded for
    /// `side` (+1: bets on high ranks, from the rounded-down levels; -1: on low ranks, from the
    /// rounded-up ones).
    fn log_e(&self, point: usize, side: f64, table: &[[f64; LEVELS + 1]; BETS.len()]) -> f64 {
        let s = usize::from(side < 0.0);
        let counts = &self.counts[Self::at(point, s, 0)..=Self::at(point, s, LEVELS)];
        let logs: Vec<f64> = table
            .iter()
            .map(|row| {
                counts
                    .iter()
                    .zip(row)
                    .filter(|(c, _)| **c > 0)
                    .map(|(c, l)| *c as f64 * l)
                    .sum::<f64>()
            })
            .collect();
        let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        max + logs.iter().map(|l| (l - max).exp()).sum::<f64>().ln() - (BETS.len() as f64).ln()
    }

    /// The estimate of the ln ratio (where the mean rank crosses ½) and the one-sided
    /// bounds at level 1 - α each (`None` where the grid holds no bound), all as ln ratios.
    pub(crate) fn estimate(&self, c0: f64, alpha: f64) -> Option<(f64, Option<f64>, Option<f64>)> {
        if self.samples == 0 {
            return None;
        }
        let shift = |point: usize| c0 + (point as i64 - BELOW) as f64 * STEP;
        let limit = (1.0 / alpha).ln();
        let table = |side: f64| {
            let mut t = [[0.0; LEVELS + 1]; BETS.len()];
            for (row, bet) in t.iter_mut().zip(BETS) {
                for (level, l) in row.iter_mut().enumerate() {
                    *l = (side * bet * (level as f64 / LEVELS as f64 - 0.5)).ln_1p();
                }
            }
            t
        };
        let (up, down) = (table(1.0), table(-1.0));
        // Wealth on high ranks falls as the shift grows: the lower bound is the largest
        // shift still refuted; wealth on low ranks grows with it: the upper bound is the
        // smallest refuted.
        let lower = (0..points())
            .rev()
            .find(|p| self.log_e(*p, 1.0, &up) >= limit)
            .map(shift);
        let upper = (0..points())
            .find(|p| self.log_e(*p, -1.0, &down) >= limit)
            .map(shift);
        let mean = |point: usize| {
            let sum: u64 = (0..2)
                .flat_map(|s| (0..=LEVELS).map(move |l| (s, l)))
                .map(|(s, l)| self.counts[Self::at(point, s, l)] * l as u64)
                .sum();
            sum as f64 / (2 * LEVELS as u64 * self.samples) as f64
        };
        let crossing = (0..points()).find(|p| mean(*p) <= 0.5);
        let estimate = match crossing {
            Some(0) => shift(0),
            None => shift(points() - 1),
            Some(p) => {
                let (a, b) = (mean(p - 1), mean(p));
                shift(p - 1) + STEP * ((a - 0.5) / (a - b).max(f64::MIN_POSITIVE)).min(1.0)
            }
        };
        Some((estimate, lower, upper))
    }
}
