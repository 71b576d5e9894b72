//! `gatekeeper plan`: offline against an empty account, and live against moto, with and
//! without a change set, for a deployed stack and for one not deployed yet.

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
    // CloudFormation's own view: the queue whose visibility timeout changed, and nothing else.
    let view: Vec<(String, String, String)> = doc["change_set"]
        .as_array()
        .expect("CloudFormation's view is reported")
        .iter()
        .map(|c| {
            (
                c["action"].as_str().unwrap_or_default().to_string(),
                c["logical_id"].as_str().unwrap_or_default().to_string(),
                c["resource_type"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        view,
        vec![(
            "Modify".to_string(),
            "QueueUploads".to_string(),
            "AWS::SQS::Queue".to_string()
        )],
        "{}",
        doc["change_set"]
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("QueueUploads"), "{md}");

    // The change set was only for looking.
    let stack = format!("{service}-prod-rails");
    let (exists, left) = live_state(&moto, &stack);
    assert!(exists);
    assert!(left.is_empty(), "plan left change sets behind: {left:?}");
}

/// Whether the stack exists, and the change sets of it not executed.
///
/// moto's ListChangeSets ignores `StackName` and lists the change sets of every stack in the
/// shared server, so the summaries are filtered by this stack's name here.
fn live_state(moto: &Moto, stack: &str) -> (bool, Vec<String>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&moto.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ssm::config::Credentials::for_tests())
            .load()
            .await;
        let cfn = aws_sdk_cloudformation::Client::new(&sdk);
        let exists = match cfn.describe_stacks().stack_name(stack).send().await {
            Ok(out) => !out.stacks().is_empty(),
            Err(e) => {
                let text = aws_sdk_cloudformation::error::DisplayErrorContext(&e).to_string();
                assert!(text.contains("does not exist"), "{text}");
                false
            }
        };
        let left = match cfn.list_change_sets().stack_name(stack).send().await {
            Ok(out) => out
                .summaries()
                .iter()
                .filter(|s| s.stack_name() == Some(stack))
                .filter(|s| s.execution_status().map(|e| e.as_str()) != Some("EXECUTE_COMPLETE"))
                .map(|s| s.change_set_name().unwrap_or_default().to_string())
                .collect(),
            // CloudFormation refuses to list the change sets of a stack it does not know.
            Err(e) if !exists => {
                let text = aws_sdk_cloudformation::error::DisplayErrorContext(&e).to_string();
                assert!(text.contains("does not exist"), "{text}");
                Vec::new()
            }
            Err(e) => panic!(
                "ListChangeSets: {}",
                aws_sdk_cloudformation::error::DisplayErrorContext(&e)
            ),
        };
        (exists, left)
    })
}

#[test]
fn live_plan_of_a_stack_not_deployed_adds_everything_and_creates_nothing() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let service = unique("n");
    let never_deployed = config(&dir, &service, 120);
    let out = plan(&moto, &never_deployed, &["--change-set"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stack = format!("{service}-prod-rails");
    assert_eq!(doc["stack"], stack.as_str());
    assert_eq!(doc["deployed"], false);
    let rs = resources(&doc);
    assert!(rs.len() > 20, "{rs:?}");
    assert!(rs.iter().all(|r| r["action"] == "add"), "{rs:?}");
    assert_eq!(doc["summary"]["add"].as_u64(), Some(rs.len() as u64));
    assert!(
        doc.get("change_set").is_none(),
        "no change set for a stack not deployed: {}",
        doc["change_set"]
    );

    // Looking created nothing: no stack (a change set of a new stack would leave one in
    // REVIEW_IN_PROGRESS) and no change set.
    let (exists, left) = live_state(&moto, &stack);
    assert!(!exists, "plan created stack {stack}");
    assert!(left.is_empty(), "plan left change sets behind: {left:?}");

    let text = moto
        .gatekeeper()
        .args(["plan", "--change-set", "--config"])
        .arg(&never_deployed)
        .output()
        .unwrap();
    assert_eq!(text.status.code(), Some(2));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("(not deployed yet)"), "{text}");
    assert!(text.contains("No change set"), "{text}");
}
