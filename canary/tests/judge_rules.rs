//! One test per rule of the judge: verdicts, directions, critical metrics, no data, minimum
//! samples, configuration and input errors.

use canary::judge::{
    parse_line, replay, Direction, Group, Interval, Judge, JudgeConfig, JudgeError, Kind, Method,
    MetricConfig, ReplayError, Status, Verdict,
};

fn count_metric(critical: bool) -> MetricConfig {
    MetricConfig {
        name: "error_rate".into(),
        kind: Kind::Count,
        direction: Direction::IncreaseIsBad,
        tolerance: Some(0.2),
        critical,
        min_samples: Some(500),
    }
}

fn latency_metric(critical: bool) -> MetricConfig {
    MetricConfig {
        name: "latency".into(),
        kind: Kind::Continuous,
        direction: Direction::IncreaseIsBad,
        tolerance: Some(0.1),
        critical,
        min_samples: Some(50),
    }
}

fn config(metrics: Vec<MetricConfig>) -> JudgeConfig {
    JudgeConfig {
        metrics,
        ..JudgeConfig::default()
    }
}

/// Deterministic latency samples: a fixed spread of ratios around `median`.
fn latencies(n: usize, median: f64, phase: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let q = ((i * 7 + phase * 3) % 20) as f64 / 19.0 - 0.5; // -0.5 ..= 0.5
            median * (q * 1.2).exp()
        })
        .collect()
}

/// Feeds `intervals` steps of the given per-interval data and returns (verdict, t) at the
/// first decision, asking at each step whether the bake ends there.
fn bake(
    judge: &mut Judge,
    intervals: usize,
    mut step: impl FnMut(usize) -> [Interval; 2],
) -> (Verdict, f64) {
    for i in 1..=intervals {
        let [b, c] = step(i);
        let t = b.t;
        judge.observe(&b).unwrap();
        judge.observe(&c).unwrap();
        if let Some(v) = judge.verdict(i == intervals) {
            return (v, t);
        }
    }
    unreachable!("a verdict at the bake end")
}

fn counts(i: usize, base: (u64, u64), canary: (u64, u64)) -> [Interval; 2] {
    let t = 60.0 * i as f64;
    [
        Interval::counts(t, Group::Baseline, base.0, base.1),
        Interval::counts(t, Group::Canary, canary.0, canary.1),
    ]
}

#[test]
fn defaults_are_error_rate_and_latency_at_alpha_5_percent() {
    let c: JudgeConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(c, JudgeConfig::default());
    assert_eq!(c.alpha, 0.05);
    assert_eq!(c.method, Method::Sequential);
    let names: Vec<_> = c.metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["error_rate", "latency"]);
    assert!(c.metrics[0].critical);
}

#[test]
fn configuration_shape_matches_the_documented_table() {
    let c: JudgeConfig = serde_json::from_value(serde_json::json!({
        "method": "mann-whitney",
        "alpha": 0.01,
        "metrics": [{"name": "errors", "kind": "count", "direction": "decrease_is_bad",
                     "tolerance": 0.1, "critical": true, "min_samples": 10}]
    }))
    .unwrap();
    assert_eq!(c.method, Method::MannWhitney);
    assert_eq!(c.metrics[0].direction, Direction::DecreaseIsBad);
    assert!((c.metrics[0].threshold_ratio() - 0.9).abs() < 1e-12);
    let m: MetricConfig =
        serde_json::from_value(serde_json::json!({"name": "p99", "kind": "continuous"})).unwrap();
    assert_eq!(
        (m.tolerance(), m.min_samples(), m.critical),
        (0.1, 50, false)
    );
}

