//! `gatekeeper canary` / `promote` end to end against moto: an ALB with a weighted listener,
//! production and canary target groups, EC2 instances, the `command` deployer recording
//! node → revision, and metrics the test puts into moto's CloudWatch.

use gatekeeper_e2e::fleet::Fleet;
use gatekeeper_e2e::{moto, output, rt};

const HEALTHY: ((f64, f64, f64), (f64, f64, f64)) =
    ((19_000.0, 19.0, 0.120), (1_000.0, 1.0, 0.121));
const BAD: ((f64, f64, f64), (f64, f64, f64)) = ((19_000.0, 19.0, 0.120), (1_000.0, 150.0, 0.121));

#[test]
fn healthy_canary_auto_promotes_the_fleet() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 3, ""));
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
    let (code, stdout, stderr) = output(fleet.gatekeeper(&[
        "canary",
        "run",
        "--revision",
        "v2",
        "--auto-promote",
        "--output",
        "json",
    ]));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["state"], "promoted");
    assert_eq!(report["previous"], "v1");
    assert!(report["approved_by"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws"));
    assert!(stderr.contains("set listener weights 95/5"), "{stderr}");
    rt.block_on(fleet.assert_safe_on("v2"));
}

#[test]
fn bad_canary_rolls_back() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 3, ""));
    rt.block_on(fleet.put_metrics(BAD.0, BAD.1));
    let (code, stdout, stderr) =
        output(fleet.gatekeeper(&["canary", "run", "--revision", "v2", "--auto-promote"]));
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains("rolled-back: judge: fail"), "{stdout}");
    assert!(stderr.contains("rolling back"), "{stderr}");
    rt.block_on(fleet.assert_safe_on("v1"));
    fleet.assert_canary_redeployed("v2", "v1");
}

#[test]
fn no_traffic_is_inconclusive_and_rolls_back() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 2, ""));
    let (code, stdout, stderr) =
        output(fleet.gatekeeper(&["canary", "run", "--revision", "v2", "--auto-promote"]));
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains("inconclusive"), "{stdout}");
    rt.block_on(fleet.assert_safe_on("v1"));
}

#[test]
fn passed_canary_waits_for_promote_which_records_the_approver() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 3, ""));
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
    let (code, stdout, stderr) = output(fleet.gatekeeper(&["canary", "run", "--revision", "v2"]));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("awaiting-approval"), "{stdout}");
    // Baking state: canary node in the canary group at 5 %, lock held, visible in status.
    let canary = fleet.nodes[0].clone();
    assert_eq!(rt.block_on(fleet.weights()), (95, 5));
    assert!(rt
        .block_on(fleet.members(&fleet.canary_tg))
        .contains(&canary));
    assert!(!rt.block_on(fleet.members(&fleet.prod_tg)).contains(&canary));
    let (code, status, _) = output(fleet.gatekeeper(&["canary", "status"]));
    assert_eq!(code, Some(0));
    // The run is parked: in flight, no process driving it, the service taken until it ends.
    assert!(status.contains(": parked: canary run"), "{status}");
    assert!(status.contains("by arn:aws"), "{status}");
    assert!(status.contains("listener weights: 95/5"), "{status}");
    assert!(status.contains("awaiting approval"), "{status}");
    // A second run is refused while this one is unfinished: the lock is parked by it.
    let (code, stdout, _) = output(fleet.gatekeeper(&["canary", "run", "--revision", "v3"]));
    assert_eq!(code, Some(2));
    assert!(
        stdout.contains("is in flight with no process driving it"),
        "{stdout}"
    );
    let lock = rt.block_on(fleet.lock()).unwrap();
    assert_eq!(lock["state"], "parked", "{lock}");

    let (code, stdout, stderr) = output(fleet.gatekeeper(&["promote", "--yes"]));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("promoted"), "{stdout}");
    rt.block_on(fleet.assert_safe_on("v2"));
    let runs = rt.block_on(fleet.runs());
    assert_eq!(runs.len(), 1, "{runs:?}");
    let records = rt.block_on(fleet.records(&runs[0]));
    assert!(
        records.iter().any(|r| r["record"]["event"] == "approved"
            && r["record"]["who"].as_str().unwrap().starts_with("arn:aws")),
        "{records:?}"
    );
    // Promote took the lock over: its records carry a larger generation than the run's start.
    let first = records.first().unwrap()["generation"].as_u64().unwrap();
    let last = records.last().unwrap()["generation"].as_u64().unwrap();
    assert!(last > first, "{first} then {last}");
}

