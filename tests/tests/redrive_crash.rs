//! `gatekeeper redrive` killed with SIGKILL mid-run, then run again: nothing lost, nothing
//! duplicated. The kill comes from the test hook `GATEKEEPER_TEST_KILL_AFTER_COPIES=N`: the
//! process kills itself right after its N-th verified copy, before that source is deleted.

use std::collections::BTreeMap;

use gatekeeper_e2e::{moto, unique, Moto};

async fn s3(moto: &Moto) -> (aws_sdk_s3::Client, aws_sdk_sqs::Client) {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::for_tests())
        .load()
        .await;
    (
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        ),
        aws_sdk_sqs::Client::new(&sdk),
    )
}

async fn contents(s3: &aws_sdk_s3::Client, bucket: &str) -> BTreeMap<String, Vec<u8>> {
    let mut all = BTreeMap::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        for o in page.unwrap().contents() {
            let key = o.key().unwrap().to_string();
            let body = s3
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .unwrap()
                .body
                .collect()
                .await
                .unwrap()
                .into_bytes()
                .to_vec();
            all.insert(key, body);
        }
    }
    all
}

#[tokio::test(flavor = "current_thread")]
async fn a_killed_redrive_resumes_without_losing_or_duplicating_anything() {
    let Some(moto) = moto() else { return };
    let (s3, sqs) = s3(&moto).await;
    let name = unique("crash");
    let (parking, ingestion) = (format!("{name}-parking"), format!("{name}-ingestion"));
    for b in [&parking, &ingestion] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    sqs.create_queue()
        .queue_name(format!("{name}-prod-batch-b-live"))
        .send()
        .await
        .unwrap();

    // 60 objects: plain, in a live batch, in a dead batch; and where each must land.
    let mut expected = BTreeMap::new();
    for i in 0..60 {
        let (key, dest) = match i % 3 {
            0 => (format!("plain/{i}.jpg"), format!("plain/{i}.jpg")),
            1 => (format!("b-live/p/{i}.jpg"), format!("b-live/p/{i}.jpg")),
            _ => (format!("b-dead/p/{i}.jpg"), format!("p/{i}.jpg")),
        };
        let body = format!("object {i}").into_bytes();
        s3.put_object()
            .bucket(&parking)
            .key(&key)
            .body(body.clone().into())
            .send()
            .await
            .unwrap();
        expected.insert(dest, body);
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatekeeper.toml");
    std::fs::write(
        &config,
        format!(
            "service = \"{name}\"\nenvironment = \"prod\"\n[maintenance]\n\
             ingestion_bucket = \"{ingestion}\"\nparking_lot_bucket = \"{parking}\"\n\
             [maintenance.batches]\nid_prefix = \"b-\"\n"
        ),
    )
    .unwrap();

    let killed = moto
        .gatekeeper()
        .args(["redrive", "--concurrency", "8", "--config"])
        .arg(&config)
        .env("GATEKEEPER_TEST_KILL_AFTER_COPIES", "20")
        .output()
        .unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        killed.status.signal(),
        Some(9),
        "killed by SIGKILL: {:?} {}",
        killed.status,
        String::from_utf8_lossy(&killed.stderr)
    );
    let left = contents(&s3, &parking).await;
    let landed = contents(&s3, &ingestion).await;
    // Killed after 20 verified copies: some copies exist, and some (all, unless a batch of
    // deletes already ran) of their sources are still parked.
    assert!(
        landed.len() >= 20 && landed.len() < 60,
        "interrupted midway: {} copied",
        landed.len()
    );
    assert!(
        landed.len() + left.len() > 60,
        "copied objects whose sources were not yet deleted are in both buckets"
    );

    let rerun = moto
        .gatekeeper()
        .args(["redrive", "--output", "json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        rerun.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&rerun.stdout).unwrap();
    assert_eq!(report["total"], left.len());
    assert!(
        report["already_there"].as_u64().unwrap() >= (landed.len() + left.len() - 60) as u64,
        "the copies of the killed run are recognised, not copied again: {report}"
    );
    assert_eq!(report["conflicts"], 0);
    assert_eq!(report["failures"], 0);

    assert!(
        contents(&s3, &parking).await.is_empty(),
        "parking lot emptied"
    );
    assert_eq!(
        contents(&s3, &ingestion).await,
        expected,
        "every object exactly once, under its right key"
    );
}