#[test]
fn unknown_configuration_keys_are_refused() {
    let err = serde_json::from_str::<JudgeConfig>(r#"{"alpah": 0.05}"#).unwrap_err();
    assert!(err.to_string().contains("alpah"), "{err}");
    let err = serde_json::from_str::<JudgeConfig>(
        r#"{"metrics": [{"name": "e", "kind": "count", "tolerence": 0.1}]}"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("tolerence"), "{err}");
}

#[test]
fn invalid_values_name_their_key() {
    let cases = [
        (
            JudgeConfig {
                alpha: 0.0,
                ..JudgeConfig::default()
            },
            "alpha",
        ),
        (config(vec![]), "metrics"),
        (
            config(vec![count_metric(true), count_metric(false)]),
            "metrics[1].name",
        ),
        (
            config(vec![MetricConfig {
                tolerance: Some(-0.1),
                ..count_metric(true)
            }]),
            "metrics[0].tolerance",
        ),
        (
            config(vec![MetricConfig {
                direction: Direction::DecreaseIsBad,
                tolerance: Some(1.0),
                ..count_metric(true)
            }]),
            "metrics[0].tolerance",
        ),
    ];
    for (c, key) in cases {
        match Judge::new(&c) {
            Err(JudgeError::Config { key: k, .. }) => assert_eq!(k, key),
            Err(other) => panic!("expected a config error on {key}, got {other}"),
            Ok(_) => panic!("expected a config error on {key}"),
        }
    }
}

#[test]
fn a_2x_error_rate_on_a_5_percent_canary_fails_early_when_critical() {
    let mut judge = Judge::new(&config(vec![count_metric(true)])).unwrap();
    // 19,000 baseline requests at 0.5%, 1,000 canary requests at 1%.
    let (v, t) = bake(&mut judge, 30, |i| counts(i, (19_000, 95), (1_000, 10)));
    assert_eq!(v, Verdict::Fail);
    assert!(t < 1800.0, "failed only at the end, t={t}");
    let r = judge.report(false);
    assert_eq!(r.decided_at, Some(t));
    let m = &r.metrics[0];
    assert_eq!(m.status, Status::Fail);
    assert!(m.e_value.unwrap() >= 20.0);
    assert!(m.interval.unwrap().lower.unwrap() > 1.2);
    assert!(r.reason.contains("error_rate"), "{}", r.reason);
}

#[test]
fn the_same_rate_on_a_5_percent_canary_passes_at_the_end() {
    // The canary gets 5% of the errors because it gets 5% of the traffic: no regression.
    let mut judge = Judge::new(&config(vec![count_metric(true)])).unwrap();
    let (v, t) = bake(&mut judge, 30, |i| counts(i, (19_000, 95), (1_000, 5)));
    assert_eq!((v, t), (Verdict::Pass, 1800.0));
    let r = judge.report(true);
    assert!(r.metrics[0].e_value.unwrap() < 1.0);
    assert!(
        r.reason.contains("no metric shows a regression"),
        "{}",
        r.reason
    );
}

#[test]
fn the_first_failed_metric_fails_the_run_at_once_critical_or_not() {
    // A non-critical error rate next to a healthy latency: by default (min_score 100) its
    // failure ends the bake where it happens, and the run is decided there.
    let step = |i: usize| {
        let mut pair = counts(i, (19_000, 95), (1_000, 10));
        pair[0].latency_ms = latencies(190, 100.0, i);
        pair[1].latency_ms = latencies(10, 100.0, i + 1);
        pair
    };
    let mut judge = Judge::new(&config(vec![count_metric(false), latency_metric(false)])).unwrap();
    let (v, t) = bake(&mut judge, 30, step);
    assert_eq!(v, Verdict::Fail);
    assert!(t < 1800.0, "the run waited for the bake end");
    let r = judge.report(false);
    assert_eq!(
        r.decided_at,
        Some(t),
        "the run is decided when the metric failed"
    );
    assert_eq!(r.metrics[0].decided_at, Some(t));
    assert_eq!(r.metrics[0].status, Status::Fail);
    assert_ne!(r.metrics[1].status, Status::Fail);
}

#[test]
fn a_critical_metric_fails_the_run_whatever_the_score() {
    // min_score 50 of two metrics tolerates one failure: a non-critical failed error rate
    // leaves the run to the other metric, a critical one fails the run on its own.
    let step = |i: usize| {
        let mut pair = counts(i, (19_000, 95), (1_000, 10));
        pair[0].latency_ms = latencies(190, 100.0, i);
        pair[1].latency_ms = latencies(10, 100.0, i + 1);
        pair
    };
    let tolerant = |critical: bool| JudgeConfig {
        min_score: 50.0,
        pass_early: false,
        ..config(vec![count_metric(critical), latency_metric(false)])
    };
    let mut judge = Judge::new(&tolerant(false)).unwrap();
    let (v, t) = bake(&mut judge, 30, step);
    assert_eq!((v, t), (Verdict::Pass, 1800.0));
    let r = judge.report(true);
    assert_eq!(r.metrics[0].status, Status::Fail, "the error rate did fail");
    assert_eq!(r.metrics[1].status, Status::Pass);

    let mut judge = Judge::new(&tolerant(true)).unwrap();
    let (v, t) = bake(&mut judge, 30, step);
    assert_eq!(v, Verdict::Fail);
    assert!(t < 1800.0, "a critical failure ends the bake at once");

    // Both failing brings the score to 0, below 50: the run fails at the second failure.
    let mut judge = Judge::new(&tolerant(false)).unwrap();
    let (v, t) = bake(&mut judge, 30, |i| {
        let mut pair = step(i);
        pair[1].latency_ms = latencies(10, 300.0, i + 1);
        pair
    });
    assert_eq!(v, Verdict::Fail);
    assert!(t < 1800.0);
    let r = judge.report(false);
    let last = r
        .metrics
        .iter()
        .filter_map(|m| m.decided_at)
        .fold(0.0, f64::max);
    assert_eq!(
        r.decided_at,
        Some(last),
        "decided by the failure that broke the score"
    );
}

#[test]
fn min_score_outside_0_to_100_is_refused() {
    for bad in [-1.0, 100.5, f64::NAN] {
        let err = Judge::new(&JudgeConfig {
            min_score: bad,
            ..JudgeConfig::default()
        })
        .err()
        .expect("refused");
        assert!(err.to_string().contains("min_score"), "{err}");
    }
}

#[test]
fn decrease_is_bad_fails_on_a_drop() {
    let metric = MetricConfig {
        name: "successes".into(),
        direction: Direction::DecreaseIsBad,
        ..count_metric(true)
    };
    let mut judge = Judge::new(&config(vec![metric])).unwrap();
    // "errors" here count successes: the canary's rate halves.
    let (v, _) = bake(&mut judge, 30, |i| counts(i, (9_000, 900), (1_000, 50)));
    assert_eq!(v, Verdict::Fail);
    let mut judge = Judge::new(&config(vec![MetricConfig {
        direction: Direction::DecreaseIsBad,
        ..count_metric(true)
    }]))
    .unwrap();
    // An increase is harmless when a decrease is bad.
    let (v, _) = bake(&mut judge, 30, |i| counts(i, (9_000, 90), (1_000, 30)));
    assert_ne!(v, Verdict::Fail);
}

#[test]
fn no_canary_traffic_is_inconclusive_not_pass_and_not_an_error() {
    let mut judge = Judge::new(&config(vec![count_metric(true)])).unwrap();
    let (v, t) = bake(&mut judge, 10, |i| counts(i, (20_000, 100), (0, 0)));
    assert_eq!((v, t), (Verdict::Inconclusive, 600.0));
    let r = judge.report(true);
    assert_eq!(r.decided_at, None);
    assert_eq!(r.metrics[0].status, Status::Inconclusive);
    assert!(
        r.metrics[0].reason.starts_with("no data"),
        "{}",
        r.metrics[0].reason
    );
}

#[test]
fn an_empty_stream_is_inconclusive_no_data() {
    let report = replay(&JudgeConfig::default(), &b""[..]).unwrap();
    assert_eq!(report.verdict, Some(Verdict::Inconclusive));
    assert!(report.reason.contains("no data"), "{}", report.reason);
}

#[test]
fn a_metric_missing_from_every_interval_is_inconclusive() {
    // Counts arrive, latency never does.
    let mut judge = Judge::new(&JudgeConfig::default()).unwrap();
    let (v, _) = bake(&mut judge, 30, |i| counts(i, (19_000, 95), (1_000, 5)));
    assert_eq!(v, Verdict::Inconclusive);
    let r = judge.report(true);
    assert_eq!(r.metrics[0].status, Status::Pass);
    assert_eq!(r.metrics[1].status, Status::Inconclusive);
    assert!(r.reason.contains("latency: no data"), "{}", r.reason);
}

#[test]
fn fewer_than_min_samples_is_inconclusive() {
    let mut judge = Judge::new(&config(vec![count_metric(true)])).unwrap();
    let (v, _) = bake(&mut judge, 4, |i| counts(i, (1_900, 10), (100, 0)));
    assert_eq!(v, Verdict::Inconclusive);
    let reason = &judge.report(true).metrics[0].reason;
    assert!(reason.contains("400 of the 500"), "{reason}");
}

#[test]
fn latency_shift_beyond_tolerance_fails_and_within_it_passes() {
    let mut judge = Judge::new(&config(vec![latency_metric(true)])).unwrap();
    let (v, t) = bake(&mut judge, 30, |i| {
        let mut pair = counts(i, (950, 0), (50, 0));
        pair[0].latency_ms = latencies(190, 100.0, i);
        pair[1].latency_ms = latencies(10, 130.0, i + 1);
        pair
    });
    assert_eq!(v, Verdict::Fail);
    assert!(t < 1800.0);
    let est = judge.report(false).metrics[0].estimate.unwrap();
    assert!((est - 1.3).abs() < 0.1, "estimate {est}");

    let mut judge = Judge::new(&JudgeConfig {
        pass_early: false,
        ..config(vec![latency_metric(true)])
    })
    .unwrap();
    let (v, t) = bake(&mut judge, 30, |i| {
        let mut pair = counts(i, (950, 0), (50, 0));
        pair[0].latency_ms = latencies(190, 100.0, i);
        pair[1].latency_ms = latencies(10, 102.0, i + 1);
        pair
    });
    assert_eq!((v, t), (Verdict::Pass, 1800.0));
}

#[test]
fn pass_early_needs_every_metric_to_exclude_a_regression() {
    // A 50% canary with far fewer errors and a clearly faster latency.
    let step = |i: usize| {
        let mut pair = counts(i, (10_000, 200), (10_000, 20));
        pair[0].latency_ms = latencies(100, 100.0, i);
        pair[1].latency_ms = latencies(100, 60.0, i + 1);
        pair
    };
    let mut judge = Judge::new(&JudgeConfig::default()).unwrap();
    let (v, t) = bake(&mut judge, 30, step);
    assert_eq!(v, Verdict::Pass);
    assert!(t < 1800.0, "passed only at the end");
    assert!(judge
        .report(false)
        .reason
        .contains("rules out a regression"));

    let mut judge = Judge::new(&JudgeConfig {
        pass_early: false,
        ..JudgeConfig::default()
    })
    .unwrap();
    let (v, t) = bake(&mut judge, 30, step);
    assert_eq!((v, t), (Verdict::Pass, 1800.0));
}

#[test]
fn mann_whitney_waits_for_the_bake_end() {
    let mut judge = Judge::new(&JudgeConfig {
        method: Method::MannWhitney,
        ..config(vec![count_metric(true)])
    })
    .unwrap();
    let (v, t) = bake(&mut judge, 30, |i| {
        counts(i, (19_000, 95), (1_000, 10 + (i % 3) as u64))
    });
    assert_eq!((v, t), (Verdict::Fail, 1800.0));
    let r = judge.report(true);
    assert!(r.metrics[0].p_value.unwrap() < 0.05);
    assert!(r.metrics[0].e_value.is_none());
}

#[test]
fn mann_whitney_passes_a_significant_change_within_tolerance() {
    // Latency up 5% everywhere: significant with this much data, but within 10%.
    let mut judge = Judge::new(&JudgeConfig {
        method: Method::MannWhitney,
        ..config(vec![latency_metric(true)])
    })
    .unwrap();
    let (v, _) = bake(&mut judge, 30, |i| {
        let mut pair = counts(i, (500, 0), (500, 0));
        pair[0].latency_ms = latencies(100, 100.0, i);
        pair[1].latency_ms = latencies(100, 105.0, i);
        pair
    });
    assert_eq!(v, Verdict::Pass);
    let m = &judge.report(true).metrics[0];
    assert!(m.p_value.unwrap() < 0.025, "p = {:?}", m.p_value);
    assert!(m.reason.contains("within the tolerated"), "{}", m.reason);
}

#[test]
fn intervals_out_of_order_are_refused() {
    let mut judge = Judge::new(&JudgeConfig::default()).unwrap();
    judge
        .observe(&Interval::counts(120.0, Group::Baseline, 10, 0))
        .unwrap();
    judge.verdict(false);
    let err = judge
        .observe(&Interval::counts(60.0, Group::Canary, 10, 0))
        .unwrap_err();
    assert!(err.to_string().contains("t=60"), "{err}");
}

#[test]
fn lines_of_one_group_and_t_add_up() {
    let mut judge = Judge::new(&config(vec![count_metric(true)])).unwrap();
    for _ in 0..2 {
        judge
            .observe(&Interval::counts(60.0, Group::Canary, 300, 1))
            .unwrap();
    }
    judge
        .observe(&Interval::counts(60.0, Group::Baseline, 5_000, 20))
        .unwrap();
    let r = judge.report(true);
    assert_eq!(r.intervals, 1);
    assert_eq!(r.metrics[0].canary_samples, 600);
}

#[test]
fn bad_lines_name_their_line_number() {
    let text = "{\"t\": 1, \"group\": \"canary\", \"requests\": 5, \"errors\": 0}\n\n\
                {\"t\": 1, \"group\": \"canary\", \"requests\": 5}\n";
    let Err(ReplayError::Line(err)) = replay(&JudgeConfig::default(), text.as_bytes()) else {
        panic!("a line error")
    };
    assert_eq!(err.line, 3);
    assert!(err.message.contains("errors"), "{}", err.message);

    let err = parse_line(
        7,
        "{\"t\": 1, \"group\": \"canary\", \"requests\": 5, \"errors\": 0, \"latency_ms\": [-1]}",
    )
    .unwrap_err();
    assert_eq!(err.line, 7);
    assert!(err.message.contains("latency_ms"), "{}", err.message);
}

/// `n` intervals of a 2x error rate on a 5% canary, as JSON lines in t order.
fn regression_lines(n: usize) -> Vec<String> {
    (1..=n)
        .flat_map(|i| counts(i, (19_000, 95), (1_000, 12)))
        .map(|iv| serde_json::to_string(&iv).unwrap())
        .collect()
}

#[test]
fn replay_stops_at_the_decision() {
    let lines = regression_lines(30);
    let report = replay(
        &config(vec![count_metric(true)]),
        lines.join("\n").as_bytes(),
    )
    .unwrap();
    assert_eq!(report.verdict, Some(Verdict::Fail));
    let t = report.decided_at.unwrap();
    assert!(t < 1800.0);
    assert_eq!(report.last_t, Some(t));
    assert_eq!(report.intervals as f64, t / 60.0);
}

#[test]
fn replay_refuses_lines_out_of_t_order_naming_the_line() {
    let mut lines = regression_lines(3);
    lines.swap(2, 4); // t=60, t=60, t=180, t=120, t=120, t=180
    let Err(ReplayError::Line(err)) = replay(
        &config(vec![count_metric(true)]),
        lines.join("\n").as_bytes(),
    ) else {
        panic!("an out-of-order line is an error")
    };
    assert_eq!(err.line, 4);
    assert!(err.message.contains("t order"), "{}", err.message);
}

/// Serves `text` one line per read and fails any read past its first `lines` lines.
struct Guarded<'a> {
    text: &'a [u8],
    served: usize,
    lines: usize,
}

impl std::io::Read for Guarded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.served == self.lines {
            return Err(std::io::Error::other("read past the interval that decided"));
        }
        let end = self
            .text
            .iter()
            .position(|b| *b == b'\n')
            .map_or(self.text.len(), |i| i + 1);
        let n = end.min(buf.len());
        buf[..n].copy_from_slice(&self.text[..n]);
        self.text = &self.text[n..];
        if n == end {
            self.served += 1;
        }
        Ok(n)
    }
}

