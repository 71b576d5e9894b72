//! `gatekeeper judge`: exit codes, outputs, configuration and input errors.

use std::path::PathBuf;
use std::process::Output;

use gatekeeper_e2e::{gatekeeper, repo_root, unique};

fn example(name: &str) -> PathBuf {
    repo_root().join("examples/judge").join(name)
}

fn judge(args: &[&str]) -> Output {
    gatekeeper()
        .arg("judge")
        .args(args)
        .output()
        .expect("run gatekeeper judge")
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(unique(name));
    std::fs::write(&path, text).expect("write temp file");
    path
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn healthy_canary_passes_with_exit_0() {
    let input = example("healthy.jsonl");
    let out = judge(&["--input", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("verdict: pass"), "{text}");
    assert!(
        text.contains("error_rate (count, critical): pass"),
        "{text}"
    );
}

#[test]
fn regression_fails_early_with_exit_2_and_json_evidence() {
    let input = example("regression.jsonl");
    let out = judge(&["--input", input.to_str().unwrap(), "--output", "json"]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["verdict"], "fail");
    let decided = report["decided_at"].as_f64().expect("decided_at is a t");
    assert!(
        decided < 1800.0,
        "a 2x regression fails before the bake end, got {decided}"
    );
    let metrics = report["metrics"].as_array().expect("metrics");
    let errors = metrics
        .iter()
        .find(|m| m["name"] == "error_rate")
        .expect("error_rate metric");
    assert_eq!(errors["status"], "fail");
    assert!(errors["e_value"].as_f64().unwrap() >= 40.0);
    assert!(errors["interval"]["lower"].as_f64().unwrap() > 1.2);
    assert!(errors["reason"]
        .as_str()
        .unwrap()
        .contains("more than 1.20x"));
}

#[test]
fn mann_whitney_decides_only_at_the_end() {
    let input = example("regression.jsonl");
    let out = judge(&[
        "--input",
        input.to_str().unwrap(),
        "--method",
        "mann-whitney",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["verdict"], "fail");
    assert_eq!(report["method"], "mann-whitney");
    assert_eq!(report["decided_at"].as_f64(), Some(1800.0));
    assert!(report["metrics"][0]["p_value"].as_f64().unwrap() < 0.025);
}

#[test]
fn no_canary_traffic_is_inconclusive_with_exit_2() {
    let lines: String = (1..=5)
        .flat_map(|t| {
            [
                format!(r#"{{"t": {t}, "group": "baseline", "requests": 1000, "errors": 5, "latency_ms": [100, 120]}}"#),
                format!(r#"{{"t": {t}, "group": "canary", "requests": 0, "errors": 0}}"#),
            ]
        })
        .collect::<Vec<_>>()
        .join("\n");
    let input = temp_file("no-traffic.jsonl", &lines);
    let out = judge(&["--input", input.to_str().unwrap(), "--output", "json"]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["verdict"], "inconclusive");
    assert!(report["decided_at"].is_null());
    assert!(report["reason"].as_str().unwrap().contains("no data"));
}

#[test]
fn a_bad_line_is_an_error_naming_file_and_line() {
    let input = temp_file(
        "bad.jsonl",
        "{\"t\": 60, \"group\": \"baseline\", \"requests\": 100, \"errors\": 1}\n\
         {\"t\": 60, \"group\": \"canery\", \"requests\": 5, \"errors\": 0}\n",
    );
    let out = judge(&["--input", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:2:", input.display())), "{err}");
    assert!(err.contains("canery"), "{err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn counts_that_would_wrap_are_errors_naming_the_line() {
    // u64::MAX is what -1 becomes written unsigned; summed, it wrapped into a passing canary.
    let max = u64::MAX;
    let one =
        format!("{{\"t\": 60, \"group\": \"canary\", \"requests\": {max}, \"errors\": {max}}}\n");
    let half = 1u64 << 52;
    let two = format!(
        "{{\"t\": 60, \"group\": \"canary\", \"requests\": {half}, \"errors\": 0}}\n\
         {{\"t\": 60, \"group\": \"canary\", \"requests\": {}, \"errors\": {half}}}\n",
        half + 1
    );
    for (name, text, want) in [
        (
            "one.jsonl",
            one,
            ":1: requests (18446744073709551615) exceed 2^53",
        ),
        (
            "two.jsonl",
            two,
            ":2: interval t=60 (canary): the lines at this t count more than 2^53 requests together",
        ),
    ] {
        let input = temp_file(name, &text);
        let out = judge(&["--input", input.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stdout(&out));
        assert!(stderr(&out).contains(want), "{name}: {}", stderr(&out));
    }
}

#[test]
fn more_errors_than_requests_is_an_error() {
    let input = temp_file(
        "errors.jsonl",
        "{\"t\": 60, \"group\": \"canary\", \"requests\": 5, \"errors\": 9}\n",
    );
    let out = judge(&["--input", input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(":1: errors (9) exceed requests (5)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_input_is_an_error() {
    let out = judge(&["--input", "/nonexistent/intervals.jsonl"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("/nonexistent/intervals.jsonl"));
}

#[test]
fn config_table_is_read_and_flags_override_it() {
    let input = example("regression.jsonl");
    let config = example("gatekeeper.toml");
    let out = judge(&[
        "--input",
        input.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["alpha"], 0.05);

    // A tolerance of 150% on errors and latency: the regression is within it.
    let lenient = temp_file(
        "lenient.toml",
        "service = \"photos\"\n[maintenance]\nconcurrency = 1\n[canary.judge]\nalpha = 0.05\n\
         [[canary.judge.metrics]]\nname = \"errors\"\nkind = \"count\"\ntolerance = 1.5\n",
    );
    let out = judge(&[
        "--input",
        input.to_str().unwrap(),
        "--config",
        lenient.to_str().unwrap(),
        "--alpha",
        "0.01",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["alpha"], 0.01, "--alpha overrides the table");
    assert_eq!(report["metrics"][0]["name"], "errors");
}

#[test]
fn bad_config_keys_and_values_are_errors_naming_file_line_and_key() {
    let input = example("healthy.jsonl");
    for (file, text, located) in [
        (
            "typo.toml",
            "[canary.judge]\nalpah = 0.05\n",
            ":2:1: canary.judge.alpah: unknown field",
        ),
        // A section no view reads is a typo too, located at its header.
        (
            "section.toml",
            "[canery.judge]\nalpha = 0.05\n",
            ":1:2: canery: unknown section `canery`",
        ),
        // A value out of range is located at the value.
        (
            "range.toml",
            "[canary.judge]\nmethod = \"sequential\"\nalpha = 2.0\n",
            ":3:9: canary.judge.alpha: must be between 0 and 1",
        ),
    ] {
        let config = temp_file(file, text);
        let args = ["--input", input.to_str().unwrap(), "--config"];
        let out = judge(&[&args[..], &[config.to_str().unwrap()]].concat());
        assert_eq!(out.status.code(), Some(1), "{file}");
        let err = stderr(&out);
        assert!(err.contains(file) && err.contains(located), "{file}: {err}");
    }
}

#[test]
fn an_out_of_range_alpha_is_an_error() {
    let input = example("healthy.jsonl");
    let out = judge(&["--input", input.to_str().unwrap(), "--alpha", "1.5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("alpha"), "{}", stderr(&out));
}
