//! Creates or updates a stack through a change set, waits for it, and reports what happened.
//!
//! 1. `DescribeStacks`: a stack busy with another operation or stuck after a failed create is
//!    refused.
//! 2. A missing stack is created with `CreateStack`: a change set of a stack with nothing in it
//!    can only say "add everything", and an abandoned one leaves a `REVIEW_IN_PROGRESS` husk.
//! 3. An existing stack is updated through a change set (`CreateChangeSet`, wait): it gives
//!    CloudFormation's own view of replacements; "no changes" ends here, the change set deleted.
//!    Then `ExecuteChangeSet`. A change set that fails, is not ready in time, cannot be described
//!    or cannot be executed is deleted before the error is returned; when that delete fails too,
//!    the error says so.
//! 4. Poll `DescribeStacks` and stream new `DescribeStackEvents` until the stack settles, with a
//!    deadline. A rollback is an error carrying every failed event's reason.
//!
//! Inside both waits (the change set, the stack), a transient error (throttling, 5xx, a
//! timeout: [`aws_errors::is_transient`]) is reported as [`Event::Retrying`] and the look is
//! taken again at the next poll, until the wait's deadline; any other error ends the wait.

use std::time::Duration;

use aws_sdk_cloudformation::types::{
    Change, ChangeSetStatus, ChangeSetType, Stack, StackEvent, StackStatus, Tag,
};
use aws_sdk_cloudformation::Client;

/// What to deploy.
#[derive(Debug, Clone)]
pub struct Request {
    pub stack_name: String,
    pub template_body: String,
    pub tags: Vec<(String, String)>,
}

/// How long to wait and how often to look.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub poll_interval: Duration,
    pub timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            poll_interval: Duration::from_secs(5),
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// One line of a stack's history, as the CLI shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLine {
    pub timestamp: String,
    pub logical_id: String,
    pub resource_type: String,
    pub status: String,
    pub reason: Option<String>,
}

/// One planned change of a change set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlannedChange {
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    /// `True`, `False`, `Conditional`, or empty where CloudFormation did not say.
    pub replacement: String,
}

/// Progress, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A new stack: `CreateStack`.
    Creating,
    ChangeSetCreating {
        name: String,
        create: bool,
    },
    ChangeSetReady {
        changes: Vec<PlannedChange>,
    },
    Executing,
    Stack(EventLine),
    Waiting {
        status: String,
        elapsed: Duration,
    },
    /// A look failed in a way that may pass (throttling, 5xx, a timeout); the wait goes on.
    Retrying {
        error: String,
    },
}

/// How a deploy ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    NoChanges,
    Completed {
        status: String,
        changes: Vec<PlannedChange>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("stack {stack} is {status}: another operation is in progress; wait for it to finish")]
    Busy { stack: String, status: String },
    #[error("stack {stack} is {status} after a failed create; delete it before deploying again")]
    NeedsDelete { stack: String, status: String },
    #[error("change set {name} of stack {stack} failed: {reason}")]
    ChangeSetFailed {
        stack: String,
        name: String,
        reason: String,
    },
    #[error("stack {stack} ended in {status}{}", failure_list(.failures))]
    RolledBack {
        stack: String,
        status: String,
        failures: Vec<EventLine>,
    },
    #[error("stack {stack} was still {status} after {}s; it keeps going in CloudFormation{}", .waited.as_secs(), last_look(.last_error))]
    Timeout {
        stack: String,
        status: String,
        waited: Duration,
        /// The transient error of the last look, when it failed.
        last_error: Option<String>,
    },
    #[error("change set {name} of stack {stack} was not ready after {}s", .waited.as_secs())]
    ChangeSetTimeout {
        stack: String,
        name: String,
        waited: Duration,
    },
    /// `error` ended the deploy, and deleting its change set afterwards failed as well.
    #[error("{error}; deleting the change set failed too: {cleanup}")]
    ChangeSetLeft {
        name: String,
        error: Box<DeployError>,
        cleanup: Box<DeployError>,
    },
    #[error("{operation} on stack {stack}: {message}")]
    Aws {
        stack: String,
        operation: &'static str,
        message: String,
    },
}