#[test]
fn replay_reads_no_further_than_the_interval_that_decides() {
    // The whole stream, replayed in one piece, decides at interval k.
    let lines = regression_lines(30);
    let text = lines.join("\n");
    let cfg = config(vec![count_metric(true)]);
    let k = (replay(&cfg, text.as_bytes()).unwrap().decided_at.unwrap() / 60.0) as usize;
    assert!(k < 30);
    // A reader that fails any read past the first line of interval k + 1 (the line that says
    // interval k is whole): the replay decides without it, so it read the stream an interval
    // at a time, not whole.
    let reader = Guarded {
        text: text.as_bytes(),
        served: 0,
        lines: 2 * k + 1,
    };
    let report = replay(&cfg, std::io::BufReader::with_capacity(64, reader)).unwrap();
    assert_eq!(report.verdict, Some(Verdict::Fail));
    assert_eq!(report.decided_at, Some(60.0 * k as f64));
    // One line fewer and the replay has to read on, and fails.
    let reader = Guarded {
        text: text.as_bytes(),
        served: 0,
        lines: 2 * k,
    };
    let err = replay(&cfg, std::io::BufReader::with_capacity(64, reader)).unwrap_err();
    assert!(matches!(err, ReplayError::Read(_)), "{err}");
}

fn with_latency(t: f64, group: Group, latency_ms: Vec<f64>) -> Interval {
    Interval {
        latency_ms,
        ..Interval::counts(t, group, 1000, 0)
    }
}

