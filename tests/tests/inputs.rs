//! Bad input is refused with exit 1, a message naming the file or flag and the field, and no
//! AWS request (`GATEKEEPER_AWS_CALLS=1` reports how many were sent). The endpoint points at a
//! closed port, so these need no moto; the last test, a dry run refused by its preflight, does.
//!
//! What a refusal prints is the contract: each is held whole (exit code, stdout, stderr) as a
//! filtered snapshot in `snapshots/`.

use std::path::{Path, PathBuf};

use gatekeeper_e2e::fleet::Fleet;
use gatekeeper_e2e::{assert_cli_snapshot, gatekeeper, moto, output};

const CANARY: &str = r#"service = "photos"
environment = "prod"
region = "us-east-1"

[canary]
fleet = "workers"
nodes = ["w1", "w2"]
depool_command = ["true"]
repool_command = ["true"]

[canary.metrics]
namespace = "Photos"
requests_metric = "Requests"

[canary.deployer]
kind = "command"
command = ["deploy.sh"]
"#;

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("gatekeeper.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A run: (exit code, stdout, stderr).
type Run = (Option<i32>, String, String);

/// Runs the binary with `--config config` against a closed endpoint; the run and the AWS
/// requests it sent.
fn refused(args: &[&str], config: &Path) -> (Run, u64) {
    let mut all: Vec<&str> = args.to_vec();
    let config = config.to_str().unwrap();
    all.extend(["--config", config]);
    sent(&all, Path::new(config).parent().unwrap())
}

/// Runs the binary with `args` in `dir` against a closed endpoint; the run and the AWS requests
/// it sent.
fn sent(args: &[&str], dir: &Path) -> (Run, u64) {
    let mut cmd = gatekeeper();
    cmd.args(args)
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("GATEKEEPER_AWS_CALLS", "1")
        .current_dir(dir);
    let run = output(cmd);
    let calls = run
        .2
        .lines()
        .find_map(|l| l.strip_prefix("aws calls: "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(|n| n.parse().unwrap())
        .expect("GATEKEEPER_AWS_CALLS reports on stderr");
    (run, calls)
}

#[test]
fn a_service_name_that_escapes_the_journal_directory_is_refused_by_every_view() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        &CANARY.replace("service = \"photos\"", "service = \"../../../tmp/x\""),
    );
    for args in [
        &["canary", "run", "--revision", "v2"][..],
        &["canary", "status"][..],
        &["maintenance", "on"][..],
        &["redrive", "--dry-run"][..],
    ] {
        let (run, calls) = refused(args, &config);
        assert_cli_snapshot!(format!("escaping_service_{}", args[..2].join("_")), run);
        assert_eq!(calls, 0, "{args:?}");
    }
    assert!(!dir.path().join("../../../tmp/x-prod.jsonl").exists());
}

#[test]
fn an_alarm_threshold_that_is_not_a_number_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["nan", "inf"] {
        let config = write(
            dir.path(),
            &format!(
                "service = \"photos\"\nenvironment = \"prod\"\n\n[[alarms.custom]]\nname = \"slow\"\n\
                 namespace = \"App\"\nmetric = \"Latency\"\nstatistic = \"p99\"\n\
                 comparison = \"GreaterThanThreshold\"\nthreshold = {bad}\n"
            ),
        );
        for args in [&["stack", "deploy"][..], &["synth"][..]] {
            let (run, calls) = refused(args, &config);
            assert_cli_snapshot!(format!("threshold_{bad}_{}", args[0]), run);
            assert_eq!(calls, 0);
        }
    }
}

#[test]
fn a_default_judge_with_intervals_under_a_minute_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        &CANARY.replace(
            "[canary.metrics]",
            "bake_seconds = 180\ninterval_seconds = 30\n\n[canary.metrics]",
        ),
    );
    let (run, calls) = refused(&["canary", "run", "--revision", "v2"], &config);
    assert_cli_snapshot!("interval_under_a_minute", run);
    assert_eq!(calls, 0);
}

