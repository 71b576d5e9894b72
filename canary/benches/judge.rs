//! The judge's operating characteristics on simulated deployments.
//!
//! `cargo bench -p canary --bench judge` prints, for the sequential and the Mann-Whitney
//! (fixed-horizon) methods, and for a textbook fixed-horizon z-test of the same one-sided
//! hypothesis as the sequential one (a reference, not a judge method): false alarms over A/A
//! runs checked every interval, detection time of a 2x error-rate regression on a 5% canary
//! and of a +20% latency shift, and power at the bake end. Then the sequential judge's
//! requests to detection against `N*`, the requests a fixed-horizon test (same alpha, one
//! look) needs to reach the power the sequential judge reaches by the end of the bake.
//! `JUDGE_BENCH_RUNS` sets the runs per row (default 10000), `JUDGE_BENCH_POWER_RUNS` the
//! sequential runs behind the comparison with `N*` (default 300000, each stopped at its first
//! failure: enough to show a power of 99.999% when every regressed run fails). Last, the
//! run-level decision with the default configuration (both metrics, the first failed metric
//! ending the bake); `JUDGE_BENCH_SECTION=run-level` prints only that table.

#![expect(clippy::print_stdout, reason = "a benchmark prints its table")]

#[path = "../tests/judge_sim.rs"]
mod sim;

use canary::judge::{
    Direction, Group, Interval, Judge, JudgeConfig, Kind, Method, MetricConfig, Status, Verdict,
};
use sim::{Scenario, Stream};

const ALPHA: f64 = 0.05;
const ERROR_TOLERANCE: f64 = 0.2;
const LATENCY_TOLERANCE: f64 = 0.1;
/// One-sided 95% normal quantile, for the z-test reference.
const Z_ALPHA: f64 = 1.6448536269514722;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tester {
    Judge(Method),
    /// Fixed-horizon one-sided z-test of "canary/baseline ratio <= 1 + tolerance": on the
    /// canary's share of the errors given its share of the requests (counts, the conditional
    /// binomial the sequential judge uses) or the difference of mean ln latency (continuous).
    ZTest,
}

impl Tester {
    fn name(self) -> &'static str {
        match self {
            Tester::Judge(Method::Sequential) => "sequential",
            Tester::Judge(Method::MannWhitney) => "mann-whitney",
            Tester::ZTest => "z-test (ref.)",
        }
    }
}

fn config(method: Method, kind: Kind) -> JudgeConfig {
    let (name, tolerance, min_samples) = match kind {
        Kind::Count => ("error_rate", ERROR_TOLERANCE, 500),
        Kind::Continuous => ("latency", LATENCY_TOLERANCE, 50),
    };
    JudgeConfig {
        method,
        alpha: ALPHA,
        pass_early: false,
        min_score: 100.0,
        metrics: vec![MetricConfig {
            name: name.into(),
            kind,
            direction: Direction::IncreaseIsBad,
            tolerance: Some(tolerance),
            critical: true,
            min_samples: Some(min_samples),
        }],
    }
}

/// Cumulative sufficient statistics for the z-test reference.
#[derive(Default)]
struct ZState {
    req: [f64; 2],
    err: [f64; 2],
    n: [f64; 2],
    sum: [f64; 2],
    sum_sq: [f64; 2],
}

impl ZState {
    fn observe(&mut self, i: &Interval) {
        let g = usize::from(i.group == Group::Canary);
        self.req[g] += i.requests as f64;
        self.err[g] += i.errors as f64;
        for v in &i.latency_ms {
            let l = v.ln();
            self.n[g] += 1.0;
            self.sum[g] += l;
            self.sum_sq[g] += l * l;
        }
    }

    fn rejects(&self, kind: Kind) -> bool {
        match kind {
            Kind::Count => {
                let (requests, errors) = (self.req[0] + self.req[1], self.err[0] + self.err[1]);
                if self.req[0] == 0.0 || self.req[1] == 0.0 || errors == 0.0 {
                    return false;
                }
                let theta0 = theta(self.req[1] / requests, 1.0 + ERROR_TOLERANCE);
                let se = (errors * theta0 * (1.0 - theta0)).sqrt();
                (self.err[1] - errors * theta0) / se > Z_ALPHA
            }
            Kind::Continuous => {
                if self.n[0] < 2.0 || self.n[1] < 2.0 {
                    return false;
                }
                let mean = |g: usize| self.sum[g] / self.n[g];
                let var =
                    |g: usize| (self.sum_sq[g] - self.n[g] * mean(g) * mean(g)) / (self.n[g] - 1.0);
                let se = (var(0) / self.n[0] + var(1) / self.n[1]).sqrt();
                (mean(1) - mean(0) - LATENCY_TOLERANCE.ln_1p()) / se > Z_ALPHA
            }
        }
    }
}

