//! `gatekeeper pipeline run|approve|stage|status|resume` against moto: a three-stage pipeline
//! (the rails stack on staging, a canary on prod, its promotion) on one pinned revision, its
//! gates, and a run cut after every journal record and resumed from another runner. End state
//! asserted in moto: the stack, every node's revision, the weights, both locks.

use std::path::PathBuf;

use gatekeeper_e2e::fleet::{Fleet, HEALTHY};
use gatekeeper_e2e::{moto, output, rt};

fn gk(fleet: &Fleet, file: &PathBuf, args: &[&str]) -> std::process::Command {
    let mut cmd = fleet.moto.gatekeeper();
    cmd.args(args)
        .arg("--config")
        .arg(file)
        .env("CANARY_STATE_DIR", fleet.dir.path().join("state"))
        .env_remove("GATEKEEPER_CRASH_AFTER");
    cmd
}

/// The pipeline lock object, parsed.
async fn pipeline_lock(fleet: &Fleet) -> Option<serde_json::Value> {
    let key = format!(
        "pipelines/{}-pipeline-{}/lock.json",
        fleet.service, fleet.service
    );
    let got = fleet
        .s3
        .get_object()
        .bucket(&fleet.state_bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    serde_json::from_slice(&got.body.collect().await.unwrap().into_bytes()).ok()
}

async fn pipeline_records(fleet: &Fleet, run: &str) -> usize {
    let prefix = format!(
        "pipelines/{}-pipeline-{}/runs/{run}/",
        fleet.service, fleet.service
    );
    fleet
        .s3
        .list_objects_v2()
        .bucket(&fleet.state_bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap()
        .contents()
        .len()
}

/// The staging rails stack is complete and has outputs.
async fn assert_staging_stack(fleet: &Fleet) {
    let sdk = gatekeeper_e2e::fleet::sdk(&fleet.moto).await;
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let stacks = cfn
        .describe_stacks()
        .stack_name(format!("{}-staging-rails", fleet.service))
        .send()
        .await
        .unwrap();
    let s = &stacks.stacks()[0];
    assert_eq!(s.stack_status().unwrap().as_str(), "CREATE_COMPLETE");
    assert!(!s.outputs().is_empty());
}

const MOTO_USER: &str = "approval = [\"arn:aws:sts::123456789012:user/*\"]";

#[test]
fn three_stages_on_one_pinned_revision_with_their_gates() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 3, ""));
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
    let file = fleet.pipeline(MOTO_USER);

    let (code, out, err) = output(gk(&fleet, &file, &["pipeline", "run", "--revision", "v2"]));
    assert_eq!(code, Some(0), "{err}");
    let run = out.trim().to_string();
    assert!(
        run.starts_with("pipeline-"),
        "only the run id on stdout: {out}"
    );
    // One run at a time.
    let (code, _, err) = output(gk(&fleet, &file, &["pipeline", "run", "--revision", "v3"]));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("refused") && err.contains(&run), "{err}");

    // The canary cannot go before staging, nor before its approval.
    let stage = |name: &str| gk(&fleet, &file, &["pipeline", "stage", name, "--run", &run]);
    let (code, out, _) = output(stage("prod-canary"));
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("needs staging, which is pending"), "{out}");
    let report = fleet.dir.path().join("staging.md");
    let mut staging = stage("staging");
    staging.arg("--report").arg(&report);
    let (code, out, err) = output(staging);
    assert_eq!(code, Some(0), "{out}{err}");
    rt.block_on(assert_staging_stack(&fleet));
    assert!(std::fs::read_to_string(&report)
        .unwrap()
        .contains("stage staging (stack)"));
    let (code, out, _) = output(stage("prod-canary"));
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("needs an approval"), "{out}");
    assert!(
        rt.block_on(fleet.members(&fleet.canary_tg)).is_empty(),
        "no canary yet"
    );

    let (code, out, err) = output(gk(
        &fleet,
        &file,
        &[
            "pipeline",
            "approve",
            "--run",
            &run,
            "--stage",
            "prod-canary",
            "--reason",
            "CAB-42",
        ],
    ));
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = output(stage("prod-canary"));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("awaiting-approval"), "{out}");
    assert_eq!(rt.block_on(fleet.weights()), (95, 5));
    let (code, out, err) = output(stage("promote"));
    assert_eq!(code, Some(0), "{out}{err}");

    // Every node on the pinned revision, weights 100/0, both locks free.
    rt.block_on(fleet.assert_safe_on("v2"));
    assert_eq!(rt.block_on(pipeline_lock(&fleet)).unwrap()["state"], "free");
    let (code, status, _) = output(gk(&fleet, &file, &["pipeline", "status", "--run", &run]));
    assert_eq!(code, Some(0));
    assert!(
        status.contains("revision v2") && status.contains(", finished"),
        "{status}"
    );
    assert!(
        status.contains("prod-canary (canary): done") && status.contains("(CAB-42)"),
        "{status}"
    );
    // A stage done is not run again.
    let (code, out, _) = output(stage("promote"));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("already done"), "{out}");
    rt.block_on(fleet.assert_safe_on("v2"));
}