fn last_look(error: &Option<String>) -> String {
    error
        .as_ref()
        .map(|e| format!(" (the last look failed: {e})"))
        .unwrap_or_default()
}

fn failure_list(failures: &[EventLine]) -> String {
    if failures.is_empty() {
        return String::new();
    }
    let mut s = String::from(":");
    for f in failures {
        s.push_str(&format!(
            "\n  {} {} {}: {}",
            f.logical_id,
            f.resource_type,
            f.status,
            f.reason.as_deref().unwrap_or("(no reason given)")
        ));
    }
    s
}

type SdkError<E> = aws_sdk_cloudformation::error::SdkError<E>;

fn aws_error<E>(stack: &str, operation: &'static str) -> impl FnOnce(SdkError<E>) -> DeployError
where
    E: aws_sdk_cloudformation::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let stack = stack.to_string();
    move |e| DeployError::Aws {
        stack,
        operation,
        message: aws_errors::message(&e),
    }
}

/// A failed look inside a wait: the error, and whether the wait may look again.
struct Failed {
    error: DeployError,
    transient: bool,
}

impl From<DeployError> for Failed {
    fn from(error: DeployError) -> Failed {
        Failed {
            error,
            transient: false,
        }
    }
}

fn look_error<E>(stack: &str, operation: &'static str) -> impl FnOnce(SdkError<E>) -> Failed
where
    E: aws_sdk_cloudformation::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    let stack = stack.to_string();
    move |e| Failed {
        transient: aws_errors::is_transient(&e),
        error: aws_error(&stack, operation)(e),
    }
}

/// The stack, or `None` when CloudFormation does not know it.
pub async fn describe(client: &Client, stack: &str) -> Result<Option<Stack>, DeployError> {
    describe_look(client, stack).await.map_err(|f| f.error)
}

async fn describe_look(client: &Client, stack: &str) -> Result<Option<Stack>, Failed> {
    match client.describe_stacks().stack_name(stack).send().await {
        Ok(out) => Ok(out.stacks().first().cloned()),
        Err(e) => {
            if aws_errors::message(&e).contains("does not exist") {
                Ok(None)
            } else {
                Err(look_error(stack, "DescribeStacks")(e))
            }
        }
    }
}

fn status_str(stack: &Stack) -> String {
    stack
        .stack_status()
        .map(|s| s.as_str().to_string())
        .unwrap_or_default()
}

fn is_busy(status: &str) -> bool {
    status.ends_with("_IN_PROGRESS") && status != "REVIEW_IN_PROGRESS"
}

fn is_failure(status: &str) -> bool {
    status.contains("ROLLBACK") || status.ends_with("_FAILED")
}

fn line(e: &StackEvent) -> EventLine {
    EventLine {
        timestamp: e.timestamp().map(|t| t.to_string()).unwrap_or_default(),
        logical_id: e.logical_resource_id().unwrap_or_default().to_string(),
        resource_type: e.resource_type().unwrap_or_default().to_string(),
        status: e
            .resource_status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        reason: e.resource_status_reason().map(str::to_string),
    }
}

fn planned(c: &Change) -> Option<PlannedChange> {
    let r = c.resource_change()?;
    Some(PlannedChange {
        action: r
            .action()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default(),
        logical_id: r.logical_resource_id().unwrap_or_default().to_string(),
        resource_type: r.resource_type().unwrap_or_default().to_string(),
        replacement: r
            .replacement()
            .map(|x| x.as_str().to_string())
            .unwrap_or_default(),
    })
}

fn tags(request: &Request) -> Vec<Tag> {
    request
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// A change set's name, unique per call.
#[expect(
    clippy::disallowed_methods,
    reason = "a unique name, not a time anything is decided on"
)]
fn change_set_name() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("gatekeeper-{}-{:03}", now.as_secs(), now.subsec_millis())
}

