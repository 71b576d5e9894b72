//! Text and JSON reports of replays of recorded streams, reviewed and kept as snapshots.

use canary::judge::{replay, JudgeConfig, Method, Report};

fn run(file: &str, method: Method) -> Report {
    let path = format!("{}/tests/data/judge/{file}", env!("CARGO_MANIFEST_DIR"));
    let input = std::io::BufReader::new(std::fs::File::open(&path).expect("test data"));
    let config = JudgeConfig {
        method,
        ..JudgeConfig::default()
    };
    replay(&config, input).expect("replay")
}

/// The report as JSON with keys sorted, the same whether or not another crate of the
/// workspace turns on serde_json's `preserve_order`.
fn json(report: &Report) -> Canon {
    canon(serde_json::to_value(report).expect("serialisable report"))
}

#[derive(serde::Serialize)]
#[serde(untagged)]
enum Canon {
    Object(std::collections::BTreeMap<String, Canon>),
    Array(Vec<Canon>),
    Leaf(serde_json::Value),
}

fn canon(v: serde_json::Value) -> Canon {
    match v {
        serde_json::Value::Object(m) => {
            Canon::Object(m.into_iter().map(|(k, v)| (k, canon(v))).collect())
        }
        serde_json::Value::Array(a) => Canon::Array(a.into_iter().map(canon).collect()),
        leaf => Canon::Leaf(leaf),
    }
}

#[test]
fn healthy_canary_passes_at_the_bake_end() {
    let report = run("healthy.jsonl", Method::Sequential);
    insta::assert_snapshot!("judge_healthy_sequential_text", report.to_string());
    insta::assert_json_snapshot!("judge_healthy_sequential_json", json(&report));
}

#[test]
fn error_regression_fails_fast() {
    let report = run("error_regression.jsonl", Method::Sequential);
    insta::assert_snapshot!("judge_error_regression_sequential_text", report.to_string());
    insta::assert_json_snapshot!("judge_error_regression_sequential_json", json(&report));
}

#[test]
fn error_regression_under_mann_whitney() {
    let report = run("error_regression.jsonl", Method::MannWhitney);
    insta::assert_snapshot!(
        "judge_error_regression_mann_whitney_text",
        report.to_string()
    );
}

#[test]
fn a_latency_regression_ends_the_bake_when_latency_fails() {
    let report = run("latency_regression.jsonl", Method::Sequential);
    insta::assert_snapshot!(
        "judge_latency_regression_sequential_text",
        report.to_string()
    );
}

#[test]
fn no_canary_traffic_is_inconclusive() {
    let report = run("no_canary_traffic.jsonl", Method::Sequential);
    insta::assert_snapshot!("judge_no_canary_traffic_text", report.to_string());
    insta::assert_json_snapshot!("judge_no_canary_traffic_json", json(&report));
}

#[test]
fn p99_aggregates_are_judged_one_pair_per_interval() {
    let report = run("p99_aggregates.jsonl", Method::Sequential);
    insta::assert_snapshot!("judge_p99_aggregates_text", report.to_string());
}
