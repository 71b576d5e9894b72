//! A maintenance flag with a custom name (`[flag] parameter`): the rails stack creates it under
//! that name, so the canary's preflight must read it and `iam-policy` must grant reading it,
//! not the default `/<service>/<environment>/maintenance`. Against moto, through the binary.

use gatekeeper_e2e::fleet::Fleet;
use gatekeeper_e2e::{gatekeeper, moto, output, repo_root, rt};

#[test]
fn preflight_and_iam_policy_use_the_custom_flag_name() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 2, ""));
    let custom = format!("/{}/shared-maintenance-flag", fleet.service);
    let mut text = std::fs::read_to_string(&fleet.config).unwrap();
    text.push_str(&format!("\n[flag]\nparameter = \"{custom}\"\n"));
    std::fs::write(&fleet.config, text).unwrap();
    // The flag under the custom name is on; the default name (which the fleet writes) is off.
    rt.block_on(
        fleet
            .ssm
            .put_parameter()
            .name(&custom)
            .value(r#"{"enabled":true,"message":"db upgrade","when":"2026-01-01T00:00:00Z"}"#)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send(),
    )
    .unwrap();

    // The preflight (made for real by a dry run) sees maintenance on and refuses the run.
    let (code, stdout, stderr) =
        output(fleet.gatekeeper(&["canary", "run", "--revision", "v2", "--dry-run"]));
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("maintenance mode is on ({custom})")),
        "{stdout}\n{stderr}"
    );

    // The policy grants reading the custom name, and not the default one.
    let (code, policy, stderr) = output(fleet.gatekeeper(&["iam-policy"]));
    assert_eq!(code, Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&policy).unwrap();
    let flag_reads: Vec<&str> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Sid"] == "ReadMaintenanceFlag")
        .flat_map(|s| s["Resource"].as_array().unwrap())
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(flag_reads.len(), 1, "{policy}");
    assert!(
        flag_reads[0].ends_with(&format!("parameter{custom}")),
        "{flag_reads:?}"
    );
    assert!(!policy.contains("/maintenance\""), "{policy}");
}

/// Without AWS: the rails stack (`synth`) creates the flag under the `[flag] parameter` name,
/// and the policy (`iam-policy`) grants reading that same name, for the example service.
#[test]
fn synth_and_iam_policy_agree_on_a_custom_flag_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prod.toml");
    let mut text = std::fs::read_to_string(repo_root().join("examples/photos/prod.toml")).unwrap();
    text.push_str("\n[flag]\nparameter = \"/platform/photos-prod-flag\"\n");
    std::fs::write(&config, text).unwrap();

    let mut synth = gatekeeper();
    synth.arg("synth").arg("--config").arg(&config);
    let (code, template, stderr) = output(synth);
    assert_eq!(code, Some(0), "{stderr}");
    let template: serde_json::Value = serde_json::from_str(&template).unwrap();
    let names: Vec<&str> = template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::SSM::Parameter")
        .filter_map(|r| r["Properties"]["Name"].as_str())
        .collect();
    assert_eq!(names, ["/platform/photos-prod-flag"], "{template:#}");

    let mut policy = gatekeeper();
    policy.arg("iam-policy").arg("--config").arg(&config);
    let (code, policy, stderr) = output(policy);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        policy.contains("parameter/platform/photos-prod-flag\""),
        "{policy}"
    );
    assert!(
        !policy.contains("parameter/photos/prod/maintenance"),
        "{policy}"
    );
}
