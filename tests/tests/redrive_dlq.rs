//! `gatekeeper redrive --dlq` against moto: the source queue comes from `[[queues]]`, a dry
//! run only counts, a real run moves every message once.

use gatekeeper_e2e::{moto, unique};

#[tokio::test(flavor = "current_thread")]
async fn dlq_messages_go_back_to_the_source_queue_named_by_the_config() {
    let Some(moto) = moto() else { return };
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
        .load()
        .await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let service = unique("dlq");
    let mut urls = Vec::new();
    for name in [
        format!("{service}-prod-uploads"),
        format!("{service}-prod-uploads-dlq"),
    ] {
        urls.push(
            sqs.create_queue()
                .queue_name(name)
                .send()
                .await
                .unwrap()
                .queue_url()
                .unwrap()
                .to_string(),
        );
    }
    for i in 0..12 {
        sqs.send_message()
            .queue_url(&urls[1])
            .message_body(format!("failed upload {i}"))
            .send()
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatekeeper.toml");
    std::fs::write(
        &config,
        format!(
            "service = \"{service}\"\nenvironment = \"prod\"\n[[queues]]\nname = \"uploads\"\n"
        ),
    )
    .unwrap();
    let dlq = format!("{service}-prod-uploads-dlq");

    let dry = moto
        .gatekeeper()
        .args(["redrive", "--dlq", &dlq, "--dry-run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(dry.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&dry.stdout).trim(),
        format!("dry run: would move 12 messages from {dlq} to {service}-prod-uploads; nothing was changed")
    );

    let out = moto
        .gatekeeper()
        .args(["redrive", "--dlq", &dlq, "--output", "json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["found"], 12);
    assert_eq!(report["moved"], 12);
    assert_eq!(report["failures"], 0);

    let attrs = |url: String| {
        let sqs = sqs.clone();
        async move {
            sqs.get_queue_attributes()
                .queue_url(url)
                .attribute_names(
                    aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
                )
                .send()
                .await
                .unwrap()
                .attributes()
                .unwrap()
                .values()
                .next()
                .unwrap()
                .clone()
        }
    };
    assert_eq!(attrs(urls[0].clone()).await, "12");
    assert_eq!(attrs(urls[1].clone()).await, "0");
}