#[test]
fn a_metric_that_passed_still_fails_on_a_later_regression() {
    // Ten intervals of a canary twice as fast (its pass e-process crosses), then a canary three
    // times slower: without pass_early the run goes on, and the regression fails it.
    let mut cfg = config(vec![latency_metric(true)]);
    cfg.pass_early = false;
    let mut j = Judge::new(&cfg).unwrap();
    let (v, t) = bake(&mut j, 30, |i| {
        let t = i as f64 * 60.0;
        let canary = if i <= 10 { 50.0 } else { 300.0 };
        [
            with_latency(t, Group::Baseline, latencies(950, 100.0, i)),
            with_latency(t, Group::Canary, latencies(50, canary, i + 1)),
        ]
    });
    assert_eq!(v, Verdict::Fail);
    assert!(t > 600.0, "failed at t={t}, after the passing intervals");
}

/// `n` samples of interval `i` around `median`, in the order given by `index` (from 0 to
/// n-1), with the load moving: the later in the interval, the slower (2x from first to last).
fn ramp(n: usize, median: f64, i: usize, index: impl Fn(usize) -> usize) -> Vec<f64> {
    let noise = latencies(n, 1.0, i);
    (0..n)
        .map(|j| {
            let at = index(j);
            median * (at as f64 / n as f64).exp2() * noise[(at * 13 + i) % n]
        })
        .collect()
}