/// Creates a change set and waits until it is ready. `Ok(None)` means it holds no changes (and
/// has been deleted). A ready change set is the caller's to execute or delete; on any error after
/// it was created it is deleted here, and a failed delete is part of the error
/// ([`DeployError::ChangeSetLeft`]).
pub async fn create_change_set(
    client: &Client,
    request: &Request,
    timing: Timing,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Option<(String, Vec<PlannedChange>)>, DeployError> {
    let stack = request.stack_name.as_str();
    let existing = describe(client, stack).await?;
    let create = match &existing {
        None => true,
        Some(s) => {
            let status = status_str(s);
            if is_busy(&status) {
                return Err(DeployError::Busy {
                    stack: stack.into(),
                    status,
                });
            }
            if status == "ROLLBACK_COMPLETE" || status == "ROLLBACK_FAILED" {
                return Err(DeployError::NeedsDelete {
                    stack: stack.into(),
                    status,
                });
            }
            status == "REVIEW_IN_PROGRESS"
        }
    };
    let name = change_set_name();
    on_event(Event::ChangeSetCreating {
        name: name.clone(),
        create,
    });
    client
        .create_change_set()
        .stack_name(stack)
        .change_set_name(&name)
        .change_set_type(if create {
            ChangeSetType::Create
        } else {
            ChangeSetType::Update
        })
        .template_body(&request.template_body)
        .set_tags(Some(tags(request)))
        .send()
        .await
        .map_err(aws_error(stack, "CreateChangeSet"))?;

    match wait_for_change_set(client, stack, &name, timing, on_event).await {
        Ok(Some(changes)) => {
            on_event(Event::ChangeSetReady {
                changes: changes.clone(),
            });
            Ok(Some((name, changes)))
        }
        Ok(None) => {
            delete_change_set(client, stack, &name).await?;
            Ok(None)
        }
        Err(e) => Err(deleting_change_set(client, stack, &name, e).await),
    }
}

/// Waits for a created change set: its changes when it is ready, `None` when CloudFormation
/// found nothing to change. The caller deletes it on every path but the ready one.
async fn wait_for_change_set(
    client: &Client,
    stack: &str,
    name: &str,
    timing: Timing,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Option<Vec<PlannedChange>>, DeployError> {
    let started = tokio::time::Instant::now();
    let mut last_error;
    loop {
        match look_at_change_set(client, stack, name).await {
            Ok(ChangeSetLook::Ready(changes)) => return Ok(Some(changes)),
            Ok(ChangeSetLook::Empty) => return Ok(None),
            Ok(ChangeSetLook::Pending) => last_error = None,
            Err(f) if f.transient => {
                on_event(Event::Retrying {
                    error: f.error.to_string(),
                });
                last_error = Some(f.error);
            }
            Err(f) => return Err(f.error),
        }
        if started.elapsed() > timing.timeout {
            return Err(last_error.unwrap_or(DeployError::ChangeSetTimeout {
                stack: stack.into(),
                name: name.into(),
                waited: started.elapsed(),
            }));
        }
        tokio::time::sleep(timing.poll_interval).await;
    }
}

enum ChangeSetLook {
    Ready(Vec<PlannedChange>),
    Empty,
    Pending,
}

async fn look_at_change_set(
    client: &Client,
    stack: &str,
    name: &str,
) -> Result<ChangeSetLook, Failed> {
    let out = client
        .describe_change_set()
        .stack_name(stack)
        .change_set_name(name)
        .send()
        .await
        .map_err(look_error(stack, "DescribeChangeSet"))?;
    match out.status() {
        Some(ChangeSetStatus::CreateComplete) => {
            let mut changes: Vec<PlannedChange> =
                out.changes().iter().filter_map(planned).collect();
            let mut token = out.next_token().map(str::to_string);
            while let Some(t) = token {
                let page = client
                    .describe_change_set()
                    .stack_name(stack)
                    .change_set_name(name)
                    .next_token(t)
                    .send()
                    .await
                    .map_err(look_error(stack, "DescribeChangeSet"))?;
                changes.extend(page.changes().iter().filter_map(planned));
                token = page.next_token().map(str::to_string);
            }
            Ok(ChangeSetLook::Ready(changes))
        }
        Some(ChangeSetStatus::Failed) => {
            let reason = out.status_reason().unwrap_or_default().to_string();
            if reason.contains("didn't contain changes")
                || reason.contains("No updates are to be performed")
            {
                return Ok(ChangeSetLook::Empty);
            }
            Err(DeployError::ChangeSetFailed {
                stack: stack.into(),
                name: name.into(),
                reason,
            }
            .into())
        }
        _ => Ok(ChangeSetLook::Pending),
    }
}

/// Deletes the change set `error` left unused, and returns `error`, carrying the delete's own
/// failure when there is one.
async fn deleting_change_set(
    client: &Client,
    stack: &str,
    name: &str,
    error: DeployError,
) -> DeployError {
    match delete_change_set(client, stack, name).await {
        Ok(()) => error,
        Err(cleanup) => DeployError::ChangeSetLeft {
            name: name.into(),
            error: Box::new(error),
            cleanup: Box::new(cleanup),
        },
    }
}

/// Deletes a change set; a stack created only for it (`REVIEW_IN_PROGRESS`, no resources) is
/// left for CloudFormation to expire.
pub async fn delete_change_set(
    client: &Client,
    stack: &str,
    name: &str,
) -> Result<(), DeployError> {
    client
        .delete_change_set()
        .stack_name(stack)
        .change_set_name(name)
        .send()
        .await
        .map_err(|e| DeployError::Aws {
            stack: stack.into(),
            operation: "DeleteChangeSet",
            message: format!(
                "change set {name} is left behind: {}",
                aws_errors::message(&e)
            ),
        })?;
    Ok(())
}

/// Creates or updates the stack and waits for it to settle.
pub async fn deploy(
    client: &Client,
    request: &Request,
    timing: Timing,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Outcome, DeployError> {
    let stack = request.stack_name.as_str();
    let existing = describe(client, stack).await?;
    let creating = existing
        .as_ref()
        .is_none_or(|s| status_str(s) == "REVIEW_IN_PROGRESS");
    // Events already there belong to earlier operations.
    let mut seen = std::collections::HashSet::new();
    let changes = if creating && existing.is_none() {
        on_event(Event::Creating);
        client
            .create_stack()
            .stack_name(stack)
            .template_body(&request.template_body)
            .set_tags(Some(tags(request)))
            .send()
            .await
            .map_err(aws_error(stack, "CreateStack"))?;
        Vec::new()
    } else {
        let Some((name, changes)) = create_change_set(client, request, timing, on_event).await?
        else {
            return Ok(Outcome::NoChanges);
        };
        if let Ok(out) = client
            .describe_stack_events()
            .stack_name(stack)
            .send()
            .await
        {
            seen.extend(
                out.stack_events()
                    .iter()
                    .filter_map(|e| e.event_id().map(str::to_string)),
            );
        }
        if let Err(e) = client
            .execute_change_set()
            .stack_name(stack)
            .change_set_name(&name)
            .send()
            .await
        {
            let error = aws_error(stack, "ExecuteChangeSet")(e);
            return Err(deleting_change_set(client, stack, &name, error).await);
        }
        on_event(Event::Executing);
        changes
    };

    let started = tokio::time::Instant::now();
    let mut history: Vec<EventLine> = Vec::new();
    let mut status = String::from("unknown");
    let mut last_error;
    loop {
        match look_at_stack(client, stack, &mut seen, &mut history, on_event).await {
            Ok(current) => {
                last_error = None;
                status = status_str(&current);
                if !status.ends_with("_IN_PROGRESS") {
                    if is_failure(&status)
                        || current.stack_status() == Some(&StackStatus::DeleteComplete)
                    {
                        let failures = history
                            .iter()
                            .filter(|l| l.status.ends_with("_FAILED"))
                            .cloned()
                            .collect();
                        return Err(DeployError::RolledBack {
                            stack: stack.into(),
                            status,
                            failures,
                        });
                    }
                    return Ok(Outcome::Completed { status, changes });
                }
            }
            Err(f) if f.transient => {
                let error = f.error.to_string();
                on_event(Event::Retrying {
                    error: error.clone(),
                });
                last_error = Some(error);
            }
            Err(f) => return Err(f.error),
        }
        if started.elapsed() > timing.timeout {
            return Err(DeployError::Timeout {
                stack: stack.into(),
                status,
                waited: started.elapsed(),
                last_error,
            });
        }
        on_event(Event::Waiting {
            status: status.clone(),
            elapsed: started.elapsed(),
        });
        tokio::time::sleep(timing.poll_interval).await;
    }
}

/// One look at a stack being deployed: its new events (streamed), then its status.
async fn look_at_stack(
    client: &Client,
    stack: &str,
    seen: &mut std::collections::HashSet<String>,
    history: &mut Vec<EventLine>,
    on_event: &mut (dyn FnMut(Event) + Send),
) -> Result<Stack, Failed> {
    let events = client
        .describe_stack_events()
        .stack_name(stack)
        .send()
        .await
        .map_err(look_error(stack, "DescribeStackEvents"))?;
    // Newest first from the API; show them oldest first.
    let fresh: Vec<&StackEvent> = events
        .stack_events()
        .iter()
        .filter(|e| e.event_id().is_some_and(|id| !seen.contains(id)))
        .collect();
    for e in fresh.into_iter().rev() {
        if let Some(id) = e.event_id() {
            seen.insert(id.to_string());
        }
        let l = line(e);
        history.push(l.clone());
        on_event(Event::Stack(l));
    }
    describe_look(client, stack).await?.ok_or_else(|| {
        DeployError::Aws {
            stack: stack.into(),
            operation: "DescribeStacks",
            message: "the stack disappeared while deploying".into(),
        }
        .into()
    })
}

/// The stack's outputs, by output key.
pub async fn outputs(
    client: &Client,
    stack: &str,
) -> Result<std::collections::BTreeMap<String, String>, DeployError> {
    let Some(s) = describe(client, stack).await? else {
        return Ok(Default::default());
    };
    Ok(s.outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect())
}

/// The template the stack was last deployed with, as CloudFormation stores it (JSON or YAML
/// text), or `None` when the stack does not exist.
pub async fn live_template(client: &Client, stack: &str) -> Result<Option<String>, DeployError> {
    let Some(existing) = describe(client, stack).await? else {
        return Ok(None);
    };
    if status_str(&existing) == "REVIEW_IN_PROGRESS" {
        return Ok(None);
    }
    let out = client
        .get_template()
        .stack_name(stack)
        .template_stage(aws_sdk_cloudformation::types::TemplateStage::Original)
        .send()
        .await
        .map_err(aws_error(stack, "GetTemplate"))?;
    Ok(out.template_body().map(str::to_string))
}

/// CloudFormation's own view of `request` for a plan: a change set created, read and deleted,
/// never executed (empty when it holds no changes). It never outlives the plan: a failed delete
/// is the error ([`create_change_set`] deletes it on its own errors). Waits up to five minutes,
/// looking every two seconds.
pub async fn preview_change_set(
    client: &Client,
    request: &Request,
) -> Result<Vec<PlannedChange>, DeployError> {
    let timing = Timing {
        poll_interval: Duration::from_secs(2),
        timeout: Duration::from_secs(300),
    };
    match create_change_set(client, request, timing, &mut |_| {}).await? {
        None => Ok(Vec::new()),
        Some((name, changes)) => {
            delete_change_set(client, &request.stack_name, &name).await?;
            Ok(changes)
        }
    }
}

#[cfg(test)]
mod tests {
    //! What happens to a created change set on each way out, with CloudFormation's answers
    //! replayed (aws-smithy-mocks): moto's change sets are ready at once and never fail to be
    //! described or deleted.

    use super::*;
    use aws_sdk_cloudformation::operation::create_change_set::CreateChangeSetOutput;
    use aws_sdk_cloudformation::operation::delete_change_set::{
        DeleteChangeSetError, DeleteChangeSetOutput,
    };
    use aws_sdk_cloudformation::operation::describe_change_set::{
        DescribeChangeSetError, DescribeChangeSetOutput,
    };
    use aws_sdk_cloudformation::operation::describe_stack_events::DescribeStackEventsOutput;
    use aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksOutput;
    use aws_sdk_cloudformation::operation::execute_change_set::ExecuteChangeSetError;
    use aws_sdk_cloudformation::types::{ChangeAction, ResourceChange};
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;

    fn existing() -> Rule {
        mock!(Client::describe_stacks).then_output(|| {
            DescribeStacksOutput::builder()
                .stacks(
                    Stack::builder()
                        .stack_name("s")
                        .stack_status(StackStatus::UpdateComplete)
                        .creation_time(aws_smithy_types::DateTime::from_secs(0))
                        .build(),
                )
                .build()
        })
    }

    fn created() -> Rule {
        mock!(Client::create_change_set).then_output(|| CreateChangeSetOutput::builder().build())
    }

    fn deleted() -> Rule {
        mock!(Client::delete_change_set).then_output(|| DeleteChangeSetOutput::builder().build())
    }

    fn delete_refused() -> Rule {
        mock!(Client::delete_change_set).then_error(|| {
            DeleteChangeSetError::generic(
                ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message("not allowed to delete change sets")
                    .build(),
            )
        })
    }

    fn describe_refused() -> Rule {
        mock!(Client::describe_change_set).then_error(|| {
            DescribeChangeSetError::generic(
                ErrorMetadata::builder()
                    .code("AccessDenied")
                    .message("not allowed to describe change sets")
                    .build(),
            )
        })
    }

    fn never_ready() -> Rule {
        mock!(Client::describe_change_set).then_output(|| {
            DescribeChangeSetOutput::builder()
                .status(ChangeSetStatus::CreateInProgress)
                .build()
        })
    }

    fn ready() -> Rule {
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
                                .build(),
                        )
                        .build(),
                )
                .build()
        })
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

    async fn plan(client: &Client) -> Result<Option<(String, Vec<PlannedChange>)>, DeployError> {
        create_change_set(client, &request(), timing(), &mut |_| {}).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_preview_reads_the_change_set_then_deletes_it() {
        let (describe, create, answer, delete) = (existing(), created(), ready(), deleted());
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&describe, &create, &answer, &delete]
        );
        let changes = preview_change_set(&client, &request()).await.unwrap();
        let seen: Vec<_> = changes
            .iter()
            .map(|c| (c.action.as_str(), c.logical_id.as_str()))
            .collect();
        assert_eq!(seen, [("Modify", "QueueUploads")]);
        assert_eq!(
            delete.num_calls(),
            1,
            "the change set never outlives the plan"
        );
        let (describe, create, ready, refused) = (existing(), created(), ready(), delete_refused());
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&describe, &create, &ready, &refused]
        );
        let err = preview_change_set(&client, &request()).await.unwrap_err();
        assert!(err.to_string().contains("is left behind"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_set_never_ready_is_deleted_when_the_wait_times_out() {
        let (describe, create, waiting, delete) = (existing(), created(), never_ready(), deleted());
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&describe, &create, &waiting, &delete]
        );
        let err = plan(&client).await.unwrap_err();
        match &err {
            DeployError::ChangeSetTimeout { waited, .. } => {
                assert!(*waited >= Duration::from_secs(60))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(delete.num_calls(), 1, "the change set is deleted");
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_set_that_cannot_be_described_is_deleted() {
        let (describe, create, refused, delete) =
            (existing(), created(), describe_refused(), deleted());
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&describe, &create, &refused, &delete]
        );
        let err = plan(&client).await.unwrap_err();
        assert!(
            matches!(
                &err,
                DeployError::Aws {
                    operation: "DescribeChangeSet",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(delete.num_calls(), 1, "the change set is deleted");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_delete_is_reported_with_the_error_that_needed_it() {
        let (describe, create, waiting, delete) =
            (existing(), created(), never_ready(), delete_refused());
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&describe, &create, &waiting, &delete]
        );
        let err = plan(&client).await.unwrap_err();
        let text = err.to_string();
        match &err {
            DeployError::ChangeSetLeft { error, cleanup, .. } => {
                assert!(matches!(**error, DeployError::ChangeSetTimeout { .. }));
                assert!(matches!(
                    **cleanup,
                    DeployError::Aws {
                        operation: "DeleteChangeSet",
                        ..
                    }
                ));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(text.contains("was not ready after"), "{text}");
        assert!(
            text.contains("deleting the change set failed too"),
            "{text}"
        );
        assert!(text.contains("is left behind"), "{text}");
        assert!(text.contains("not allowed to delete change sets"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_delete_of_an_empty_change_set_is_an_error() {
        let empty = mock!(Client::describe_change_set).then_output(|| {
            DescribeChangeSetOutput::builder()
                .status(ChangeSetStatus::Failed)
                .status_reason("The submitted information didn't contain changes.")
                .build()
        });
        let (describe, create, delete) = (existing(), created(), delete_refused());
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&describe, &create, &empty, &delete]
        );
        let err = plan(&client).await.unwrap_err();
        assert!(
            err.to_string().contains("DeleteChangeSet"),
            "the delete's failure is not hidden: {err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_change_set_is_deleted_and_a_failed_delete_reported() {
        let failed = mock!(Client::describe_change_set).then_output(|| {
            DescribeChangeSetOutput::builder()
                .status(ChangeSetStatus::Failed)
                .status_reason("Template format error: Unresolved resource dependencies [Ghost]")
                .build()
        });
        let (describe, create, delete) = (existing(), created(), delete_refused());
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&describe, &create, &failed, &delete]
        );
        let text = plan(&client).await.unwrap_err().to_string();
        assert!(text.contains("Unresolved resource dependencies"), "{text}");
        assert!(text.contains("not allowed to delete change sets"), "{text}");
        assert_eq!(delete.num_calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_set_that_cannot_be_executed_is_deleted() {
        let refused = mock!(Client::execute_change_set).then_error(|| {
            ExecuteChangeSetError::generic(
                ErrorMetadata::builder()
                    .code("InsufficientCapabilities")
                    .message("Requires capabilities : [CAPABILITY_IAM]")
                    .build(),
            )
        });
        let events = mock!(Client::describe_stack_events)
            .then_output(|| DescribeStackEventsOutput::builder().build());
        let (describe, create, waiting, delete) = (existing(), created(), ready(), deleted());
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&describe, &create, &waiting, &events, &refused, &delete]
        );
        let err = deploy(&client, &request(), timing(), &mut |_| {})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("CAPABILITY_IAM"), "{err}");
        assert_eq!(delete.num_calls(), 1, "the change set is deleted");
    }

    #[tokio::test(start_paused = true)]
    async fn a_ready_change_set_is_left_to_the_caller() {
        let (describe, create, waiting, delete) = (existing(), created(), ready(), deleted());
        let client = mock_client!(
            aws_sdk_cloudformation,
            RuleMode::MatchAny,
            [&describe, &create, &waiting, &delete]
        );
        let (_, changes) = plan(&client).await.unwrap().expect("changes");
        assert_eq!(changes[0].logical_id, "QueueUploads");
        assert_eq!(delete.num_calls(), 0);
    }
}
