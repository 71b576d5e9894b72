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

async fn sqs_client(moto: &gatekeeper_e2e::Moto) -> aws_sdk_sqs::Client {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
        .load()
        .await;
    aws_sdk_sqs::Client::new(&sdk)
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    redrive_to: Option<&str>,
) -> (String, String) {
    use aws_sdk_sqs::types::QueueAttributeName;
    let mut create = sqs.create_queue().queue_name(name);
    if let Some(dlq_arn) = redrive_to {
        create = create.attributes(
            QueueAttributeName::RedrivePolicy,
            format!("{{\"deadLetterTargetArn\":\"{dlq_arn}\",\"maxReceiveCount\":\"1\"}}"),
        );
    }
    let url = create
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    (url, arn)
}

/// Visible plus in flight plus delayed.
async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(A::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()
        .values()
        .map(|v| v.parse::<u64>().unwrap())
        .sum()
}

/// Runs the binary without blocking the test's runtime (a consumer may be running beside
/// it); a run still going after `deadline` is killed and fails the test.
async fn run_bounded(
    cmd: std::process::Command,
    deadline: std::time::Duration,
) -> (serde_json::Value, std::time::Duration) {
    let started = std::time::Instant::now();
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(deadline, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("redrive --dlq still running after {deadline:?}: unbounded"))
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        serde_json::from_slice(&out.stdout).unwrap(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "current_thread")]
async fn message_attributes_arrive_intact_and_verified() {
    use aws_sdk_sqs::primitives::Blob;
    use aws_sdk_sqs::types::MessageAttributeValue;
    use std::collections::HashMap;
    let Some(moto) = moto() else { return };
    let sqs = sqs_client(&moto).await;
    let id = unique("dlqattr");
    let (source, _) = create_queue(&sqs, &format!("{id}-work"), None).await;
    let (dlq, _) = create_queue(&sqs, &format!("{id}-work-dlq"), None).await;
    let value = |data_type: &str, text: Option<&str>, binary: Option<&[u8]>| {
        MessageAttributeValue::builder()
            .data_type(data_type)
            .set_string_value(text.map(str::to_string))
            .set_binary_value(binary.map(Blob::new))
            .build()
            .unwrap()
    };
    // Message i carries i % 4 kinds of attribute: none; a string; and a number; and a
    // binary one and a custom type.
    let mut expected: HashMap<String, (HashMap<String, MessageAttributeValue>, Option<String>)> =
        HashMap::new();
    for i in 0..14usize {
        let mut attrs = HashMap::new();
        if i % 4 >= 1 {
            attrs.insert(
                "batch".to_string(),
                value("String", Some(&format!("batch-{i}")), None),
            );
        }
        if i % 4 >= 2 {
            attrs.insert("attempt".to_string(), value("Number", Some("3"), None));
        }
        if i % 4 >= 3 {
            attrs.insert(
                "thumbnail".to_string(),
                value("Binary", None, Some(&[0, 159, 146, 150, i as u8])),
            );
            attrs.insert(
                "origin".to_string(),
                value("String.url", Some("s3://photos/in/ü.jpg"), None),
            );
        }
        let body = format!("failed upload {i}");
        let sent = sqs
            .send_message()
            .queue_url(&dlq)
            .message_body(&body)
            .set_message_attributes((!attrs.is_empty()).then(|| attrs.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            sent.md5_of_message_attributes().is_some(),
            !attrs.is_empty(),
            "SQS answers an attribute digest exactly when there are attributes"
        );
        expected.insert(
            body,
            (attrs, sent.md5_of_message_attributes().map(str::to_string)),
        );
    }

    let mut cmd = moto.gatekeeper();
    cmd.args(["redrive", "--dlq", &format!("{id}-work-dlq")])
        .args(["--to", &format!("{id}-work"), "--output", "json"]);
    let (report, _) = run_bounded(cmd, std::time::Duration::from_secs(60)).await;
    assert_eq!(
        (&report["found"], &report["moved"], &report["failures"]),
        (&14.into(), &14.into(), &0.into()),
        "{report:#}"
    );
    assert_eq!(depth(&sqs, &dlq).await, 0);

    let mut seen = HashMap::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(&source)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            let attrs = m.message_attributes().cloned().unwrap_or_default();
            let md5 = m.md5_of_message_attributes().map(str::to_string);
            assert!(
                seen.insert(m.body().unwrap().to_string(), (attrs, md5))
                    .is_none(),
                "moved once"
            );
            sqs.delete_message()
                .queue_url(&source)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    assert_eq!(
        seen, expected,
        "every body with its attributes and their digest"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_message_whose_consumer_keeps_failing_does_not_keep_the_run_going() {
    let Some(moto) = moto() else { return };
    let sqs = sqs_client(&moto).await;
    let id = unique("dlqloop");
    let (dlq, dlq_arn) = create_queue(&sqs, &format!("{id}-work-dlq"), None).await;
    // After one failed receive, SQS puts a source message back in the DLQ.
    let (source, _) = create_queue(&sqs, &format!("{id}-work"), Some(&dlq_arn)).await;
    for i in 0..25 {
        sqs.send_message()
            .queue_url(&dlq)
            .message_body(format!("poison {i}"))
            .send()
            .await
            .unwrap();
    }
    // A consumer that fails every message: receives, never deletes, lets it go at once; its
    // next receive hands the message back to the DLQ.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let consumer = tokio::spawn({
        let (sqs, source, stop) = (sqs.clone(), source.clone(), stop.clone());
        async move {
            let mut received = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let got = sqs
                    .receive_message()
                    .queue_url(&source)
                    .max_number_of_messages(10)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
                received += got.messages().len();
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            received
        }
    });

    // The source comes from SQS's redrive policy (no --to, no --config).
    let mut cmd = moto.gatekeeper();
    cmd.args([
        "redrive",
        "--dlq",
        &format!("{id}-work-dlq"),
        "--output",
        "json",
    ]);
    let (report, _) = run_bounded(cmd, std::time::Duration::from_secs(60)).await;
    assert_eq!(report["source"], format!("{id}-work"));
    assert_eq!(
        (&report["found"], &report["moved"], &report["failures"]),
        (&25.into(), &25.into(), &0.into()),
        "{report:#}"
    );
    // The messages do come back (a run that ended only on an empty DLQ would go on with
    // them); whether some already had before the run ended depends on timing, which the
    // `--to` itself test below takes out.
    let back = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let n = depth(&sqs, &dlq).await;
            if n > 0 {
                return n;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the failing consumer hands messages back to the DLQ");
    assert!(back > 0);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let consumed = consumer.await.unwrap();
    // It is stopped as soon as the first message is back, so it may not have seen all 25.
    assert!(consumed > 0, "the consumer saw none of the moved messages");
    // None lost, none doubled: every message is in one of the two queues.
    assert_eq!(depth(&sqs, &dlq).await + depth(&sqs, &source).await, 25);
}

#[tokio::test(flavor = "current_thread")]
async fn a_run_moves_at_most_what_the_dlq_held_at_its_start_or_the_limit() {
    let Some(moto) = moto() else { return };
    let sqs = sqs_client(&moto).await;
    let id = unique("dlqself");
    // The worst case of a message that comes back: `--to` the DLQ itself, where every
    // message sent is back, visible, at once. A run bounded only by "until the DLQ reads
    // empty" would never end.
    let name = format!("{id}-loop-dlq");
    let (dlq, _) = create_queue(&sqs, &name, None).await;
    for i in 0..12 {
        sqs.send_message()
            .queue_url(&dlq)
            .message_body(format!("m{i}"))
            .send()
            .await
            .unwrap();
    }
    let redrive = |limit: Option<&str>| {
        let mut cmd = moto.gatekeeper();
        cmd.args(["redrive", "--dlq", &name, "--to", &name, "--output", "json"]);
        if let Some(n) = limit {
            cmd.args(["--limit", n]);
        }
        cmd
    };
    let (report, _) = run_bounded(redrive(Some("5")), std::time::Duration::from_secs(60)).await;
    assert_eq!(
        (&report["found"], &report["moved"], &report["failures"]),
        (&12.into(), &5.into(), &0.into()),
        "{report:#}"
    );
    let (report, _) = run_bounded(redrive(None), std::time::Duration::from_secs(60)).await;
    assert_eq!(
        (&report["found"], &report["moved"], &report["failures"]),
        (&12.into(), &12.into(), &0.into()),
        "{report:#}"
    );
    assert_eq!(depth(&sqs, &dlq).await, 12, "each message still there once");
}

/// A run killed after receiving leaves its messages in flight (invisible) until their
/// visibility timeout ends; the rerun cannot move them, so it says how many are left and when
/// to run again, and exits 2 instead of 0.
#[tokio::test(flavor = "current_thread")]
async fn messages_still_in_flight_after_a_killed_run_are_reported_with_exit_2() {
    use aws_sdk_sqs::types::QueueAttributeName;
    let Some(moto) = moto() else { return };
    let sqs = sqs_client(&moto).await;
    let id = unique("dlqkill");
    let (source, _) = create_queue(&sqs, &format!("{id}-work"), None).await;
    let (dlq, _) = create_queue(&sqs, &format!("{id}-work-dlq"), None).await;
    sqs.set_queue_attributes()
        .queue_url(&dlq)
        .attributes(QueueAttributeName::VisibilityTimeout, "120")
        .send()
        .await
        .unwrap();
    for i in 0..5 {
        sqs.send_message()
            .queue_url(&dlq)
            .message_body(format!("dead {i}"))
            .send()
            .await
            .unwrap();
    }
    // What a killed run leaves: three received, never deleted, hidden for five minutes.
    let mut taken = Vec::new();
    while taken.len() < 3 {
        let got = sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(3 - taken.len() as i32)
            .visibility_timeout(300)
            .send()
            .await
            .unwrap();
        taken.extend(got.messages().iter().map(|m| m.body().unwrap().to_string()));
    }

    let out = moto
        .gatekeeper()
        .args(["redrive", "--dlq", &format!("{id}-work-dlq")])
        .args(["--to", &format!("{id}-work")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "moved 2 of 5 messages from {id}-work-dlq to {id}-work"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "3 messages still in flight in {id}-work-dlq (received, not deleted: by an interrupted run?); \
             they are visible again within 120s: run again then"
        )),
        "{stdout}"
    );
    // Nothing lost, nothing doubled: the two visible ones moved, the three in flight stay.
    let mut moved = Vec::new();
    loop {
        let got = sqs
            .receive_message()
            .queue_url(&source)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            break;
        }
        for m in got.messages() {
            moved.push(m.body().unwrap().to_string());
            sqs.delete_message()
                .queue_url(&source)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    let mut all: Vec<String> = moved.iter().chain(&taken).cloned().collect();
    all.sort();
    assert_eq!(all, (0..5).map(|i| format!("dead {i}")).collect::<Vec<_>>());
    assert_eq!(moved.len(), 2);
    assert_eq!(
        depth(&sqs, &dlq).await,
        3,
        "the three in flight are still in the DLQ"
    );
}
