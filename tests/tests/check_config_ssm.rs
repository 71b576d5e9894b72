//! `gatekeeper check-config` with `ssm:/<path>` sources, against moto's Parameter Store.

use aws_sdk_ssm::types::ParameterType;
use gatekeeper_e2e::{fleet::sdk, moto, output, rt, unique, Moto};

/// Puts `(name under root, value, type)` parameters.
fn put(moto: &Moto, root: &str, params: &[(&str, &str, ParameterType)]) {
    rt().block_on(async {
        let ssm = aws_sdk_ssm::Client::new(&sdk(moto).await);
        for (name, value, kind) in params {
            ssm.put_parameter()
                .name(format!("{root}/{name}"))
                .value(*value)
                .r#type(kind.clone())
                .overwrite(true)
                .send()
                .await
                .expect("PutParameter");
        }
    });
}

fn check(moto: &Moto, old: &str, new: &str) -> (Option<i32>, String, String) {
    let mut cmd = moto.gatekeeper();
    cmd.args([
        "check-config",
        "--old",
        old,
        "--new",
        new,
        "--output",
        "json",
    ]);
    output(cmd)
}

#[test]
fn parameter_trees_are_compared_and_secrets_never_printed() {
    let Some(moto) = moto() else { return };
    let root = format!("/{}", unique("cc"));
    use ParameterType::{SecureString, String as Plain, StringList};
    put(
        &moto,
        &format!("{root}/old"),
        &[
            ("db/host", "db-1.internal", Plain),
            ("db/password", "old-secret-value-1", SecureString),
            ("workers", "4", Plain),
            ("queues", "ingest,thumbnails", StringList),
        ],
    );
    put(
        &moto,
        &format!("{root}/new"),
        &[
            ("db/host", "db-1.internal", Plain),
            // Moved from SecureString to a plain String: old code decrypts, new code does not.
            ("db/password", "new-plain-value-2", Plain),
            ("queues", "ingest,thumbnails", StringList),
        ],
    );
    let (code, stdout, stderr) = check(
        &moto,
        &format!("ssm:{root}/old"),
        &format!("ssm:{root}/new"),
    );
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["rollback_safe"], false);
    let findings: Vec<(String, String)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        findings.contains(&("KEY_REMOVED".into(), "workers".into())),
        "{findings:?}"
    );
    assert!(
        findings.contains(&("SECRET_STORAGE_CHANGED".into(), "db.password".into())),
        "{findings:?}"
    );
    for secret in ["old-secret-value-1", "new-plain-value-2"] {
        assert!(!stdout.contains(secret), "{secret} printed: {stdout}");
        assert!(!stderr.contains(secret), "{secret} printed: {stderr}");
    }

    // The same tree on both sides is compatible both ways.
    let (code, stdout, stderr) = check(
        &moto,
        &format!("ssm:{root}/old"),
        &format!("ssm:{root}/old"),
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains("old-secret-value-1"), "{stdout}");
}

#[test]
fn an_empty_tree_is_an_error_naming_the_path() {
    let Some(moto) = moto() else { return };
    let root = format!("/{}", unique("cc"));
    put(
        &moto,
        &format!("{root}/old"),
        &[("workers", "4", ParameterType::String)],
    );
    let (code, stdout, stderr) = check(
        &moto,
        &format!("ssm:{root}/old"),
        &format!("ssm:{root}/nothing-here"),
    );
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("no parameters under {root}/nothing-here")),
        "{stderr}"
    );
}

#[test]
fn a_malformed_ssm_source_is_refused_before_any_call() {
    // No moto needed: the source is rejected while parsing the arguments, and the endpoint
    // points nowhere, so any call would fail differently.
    let out = gatekeeper_e2e::gatekeeper()
        .args([
            "check-config",
            "--old",
            "ssm:photos/prod",
            "--new",
            "ssm:/photos/prod",
        ])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("expected ssm:/<path>"), "{stderr}");
}