#[test]
fn abort_after_pass_rolls_back() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 2, ""));
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
    let (code, ..) = output(fleet.gatekeeper(&["canary", "run", "--revision", "v2"]));
    assert_eq!(code, Some(0));
    let (code, stdout, stderr) = output(fleet.gatekeeper(&["canary", "abort"]));
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("aborted by `gatekeeper canary abort`"),
        "{stdout}"
    );
    rt.block_on(fleet.assert_safe_on("v1"));
}

#[test]
fn alarm_in_alarm_refuses_before_changing_anything() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 2, ""));
    let name = format!("{}-e2e-api-5xx", fleet.service);
    rt.block_on(async {
        fleet
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(&name)
            .namespace("AWS/ApplicationELB")
            .metric_name("HTTPCode_Target_5XX_Count")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(10.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold,
            )
            .send()
            .await
            .unwrap();
        // moto never evaluates alarms: drive the state directly.
        fleet
            .cloudwatch
            .set_alarm_state()
            .alarm_name(&name)
            .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
            .state_reason("test")
            .send()
            .await
            .unwrap();
    });
    let (code, stdout, stderr) = output(fleet.gatekeeper(&["canary", "run", "--revision", "v2"]));
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("refused: alarm {name} is in ALARM")),
        "{stdout}"
    );
    rt.block_on(fleet.assert_safe_on("v1"));
}

#[test]
fn held_lock_refuses() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 2, ""));
    let far = 4_000_000_000u64;
    let lock = format!(
        r#"{{"format":"gatekeeper.lock/1","generation":7,"state":"held","run_id":"other",
        "purpose":"canary","holder":{{"who":"ci-runner-7","host":"runner-7","pid":12}},
        "acquired_at":1,"renewed_at":1,"expires_at":{far},"renew_every":40}}"#
    );
    rt.block_on(async {
        fleet
            .s3
            .put_object()
            .bucket(&fleet.state_bucket)
            .key(format!("gatekeeper/{}-e2e/lock.json", fleet.service))
            .body(lock.into_bytes().into())
            .send()
            .await
            .unwrap();
    });
    let (code, stdout, stderr) = output(fleet.gatekeeper(&["canary", "run", "--revision", "v2"]));
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("held by ci-runner-7 on runner-7"),
        "{stdout}"
    );
    let (_, status, _) = output(fleet.gatekeeper(&["canary", "status"]));
    assert!(
        status.contains("held by ci-runner-7 on runner-7 (pid 12) for canary run other"),
        "{status}"
    );
    // Nothing changed: the fleet, the lock object, and no run was journaled.
    let all: std::collections::BTreeSet<String> = fleet.nodes.iter().cloned().collect();
    assert_eq!(rt.block_on(fleet.members(&fleet.prod_tg)), all);
    assert_eq!(rt.block_on(fleet.weights()), (100, 0));
    assert_eq!(rt.block_on(fleet.lock()).unwrap()["generation"], 7);
    assert!(rt.block_on(fleet.runs()).is_empty());
}

