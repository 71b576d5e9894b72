//! Simulated canary streams, shared by the judge's tests and its benchmark.
#![allow(dead_code)]

use canary::judge::{Group, Interval};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Binomial, Distribution, LogNormal};

/// One simulated deployment.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub intervals: usize,
    /// Seconds per interval.
    pub step: f64,
    /// Requests per interval, both groups together.
    pub requests: u64,
    /// The canary's expected share of the requests.
    pub canary_share: f64,
    pub baseline_error_rate: f64,
    /// Canary error rate over the baseline's.
    pub error_ratio: f64,
    /// Latency samples per interval, both groups together (0: no latency).
    pub latency_samples: u64,
    pub latency_median_ms: f64,
    /// Standard deviation of ln latency.
    pub latency_sigma: f64,
    /// Canary latency over the baseline's (a multiplicative shift).
    pub latency_ratio: f64,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            intervals: 30,
            step: 60.0,
            requests: 20_000,
            canary_share: 0.05,
            baseline_error_rate: 0.005,
            error_ratio: 1.0,
            latency_samples: 0,
            latency_median_ms: 100.0,
            latency_sigma: 0.5,
            latency_ratio: 1.0,
        }
    }
}

/// The stream of one run: per interval, the baseline's and the canary's lines.
pub struct Stream {
    rng: StdRng,
    scenario: Scenario,
    next: usize,
}

impl Stream {
    pub fn new(scenario: &Scenario, seed: u64) -> Self {
        Stream {
            rng: StdRng::seed_from_u64(seed),
            scenario: scenario.clone(),
            next: 0,
        }
    }
}

fn binomial(rng: &mut StdRng, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    Binomial::new(n, p.min(1.0))
        .expect("valid binomial")
        .sample(rng)
}

impl Iterator for Stream {
    type Item = [Interval; 2];

    fn next(&mut self) -> Option<[Interval; 2]> {
        let s = &self.scenario;
        if self.next >= s.intervals {
            return None;
        }
        self.next += 1;
        let t = self.next as f64 * s.step;
        let rng = &mut self.rng;
        // Traffic wobbles by ±20% from interval to interval.
        let total = (s.requests as f64 * rng.random_range(0.8..1.2)).round() as u64;
        let canary_req = binomial(rng, total, s.canary_share);
        let baseline_req = total - canary_req;
        let baseline_err = binomial(rng, baseline_req, s.baseline_error_rate);
        let canary_err = binomial(rng, canary_req, s.baseline_error_rate * s.error_ratio);
        let mut baseline = Interval::counts(t, Group::Baseline, baseline_req, baseline_err);
        let mut canary = Interval::counts(t, Group::Canary, canary_req, canary_err);
        if s.latency_samples > 0 {
            let k = binomial(rng, s.latency_samples, s.canary_share);
            let mu = s.latency_median_ms.ln();
            let base = LogNormal::new(mu, s.latency_sigma).expect("valid lognormal");
            let shifted = LogNormal::new(mu + s.latency_ratio.ln(), s.latency_sigma)
                .expect("valid lognormal");
            canary.latency_ms = (0..k).map(|_| shifted.sample(rng)).collect();
            baseline.latency_ms = (0..s.latency_samples - k)
                .map(|_| base.sample(rng))
                .collect();
        }
        Some([baseline, canary])
    }
}
