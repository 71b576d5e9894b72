//! The judge's configuration: the `[canary.judge]` table of `gatekeeper.toml`.

use serde::{Deserialize, Serialize};

use super::JudgeError;

/// How the judge weighs the evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Anytime-valid sequential tests, checked every interval (the default).
    #[default]
    Sequential,
    /// Kayenta's fixed-horizon two-sided Mann-Whitney U test, judged at the bake end.
    #[serde(alias = "mann_whitney")]
    MannWhitney,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Sequential => "sequential",
            Method::MannWhitney => "mann-whitney",
        }
    }
}

// What a metric measures and which way a change hurts are the record's types: the judge's
// configuration and its record of a bake say them alike.
pub use evidence::record::{Direction, Kind};

/// One `[[canary.judge.metrics]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricConfig {
    /// A label shown in reports; unique within the judge.
    pub name: String,
    pub kind: Kind,
    #[serde(default)]
    pub direction: Direction,
    /// The relative change tolerated before the metric counts as a regression: 0.2 lets the
    /// canary be 20% worse than the baseline. Default 0.2 for counts, 0.1 for continuous.
    #[serde(default)]
    pub tolerance: Option<f64>,
    /// A critical metric that fails fails the run on its own, whatever the other metrics show
    /// and whatever the score (Kayenta's meaning). With the default `min_score` (100) every
    /// failed metric fails the run, critical or not; `critical` matters once `min_score`
    /// tolerates some failed metrics.
    #[serde(default)]
    pub critical: bool,
    /// Canary observations (requests for counts, samples for continuous metrics) needed
    /// before the metric may pass. Default 500 for counts, 50 for continuous.
    #[serde(default)]
    pub min_samples: Option<u64>,
}

impl MetricConfig {
    pub fn tolerance(&self) -> f64 {
        self.tolerance.unwrap_or(match self.kind {
            Kind::Count => 0.2,
            Kind::Continuous => 0.1,
        })
    }

    pub fn min_samples(&self) -> u64 {
        self.min_samples.unwrap_or(match self.kind {
            Kind::Count => 500,
            Kind::Continuous => 50,
        })
    }

    /// The rate ratio (count) or median ratio (continuous) of canary to baseline at which a
    /// regression begins: `1 + tolerance` when an increase is bad, `1 - tolerance` otherwise.
    pub fn threshold_ratio(&self) -> f64 {
        1.0 + self.direction.sign() * self.tolerance()
    }
}

/// The `[canary.judge]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeConfig {
    #[serde(default)]
    pub method: Method,
    /// Bound on the probability that a canary no worse than the baseline fails the run
    /// (shared equally by the metrics).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Sequential method only: pass before the bake ends once every metric's confidence
    /// sequence excludes a regression.
    #[serde(default = "default_true")]
    pub pass_early: bool,
    /// The run's score is the percentage of its metrics that have not failed; the run fails,
    /// at the interval where it happens, as soon as its score falls below `min_score` or a
    /// critical metric fails. 100 (the default): the first metric that fails ends the bake.
    /// Lower it (Kayenta's marginal threshold) to let some non-critical metrics fail without
    /// failing the run; 0 lets only critical metrics fail it.
    #[serde(default = "default_min_score")]
    pub min_score: f64,
    #[serde(default = "default_metrics")]
    pub metrics: Vec<MetricConfig>,
}

fn default_alpha() -> f64 {
    0.05
}

fn default_min_score() -> f64 {
    100.0
}

fn default_true() -> bool {
    true
}

/// `error_rate` (count, critical, tolerance 0.2) and `latency` (continuous, tolerance 0.1).
pub fn default_metrics() -> Vec<MetricConfig> {
    vec![
        MetricConfig {
            name: "error_rate".to_string(),
            kind: Kind::Count,
            direction: Direction::IncreaseIsBad,
            tolerance: Some(0.2),
            critical: true,
            min_samples: Some(500),
        },
        MetricConfig {
            name: "latency".to_string(),
            kind: Kind::Continuous,
            direction: Direction::IncreaseIsBad,
            tolerance: Some(0.1),
            critical: false,
            // The kind's default (50 samples) for replayed samples; the canary's bake, which
            // reads one aggregate per interval, sets its own (canary::config).
            min_samples: None,
        },
    ]
}

impl Default for JudgeConfig {
    fn default() -> Self {
        JudgeConfig {
            method: Method::default(),
            alpha: default_alpha(),
            pass_early: true,
            min_score: default_min_score(),
            metrics: default_metrics(),
        }
    }
}

impl JudgeConfig {
    /// Checks every value, naming the key to fix.
    pub fn validate(&self) -> Result<(), JudgeError> {
        let bad = |key: String, message: String| Err(JudgeError::Config { key, message });
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return bad(
                "alpha".into(),
                format!("must be between 0 and 1 (exclusive), got {}", self.alpha),
            );
        }
        if !(0.0..=100.0).contains(&self.min_score) {
            return bad(
                "min_score".into(),
                format!("must be a percentage from 0 to 100, got {}", self.min_score),
            );
        }
        if self.metrics.is_empty() {
            return bad("metrics".into(), "at least one metric is needed".into());
        }
        for (i, m) in self.metrics.iter().enumerate() {
            let key = |field: &str| format!("metrics[{i}].{field}");
            if m.name.trim().is_empty() {
                return bad(key("name"), "must not be empty".into());
            }
            if self.metrics[..i].iter().any(|o| o.name == m.name) {
                return bad(key("name"), format!("`{}` is used twice", m.name));
            }
            let tol = m.tolerance();
            if !(tol.is_finite() && tol >= 0.0) {
                return bad(
                    key("tolerance"),
                    format!("must be a number >= 0, got {tol}"),
                );
            }
            if m.direction == Direction::DecreaseIsBad && tol >= 1.0 {
                return bad(
                    key("tolerance"),
                    format!("must be below 1 when a decrease is bad, got {tol}"),
                );
            }
        }
        Ok(())
    }
}
