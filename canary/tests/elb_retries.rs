//! Throttling and 5xx from AWS: the SDK's standard retry mode retries a bounded number of
//! times with backoff, then the provider returns an error naming the call, on which the
//! executor stops safely (rolls back, or halts for `canary resume`: see the machine's tests).
//! moto cannot be made to throttle, so ELB's answers are replayed with aws-smithy-mocks.
#![cfg(feature = "aws")]

use std::time::Duration;

use aws_sdk_elasticloadbalancingv2::config::retry::RetryConfig;
use aws_sdk_elasticloadbalancingv2::operation::describe_target_health::DescribeTargetHealthOutput;
use aws_sdk_elasticloadbalancingv2::types::{
    TargetDescription, TargetHealth, TargetHealthDescription, TargetHealthStateEnum,
};
use aws_sdk_elasticloadbalancingv2::Client;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use canary::aws::Elb;
use canary::machine::Pool;
use canary::provider::LoadBalancer;

fn elb(client: Client) -> Elb {
    Elb {
        client,
        listener_arn: "arn:aws:elasticloadbalancing:eu-west-1:1:listener/app/a/1/2".into(),
        prod_arn: "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/prod/1".into(),
        canary_arn: "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/canary/2".into(),
    }
}

fn healthy() -> DescribeTargetHealthOutput {
    DescribeTargetHealthOutput::builder()
        .target_health_descriptions(
            TargetHealthDescription::builder()
                .target(TargetDescription::builder().id("i-1").build())
                .target_health(
                    TargetHealth::builder()
                        .state(TargetHealthStateEnum::Healthy)
                        .build(),
                )
                .build(),
        )
        .build()
}

fn retry(attempts: u32) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(attempts)
        .with_initial_backoff(Duration::from_millis(1))
        .with_max_backoff(Duration::from_millis(5))
}

#[tokio::test]
async fn throttling_is_retried_with_backoff_and_then_succeeds() {
    let rule = mock!(Client::describe_target_health)
        .sequence()
        .http_status(503, None)
        .times(2)
        .output(healthy)
        .build();
    let client = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::Sequential,
        [&rule],
        |c| c.retry_config(retry(3))
    );
    let members = elb(client)
        .members(Pool::Prod)
        .await
        .expect("third attempt");
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].state, "healthy");
    assert_eq!(rule.num_calls(), 3);
}

#[tokio::test]
async fn retries_are_bounded_then_the_call_fails_naming_itself() {
    let rule = mock!(Client::describe_target_health)
        .sequence()
        .http_status(503, None)
        .repeatedly()
        .build();
    let client = mock_client!(
        aws_sdk_elasticloadbalancingv2,
        RuleMode::Sequential,
        [&rule],
        |c| c.retry_config(retry(3))
    );
    let err = elb(client).members(Pool::Prod).await.expect_err("gives up");
    assert!(err.to_string().contains("DescribeTargetHealth"), "{err}");
    assert_eq!(rule.num_calls(), 3, "max_attempts bounds the retries");
}