#[test]
fn a_stage_whose_configuration_changed_is_refused_naming_the_file() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 2, ""));
    let file = fleet.pipeline("");
    let (code, out, err) = output(gk(&fleet, &file, &["pipeline", "run", "--revision", "v2"]));
    assert_eq!(code, Some(0), "{err}");
    let run = out.trim().to_string();
    let staging = fleet.dir.path().join("staging.toml");
    let mut text = std::fs::read_to_string(&staging).unwrap();
    text.push_str("# edited after the run started\n");
    std::fs::write(&staging, text).unwrap();
    let records = rt.block_on(pipeline_records(&fleet, &run));
    let (code, out, _) = output(gk(
        &fleet,
        &file,
        &["pipeline", "stage", "staging", "--run", &run],
    ));
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("staging.toml: changed") && out.contains("nothing was changed"),
        "{out}"
    );
    assert_eq!(
        rt.block_on(pipeline_records(&fleet, &run)),
        records,
        "nothing journaled"
    );
    let sdk = rt.block_on(gatekeeper_e2e::fleet::sdk(&moto));
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let found = rt.block_on(
        cfn.describe_stacks()
            .stack_name(format!("{}-staging-rails", fleet.service))
            .send(),
    );
    assert!(found.is_err(), "no stack was created");
}

#[test]
fn approve_by_a_principal_not_allowed_is_refused_and_records_nothing() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 2, ""));
    let file = fleet.pipeline("approval = [\"arn:aws:iam::123456789012:role/release-managers\"]");
    let (_, out, _) = output(gk(&fleet, &file, &["pipeline", "run", "--revision", "v2"]));
    let run = out.trim().to_string();
    let records = rt.block_on(pipeline_records(&fleet, &run));
    let (code, out, err) = output(gk(
        &fleet,
        &file,
        &[
            "pipeline",
            "approve",
            "--run",
            &run,
            "--stage",
            "prod-canary",
            "--reason",
            "me",
        ],
    ));
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        out.contains("arn:aws:sts::123456789012:user/moto may not approve stage prod-canary")
            && out.contains("nothing was recorded"),
        "{out}"
    );
    assert_eq!(rt.block_on(pipeline_records(&fleet, &run)), records);
    assert_eq!(
        rt.block_on(pipeline_lock(&fleet)).unwrap()["state"],
        "parked"
    );
}

/// Cut after every record of the run (a runner killed there), then resumed with `pipeline
/// resume` from another directory and host name until the run is finished: the same end state
/// every time.
#[test]
fn a_run_cut_after_any_record_is_finished_from_another_runner() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    // start, 3 x (stage started, stage done)
    for cut in 0..7 {
        let fleet = rt.block_on(Fleet::new(&moto, 3, ""));
        rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
        let file = fleet.pipeline("");
        let crash = format!("pipeline:{cut}");
        // Drive the run on runner A until its journal reaches the cut.
        let mut run = None;
        let mut killed = false;
        let mut steps = vec![vec!["pipeline", "run", "--revision", "v2"]];
        for s in ["staging", "prod-canary", "promote"] {
            steps.push(vec!["pipeline", "stage", s, "--run", "RUN"]);
        }
        for step in steps {
            let args: Vec<String> = step
                .iter()
                .map(|a| {
                    if *a == "RUN" {
                        run.clone().unwrap()
                    } else {
                        a.to_string()
                    }
                })
                .collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut cmd = gk(&fleet, &file, &args);
            cmd.env("GATEKEEPER_CRASH_AFTER", &crash)
                .env("HOSTNAME", "runner-a");
            let (code, out, err) = output(cmd);
            if code.is_none() {
                killed = true;
                break;
            }
            assert_eq!(code, Some(0), "cut {cut}: {args:?}: {out}{err}");
            if run.is_none() {
                run = Some(out.trim().to_string());
            }
        }
        assert!(killed, "cut {cut}: the run never reached record {cut}");
        // Runner B: another directory, another host; only the state in S3. Runner A's lease
        // (3 s) runs out first.
        std::thread::sleep(std::time::Duration::from_secs(4));
        let elsewhere = tempfile::tempdir().unwrap();
        let (_, status, err) = output({
            let mut c = gk(&fleet, &file, &["pipeline", "status", "--output", "json"]);
            c.current_dir(elsewhere.path()).env("HOSTNAME", "runner-b");
            c
        });
        let status: serde_json::Value =
            serde_json::from_str(&status).unwrap_or_else(|_| panic!("cut {cut}: {err}"));
        let run = status["run_id"].as_str().unwrap().to_string();
        let mut finished = false;
        for _ in 0..4 {
            let mut c = gk(&fleet, &file, &["pipeline", "resume", "--run", &run]);
            c.current_dir(elsewhere.path()).env("HOSTNAME", "runner-b");
            let (code, out, err) = output(c);
            assert_eq!(code, Some(0), "cut {cut}: {out}{err}");
            if out.contains("is finished") || out.contains("already done") {
                finished = true;
                break;
            }
        }
        assert!(finished, "cut {cut}: resume never finished the run");
        rt.block_on(fleet.assert_safe_on("v2"));
        rt.block_on(assert_staging_stack(&fleet));
        assert_eq!(
            rt.block_on(pipeline_lock(&fleet)).unwrap()["state"],
            "free",
            "cut {cut}"
        );
    }
}
