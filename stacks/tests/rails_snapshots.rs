//! Snapshots of the example service's templates: every change to what the builders emit shows
//! up in review.

use std::path::{Path, PathBuf};

use stacks::config;
use stacks::Format;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/photos")
        .join(name)
}

fn synth(name: &str, format: Format) -> String {
    let loaded = config::load(&example(name)).expect("example config is valid");
    let stacks = stacks::synth(&loaded.config).expect("example synthesizes");
    assert_eq!(stacks.len(), 1);
    stacks[0].template.render(format)
}

#[test]
fn prod_json() {
    insta::assert_snapshot!(synth("prod.toml", Format::Json));
}

#[test]
fn prod_yaml() {
    insta::assert_snapshot!(synth("prod.toml", Format::Yaml));
}

#[test]
fn staging_json() {
    insta::assert_snapshot!(synth("staging.toml", Format::Json));
}

#[test]
fn rendering_is_deterministic() {
    for format in [Format::Json, Format::Yaml] {
        assert_eq!(synth("prod.toml", format), synth("prod.toml", format));
    }
}

/// The properties moto's CloudFormation does not apply are proven here, on the template.
#[test]
fn buckets_are_locked_down_and_retained() {
    let loaded = config::load(&example("prod.toml")).unwrap();
    let t = &stacks::synth(&loaded.config).unwrap()[0].template;
    let v: serde_json::Value = serde_json::from_str(&t.render(Format::Json)).unwrap();
    for id in ["IngestionBucket", "ParkingLotBucket"] {
        let b = &v["Resources"][id];
        assert_eq!(b["DeletionPolicy"], "Retain", "{id}");
        assert_eq!(b["UpdateReplacePolicy"], "Retain", "{id}");
        let p = &b["Properties"];
        assert_eq!(p["VersioningConfiguration"]["Status"], "Enabled", "{id}");
        for flag in [
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ] {
            assert_eq!(
                p["PublicAccessBlockConfiguration"][flag], true,
                "{id} {flag}"
            );
        }
        let sse = &p["BucketEncryption"]["ServerSideEncryptionConfiguration"][0];
        assert_eq!(
            sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"],
            "aws:kms"
        );
        // No rule may expire current objects: waiting uploads are data.
        for rule in p["LifecycleConfiguration"]["Rules"].as_array().unwrap() {
            assert!(rule.get("ExpirationInDays").is_none(), "{id}: {rule}");
            assert!(rule.get("ExpirationDate").is_none(), "{id}: {rule}");
            assert!(rule.get("Expiration").is_none(), "{id}: {rule}");
        }
        let policy = &v["Resources"][format!("{id}Policy")]["Properties"]["PolicyDocument"];
        let st = &policy["Statement"][0];
        assert_eq!(st["Effect"], "Deny");
        assert_eq!(st["Condition"]["Bool"]["aws:SecureTransport"], "false");
    }
}

#[test]
fn every_queue_has_a_dead_letter_queue_and_alarms() {
    let loaded = config::load(&example("prod.toml")).unwrap();
    let t = &stacks::synth(&loaded.config).unwrap()[0].template;
    let v: serde_json::Value = serde_json::from_str(&t.render(Format::Json)).unwrap();
    let resources = v["Resources"].as_object().unwrap();
    for q in &loaded.config.queues {
        let id = stacks::rails::logical_id("Queue", q.name.get_ref());
        let dlq = stacks::rails::logical_id("DeadLetterQueue", q.name.get_ref());
        let redrive = &resources[&id]["Properties"]["RedrivePolicy"];
        assert_eq!(
            redrive["deadLetterTargetArn"]["Fn::GetAtt"][0],
            dlq.as_str()
        );
        assert_eq!(resources[&id]["Properties"]["SqsManagedSseEnabled"], true);
        let alarms: Vec<_> = resources
            .values()
            .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
            .filter(|r| {
                let d = r["Properties"]["Dimensions"].to_string();
                d.contains(&format!("\"{id}\"")) || d.contains(&format!("\"{dlq}\""))
            })
            .collect();
        assert_eq!(alarms.len(), 2, "oldest-message and DLQ alarms for {id}");
        for a in alarms {
            assert_eq!(a["Properties"]["AlarmActions"][0]["Ref"], "AlarmTopic");
            assert_eq!(a["Properties"]["OKActions"][0]["Ref"], "AlarmTopic");
        }
    }
}

#[test]
fn outputs_never_depend_on_alarms() {
    let loaded = config::load(&example("prod.toml")).unwrap();
    let t = &stacks::synth(&loaded.config).unwrap()[0].template;
    for (id, output) in &t.outputs {
        for r in output.value.references() {
            assert_ne!(
                t.resources[&r].type_, "AWS::CloudWatch::Alarm",
                "output {id} refers to alarm {r}"
            );
        }
        assert!(output.export.is_some(), "output {id} is exported");
    }
}
