//! Under the null — a canary no worse than the baseline — the sequential judge, asked for a
//! verdict after every interval of the bake, fails at most an alpha share of runs.

#[path = "judge_sim.rs"]
mod sim;

use canary::judge::{Interval, Judge, JudgeConfig, Verdict};
use proptest::prelude::*;
use sim::{Scenario, Stream};

const RUNS: u64 = 200;
/// Bakes pooled by the tests that hold the false-alarm rate to alpha itself, with no slack.
const POOLED: u64 = 1000;

/// How many of `runs` simulated bakes (run `r` drawn with seed `seed(r)`, each interval passed
/// through `edit` first) the judge failed at some interval, asked after every one.
fn failed_bakes(
    config: &JudgeConfig,
    scenario: &Scenario,
    runs: u64,
    seed: impl Fn(u64) -> u64,
    edit: impl Fn(&mut Interval),
) -> u64 {
    let mut fails = 0;
    for run in 0..runs {
        let mut judge = Judge::new(config).expect("valid config");
        for (i, mut pair) in Stream::new(scenario, seed(run)).enumerate() {
            for iv in &mut pair {
                edit(iv);
                judge.observe(iv).expect("valid interval");
            }
            match judge.verdict(i + 1 == scenario.intervals) {
                Some(Verdict::Fail) => {
                    fails += 1;
                    break;
                }
                Some(_) => break,
                None => {}
            }
        }
    }
    fails
}

/// Fraction of `RUNS` simulated bakes that the judge failed at some interval.
fn false_alarm_rate(config: &JudgeConfig, scenario: &Scenario, seed: u64) -> f64 {
    let fails = failed_bakes(config, scenario, RUNS, |run| seed ^ (run * 7919), |_| {});
    fails as f64 / RUNS as f64
}

/// alpha plus three binomial standard errors of an estimate from `RUNS` runs.
fn bound(alpha: f64) -> f64 {
    alpha + 3.0 * (alpha * (1.0 - alpha) / RUNS as f64).sqrt()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Identical groups, and groups at the very edge of the tolerance (the hardest null):
    /// every interval is a look, and false alarms stay within alpha.
    #[test]
    fn sequential_false_alarms_stay_within_alpha(
        seed in any::<u64>(),
        alpha in prop_oneof![Just(0.05), Just(0.1)],
        canary_share in 0.02f64..0.5,
        baseline_error_rate in 0.001f64..0.05,
        requests in 500u64..20_000,
        intervals in 5usize..40,
        at_tolerance in any::<bool>(),
    ) {
        let config = JudgeConfig { alpha, ..JudgeConfig::default() };
        // At the edge, the canary is exactly as much worse as the tolerance allows.
        let (error_ratio, latency_ratio) = if at_tolerance { (1.2, 1.1) } else { (1.0, 1.0) };
        let scenario = Scenario {
            intervals,
            requests,
            canary_share,
            baseline_error_rate,
            error_ratio,
            latency_samples: 100,
            latency_ratio,
            ..Scenario::default()
        };
        let rate = false_alarm_rate(&config, &scenario, seed);
        prop_assert!(
            rate <= bound(alpha),
            "false alarms {rate} > {} (alpha {alpha}) for {scenario:?}",
            bound(alpha)
        );
    }
}

/// The bound is not vacuous: the same harness does see failures when the canary is worse.
#[test]
fn the_harness_detects_a_real_regression() {
    let scenario = Scenario {
        intervals: 30,
        error_ratio: 2.0,
        latency_samples: 100,
        ..Scenario::default()
    };
    let rate = false_alarm_rate(&JudgeConfig::default(), &scenario, 7);
    assert!(rate > 0.9, "detected only {rate} of 2x regressions");
}

