//! The CodeDeploy deployer. moto's CodeDeploy never moves a deployment past its first status,
//! and has no StopDeployment: CodeDeploy's answers are replayed here with aws-smithy-mocks,
//! which also check the requests sent (the group's tag filters, the revision).
//! (The `command` deployer runs end to end against moto in the e2e canary tests.)
#![cfg(feature = "aws")]

use std::time::Duration;

use aws_sdk_codedeploy::operation::create_deployment::CreateDeploymentOutput;
use aws_sdk_codedeploy::operation::get_deployment::GetDeploymentOutput;
use aws_sdk_codedeploy::operation::get_deployment_group::GetDeploymentGroupOutput;
use aws_sdk_codedeploy::operation::stop_deployment::StopDeploymentOutput;
use aws_sdk_codedeploy::operation::update_deployment_group::UpdateDeploymentGroupOutput;
use aws_sdk_codedeploy::types::{
    BundleType, DeploymentGroupInfo, DeploymentInfo, DeploymentStatus, ErrorInformation,
    LastDeploymentInfo, RevisionLocation, RevisionLocationType, S3Location,
};
use aws_sdk_codedeploy::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use canary::aws::CodeDeploy;
use canary::provider::Deployer;

fn deployer(client: Client, timeout: Duration) -> CodeDeploy {
    CodeDeploy {
        client,
        application: "photos".into(),
        deployment_group: "photos-prod".into(),
        node_tag: "gatekeeper-node".into(),
        timeout,
        poll: Duration::ZERO,
        smoke: vec![],
    }
}

fn status(s: DeploymentStatus) -> GetDeploymentOutput {
    GetDeploymentOutput::builder()
        .deployment_info(
            DeploymentInfo::builder()
                .deployment_id("d-1")
                .status(s)
                .build(),
        )
        .build()
}

/// Any UpdateDeploymentGroup answered with success.
fn targeted() -> aws_smithy_mocks::Rule {
    mock!(Client::update_deployment_group)
        .then_output(|| UpdateDeploymentGroupOutput::builder().build())
}

#[tokio::test]
async fn deploys_the_revision_to_exactly_the_named_nodes_and_waits_for_success() {
    // The group is pointed at exactly these nodes first: an in-place deployment goes to the
    // instances its group selects, and CodeDeploy refuses `targetInstances` for one.
    let target = mock!(Client::update_deployment_group)
        .match_requests(|r| {
            let tags: Vec<_> = r
                .ec2_tag_filters()
                .iter()
                .map(|f| {
                    (
                        f.key().unwrap_or(""),
                        f.value().unwrap_or(""),
                        f.r#type().map(|t| t.as_str()),
                    )
                })
                .collect();
            r.application_name() == Some("photos")
                && r.current_deployment_group_name() == Some("photos-prod")
                && tags
                    == [
                        ("gatekeeper-node", "i-0a", Some("KEY_AND_VALUE")),
                        ("gatekeeper-node", "i-0b", Some("KEY_AND_VALUE")),
                    ]
        })
        .then_output(|| UpdateDeploymentGroupOutput::builder().build());
    let create = mock!(Client::create_deployment)
        .match_requests(|r| {
            let s3 = r.revision().and_then(|r| r.s3_location());
            r.application_name() == Some("photos")
                && r.deployment_group_name() == Some("photos-prod")
                && r.target_instances().is_none()
                && s3.and_then(|s| s.bucket()) == Some("artifacts")
                && s3.and_then(|s| s.key()) == Some("photos/v2.tar.gz")
                && s3.and_then(|s| s.bundle_type()) == Some(&BundleType::TarGZip)
        })
        .then_output(|| {
            CreateDeploymentOutput::builder()
                .deployment_id("d-1")
                .build()
        });
    let get = mock!(Client::get_deployment)
        .sequence()
        .output(|| status(DeploymentStatus::Created))
        .output(|| status(DeploymentStatus::InProgress))
        .times(2)
        .output(|| status(DeploymentStatus::Succeeded))
        .build();
    let client = mock_client!(
        aws_sdk_codedeploy,
        RuleMode::Sequential,
        [&target, &create, &get]
    );
    deployer(client, Duration::from_secs(60))
        .deploy(
            &["i-0a".to_string(), "i-0b".to_string()],
            "s3://artifacts/photos/v2.tar.gz",
        )
        .await
        .expect("deployed");
    assert_eq!(target.num_calls(), 1);
    assert_eq!(create.num_calls(), 1);
    assert_eq!(get.num_calls(), 4);
}

