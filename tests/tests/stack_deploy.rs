//! `gatekeeper stack deploy` against moto: what moto really applies is checked through the
//! APIs. What moto does not apply (alarms, versioning, public-access blocks) is proven on the
//! template by the stacks snapshots, cfn-lint and checkov.

use std::path::PathBuf;

use gatekeeper_e2e::{moto, repo_root, unique, Moto};

/// The example's prod configuration under a service name of its own.
fn config(dir: &tempfile::TempDir, service: &str) -> PathBuf {
    let text = std::fs::read_to_string(repo_root().join("examples/photos/prod.toml")).unwrap();
    let text = text
        .replace("service = \"photos\"", &format!("service = \"{service}\""))
        .replace("region = \"eu-west-1\"", "region = \"us-east-1\"");
    let path = dir.path().join("gatekeeper.toml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn sdk(moto: &Moto) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ssm::config::Credentials::for_tests())
        .load()
        .await
}

fn run(moto: &Moto, args: &[&str], config: &std::path::Path) -> std::process::Output {
    moto.gatekeeper()
        .args(args)
        .arg("--config")
        .arg(config)
        .args(["--poll", "1"])
        .output()
        .unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn deploy_creates_the_rails_and_a_second_deploy_changes_nothing() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let service = unique("d");
    let config = config(&dir, &service);
    let stack = format!("{service}-prod-rails");

    let out = run(&moto, &["stack", "deploy"], &config);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "deploy failed: {stderr}");
    assert!(
        stderr.contains("CREATE_COMPLETE"),
        "progress shows events: {stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("CREATE_COMPLETE"));

    let sdk = sdk(&moto).await;
    let cfn = aws_sdk_cloudformation::Client::new(&sdk);
    let described = cfn
        .describe_stacks()
        .stack_name(&stack)
        .send()
        .await
        .unwrap();
    let s = &described.stacks()[0];
    assert_eq!(s.stack_status().unwrap().as_str(), "CREATE_COMPLETE");
    let outputs: std::collections::BTreeMap<String, String> = s
        .outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap().to_string(),
                o.output_value().unwrap_or("").to_string(),
            )
        })
        .collect();

    // The flag is readable and off.
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let flag_name = &outputs["MaintenanceFlagName"];
    assert_eq!(flag_name, &format!("/{service}/prod/maintenance"));
    let p = ssm.get_parameter().name(flag_name).send().await.unwrap();
    let flag: serde_json::Value =
        serde_json::from_str(p.parameter().unwrap().value().unwrap()).unwrap();
    assert_eq!(flag["enabled"], false);

    // Both buckets exist, encrypted with KMS.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    for key in ["IngestionBucketName", "ParkingLotBucketName"] {
        let bucket = &outputs[key];
        assert!(
            bucket.starts_with(&format!("{service}-prod-")),
            "{key} = {bucket}"
        );
        s3.head_bucket().bucket(bucket).send().await.unwrap();
        let enc = s3
            .get_bucket_encryption()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
        assert_eq!(
            rule.apply_server_side_encryption_by_default()
                .unwrap()
                .sse_algorithm()
                .as_str(),
            "aws:kms"
        );
    }

    // Every queue has its DLQ redrive policy.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    for q in ["uploads", "unzip", "thumbnails"] {
        let url = sqs
            .get_queue_url()
            .queue_name(format!("{service}-prod-{q}"))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
            .send()
            .await
            .unwrap();
        let redrive = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy))
            .unwrap_or_else(|| panic!("{q} has no redrive policy"));
        let redrive: serde_json::Value = serde_json::from_str(redrive).unwrap();
        assert!(
            redrive["deadLetterTargetArn"]
                .as_str()
                .unwrap()
                .ends_with(&format!("{service}-prod-{q}-dlq")),
            "{redrive}"
        );
        let exported = &outputs[&format!("Queue{}Url", capitalize(q))];
        assert!(
            exported.ends_with(&format!("/{service}-prod-{q}"))
                && url.ends_with(&format!("/{service}-prod-{q}")),
            "{exported} vs {url}"
        );
    }

    // The exports are there, under the stack's name (every page: moto is shared with the
    // other tests' stacks).
    let mut names: Vec<String> = Vec::new();
    let mut pages = cfn.list_exports().into_paginator().send();
    while let Some(page) = pages.next().await {
        names.extend(
            page.unwrap()
                .exports()
                .iter()
                .filter_map(|e| e.name().map(str::to_string)),
        );
    }
    for key in [
        "MaintenanceFlagName",
        "IngestionBucketName",
        "ParkingLotBucketName",
        "AlarmTopicArn",
        "QueueUploadsArn",
        "DeadLetterQueueUploadsUrl",
    ] {
        let export = format!("{stack}-{key}");
        assert!(names.contains(&export), "missing export {export}");
    }

    // The same configuration again: nothing to do.
    let again = run(&moto, &["stack", "deploy"], &config);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("no changes"));
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

#[tokio::test(flavor = "current_thread")]
async fn dry_run_changes_nothing() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let service = unique("n");
    let config = config(&dir, &service);
    let out = run(&moto, &["stack", "deploy", "--dry-run"], &config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("would create"));
    let cfn = aws_sdk_cloudformation::Client::new(&sdk(&moto).await);
    let err = cfn
        .describe_stacks()
        .stack_name(format!("{service}-prod-rails"))
        .send()
        .await;
    assert!(err.is_err(), "a dry run created the stack");
}

#[tokio::test(flavor = "current_thread")]
async fn bad_config_reaches_no_aws() {
    let Some(moto) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gatekeeper.toml");
    std::fs::write(
        &path,
        "service = \"ok\"\nenvironment = \"prod\"\n[[queues]]\nname = \"Bad Name\"\n",
    )
    .unwrap();
    let out = run(&moto, &["stack", "deploy"], &path);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("gatekeeper.toml:4:") && stderr.contains("queues[0].name"),
        "{stderr}"
    );
    let cfn = aws_sdk_cloudformation::Client::new(&sdk(&moto).await);
    assert!(cfn
        .describe_stacks()
        .stack_name("ok-prod-rails")
        .send()
        .await
        .is_err());
}