#[test]
fn dry_run_prints_every_action_and_changes_nothing() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 3, ""));
    let (code, stdout, stderr) =
        output(fleet.gatekeeper(&["canary", "run", "--revision", "v2", "--dry-run"]));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let n = &fleet.nodes;
    for line in [
        format!("[canary 3/10] would depool {} from prod", n[0]),
        format!("[canary 5/10] would deploy v2 to {}", n[0]),
        "[canary 9/10] would set listener weights 95/5 (prod/canary)".to_string(),
        format!("[promote 3/10] would deploy v2 to {},{}", n[1], n[2]),
        "[promote 8/10] would set listener weights 100/0 (prod/canary)".to_string(),
    ] {
        assert!(stderr.contains(&line), "missing {line:?} in\n{stderr}");
    }
    rt.block_on(fleet.assert_safe_on("v1"));
    // Nothing was journaled and the lock was never taken.
    assert!(rt.block_on(fleet.runs()).is_empty());
    assert!(rt.block_on(fleet.lock()).is_none());
    // It ends saying what it did, never an outcome it did not reach.
    assert!(!stdout.contains("promoted"), "{stdout}");
    assert!(
        stdout.contains("dry run: the preflight checks passed"),
        "{stdout}"
    );
}

#[test]
fn a_config_change_that_is_not_backward_compatible_refuses_the_run() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    // The fleet runs on a parameter tree; each revision ships its own app-<revision>.yaml.
    let root = format!("/{}/app", gatekeeper_e2e::unique("cfg"));
    let configs = tempfile::tempdir().unwrap();
    std::fs::write(
        configs.path().join("app-v2.yaml"),
        "db:\n  host: db-1.internal\n",
    )
    .unwrap();
    std::fs::write(
        configs.path().join("app-v3.yaml"),
        "db:\n  host: db-1.internal\nworkers: \"4\"\nthumbnail_size: \"256\"\n",
    )
    .unwrap();
    let extra = format!(
        "\n[canary.config_check]\nold = \"ssm:{root}\"\nnew = \"{}/app-{{revision}}.yaml\"\n",
        configs.path().display()
    );
    let fleet = rt.block_on(Fleet::new(&moto, 2, &extra));
    rt.block_on(async {
        for (name, value) in [("db/host", "db-1.internal"), ("workers", "4")] {
            fleet
                .ssm
                .put_parameter()
                .name(format!("{root}/{name}"))
                .value(value)
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .send()
                .await
                .unwrap();
        }
    });
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));

    // v2 drops `workers`, which the running code reads: refused before anything changes.
    let (code, stdout, stderr) = output(fleet.gatekeeper(&["canary", "run", "--revision", "v2"]));
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("refused: config check") || stdout.contains("refused: the configuration"),
        "{stdout}"
    );
    assert!(stdout.contains("not backward compatible"), "{stdout}");
    assert!(stdout.contains("KEY_REMOVED"), "{stdout}");
    assert!(stdout.contains("app-v2.yaml"), "{stdout}");
    rt.block_on(fleet.assert_safe_on("v1"));
    assert!(!fleet.dir.path().join("state/deploy.log").exists());

    // v3 keeps every key and adds one: the run goes ahead and promotes.
    let (code, stdout, stderr) =
        output(fleet.gatekeeper(&["canary", "run", "--revision", "v3", "--auto-promote"]));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    rt.block_on(fleet.assert_safe_on("v3"));
}

#[test]
fn sigterm_during_the_bake_rolls_back_within_a_second_and_exits_non_zero() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    // A 60 s interval: the signal must not wait for the interval's sleep to end.
    let fleet = rt.block_on(Fleet::new(
        &moto,
        3,
        "bake_seconds = 600\ninterval_seconds = 60\n",
    ));
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
    // Wait until the bake has begun, then SIGTERM.
    let (child, run) = spawn_baking(&fleet, &rt);
    #[expect(
        clippy::disallowed_methods,
        reason = "compared with the wall-clock time the journal records"
    )]
    let signalled = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    // The rollback began (its first record) within a second of the signal.
    let records = rt.block_on(fleet.records(&run));
    let rolled = records
        .iter()
        .find(|r| r["record"]["event"] == "began" && r["record"]["mode"] == "rollback")
        .expect("a rollback step");
    let began = rolled["at"].as_u64().unwrap();
    assert!(
        began <= signalled + 1,
        "the rollback began {}s after the signal",
        began - signalled
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("signal received"), "{stderr}");
    assert!(stdout.contains("rolled-back"), "{stdout}");
    assert!(stdout.contains("signal"), "{stdout}");
    rt.block_on(fleet.assert_safe_on("v1"));
    fleet.assert_canary_redeployed("v2", "v1");
}