#[test]
fn a_step_timeout_out_of_range_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        &format!("{CANARY}\n[canary.timeouts]\ndeploy_seconds = 0\n"),
    );
    let (run, calls) = refused(&["canary", "run", "--revision", "v2"], &config);
    assert_cli_snapshot!("step_timeout_out_of_range", run);
    assert_eq!(calls, 0);
}

#[test]
fn an_aws_timeout_that_is_not_a_number_of_seconds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), CANARY);
    let mut cmd = gatekeeper();
    cmd.args(["canary", "status", "--config"])
        .arg(&config)
        .env("GATEKEEPER_AWS_TIMEOUT_SECONDS", "soon");
    assert_cli_snapshot!("aws_timeout_not_seconds", output(cmd));
}

#[test]
fn an_until_that_is_not_rfc_3339_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "service = \"photos\"\nenvironment = \"prod\"\n");
    let (run, calls) = refused(&["maintenance", "on", "--until", "tomorrow"], &config);
    assert_cli_snapshot!("until_not_rfc_3339", run);
    assert_eq!(calls, 0);
}

#[test]
fn a_revision_outside_the_pattern_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), CANARY);
    let (run, calls) = refused(
        &["canary", "run", "--revision", "v2;touch /tmp/x $(id)"],
        &config,
    );
    assert_cli_snapshot!("revision_outside_the_pattern", run);
    assert_eq!(calls, 0);
}

#[test]
fn a_template_whose_resources_is_not_a_mapping_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = "Resources:\n  Topic:\n    Type: AWS::SNS::Topic\n";
    std::fs::write(dir.path().join("old.yaml"), good).unwrap();
    for (name, bad) in [
        ("new.yaml", "Resources: 5\n"),
        ("new.json", "{\"Resources\": 5}"),
    ] {
        std::fs::write(dir.path().join(name), bad).unwrap();
        let (run, calls) = sent(&["diff", "old.yaml", name], dir.path());
        assert_cli_snapshot!(format!("resources_not_a_mapping_{name}"), run);
        assert_eq!(calls, 0, "{name}");
    }
}

/// A dry run makes the read-only preflight for real: with an alarm in ALARM it is refused as the
/// run would be (exit 2), and reports no outcome.
#[test]
fn a_dry_run_is_refused_by_an_alarm_in_alarm_like_the_run() {
    let Some(moto) = moto() else { return };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fleet = rt.block_on(Fleet::new(&moto, 2, ""));
    let name = format!("{}-e2e-api-5xx", fleet.service);
    rt.block_on(async {
        use aws_sdk_cloudwatch::types::{ComparisonOperator, StateValue, Statistic};
        fleet
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(&name)
            .namespace("AWS/ApplicationELB")
            .metric_name("HTTPCode_Target_5XX_Count")
            .statistic(Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(10.0)
            .comparison_operator(ComparisonOperator::GreaterThanThreshold)
            .send()
            .await
            .unwrap();
        // moto never evaluates alarms: drive the state directly.
        fleet
            .cloudwatch
            .set_alarm_state()
            .alarm_name(&name)
            .state_value(StateValue::Alarm)
            .state_reason("test")
            .send()
            .await
            .unwrap();
    });
    for dry in [true, false] {
        let mut args = vec!["canary", "run", "--revision", "v2"];
        if dry {
            args.push("--dry-run");
        }
        let (code, stdout, stderr) = output(fleet.gatekeeper(&args));
        assert_eq!(code, Some(2), "dry run {dry}: {stdout}\n{stderr}");
        assert!(
            stdout.contains(&format!("refused: alarm {name} is in ALARM")),
            "dry run {dry}: {stdout}"
        );
        for outcome in ["promoted", "rolled-back", "checks passed"] {
            assert!(!stdout.contains(outcome), "dry run {dry}: {stdout}");
        }
        assert!(!stderr.contains("would depool"), "dry run {dry}: {stderr}");
        rt.block_on(fleet.assert_safe_on("v1"));
        if dry {
            // A dry run journals nothing and never takes the lock.
            assert!(rt.block_on(fleet.runs()).is_empty());
            assert!(rt.block_on(fleet.lock()).is_none());
        }
    }
}