#[test]
fn samples_sorted_by_value_or_listed_against_the_load_raise_no_false_alarm() {
    // A canary taking half the traffic, as slow as the baseline, listed three ways: sorted by
    // value, in arrival order while the load climbs, and the canary's newest first. A test
    // pairing samples by position would see the canary's late (slow) samples against the
    // baseline's early ones; one ranking them in the order listed would see each canary sample
    // above the canary's earlier ones.
    type Lists = fn(usize) -> [Vec<f64>; 2];
    let sorted: Lists = |i| {
        let mut b = ramp(500, 100.0, i, |j| j);
        let mut c = ramp(500, 100.0, i + 1, |j| j);
        b.sort_by(f64::total_cmp);
        c.sort_by(f64::total_cmp);
        [b, c]
    };
    let climbing: Lists = |i| [ramp(500, 100.0, i, |j| j), ramp(500, 100.0, i + 1, |j| j)];
    let newest_first: Lists = |i| {
        [
            ramp(500, 100.0, i, |j| j),
            ramp(500, 100.0, i + 1, |j| 499 - j),
        ]
    };
    for (name, lists) in [
        ("sorted", sorted),
        ("climbing", climbing),
        ("newest first", newest_first),
    ] {
        let mut cfg = config(vec![latency_metric(true)]);
        cfg.pass_early = false;
        let mut j = Judge::new(&cfg).unwrap();
        let (v, t) = bake(&mut j, 30, |i| {
            let t = i as f64 * 60.0;
            let [b, c] = lists(i);
            [
                with_latency(t, Group::Baseline, b),
                with_latency(t, Group::Canary, c),
            ]
        });
        assert_eq!(v, Verdict::Pass, "{name}: {v:?} at t={t}");
        // And the same lists with the canary 1.5x slower do fail.
        let mut j = Judge::new(&cfg).unwrap();
        let (v, _) = bake(&mut j, 30, |i| {
            let t = i as f64 * 60.0;
            let [b, c] = lists(i);
            [
                with_latency(t, Group::Baseline, b),
                with_latency(t, Group::Canary, c.iter().map(|x| 1.5 * x).collect()),
            ]
        });
        assert_eq!(v, Verdict::Fail, "{name}: a 1.5x slower canary");
    }
}