/// Why the sequential method is the default: the fixed-horizon test, asked every interval,
/// fails far more than alpha of the canaries that sit at the tolerance.
#[test]
fn mann_whitney_asked_every_interval_exceeds_alpha() {
    let scenario = Scenario {
        intervals: 30,
        error_ratio: 1.2,
        ..Scenario::default()
    };
    let config = JudgeConfig {
        method: canary::judge::Method::MannWhitney,
        metrics: vec![canary::judge::default_metrics().remove(0)],
        ..JudgeConfig::default()
    };
    let mut fails = 0;
    for run in 0..RUNS {
        let mut judge = Judge::new(&config).expect("valid config");
        for [baseline, canary] in Stream::new(&scenario, 11 + run) {
            judge.observe(&baseline).unwrap();
            judge.observe(&canary).unwrap();
            if judge.verdict(true) == Some(Verdict::Fail) {
                fails += 1;
                break;
            }
        }
    }
    let rate = fails as f64 / RUNS as f64;
    assert!(
        rate > bound(0.05),
        "peeked Mann-Whitney false alarms {rate}"
    );
}

/// Pooled over many runs at the hardest null (the canary exactly as much worse as tolerated),
/// the false-alarm rate is at most alpha itself, not alpha plus sampling slack: on raw latency
/// samples, and on one latency aggregate per group and interval, as the canary's bake reads
/// CloudWatch.
#[test]
fn pooled_false_alarms_at_the_tolerance_edge_are_at_most_alpha() {
    let alpha = 0.05;
    let scenario = Scenario {
        intervals: 30,
        requests: 10_000,
        error_ratio: 1.2,
        latency_samples: 200,
        latency_ratio: 1.1,
        ..Scenario::default()
    };
    let mut aggregate_config = JudgeConfig::default();
    for m in &mut aggregate_config.metrics {
        if m.kind == canary::judge::Kind::Continuous {
            m.min_samples = Some(10);
        }
    }
    for (name, config, aggregate) in [
        ("raw samples", JudgeConfig::default(), false),
        ("one aggregate per interval", aggregate_config, true),
    ] {
        let fails = failed_bakes(
            &config,
            &scenario,
            POOLED,
            |run| 0xA11CE + run,
            |iv| {
                if aggregate && !iv.latency_ms.is_empty() {
                    let mean = iv.latency_ms.iter().sum::<f64>() / iv.latency_ms.len() as f64;
                    iv.latency_ms = vec![mean];
                }
            },
        );
        let rate = fails as f64 / POOLED as f64;
        assert!(
            rate <= alpha,
            "{name}: {fails} of {POOLED} bakes at the tolerance failed ({rate} > alpha {alpha})"
        );
    }
}

/// The latency test ranks samples, so ties and the order they come in must not bend its
/// bound: identical groups, no tolerance (the boundary itself), latencies rounded to whole
/// milliseconds around 3 ms (most samples tie with many others) and listed sorted by value.
#[test]
fn pooled_false_alarms_with_tied_and_sorted_latencies_are_at_most_alpha() {
    let alpha = 0.05;
    let scenario = Scenario {
        intervals: 30,
        requests: 10_000,
        canary_share: 0.3,
        latency_samples: 200,
        latency_median_ms: 3.0,
        ..Scenario::default()
    };
    let config = JudgeConfig {
        metrics: vec![canary::judge::MetricConfig {
            name: "latency".into(),
            kind: canary::judge::Kind::Continuous,
            direction: canary::judge::Direction::IncreaseIsBad,
            tolerance: Some(0.0),
            critical: true,
            min_samples: Some(50),
        }],
        ..JudgeConfig::default()
    };
    let fails = failed_bakes(
        &config,
        &scenario,
        POOLED,
        |run| 0x71E5 + run,
        |iv| {
            for l in &mut iv.latency_ms {
                *l = l.round();
            }
            iv.latency_ms.sort_by(f64::total_cmp);
        },
    );
    let rate = fails as f64 / POOLED as f64;
    assert!(
        rate <= alpha,
        "{fails} of {POOLED} tied, sorted A/A bakes failed ({rate} > alpha {alpha})"
    );
}
