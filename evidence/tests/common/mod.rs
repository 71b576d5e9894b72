//! Bake records made by running the real judge over a deterministic stream, look by look, as
//! the canary's bake does: observe both groups at `t`, ask for a verdict (`at_end` on the last
//! look), keep the report of every look, stop at the verdict.
#![allow(dead_code)]

use canary::judge::{
    Direction as JDirection, Group, Interval, Judge, JudgeConfig, Kind as JKind, MetricConfig,
    Status as JStatus, Verdict,
};
use evidence::record::{
    AlarmState, Approval, BakeRecord, CheckResult, ConfigCheck, GroupLook, Groups, Look, Outcome,
    RunVerdict, Start, Window,
};

pub const STARTED_AT: u64 = 1_796_376_600; // 2026-12-04T09:30:00Z
pub const INTERVAL: u64 = 60;

/// SplitMix64: a fixed stream, so every record is the same on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal draw (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.next().max(1e-12);
        let v = self.next();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// Errors among `requests` at `rate`, about Poisson.
    pub fn errors(&mut self, requests: u64, rate: f64) -> u64 {
        let mean = requests as f64 * rate;
        (mean + mean.sqrt() * self.normal())
            .round()
            .clamp(0.0, requests as f64) as u64
    }

    /// `k` latency samples around `median` ms.
    pub fn latency(&mut self, k: usize, median: f64) -> Vec<f64> {
        (0..k)
            .map(|_| ((median.ln() + 0.25 * self.normal()).exp() * 10.0).round() / 10.0)
            .collect()
    }
}

/// What the two groups report at look `i` (1-based).
pub type Stream<'a> = dyn FnMut(u32, &mut Rng) -> (GroupLook, GroupLook) + 'a;

pub fn metric(name: &str, kind: JKind, tolerance: f64, critical: bool, min: u64) -> MetricConfig {
    MetricConfig {
        name: name.to_string(),
        kind,
        direction: JDirection::IncreaseIsBad,
        tolerance: Some(tolerance),
        critical,
        min_samples: Some(min),
    }
}

/// error_rate (critical) and latency judged on one aggregate per interval.
pub fn two_metrics() -> JudgeConfig {
    JudgeConfig {
        metrics: vec![
            metric("error_rate", JKind::Count, 0.2, true, 500),
            metric("latency", JKind::Continuous, 0.1, false, 10),
        ],
        ..JudgeConfig::default()
    }
}

/// The conversions the canary's bake writes with: the records here are built as a run's are.
pub use canary::evidence::{metric_look, spec};

pub fn start(config: &JudgeConfig, looks: u32) -> Start {
    Start {
        run_id: "run-20261204-0930-7f3a".to_string(),
        service: "checkout".to_string(),
        environment: "prod".to_string(),
        revision: "v2.4.1".to_string(),
        previous: Some("v2.4.0".to_string()),
        canary_node: Some("i-0abc1234def567890".to_string()),
        started_by: "arn:aws:iam::123456789012:user/alice".to_string(),
        started_at: STARTED_AT,
        config_check: Some(ConfigCheck {
            result: CheckResult::Pass,
            summary: "rollback safe, mixed fleet safe".to_string(),
        }),
        alarms_watched: vec![
            "checkout-5xx".to_string(),
            "checkout-p99-latency".to_string(),
        ],
        judge: spec(config),
        bake_s: u64::from(looks) * INTERVAL,
        interval_s: INTERVAL,
    }
}

