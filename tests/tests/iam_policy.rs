//! `gatekeeper iam-policy`: the policy for the example service, accepted by IAM (moto's policy
//! document validator), and bad input.

use gatekeeper_e2e::fleet::aws_query;
use gatekeeper_e2e::{gatekeeper, moto, output, repo_root, unique};

fn policy(args: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = gatekeeper();
    cmd.arg("iam-policy").args(args).current_dir(repo_root());
    output(cmd)
}

#[test]
fn the_example_services_policy() {
    let (code, stdout, stderr) = policy(&[
        "--config",
        "examples/photos/prod.toml",
        "--artifact-bucket",
        "photos-artifacts",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    insta::assert_snapshot!("photos_prod", stdout);
    // The command-free CodeDeploy example leaves nothing to note.
    assert!(stderr.is_empty(), "{stderr}");

    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let actions: Vec<&str> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["Action"].as_array().unwrap())
        .map(|a| a.as_str().unwrap())
        .collect();
    // Nothing broader than the gate needs: no wildcard actions, no IAM, no deletes but the lock.
    assert!(actions.iter().all(|a| !a.contains('*')), "{actions:?}");
    assert!(
        actions.iter().all(|a| !a.starts_with("iam:")),
        "{actions:?}"
    );
    for statement in doc["Statement"].as_array().unwrap() {
        let writes = statement["Action"].as_array().unwrap().iter().any(|a| {
            let a = a.as_str().unwrap();
            [
                "Put",
                "Delete",
                "Register",
                "Deregister",
                "Modify",
                "Create",
                "Stop",
            ]
            .iter()
            .any(|verb| a.split(':').nth(1).unwrap().starts_with(verb))
        });
        if writes {
            assert!(
                statement["Resource"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|r| r != "*"),
                "a write on every resource: {statement}"
            );
        }
    }
}

#[test]
fn iam_accepts_the_policy_document() {
    let Some(moto) = moto() else { return };
    let (code, stdout, stderr) = policy(&["--config", "examples/photos/prod.toml"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("no --artifact-bucket"), "{stderr}");
    let name = unique("gatekeeper-gate");
    let (status, body) = aws_query(
        &moto.endpoint,
        "iam",
        "2010-05-08",
        &[
            ("Action", "CreatePolicy"),
            ("PolicyName", &name),
            ("PolicyDocument", &stdout),
        ],
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("<PolicyName>{name}</PolicyName>")),
        "{body}"
    );

    // The validator is real: a malformed document is refused.
    let (status, body) = aws_query(
        &moto.endpoint,
        "iam",
        "2010-05-08",
        &[
            ("Action", "CreatePolicy"),
            ("PolicyName", &format!("{name}-bad")),
            (
                "PolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ssm GetParameter","Resource":"*"}]}"#,
            ),
        ],
    );
    assert_eq!(status, 400, "{body}");
}

#[test]
fn a_config_without_a_canary_table_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("svc.toml");
    std::fs::write(&file, "service = \"svc\"\nenvironment = \"prod\"\n").unwrap();
    let (code, stdout, stderr) = policy(&["--config", file.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("svc.toml"), "{stderr}");
    assert!(stderr.contains("[canary]"), "{stderr}");
}

#[test]
fn a_notify_topic_is_granted_publish_on_that_topic_only() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatekeeper.toml");
    let example = std::fs::read_to_string(repo_root().join("examples/photos/prod.toml")).unwrap();
    let topic = "arn:aws:sns:us-east-1:123456789012:photos-deploys";
    std::fs::write(
        &config,
        format!("{example}\n[notify]\nsns_topic_arn = \"{topic}\"\n"),
    )
    .unwrap();
    let (code, stdout, stderr) = policy(&["--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let notify: Vec<&serde_json::Value> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["Action"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "sns:Publish")
        })
        .collect();
    assert_eq!(notify.len(), 1, "{stdout}");
    assert_eq!(notify[0]["Resource"], serde_json::json!([topic]));

    // Not a topic ARN: refused at load, located.
    std::fs::write(
        &config,
        format!("{example}\n[notify]\nsns_topic_arn = \"photos;rm\"\n"),
    )
    .unwrap();
    let (code, _, stderr) = policy(&["--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("notify.sns_topic_arn") && stderr.contains("gatekeeper.toml:"),
        "{stderr}"
    );
}