#[tokio::test]
async fn a_failed_deployment_is_an_error_with_codedeploys_reason() {
    let create = mock!(Client::create_deployment).then_output(|| {
        CreateDeploymentOutput::builder()
            .deployment_id("d-1")
            .build()
    });
    let get = mock!(Client::get_deployment)
        .sequence()
        .output(|| status(DeploymentStatus::InProgress))
        .output(|| {
            GetDeploymentOutput::builder()
                .deployment_info(
                    DeploymentInfo::builder()
                        .deployment_id("d-1")
                        .status(DeploymentStatus::Failed)
                        .error_information(
                            ErrorInformation::builder()
                                .message("ApplicationStop script failed on i-0a")
                                .build(),
                        )
                        .build(),
                )
                .build()
        })
        .build();
    let target = targeted();
    let client = mock_client!(
        aws_sdk_codedeploy,
        RuleMode::Sequential,
        [&target, &create, &get]
    );
    let err = deployer(client, Duration::from_secs(60))
        .deploy(&["i-0a".to_string()], "s3://artifacts/photos/v2.zip")
        .await
        .expect_err("failed");
    let text = err.to_string();
    assert!(text.contains("d-1 Failed"), "{text}");
    assert!(
        text.contains("ApplicationStop script failed on i-0a"),
        "{text}"
    );
}

#[tokio::test]
async fn a_deployment_past_its_timeout_is_stopped() {
    let create = mock!(Client::create_deployment).then_output(|| {
        CreateDeploymentOutput::builder()
            .deployment_id("d-9")
            .build()
    });
    let get = mock!(Client::get_deployment)
        .sequence()
        .output(|| status(DeploymentStatus::InProgress))
        .repeatedly()
        .build();
    let stop = mock!(Client::stop_deployment)
        .match_requests(|r| r.deployment_id() == Some("d-9"))
        .then_output(|| StopDeploymentOutput::builder().build());
    let target = targeted();
    let client = mock_client!(
        aws_sdk_codedeploy,
        RuleMode::MatchAny,
        [&target, &create, &get, &stop]
    );
    let err = deployer(client, Duration::ZERO)
        .deploy(&["i-0a".to_string()], "s3://artifacts/photos/v2.zip")
        .await
        .expect_err("timed out");
    assert!(err.to_string().contains("did not finish"), "{err}");
    assert_eq!(stop.num_calls(), 1);
}

#[tokio::test]
async fn a_revision_that_is_not_in_s3_is_refused_before_any_call() {
    let create = mock!(Client::create_deployment).then_output(|| {
        CreateDeploymentOutput::builder()
            .deployment_id("d-1")
            .build()
    });
    let target = targeted();
    let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&target, &create]);
    let err = deployer(client, Duration::from_secs(60))
        .deploy(&["i-0a".to_string()], "v2")
        .await
        .expect_err("not s3");
    assert!(err.to_string().contains("s3://bucket/key"), "{err}");
    assert_eq!(target.num_calls(), 0, "the group is left alone");
    assert_eq!(create.num_calls(), 0);
}

#[tokio::test]
async fn the_current_revision_is_the_groups_last_successful_deployment() {
    let group = mock!(Client::get_deployment_group).then_output(|| {
        GetDeploymentGroupOutput::builder()
            .deployment_group_info(
                DeploymentGroupInfo::builder()
                    .last_successful_deployment(
                        LastDeploymentInfo::builder().deployment_id("d-7").build(),
                    )
                    .build(),
            )
            .build()
    });
    let get = mock!(Client::get_deployment)
        .match_requests(|r| r.deployment_id() == Some("d-7"))
        .then_output(|| {
            GetDeploymentOutput::builder()
                .deployment_info(
                    DeploymentInfo::builder()
                        .deployment_id("d-7")
                        .status(DeploymentStatus::Succeeded)
                        .revision(
                            RevisionLocation::builder()
                                .revision_type(RevisionLocationType::S3)
                                .s3_location(
                                    S3Location::builder()
                                        .bucket("artifacts")
                                        .key("photos/v1.zip")
                                        .build(),
                                )
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let client = mock_client!(aws_sdk_codedeploy, RuleMode::Sequential, [&group, &get]);
    let current = deployer(client, Duration::from_secs(60))
        .current("i-0a")
        .await
        .unwrap();
    assert_eq!(current.as_deref(), Some("s3://artifacts/photos/v1.zip"));
}

#[tokio::test]
async fn a_group_that_cannot_be_pointed_at_the_nodes_deploys_nothing() {
    let target = mock!(Client::update_deployment_group).then_error(|| {
        aws_sdk_codedeploy::operation::update_deployment_group::UpdateDeploymentGroupError::unhandled(
            "AccessDenied",
        )
    });
    let create = mock!(Client::create_deployment).then_output(|| {
        CreateDeploymentOutput::builder()
            .deployment_id("d-1")
            .build()
    });
    let client = mock_client!(aws_sdk_codedeploy, RuleMode::MatchAny, [&target, &create]);
    let err = deployer(client, Duration::from_secs(60))
        .deploy(&["i-0a".to_string()], "s3://artifacts/photos/v2.zip")
        .await
        .expect_err("not targeted");
    assert!(
        err.to_string()
            .contains("UpdateDeploymentGroup photos/photos-prod"),
        "{err}"
    );
    assert_eq!(
        create.num_calls(),
        0,
        "never a deployment to whatever the group held"
    );
}
