//! `maintenance-flag`'s SSM reader against moto: the contract's rule for a missing or broken
//! parameter, the TTL cache, and errors keeping the last known value. Skips without moto outside
//! CI; fails in CI.

use std::time::Duration;

use maintenance_flag::{FlagReader, MaintenanceFlag, ReadError};

async fn ssm() -> Option<aws_sdk_ssm::Client> {
    // Finding moto (and failing in CI without it) is the end-to-end tests' own rule.
    let endpoint = gatekeeper_e2e::moto()?.endpoint;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ssm::config::Credentials::for_tests())
        .load()
        .await;
    Some(aws_sdk_ssm::Client::new(&sdk))
}

async fn put(ssm: &aws_sdk_ssm::Client, name: &str, value: &str) {
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn cached_for_the_ttl_and_last_value_kept_on_errors() {
    let Some(ssm) = ssm().await else { return };
    // A fresh moto loads its SSM backend on first use, which can outlast the TTL below.
    let _ = ssm.get_parameter().name("/warm-up").send().await;
    let name = format!("/{}/maintenance", gatekeeper_e2e::unique("flag"));
    let reader = FlagReader::new(ssm.clone(), &name, Duration::from_millis(400));

    // Never set: off, and not an error.
    assert_eq!(reader.try_get().await.unwrap(), MaintenanceFlag::default());

    let on = MaintenanceFlag {
        enabled: true,
        message: "upgrade".into(),
        ..MaintenanceFlag::default()
    };
    put(&ssm, &name, &on.to_json()).await;
    assert!(!reader.get().await.enabled, "still cached");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(reader.get().await, on, "read again after the TTL");

    // A broken value never turns maintenance off: the last known value stays.
    put(&ssm, &name, "{oops").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(reader.get().await, on);
    let (known, error) = reader.try_get().await.unwrap_err();
    assert_eq!(known, Some(on.clone()));
    assert!(error.to_string().contains(&name), "{error}");

    put(&ssm, &name, &MaintenanceFlag::default().to_json()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !reader.get().await.enabled,
        "recovers on the next good read"
    );

    // A reader that never succeeded reports the error and counts as off.
    put(&ssm, &name, "not json").await;
    let fresh = FlagReader::new(ssm, &name, Duration::from_secs(60));
    assert!(!fresh.get().await.enabled);
    assert!(matches!(fresh.try_get().await, Err((None, _))));
}

#[tokio::test]
async fn missing_is_off_and_an_empty_or_broken_value_is_an_error() {
    let Some(ssm) = ssm().await else { return };
    let name = format!("/{}/maintenance", gatekeeper_e2e::unique("flag"));

    // Never set: the one reader says so, and the contract's read counts it as off.
    assert_eq!(maintenance_flag::read_stored(&ssm, &name).await, Ok(None));
    assert_eq!(
        maintenance_flag::read(&ssm, &name).await,
        Ok(MaintenanceFlag::default())
    );

    let on = MaintenanceFlag {
        enabled: true,
        ..MaintenanceFlag::default()
    };
    put(&ssm, &name, &on.to_json()).await;
    assert_eq!(
        maintenance_flag::read_stored(&ssm, &name).await,
        Ok(Some(on.clone()))
    );
    assert_eq!(maintenance_flag::read(&ssm, &name).await, Ok(on));

    // A value that is not a flag is never off.
    for broken in [" ", "{oops", r#"{"message":"no enabled"}"#] {
        put(&ssm, &name, broken).await;
        let err = maintenance_flag::read(&ssm, &name).await.unwrap_err();
        assert!(
            matches!(&err, ReadError::Invalid { parameter, .. } if parameter == &name),
            "{broken:?}: {err}"
        );
    }
}
