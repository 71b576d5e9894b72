#![allow(dead_code)] // Each test crate uses a different part of this module.

//! What the moto tests share: the SDK clients on moto, unique names, and S3 set-up.
//!
//! Needs a moto server (`scripts/test` starts one): `GATEKEEPER_TEST_MOTO` or
//! `AWS_ENDPOINT_URL` on loopback. Outside CI the tests skip without it; in CI they fail.

/// The SDK clients, pointed at moto.
#[derive(Clone)]
pub struct Moto {
    pub ssm: aws_sdk_ssm::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub s3: aws_sdk_s3::Client,
}

/// The clients on moto, or `None` (the test skips) when there is no moto outside CI.
///
/// # Panics
///
/// In CI (`CI` set) when moto is not reachable: there every moto test must run.
pub async fn moto() -> Option<Moto> {
    // Finding moto (and failing in CI without it) is the end-to-end tests' own rule.
    let endpoint = gatekeeper_e2e::moto()?.endpoint;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await;
    Some(Moto {
        ssm: aws_sdk_ssm::Client::new(&sdk),
        sqs: aws_sdk_sqs::Client::new(&sdk),
        s3: aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        ),
    })
}

/// A name no other test (or earlier run) uses: `prefix`, the process, the time, a counter.
#[expect(
    clippy::disallowed_methods,
    reason = "the time only makes names unique"
)]
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}{}{:x}{}",
        std::process::id() % 10000,
        nanos % 0xffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates the bucket `name`.
pub async fn bucket(m: &Moto, name: &str) {
    m.s3.create_bucket().bucket(name).send().await.unwrap();
}

/// Writes `body` to `key` in `bucket`.
pub async fn put(m: &Moto, bucket: &str, key: &str, body: Vec<u8>) {
    m.s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .unwrap();
}