#[test]
fn resume_and_abort_refuse_while_the_run_is_alive_and_change_nothing() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(
        &moto,
        3,
        "bake_seconds = 120\ninterval_seconds = 1\n",
    ));
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
    let (child, run) = spawn_baking(&fleet, &rt);
    let weights = rt.block_on(fleet.weights());
    let lock_before = rt.block_on(fleet.lock()).unwrap();
    for sub in ["resume", "abort"] {
        for force in [false, true] {
            let mut args = vec!["canary", sub];
            if force {
                args.push("--force");
            }
            let out = fleet.gatekeeper(&args).output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(2), "{sub}: {stdout}");
            assert!(
                stdout.contains(&format!("still being driven by pid {}", child.id())),
                "{sub}: {stdout}"
            );
        }
    }
    // Their dry runs meet the same refusal.
    for sub in ["resume", "abort"] {
        let out = fleet
            .gatekeeper(&["canary", sub, "--dry-run"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{sub} --dry-run: {stdout}");
        assert!(
            stdout.contains(&format!("still being driven by pid {}", child.id())),
            "{sub} --dry-run: {stdout}"
        );
    }
    // Neither touched the listener, the lock's generation, nor wrote to the run's journal.
    assert_eq!(rt.block_on(fleet.weights()), weights);
    let lock_after = rt.block_on(fleet.lock()).unwrap();
    assert_eq!(lock_after["generation"], lock_before["generation"]);
    let records = rt.block_on(fleet.records(&run));
    assert!(
        records
            .iter()
            .all(|r| r["record"]["event"] != "abort" && r["record"]["record"] != "took"),
        "{records:?}"
    );
    // The live run is still in charge: a SIGTERM rolls it back as usual.
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    rt.block_on(fleet.assert_safe_on("v1"));
}

#[test]
fn a_revision_the_artifact_mirror_does_not_have_yet_refuses_the_run() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 2, ""));
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
    let bucket = gatekeeper_e2e::unique("artifacts");
    let s3 = rt.block_on(gatekeeper_e2e::fleet::s3(&moto));
    rt.block_on(s3.create_bucket().bucket(&bucket).send())
        .unwrap();
    let revision = format!("s3://{bucket}/photos/v2.zip");

    // Not uploaded yet (a lagging mirror): refused before anything changes.
    let (code, stdout, stderr) =
        output(fleet.gatekeeper(&["canary", "run", "--revision", &revision]));
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("refused: revision {revision} is not there")),
        "{stdout}"
    );
    assert!(stdout.contains("mirror"), "{stdout}");
    rt.block_on(fleet.assert_safe_on("v1"));
    assert!(!fleet.dir.path().join("state/deploy.log").exists());

    // Once it is there, the same command goes ahead.
    rt.block_on(async {
        s3.put_object()
            .bucket(&bucket)
            .key("photos/v2.zip")
            .body(b"zip".to_vec().into())
            .send()
            .await
            .unwrap();
    });
    let (code, stdout, stderr) =
        output(fleet.gatekeeper(&["canary", "run", "--revision", &revision, "--auto-promote"]));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    rt.block_on(fleet.assert_safe_on(&revision));
}

