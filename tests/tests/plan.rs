//! `gatekeeper plan`: offline against an empty account, and live against moto, with and
//! without a change set.

use std::path::PathBuf;

use gatekeeper_e2e::{gatekeeper, moto, repo_root, unique, Moto};

fn config(dir: &tempfile::TempDir, service: &str, visibility: u32) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("examples/photos/prod.toml")).unwrap();
    let text = text
        .replace("service = \"photos\"", &format!("service = \"{service}\""))
        .replace("region = \"eu-west-1\"", "region = \"us-east-1\"")
        .replace(
            "visibility_timeout_seconds = 120",
            &format!("visibility_timeout_seconds = {visibility}"),
        );
    let path = dir.path().join("gatekeeper.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn resources(plan: &serde_json::Value) -> Vec<serde_json::Value> {
    plan["resources"].as_array().cloned().unwrap_or_default()
}

#[test]
fn offline_plan_of_the_embedded_example_adds_everything_and_exits_2() {
    let out = gatekeeper()
        .args(["plan", "--offline", "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["stack"], "photos-prod-rails");
    assert_eq!(plan["deployed"], false);
    let rs = resources(&plan);
    assert!(rs.len() > 20);
    assert!(rs.iter().all(|r| r["action"] == "add"), "{rs:?}");
}

#[test]
fn offline_plan_text_names_every_resource() {
    let out = gatekeeper().args(["plan", "--offline"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stdout);
    for id in [
        "MaintenanceFlag",
        "ParkingLotBucket",
        "QueueUploads",
        "AlarmTopic",
    ] {
        assert!(text.contains(id), "{id} missing from:\n{text}");
    }
}

fn plan(moto: &Moto, config: &std::path::Path, extra: &[&str]) -> std::process::Output {
    moto.gatekeeper()
        .args(["plan", "--output", "json", "--config"])
        .arg(config)
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn live_plan_shows_no_changes_then_a_modification_and_leaves_no_change_set() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let service = unique("p");
    let deployed = config(&dir, &service, 120);
    let out = moto
        .gatekeeper()
        .args(["stack", "deploy", "--poll", "1", "--config"])
        .arg(&deployed)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let same = plan(&moto, &deployed, &[]);
    assert_eq!(
        same.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&same.stderr)
    );

    let dir2 = tempfile::tempdir().unwrap();
    let changed = config(&dir2, &service, 240);
    let summary = dir2.path().join("summary.md");
    let out = moto
        .gatekeeper()
        .args(["plan", "--output", "json", "--change-set", "--config"])
        .arg(&changed)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["deployed"], true);
    let modified: Vec<_> = resources(&doc)
        .into_iter()
        .filter(|r| r["action"] == "modify")
        .collect();
    assert_eq!(modified.len(), 1, "{modified:?}");
    assert_eq!(modified[0]["logical_id"], "QueueUploads");
    assert_eq!(modified[0]["replacement"], "never");
    assert!(
        doc["change_set"].is_array(),
        "CloudFormation's view is reported"
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("QueueUploads"), "{md}");

    // The change set was only for looking.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let left = rt.block_on(async {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&moto.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ssm::config::Credentials::for_tests())
            .load()
            .await;
        let cfn = aws_sdk_cloudformation::Client::new(&sdk);
        cfn.list_change_sets()
            .stack_name(format!("{service}-prod-rails"))
            .send()
            .await
            .unwrap()
            .summaries()
            .iter()
            .filter(|s| s.execution_status().map(|e| e.as_str()) != Some("EXECUTE_COMPLETE"))
            .count()
    });
    assert_eq!(left, 0, "plan left a change set behind");
}
