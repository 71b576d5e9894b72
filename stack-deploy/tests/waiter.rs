//! The deploy waiter's failure paths. moto's CloudFormation creates synchronously and a failed
//! create sticks in CREATE_IN_PROGRESS, so rollbacks, busy stacks and time-outs cannot be
//! produced there: these tests replay CloudFormation's answers with aws-smithy-mocks.

use std::time::Duration;

use aws_sdk_cloudformation::operation::create_change_set::CreateChangeSetOutput;
use aws_sdk_cloudformation::operation::create_stack::CreateStackOutput;
use aws_sdk_cloudformation::operation::delete_change_set::DeleteChangeSetOutput;
use aws_sdk_cloudformation::operation::describe_change_set::DescribeChangeSetOutput;
use aws_sdk_cloudformation::operation::describe_stack_events::DescribeStackEventsOutput;
use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksOutput;
use aws_sdk_cloudformation::operation::execute_change_set::ExecuteChangeSetOutput;
use aws_sdk_cloudformation::types::{
    Change, ChangeAction, ChangeSetStatus, Replacement, ResourceChange, ResourceStatus, Stack,
    StackEvent, StackStatus,
};
use aws_sdk_cloudformation::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use stack_deploy::{deploy, DeployError, Event, Outcome, Request, Timing};

fn stack(status: StackStatus) -> DescribeStacksOutput {
    DescribeStacksOutput::builder()
        .stacks(
            Stack::builder()
                .stack_name("s")
                .stack_status(status)
                .creation_time(aws_smithy_types::DateTime::from_secs(0))
                .build(),
        )
        .build()
}

fn event(id: &str, logical: &str, status: ResourceStatus, reason: &str) -> StackEvent {
    StackEvent::builder()
        .event_id(id)
        .stack_id("arn:stack/s")
        .stack_name("s")
        .logical_resource_id(logical)
        .resource_type("AWS::SQS::Queue")
        .resource_status(status)
        .resource_status_reason(reason)
        .timestamp(aws_smithy_types::DateTime::from_secs(1))
        .build()
}

fn request() -> Request {
    Request {
        stack_name: "s".into(),
        template_body: "{}".into(),
        tags: vec![],
    }
}

fn timing() -> Timing {
    Timing {
        poll_interval: Duration::from_secs(5),
        timeout: Duration::from_secs(60),
    }
}

fn describe_sequence(statuses: &[StackStatus]) -> Rule {
    let mut seq = mock!(Client::describe_stacks).sequence();
    for s in statuses {
        let s = s.clone();
        seq = seq.output(move || stack(s.clone()));
    }
    seq.build()
}

fn ready_change_set() -> Rule {
    mock!(Client::describe_change_set).then_output(|| {
        DescribeChangeSetOutput::builder()
            .status(ChangeSetStatus::CreateComplete)
            .changes(
                Change::builder()
                    .resource_change(
                        ResourceChange::builder()
                            .action(ChangeAction::Modify)
                            .logical_resource_id("QueueUploads")
                            .resource_type("AWS::SQS::Queue")
                            .replacement(Replacement::True)
                            .build(),
                    )
                    .build(),
            )
            .build()
    })
}

async fn run(client: &Client) -> (Result<Outcome, DeployError>, Vec<Event>) {
    let mut events = Vec::new();
    let result = deploy(client, &request(), timing(), &mut |e| events.push(e)).await;
    (result, events)
}

