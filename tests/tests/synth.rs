//! `gatekeeper synth`: deterministic output, lint-clean templates, and bad configuration
//! reported with file, key and line, with nothing written.

use std::path::Path;
use std::process::Output;

use gatekeeper_e2e::{gatekeeper, repo_root, required_tool};

fn synth(config: &Path, out: &Path, format: &str) -> Output {
    gatekeeper()
        .args(["synth", "--config"])
        .arg(config)
        .arg("--out")
        .arg(out)
        .args(["--format", format])
        .output()
        .expect("gatekeeper runs")
}

fn examples() -> Vec<std::path::PathBuf> {
    let dir = repo_root().join("examples/photos");
    let mut configs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        // The pipeline file names the services' configurations; it is not one.
        .filter(|p| p.file_stem().is_some_and(|s| s != "pipeline"))
        .collect();
    configs.sort();
    assert!(configs.len() >= 2);
    configs
}

#[test]
fn output_is_identical_across_runs() {
    for format in ["json", "yaml"] {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        for config in examples() {
            assert!(synth(&config, a.path(), format).status.success());
            assert!(synth(&config, b.path(), format).status.success());
        }
        let mut names: Vec<_> = std::fs::read_dir(a.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "one template per stack: {names:?}");
        for name in names {
            let x = std::fs::read(a.path().join(&name)).unwrap();
            let y = std::fs::read(b.path().join(&name)).unwrap();
            assert!(!x.is_empty());
            assert_eq!(x, y, "{name:?} differs between runs");
        }
    }
}

#[test]
fn without_config_it_synthesizes_the_embedded_example_to_stdout() {
    let out = gatekeeper().arg("synth").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Metadata"]["Gatekeeper"]["Service"], "photos");
    let from_file = std::fs::read_to_string(repo_root().join("examples/photos/prod.toml")).unwrap();
    assert!(from_file.contains("service = \"photos\""));
}

#[test]
fn templates_pass_cfn_lint() {
    let Some(cfn_lint) = required_tool("cfn-lint") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for config in examples() {
        for format in ["json", "yaml"] {
            let sub = dir.path().join(format);
            assert!(synth(&config, &sub, format).status.success());
        }
    }
    let out = std::process::Command::new(cfn_lint)
        .arg("--")
        .arg(dir.path().join("json/*.json"))
        .arg(dir.path().join("yaml/*.yaml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cfn-lint found problems:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn templates_pass_checkov_with_every_suppression_explained() {
    let Some(checkov) = required_tool("checkov") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for config in examples() {
        assert!(synth(&config, dir.path(), "json").status.success());
    }
    // Without `--quiet`: with it the report holds only failed checks, and the suppressions
    // below could not be checked at all.
    let out = std::process::Command::new(checkov)
        .args(["--framework", "cloudformation", "--output", "json"])
        .args(["--skip-download", "--compact", "-d"])
        .arg(dir.path())
        .env("BC_SKIP_MAPPING", "TRUE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "checkov JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let reports = match report {
        serde_json::Value::Array(many) => many,
        one => vec![one],
    };
    let mut passed = 0;
    let mut skipped = Vec::new();
    for r in &reports {
        let failed = r["results"]["failed_checks"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let names: Vec<_> = failed
            .iter()
            .map(|f| format!("{} on {}", f["check_id"], f["resource"]))
            .collect();
        assert!(failed.is_empty(), "checkov failed checks: {names:?}");
        let parsing_errors = r["results"]["parsing_errors"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            parsing_errors.is_empty(),
            "checkov could not parse: {parsing_errors:?}"
        );
        assert_eq!(
            r["summary"]["parsing_errors"].as_u64(),
            Some(0),
            "checkov parsing errors: {}",
            r["summary"]
        );
        passed += r["summary"]["passed"].as_u64().unwrap_or(0);
        skipped.extend(
            r["results"]["skipped_checks"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
    }
    assert!(passed > 10, "checkov ran no checks: {reports:?}");
    // The templates suppress checks on purpose (SSE-SQS queues, bucket access logging): each
    // suppression must reach checkov and carry its written reason.
    assert!(
        !skipped.is_empty(),
        "checkov reported no suppressed checks: {reports:?}"
    );
    let declared: usize = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            let t: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
            t["Resources"]
                .as_object()
                .unwrap()
                .values()
                .map(|r| {
                    r["Metadata"]["checkov"]["skip"]
                        .as_array()
                        .map_or(0, Vec::len)
                })
                .sum::<usize>()
        })
        .sum();
    assert_eq!(
        skipped.len(),
        declared,
        "every suppression written in the templates is one skipped check"
    );
    for s in &skipped {
        let why = s["check_result"]["suppress_comment"]
            .as_str()
            .unwrap_or("")
            .trim();
        assert!(
            why.len() > 20,
            "suppression of {} on {} without a reason: {s}",
            s["check_id"],
            s["resource"]
        );
    }
}

fn bad_config(body: &str) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatekeeper.toml");
    std::fs::write(&config, body).unwrap();
    let out = synth(&config, &dir.path().join("out"), "json");
    (out, dir)
}

fn assert_rejected(body: &str, expect: &[&str]) {
    let (out, dir) = bad_config(body);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("gatekeeper.toml:"),
        "names the file: {stderr}"
    );
    for e in expect {
        assert!(stderr.contains(e), "expected `{e}` in: {stderr}");
    }
    assert!(
        !dir.path().join("out").exists(),
        "nothing is written on error"
    );
}

#[test]
fn missing_field_is_named() {
    assert_rejected(
        "service = \"photos\"\n",
        &[":1:1: environment: missing field `environment`"],
    );
    // In the second of two queues: the table, the field and the line of its header.
    assert_rejected(
        "service = \"photos\"\nenvironment = \"prod\"\n\n[[queues]]\nname = \"a\"\n\n[[queues]]\nmax_receive_count = 3\n",
        &[":7:1: queues[1].name: missing field `name`"],
    );
}

#[test]
fn wrong_type_is_located() {
    assert_rejected(
        "service = \"photos\"\nenvironment = \"prod\"\n\n[[queues]]\nname = \"q\"\nmax_receive_count = \"five\"\n",
        &[":6:", "queues[0].max_receive_count", "invalid type"],
    );
}

#[test]
fn unknown_key_is_located() {
    assert_rejected(
        "service = \"photos\"\nenvironment = \"prod\"\n[buckets]\nparkinglot = \"x\"\n",
        &[":4:", "unknown field `parkinglot`"],
    );
}

#[test]
fn invalid_bucket_name_is_located() {
    assert_rejected(
        "service = \"photos\"\nenvironment = \"prod\"\n[buckets]\ningestion = \"Photos_Uploads\"\n",
        &[":4:", "buckets.ingestion", "not a valid S3 bucket name"],
    );
}

#[test]
fn invalid_parameter_name_is_located() {
    assert_rejected(
        "service = \"photos\"\nenvironment = \"prod\"\n\n[flag]\nparameter = \"/aws/photos\"\n",
        &[":5:", "flag.parameter", "reserved"],
    );
}

#[test]
fn malformed_toml_is_located() {
    assert_rejected("service = \"photos\nenvironment = \"prod\"\n", &[":1:"]);
}

#[test]
fn missing_file_is_an_error() {
    let out = gatekeeper()
        .args(["synth", "--config", "/nonexistent/gatekeeper.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/gatekeeper.toml"));
}