/// The chance that one of the errors falls to a canary with share `rho` of the requests when
/// its error rate is `ratio` times the baseline's.
fn theta(rho: f64, ratio: f64) -> f64 {
    rho * ratio / (rho * ratio + 1.0 - rho)
}

/// The standard normal quantile (bisection on `erfc`).
fn normal_quantile(p: f64) -> f64 {
    let cdf = |x: f64| 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
    let (mut lo, mut hi) = (-10.0, 10.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// `N*`: the expected requests (both groups) a one-sided fixed-horizon test at `ALPHA`, looked
/// at once, needs to fail a canary of `scenario` with probability `power`. Counts: the
/// conditional binomial test of the canary's share of the errors (normal approximation);
/// latency: the z-test of mean ln latency (sigma known). Both are the most powerful tests of
/// their hypothesis under the simulated model, so `N*` is what the best fixed horizon costs.
fn fixed_horizon_requests(scenario: &Scenario, kind: Kind, power: f64) -> f64 {
    let z = Z_ALPHA + normal_quantile(power);
    let rho = scenario.canary_share;
    match kind {
        Kind::Count => {
            let t0 = theta(rho, 1.0 + ERROR_TOLERANCE);
            let t1 = theta(rho, scenario.error_ratio);
            let errors = ((Z_ALPHA * (t0 * (1.0 - t0)).sqrt()
                + normal_quantile(power) * (t1 * (1.0 - t1)).sqrt())
                / (t1 - t0))
                .powi(2);
            let per_request =
                scenario.baseline_error_rate * (1.0 - rho + rho * scenario.error_ratio);
            errors / per_request
        }
        Kind::Continuous => {
            let shift = scenario.latency_ratio.ln() - LATENCY_TOLERANCE.ln_1p();
            let samples =
                (z * scenario.latency_sigma / shift).powi(2) * (1.0 / rho + 1.0 / (1.0 - rho));
            samples * scenario.requests as f64 / scenario.latency_samples as f64
        }
    }
}

/// The one-sided 95% lower confidence bound (Clopper-Pearson) of a power that failed all but
/// `missed` of `runs` runs: the power at which so few misses happen only 5% of the time.
fn power_lower_bound(missed: u64, runs: u64) -> f64 {
    let n = runs as f64;
    // ln P(at most `missed` misses of `runs` when each run misses with probability q).
    let log_cdf = |q: f64| {
        let mut log_term = n * (-q).ln_1p(); // j = 0
        let mut terms = vec![log_term];
        for j in 1..=missed {
            let j = j as f64;
            log_term += ((n - j + 1.0) / j).ln() + q.ln() - (-q).ln_1p();
            terms.push(log_term);
        }
        let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
    };
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..100 {
        let q = 0.5 * (lo + hi);
        if log_cdf(q) > 0.05f64.ln() {
            lo = q;
        } else {
            hi = q;
        }
    }
    1.0 - 0.5 * (lo + hi)
}

/// A power to three decimals near 1, where one decimal would round it to 100%.
fn pct_power(v: f64) -> String {
    if v > 0.999 && v < 1.0 {
        format!("{:.3}%", v * 100.0)
    } else {
        pct(v)
    }
}

/// What one run did: whether a look at each interval fails it, and the requests by then.
struct Run {
    /// Sequential: failed by interval h (its failures stick). Fixed horizon: a test with its
    /// horizon at h fails.
    fails_at: Vec<bool>,
    requests_by: Vec<u64>,
}

impl Run {
    fn first_fail(&self) -> Option<usize> {
        self.fails_at.iter().position(|f| *f)
    }
}

/// One run; `stop` ends a sequential run at its first failure (all that detection needs).
fn run_one(scenario: &Scenario, tester: Tester, kind: Kind, seed: u64, stop: bool) -> Run {
    let mut judge = match tester {
        Tester::Judge(m) => Some(Judge::new(&config(m, kind)).expect("valid config")),
        Tester::ZTest => None,
    };
    let mut z = ZState::default();
    let mut run = Run {
        fails_at: Vec::with_capacity(scenario.intervals),
        requests_by: Vec::with_capacity(scenario.intervals),
    };
    let mut requests = 0;
    let mut failed = false;
    for (h, pair) in Stream::new(scenario, seed).enumerate() {
        let at_end = h + 1 == scenario.intervals;
        for i in &pair {
            requests += i.requests;
        }
        let fails = match (&mut judge, tester) {
            (Some(j), Tester::Judge(Method::Sequential)) => {
                if !failed {
                    for i in &pair {
                        j.observe(i).expect("valid interval");
                    }
                    failed = j.verdict(at_end) == Some(Verdict::Fail);
                }
                failed
            }
            // A look at a fixed-horizon test: its verdict were the bake to end here.
            (Some(j), _) => {
                for i in &pair {
                    j.observe(i).expect("valid interval");
                }
                j.verdict(true) == Some(Verdict::Fail)
            }
            (None, _) => {
                for i in &pair {
                    z.observe(i);
                }
                z.rejects(kind)
            }
        };
        run.fails_at.push(fails);
        run.requests_by.push(requests);
        if stop && failed {
            break;
        }
    }
    run
}

fn run_many(
    scenario: &Scenario,
    tester: Tester,
    kind: Kind,
    runs: u64,
    salt: u64,
    stop: bool,
) -> Vec<Run> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|th| {
                scope.spawn(move || {
                    (th..runs)
                        .step_by(threads as usize)
                        .map(|i| run_one(scenario, tester, kind, salt * 1_000_003 + i, stop))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("bench thread"))
            .collect()
    })
}

fn share(runs: &[Run], pred: impl Fn(&Run) -> bool) -> f64 {
    runs.iter().filter(|r| pred(r)).count() as f64 / runs.len() as f64
}

/// The fraction of runs failed when looked at interval h: by h for the sequential test
/// (whose looks are free), at h for a fixed horizon.
fn power_at(runs: &[Run], h: usize, sequential: bool) -> f64 {
    share(runs, |r| {
        if sequential {
            r.first_fail().is_some_and(|f| f <= h)
        } else {
            r.fails_at[h]
        }
    })
}

/// Mean requests per interval of a scenario's runs.
fn requests_per_interval(runs: &[Run]) -> f64 {
    runs.iter()
        .map(|r| *r.requests_by.last().unwrap() as f64 / r.requests_by.len() as f64)
        .sum::<f64>()
        / runs.len() as f64
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn thousands(v: f64) -> String {
    format!("{:.0}k", v / 1000.0)
}

/// The run's decision with the default configuration (both metrics, alpha split between
/// them, pass early, the first failed metric ends the bake): the interval the run was decided
/// at and its verdict, and the interval each metric failed at.
struct RunLevel {
    verdict: Verdict,
    decided: usize,
    metric_failed: [Option<usize>; 2],
}

fn run_level_one(scenario: &Scenario, seed: u64) -> RunLevel {
    let mut judge = Judge::new(&JudgeConfig::default()).expect("valid config");
    for (h, pair) in Stream::new(scenario, seed).enumerate() {
        for i in &pair {
            judge.observe(i).expect("valid interval");
        }
        let at_end = h + 1 == scenario.intervals;
        if let Some(verdict) = judge.verdict(at_end) {
            let report = judge.report(at_end);
            let t = |at: Option<f64>| at.map(|t| (t / scenario.step).round() as usize);
            return RunLevel {
                verdict,
                decided: t(report.decided_at).unwrap_or(h + 1),
                metric_failed: [
                    t(report.metrics[0].decided_at)
                        .filter(|_| report.metrics[0].status == Status::Fail),
                    t(report.metrics[1].decided_at)
                        .filter(|_| report.metrics[1].status == Status::Fail),
                ],
            };
        }
    }
    unreachable!("a verdict at the bake end")
}

fn median(mut v: Vec<usize>) -> Option<usize> {
    v.sort_unstable();
    v.get(v.len() / 2).copied()
}

/// Run-level decision times with the default configuration, on streams carrying both the
/// error counts and the latency samples.
fn run_level(runs: u64) {
    let both = Scenario {
        intervals: 60,
        step: 30.0,
        requests: 10_000,
        latency_samples: 1000,
        ..Scenario::default()
    };
    let latency_rows = Scenario {
        intervals: 30,
        requests: 20_000,
        latency_samples: 1000,
        ..Scenario::default()
    };
    let rows: Vec<(&str, Scenario, Option<usize>)> = vec![
        ("A/A", both.clone(), None),
        (
            "errors 2x (0.5% -> 1%)",
            Scenario {
                error_ratio: 2.0,
                ..both.clone()
            },
            Some(0),
        ),
        (
            "latency +20%",
            Scenario {
                latency_ratio: 1.2,
                ..both.clone()
            },
            Some(1),
        ),
        ("A/A, 30 x 60 s", latency_rows.clone(), None),
        (
            "latency +20%, 30 x 60 s",
            Scenario {
                latency_ratio: 1.2,
                ..latency_rows.clone()
            },
            Some(1),
        ),
    ];
    println!();
    println!(
        "Run-level decisions with the default configuration (error_rate critical and latency,"
    );
    println!(
        "alpha 0.05 split between them, pass_early, min_score 100: the first failed metric ends"
    );
    println!("the bake), {runs} runs per row. Streams carry both metrics: a 30-minute bake of 60");
    println!(
        "intervals of 30 s, ~10,000 requests and 1000 latency samples each (5% canary); and the"
    );
    println!(
        "latency rows' 30 intervals of 60 s, ~20,000 requests and 1000 samples. 'run decided':"
    );
    println!("the interval the run's verdict came at, as a share of the bake (median, and 90th");
    println!("percentile); 'metric failed': the regressed metric's own failure, for comparison.");
    println!();
    println!(
        "| {:<24} | {:>6} | {:>7} | {:>7} | {:>7} | {:>20} | {:>20} | {:>20} |",
        "stream",
        "bake",
        "fail",
        "pass",
        "inconcl.",
        "run decided median",
        "run decided p90",
        "metric failed median"
    );
    println!(
        "|{:-<26}|{:-<8}|{:-<9}|{:-<9}|{:-<10}|{:-<22}|{:-<22}|{:-<22}|",
        "", "", "", "", "", "", "", ""
    );
    for (salt, (name, scenario, regressed)) in rows.iter().enumerate() {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
        let all: Vec<RunLevel> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|th| {
                    scope.spawn(move || {
                        (th..runs)
                            .step_by(threads as usize)
                            .map(|i| run_level_one(scenario, (7000 + salt as u64) * 1_000_003 + i))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("bench thread"))
                .collect()
        });
        let count = |v: Verdict| all.iter().filter(|r| r.verdict == v).count() as f64 / runs as f64;
        let len = scenario.intervals as f64;
        let share = |h: Option<usize>| {
            h.map_or_else(
                || "-".to_string(),
                |h| format!("{h} ({:.3})", h as f64 / len),
            )
        };
        let mut decided: Vec<usize> = all.iter().map(|r| r.decided).collect();
        decided.sort_unstable();
        let p90 = decided.get(decided.len() * 9 / 10).copied();
        let metric =
            regressed.and_then(|m| median(all.iter().filter_map(|r| r.metric_failed[m]).collect()));
        println!(
            "| {:<24} | {:>6} | {:>7} | {:>7} | {:>8} | {:>20} | {:>20} | {:>20} |",
            name,
            scenario.intervals,
            pct(count(Verdict::Fail)),
            pct(count(Verdict::Pass)),
            pct(count(Verdict::Inconclusive)),
            share(median(decided.clone())),
            share(p90),
            share(metric),
        );
    }
}

fn main() {
    let runs: u64 = std::env::var("JUDGE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let power_runs: u64 = std::env::var("JUDGE_BENCH_POWER_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let started = std::time::Instant::now();
    if std::env::var("JUDGE_BENCH_SECTION").as_deref() == Ok("run-level") {
        run_level(runs);
        println!();
        println!("took {:.1} s", started.elapsed().as_secs_f64());
        return;
    }
    let counts = Scenario {
        intervals: 60,
        step: 30.0,
        requests: 10_000,
        ..Scenario::default()
    };
    let latency = Scenario {
        intervals: 30,
        requests: 20_000,
        latency_samples: 1000,
        ..Scenario::default()
    };
    let testers = [
        Tester::Judge(Method::Sequential),
        Tester::Judge(Method::MannWhitney),
        Tester::ZTest,
    ];
    let cases: Vec<(&str, Scenario, Kind, bool)> = vec![
        ("A/A errors", counts.clone(), Kind::Count, false),
        (
            "errors at tolerance 1.2x",
            Scenario {
                error_ratio: 1.2,
                ..counts.clone()
            },
            Kind::Count,
            false,
        ),
        (
            "errors 2x (0.5% -> 1%)",
            Scenario {
                error_ratio: 2.0,
                ..counts.clone()
            },
            Kind::Count,
            true,
        ),
        ("A/A latency", latency.clone(), Kind::Continuous, false),
        (
            "latency at tolerance +10%",
            Scenario {
                latency_ratio: 1.1,
                ..latency.clone()
            },
            Kind::Continuous,
            false,
        ),
        (
            "latency +20%",
            Scenario {
                latency_ratio: 1.2,
                ..latency.clone()
            },
            Kind::Continuous,
            true,
        ),
    ];
    println!(
        "judge benchmark: {runs} runs per row, alpha {ALPHA}, 5% canary, baseline error rate 0.5%"
    );
    println!(
        "  errors:  {} intervals of ~{} requests; tolerance {ERROR_TOLERANCE} (fail above 1.2x)",
        counts.intervals, counts.requests
    );
    println!(
        "  latency: {} intervals of {} latency samples (lognormal, median {} ms, sigma {}); \
         tolerance {LATENCY_TOLERANCE} (fail above 1.1x)",
        latency.intervals,
        latency.latency_samples,
        latency.latency_median_ms,
        latency.latency_sigma
    );
    println!(
        "  'fail, every look': share of runs failed at some interval when asked after each one"
    );
    println!(
        "  'fail at end': share failed when asked once, at the bake end (the fixed-horizon use)"
    );
    println!();
    println!(
        "| {:<26} | {:<13} | {:>17} | {:>12} | {:>16} | {:>18} |",
        "scenario",
        "method",
        "fail, every look",
        "fail at end",
        "median h to fail",
        "mean req. to fail"
    );
    println!(
        "|{:-<28}|{:-<15}|{:-<19}|{:-<14}|{:-<18}|{:-<20}|",
        "", "", "", "", "", ""
    );
    let mut detection = Vec::new();
    for (salt, (name, scenario, kind, regression)) in cases.iter().enumerate() {
        let mut per = Vec::new();
        for tester in testers {
            let rs = run_many(scenario, tester, *kind, runs, salt as u64, false);
            let any = share(&rs, |r| r.first_fail().is_some());
            let end = share(&rs, |r| *r.fails_at.last().unwrap());
            let mut first: Vec<usize> = rs.iter().filter_map(Run::first_fail).collect();
            first.sort_unstable();
            let median = first.get(first.len() / 2).map(|h| (h + 1).to_string());
            let mean_req = (!first.is_empty()).then(|| {
                rs.iter()
                    .filter_map(|r| r.first_fail().map(|h| r.requests_by[h] as f64))
                    .sum::<f64>()
                    / first.len() as f64
            });
            println!(
                "| {:<26} | {:<13} | {:>17} | {:>12} | {:>16} | {:>18} |",
                name,
                tester.name(),
                pct(any),
                pct(end),
                median.unwrap_or_else(|| "-".into()),
                mean_req.map_or_else(|| "-".into(), thousands),
            );
            per.push((tester, rs, mean_req));
        }
        if *regression {
            detection.push((name.to_string(), per));
        }
    }
    println!();
    println!("Detection against the fixed horizon at equal power, from {power_runs} more sequential runs of each");
    println!("regression (each stopped at its first failure). 'power' is the share of them the");
    println!("sequential judge failed by the bake end (when it failed all of them, the one-sided 95% lower");
    println!("confidence bound, marked >=, so as not to credit it with more than the runs show); 'seq.' its");
    println!("requests (both groups) until it failed the run, a run it never failed counting the whole bake:");
    println!("mean and median, and in intervals; 'N*' the requests a one-sided fixed-horizon test at the");
    println!("same alpha, looked at once, needs for that same power (analytic, see fixed_horizon_requests),");
    println!("'z@N*' the simulated power of the z-test reference at the interval nearest N*. Shorter bakes:");
    println!("the same comparison for a bake cut at the first interval by which the sequential judge fails");
    println!(
        "the given share of runs. 'N* lo': N* at the power's one-sided 95% lower confidence bound"
    );
    println!(
        "(Clopper-Pearson), the power the runs show beyond doubt. Goal: seq. mean / N* <= 1/3."
    );
    println!();
    println!(
        "| {:<24} | {:>5} | {:>9} | {:>13} | {:>17} | {:>13} | {:>7} | {:>9} | {:>11} | {:>13} |",
        "regression",
        "bake",
        "power",
        "seq. mean",
        "seq. median",
        "N*",
        "z@N*",
        "mean / N*",
        "median / N*",
        "mean / N* lo"
    );
    println!(
        "|{:-<26}|{:-<7}|{:-<11}|{:-<15}|{:-<19}|{:-<15}|{:-<9}|{:-<11}|{:-<13}|{:-<15}|",
        "", "", "", "", "", "", "", "", "", ""
    );
    let scenario_of = |name: &str| {
        cases
            .iter()
            .find(|c| c.0 == name)
            .map(|c| (c.1.clone(), c.2))
            .expect("case")
    };
    for (salt, (name, per)) in detection.iter().enumerate() {
        let (scenario, kind) = scenario_of(name);
        let (_, zt, _) = &per[2];
        // Power near 1 needs many runs to show: a fresh, larger set of sequential runs, each
        // stopped at its first failure.
        let seq = &run_many(
            &scenario,
            Tester::Judge(Method::Sequential),
            kind,
            power_runs,
            1000 + salt as u64,
            true,
        );
        let len = scenario.intervals;
        let per_interval = requests_per_interval(seq);
        // The full bake, then bakes cut where the judge reaches these powers.
        let mut horizons = vec![(len, "full".to_string())];
        for target in [0.99, 0.9, 0.8] {
            if let Some(h) = (0..len).find(|h| power_at(seq, *h, true) >= target) {
                if h + 1 < len {
                    horizons.push((h + 1, format!("{}", h + 1)));
                }
            }
        }
        for (h, label) in horizons {
            let missed = seq
                .iter()
                .filter(|r| r.first_fail().is_none_or(|f| f >= h))
                .count() as u64;
            let low = power_lower_bound(missed, seq.len() as u64);
            let (power, mark) = if missed == 0 {
                (low, ">=")
            } else {
                (1.0 - missed as f64 / seq.len() as f64, "")
            };
            let mut used: Vec<(f64, usize)> = seq
                .iter()
                .map(|r| {
                    let at = r.first_fail().map_or(h - 1, |f| f.min(h - 1));
                    (r.requests_by[at] as f64, at + 1)
                })
                .collect();
            let mean_req = used.iter().map(|u| u.0).sum::<f64>() / used.len() as f64;
            let mean_h = used.iter().map(|u| u.1 as f64).sum::<f64>() / used.len() as f64;
            used.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (median_req, _) = used[used.len() / 2];
            let mut hs: Vec<usize> = used.iter().map(|u| u.1).collect();
            hs.sort_unstable();
            let median_h = hs[hs.len() / 2];
            let n_star = fixed_horizon_requests(&scenario, kind, power);
            let n_star_low = fixed_horizon_requests(&scenario, kind, low);
            let n_star_h = n_star / per_interval;
            let z_check = {
                let at = (n_star_h.round() as usize).clamp(1, len) - 1;
                if n_star_h.round() as usize > len {
                    "> bake".to_string()
                } else {
                    pct(share(zt, |r| r.fails_at[at]))
                }
            };
            println!(
                "| {:<24} | {:>5} | {:>9} | {:>13} | {:>17} | {:>13} | {:>7} | {:>9} | {:>11} | {:>13} |",
                name,
                label,
                format!("{mark}{}", pct_power(power)),
                format!("{} ({:.1} h)", thousands(mean_req), mean_h),
                format!("{} ({} h)", thousands(median_req), median_h),
                format!("{} ({:.1} h)", thousands(n_star), n_star_h),
                z_check,
                format!("{:.3}", mean_req / n_star),
                format!("{:.2}", median_req / n_star),
                format!("{:.3}", mean_req / n_star_low),
            );
        }
    }
    run_level(runs);
    println!();
    println!("took {:.1} s", started.elapsed().as_secs_f64());
}