/// Runs the bake: `looks` looks at a 5% weight, the stream's groups fed to the real judge.
pub fn bake(config: &JudgeConfig, looks: u32, seed: u64, stream: &mut Stream<'_>) -> BakeRecord {
    let mut record = BakeRecord::new(start(config, looks));
    let mut judge = Judge::new(config).expect("a valid judge configuration");
    let mut rng = Rng::new(seed);
    for i in 1..=looks {
        let t = f64::from(i) * INTERVAL as f64;
        let (baseline, canary) = stream(i, &mut rng);
        for (group, g) in [(Group::Baseline, &baseline), (Group::Canary, &canary)] {
            judge
                .observe(&Interval {
                    t,
                    group,
                    requests: g.requests,
                    errors: g.errors,
                    latency_ms: g.latency_ms.clone(),
                })
                .expect("a valid interval");
        }
        let at_end = i == looks;
        let verdict = judge.verdict(at_end);
        let report = judge.report(at_end);
        let at = STARTED_AT + u64::from(i) * INTERVAL + 2;
        let mut look = Look::new(i, t, at, 5.0, Groups { baseline, canary });
        look.of = looks;
        look.window = Some(Window {
            start: at - 2 - INTERVAL,
            end: at - 2,
        });
        look.metrics = report.metrics.iter().map(metric_look).collect();
        look.alarms = vec![
            AlarmState {
                name: "checkout-5xx".to_string(),
                state: "OK".to_string(),
            },
            AlarmState {
                name: "checkout-p99-latency".to_string(),
                state: if i == 1 { "INSUFFICIENT_DATA" } else { "OK" }.to_string(),
            },
        ];
        record.push(look).expect("looks in t order");
        if let Some(v) = verdict {
            let outcome = match v {
                Verdict::Pass => Outcome::Pass,
                Verdict::Fail => Outcome::Fail,
                Verdict::Inconclusive => Outcome::Inconclusive,
            };
            let decided = |s: JStatus| {
                report
                    .metrics
                    .iter()
                    .filter(|m| m.status == s)
                    .max_by(|a, b| {
                        a.decided_at
                            .unwrap_or(0.0)
                            .total_cmp(&b.decided_at.unwrap_or(0.0))
                    })
                    .map(|m| m.name.clone())
            };
            let metric = match v {
                Verdict::Pass => decided(JStatus::Pass),
                Verdict::Fail => report
                    .metrics
                    .iter()
                    .find(|m| m.status == JStatus::Fail && m.critical)
                    .or(report.metrics.iter().find(|m| m.status == JStatus::Fail))
                    .map(|m| m.name.clone()),
                Verdict::Inconclusive => decided(JStatus::Inconclusive),
            };
            let rv = RunVerdict {
                outcome,
                metric,
                decided_at: report.decided_at,
                at: Some(at),
                reason: report.reason.clone(),
            };
            record
                .apply(evidence::Entry::Verdict(rv))
                .expect("one verdict");
            break;
        }
    }
    record
}

fn group(requests: u64, errors: u64, latency_ms: Vec<f64>) -> GroupLook {
    GroupLook {
        requests,
        errors,
        latency_ms,
    }
}

/// A healthy canary: the same error rate and latency as the baseline. Passes early.
pub fn pass() -> BakeRecord {
    let mut r = bake(&two_metrics(), 30, 7, &mut |_, rng| {
        let b = 19_000;
        let c = 1_000;
        (
            group(
                b,
                rng.errors(b, 0.002),
                vec![(120.0 + 6.0 * rng.normal()).round()],
            ),
            group(
                c,
                rng.errors(c, 0.002),
                vec![(118.0 + 6.0 * rng.normal()).round()],
            ),
        )
    });
    r.apply(evidence::Entry::Approval(Approval {
        who: "arn:aws:iam::123456789012:user/bob".to_string(),
        at: STARTED_AT + 1_900,
        reason: Some("error rate and latency within tolerance".to_string()),
    }))
    .expect("approved after the verdict");
    r
}

/// A canary with 4x the baseline's error rate: the critical metric fails early.
pub fn fail() -> BakeRecord {
    bake(&two_metrics(), 30, 11, &mut |_, rng| {
        let b = 19_000;
        let c = 1_000;
        (
            group(
                b,
                rng.errors(b, 0.004),
                vec![(120.0 + 6.0 * rng.normal()).round()],
            ),
            group(
                c,
                rng.errors(c, 0.016),
                vec![(125.0 + 6.0 * rng.normal()).round()],
            ),
        )
    })
}

/// A canary that receives almost no traffic: not enough data by the bake end.
pub fn inconclusive() -> BakeRecord {
    bake(&two_metrics(), 10, 13, &mut |i, rng| {
        let b = 19_000;
        let c = if i % 3 == 0 { 12 } else { 0 };
        let lat = if c > 0 { vec![119.0] } else { vec![] };
        (
            group(
                b,
                rng.errors(b, 0.002),
                vec![(120.0 + 6.0 * rng.normal()).round()],
            ),
            group(c, 0, lat),
        )
    })
}

/// 60 looks, 4 metrics, 12 latency samples per group per look, and no regression: the bake
/// goes on to its end (`pass_early = false`) and passes there (a failed metric would end it
/// at once).
pub fn sixty_by_four() -> BakeRecord {
    let config = JudgeConfig {
        pass_early: false,
        metrics: vec![
            metric("error_rate", JKind::Count, 0.2, true, 500),
            metric("server_errors", JKind::Count, 0.5, false, 500),
            metric("latency", JKind::Continuous, 0.1, false, 50),
            metric("latency_loose", JKind::Continuous, 0.3, false, 50),
        ],
        ..JudgeConfig::default()
    };
    bake(&config, 60, 17, &mut |_, rng| {
        let b = 19_000;
        let c = 950 + (rng.next() * 100.0) as u64;
        (
            group(b, rng.errors(b, 0.002), rng.latency(12, 120.0)),
            group(c, rng.errors(c, 0.002), rng.latency(12, 120.0)),
        )
    })
}