#[tokio::test(start_paused = true)]
async fn an_update_that_rolls_back_reports_every_failed_resource() {
    let describe = describe_sequence(&[
        StackStatus::UpdateComplete,
        StackStatus::UpdateComplete,
        StackStatus::UpdateInProgress,
        StackStatus::UpdateRollbackInProgress,
        StackStatus::UpdateRollbackComplete,
    ]);
    let create_cs =
        mock!(Client::create_change_set).then_output(|| CreateChangeSetOutput::builder().build());
    let execute =
        mock!(Client::execute_change_set).then_output(|| ExecuteChangeSetOutput::builder().build());
    let events = mock!(Client::describe_stack_events)
        .sequence()
        .output(|| {
            DescribeStackEventsOutput::builder()
                .stack_events(event(
                    "old",
                    "QueueUploads",
                    ResourceStatus::UpdateFailed,
                    "an old failure",
                ))
                .build()
        })
        .output(|| {
            DescribeStackEventsOutput::builder()
                .stack_events(event(
                    "e2",
                    "QueueUploads",
                    ResourceStatus::UpdateFailed,
                    "Resource handler returned message: QueueAlreadyExists",
                ))
                .stack_events(event(
                    "e1",
                    "QueueUploads",
                    ResourceStatus::UpdateInProgress,
                    "",
                ))
                .stack_events(event(
                    "old",
                    "QueueUploads",
                    ResourceStatus::UpdateFailed,
                    "an old failure",
                ))
                .build()
        })
        .repeatedly()
        .build();
    let ready = ready_change_set();
    let client = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        [&describe, &create_cs, &ready, &execute, &events]
    );
    let (result, seen) = run(&client).await;
    let err = result.expect_err("a rollback is an error");
    match &err {
        DeployError::RolledBack {
            status, failures, ..
        } => {
            assert_eq!(status, "UPDATE_ROLLBACK_COMPLETE");
            assert_eq!(
                failures.len(),
                1,
                "only this operation's failures: {failures:?}"
            );
            assert!(failures[0]
                .reason
                .as_deref()
                .unwrap()
                .contains("QueueAlreadyExists"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err
        .to_string()
        .contains("QueueUploads AWS::SQS::Queue UPDATE_FAILED"));
    assert!(seen.iter().any(
        |e| matches!(e, Event::ChangeSetReady { changes } if changes[0].replacement == "True")
    ));
    assert!(seen.contains(&Event::Executing));
}

#[tokio::test(start_paused = true)]
async fn a_create_that_rolls_back_is_an_error() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .error(|| {
            aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksError::generic(
                aws_smithy_types::error::ErrorMetadata::builder()
                    .code("ValidationError")
                    .message("Stack with id s does not exist")
                    .build(),
            )
        })
        .output(|| stack(StackStatus::CreateInProgress))
        .output(|| stack(StackStatus::RollbackInProgress))
        .output(|| stack(StackStatus::RollbackComplete))
        .build();
    let create = mock!(Client::create_stack)
        .then_output(|| CreateStackOutput::builder().stack_id("arn:stack/s").build());
    let events = mock!(Client::describe_stack_events).then_output(|| {
        DescribeStackEventsOutput::builder()
            .stack_events(event(
                "e1",
                "IngestionBucket",
                ResourceStatus::CreateFailed,
                "bucket name taken",
            ))
            .build()
    });
    let client = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        [&describe, &create, &events]
    );
    let (result, seen) = run(&client).await;
    assert!(seen.contains(&Event::Creating));
    match result {
        Err(DeployError::RolledBack {
            status, failures, ..
        }) => {
            assert_eq!(status, "ROLLBACK_COMPLETE");
            assert_eq!(failures[0].logical_id, "IngestionBucket");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_busy_stack_is_refused_before_anything_is_created() {
    let describe =
        mock!(Client::describe_stacks).then_output(|| stack(StackStatus::UpdateInProgress));
    let create_cs =
        mock!(Client::create_change_set).then_output(|| CreateChangeSetOutput::builder().build());
    let client = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        [&describe, &create_cs]
    );
    let (result, _) = run(&client).await;
    assert!(
        matches!(result, Err(DeployError::Busy { .. })),
        "{result:?}"
    );
    assert_eq!(create_cs.num_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_stack_after_a_failed_create_must_be_deleted_first() {
    let describe =
        mock!(Client::describe_stacks).then_output(|| stack(StackStatus::RollbackComplete));
    let client = mock_client!(aws_sdk_cloudformation, RuleMode::MatchAny, [&describe]);
    let (result, _) = run(&client).await;
    let err = result.unwrap_err();
    assert!(matches!(err, DeployError::NeedsDelete { .. }));
    assert!(err.to_string().contains("delete it"));
}

#[tokio::test(start_paused = true)]
async fn a_stack_that_never_settles_times_out() {
    let describe = describe_sequence(&[StackStatus::UpdateComplete, StackStatus::UpdateComplete]);
    let stuck = mock!(Client::describe_stacks).then_output(|| stack(StackStatus::UpdateInProgress));
    let create_cs =
        mock!(Client::create_change_set).then_output(|| CreateChangeSetOutput::builder().build());
    let execute =
        mock!(Client::execute_change_set).then_output(|| ExecuteChangeSetOutput::builder().build());
    let events = mock!(Client::describe_stack_events)
        .then_output(|| DescribeStackEventsOutput::builder().build());
    let ready = ready_change_set();
    let client = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        [&describe, &stuck, &create_cs, &ready, &execute, &events]
    );
    let (result, seen) = run(&client).await;
    match result {
        Err(DeployError::Timeout { status, waited, .. }) => {
            assert_eq!(status, "UPDATE_IN_PROGRESS");
            assert!(waited >= Duration::from_secs(60));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(seen.iter().any(|e| matches!(e, Event::Waiting { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_change_set_without_changes_is_deleted_and_reported() {
    let describe =
        mock!(Client::describe_stacks).then_output(|| stack(StackStatus::UpdateComplete));
    let create_cs =
        mock!(Client::create_change_set).then_output(|| CreateChangeSetOutput::builder().build());
    let failed = mock!(Client::describe_change_set).then_output(|| {
        DescribeChangeSetOutput::builder()
            .status(ChangeSetStatus::Failed)
            .status_reason("The submitted information didn't contain changes. Submit different information to create a change set.")
            .build()
    });
    let delete =
        mock!(Client::delete_change_set).then_output(|| DeleteChangeSetOutput::builder().build());
    let execute =
        mock!(Client::execute_change_set).then_output(|| ExecuteChangeSetOutput::builder().build());
    let client = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        [&describe, &create_cs, &failed, &delete, &execute]
    );
    let (result, _) = run(&client).await;
    assert_eq!(result.unwrap(), Outcome::NoChanges);
    assert_eq!(delete.num_calls(), 1, "the empty change set is cleaned up");
    assert_eq!(execute.num_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_change_set_is_an_error_with_its_reason() {
    let describe =
        mock!(Client::describe_stacks).then_output(|| stack(StackStatus::UpdateComplete));
    let create_cs =
        mock!(Client::create_change_set).then_output(|| CreateChangeSetOutput::builder().build());
    let failed = mock!(Client::describe_change_set).then_output(|| {
        DescribeChangeSetOutput::builder()
            .status(ChangeSetStatus::Failed)
            .status_reason("Template format error: Unresolved resource dependencies [Ghost]")
            .build()
    });
    let delete =
        mock!(Client::delete_change_set).then_output(|| DeleteChangeSetOutput::builder().build());
    let client = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        [&describe, &create_cs, &failed, &delete]
    );
    let (result, _) = run(&client).await;
    let err = result.unwrap_err();
    assert!(
        err.to_string()
            .contains("Unresolved resource dependencies [Ghost]"),
        "{err}"
    );
}

fn describe_error(
    code: &'static str,
    message: &'static str,
) -> aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksError {
    aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksError::generic(
        aws_smithy_types::error::ErrorMetadata::builder()
            .code(code)
            .message(message)
            .build(),
    )
}

fn no_events() -> Rule {
    mock!(Client::describe_stack_events)
        .then_output(|| DescribeStackEventsOutput::builder().build())
}

fn create_stack() -> Rule {
    mock!(Client::create_stack)
        .then_output(|| CreateStackOutput::builder().stack_id("arn:stack/s").build())
}

/// What the fault proxy showed: the stack was created, but a look while waiting was throttled,
/// answered 503, or answered with a body that could not be read.
#[tokio::test(start_paused = true)]
async fn transient_errors_while_waiting_are_looked_at_again() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .error(|| describe_error("ValidationError", "Stack with id s does not exist"))
        .error(|| describe_error("Throttling", "Rate exceeded"))
        .http_status(503, None)
        .http_status(200, Some("<DescribeStacksResponse><oops".into()))
        .output(|| stack(StackStatus::CreateComplete))
        .build();
    let (create, events) = (create_stack(), no_events());
    let client = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        [&describe, &create, &events],
        // Each answer is the last attempt the SDK makes, as after its own retries.
        |c| c.retry_config(aws_smithy_types::retry::RetryConfig::disabled())
    );
    let (result, seen) = run(&client).await;
    match result {
        Ok(Outcome::Completed { status, .. }) => assert_eq!(status, "CREATE_COMPLETE"),
        other => panic!("unexpected {other:?}"),
    }
    let retried: Vec<&String> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Retrying { error } => Some(error),
            _ => None,
        })
        .collect();
    assert_eq!(retried.len(), 3, "{seen:?}");
    assert!(
        retried[0].contains("DescribeStacks on stack s: Throttling: Rate exceeded"),
        "{}",
        retried[0]
    );
    assert!(retried[1].contains("503"), "{}", retried[1]);
    assert_eq!(describe.num_calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn an_error_that_will_not_pass_ends_the_wait_at_once() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .error(|| describe_error("ValidationError", "Stack with id s does not exist"))
        .error(|| describe_error("AccessDenied", "not allowed to DescribeStacks"))
        .output(|| stack(StackStatus::CreateComplete))
        .build();
    let (create, events) = (create_stack(), no_events());
    let client = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        [&describe, &create, &events]
    );
    let (result, seen) = run(&client).await;
    let err = result.unwrap_err();
    assert_eq!(
        err.to_string(),
        "DescribeStacks on stack s: AccessDenied: not allowed to DescribeStacks"
    );
    assert!(!seen.iter().any(|e| matches!(e, Event::Retrying { .. })));
}

#[tokio::test(start_paused = true)]
async fn transient_errors_past_the_deadline_end_in_a_timeout_naming_the_last_one() {
    let describe = mock!(Client::describe_stacks)
        .sequence()
        .error(|| describe_error("ValidationError", "Stack with id s does not exist"))
        .error(|| describe_error("Throttling", "Rate exceeded"))
        .repeatedly()
        .build();
    let (create, events) = (create_stack(), no_events());
    let client = mock_client!(
        aws_sdk_cloudformation,
        RuleMode::MatchAny,
        [&describe, &create, &events]
    );
    let started = tokio::time::Instant::now();
    let (result, _) = run(&client).await;
    let err = result.unwrap_err();
    assert!(
        matches!(
            &err,
            DeployError::Timeout {
                last_error: Some(_),
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("after 6"), "{text}");
    assert!(
        text.contains("the last look failed: DescribeStacks on stack s: Throttling"),
        "{text}"
    );
    // One look per poll until the deadline (60 s at 5 s), not one error and out.
    assert!(describe.num_calls() >= 12, "{} looks", describe.num_calls());
    assert!(started.elapsed() >= Duration::from_secs(60));
}