#[test]
fn another_runner_with_nothing_local_sees_and_promotes_the_run() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 3, ""));
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
    let (code, stdout, stderr) = output(fleet.gatekeeper(&["canary", "run", "--revision", "v2"]));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("awaiting-approval"), "{stdout}");
    // Another runner: another directory, another host name; the state is all in S3.
    let elsewhere = tempfile::tempdir().unwrap();
    let on_other = |args: &[&str]| {
        let mut cmd = fleet.gatekeeper(args);
        cmd.current_dir(elsewhere.path())
            .env("HOSTNAME", "runner-b");
        cmd
    };
    let (code, status, _) = output(on_other(&["canary", "status"]));
    assert_eq!(code, Some(0));
    assert!(status.contains("awaiting approval"), "{status}");
    let (code, stdout, stderr) = output(on_other(&["promote", "--yes"]));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    rt.block_on(fleet.assert_safe_on("v2"));
    let (code, status, _) = output(on_other(&["canary", "status"]));
    assert_eq!(code, Some(0));
    assert!(status.contains("v1 → v2"), "{status}");
    assert!(status.contains("promoted"), "{status}");
    assert!(
        status.contains("lock s3://") && status.contains(": free"),
        "{status}"
    );
    // Nothing was written locally on either runner.
    assert!(!elsewhere.path().join(".gatekeeper").exists());
}

/// Starts `canary run --revision v2` and returns once its journal says the bake has begun:
/// the process, and the run's id.
#[allow(
    clippy::zombie_processes,
    reason = "the caller waits for the process it returns"
)]
fn spawn_baking(fleet: &Fleet, rt: &tokio::runtime::Runtime) -> (std::process::Child, String) {
    let mut child = fleet
        .gatekeeper(&["canary", "run", "--revision", "v2"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the bake never began");
        }
        if let Some(run) = rt.block_on(fleet.runs()).pop() {
            let records = rt.block_on(fleet.records(&run));
            if records
                .iter()
                .any(|r| r["record"]["action"]["action"] == "bake")
            {
                return (child, run);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_hanging_deployer_is_stopped_with_its_process_group_at_its_timeout_and_the_run_rolls_back() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(
        &moto,
        3,
        "[canary.timeouts]\ndeploy_seconds = 2\n",
    ));
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
    // Deploying v2 starts a child that would outlive the script, records its pid and hangs;
    // any other revision goes through the example deployer.
    let real = gatekeeper_e2e::repo_root().join("examples/photos/canary/deploy.sh");
    let pid_file = fleet.dir.path().join("hung.pid");
    let hanging = fleet.dir.path().join("deploy-hangs.sh");
    std::fs::write(
        &hanging,
        format!(
            "#!/bin/sh\nif [ \"$2\" = v2 ]; then\n  sleep 1000 &\n  echo $! > '{}'\n  wait\nfi\nexec '{}' \"$@\"\n",
            pid_file.display(),
            real.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hanging, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = std::fs::read_to_string(&fleet.config).unwrap();
    let real_line = format!("command = [\"{}\"]", real.display());
    assert!(config.contains(&real_line), "{config}");
    std::fs::write(
        &fleet.config,
        config.replace(
            &real_line,
            &format!("command = [\"{}\"]", hanging.display()),
        ),
    )
    .unwrap();

    let (code, stdout, stderr) =
        output(fleet.gatekeeper(&["canary", "run", "--revision", "v2", "--auto-promote"]));
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stdout.contains("rolled-back"), "{stdout}");
    assert!(
        stderr.contains("still running after 2s (timeout_seconds): stopped with its process group"),
        "{stderr}"
    );
    // Back to a safe state: every node in production on v1, the canary group empty, weights
    // 100/0, the lock free; only the rollback's redeploy of v1 reached the example deployer.
    rt.block_on(fleet.assert_safe_on("v1"));
    let log = std::fs::read_to_string(fleet.dir.path().join("state/deploy.log")).unwrap();
    assert_eq!(log, format!("{} v1\n", fleet.nodes[0]));
    // The deployer's child went with it (gone, or a zombie not yet reaped).
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
    assert!(
        !stat.is_ok_and(|s| !s.contains(") Z ")),
        "the deployer's child {} outlived the step",
        pid.trim()
    );
}
