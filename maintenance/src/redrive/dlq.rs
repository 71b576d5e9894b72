//! Moves the messages of a dead-letter queue back to its source queue.
//!
//! SQS's own `StartMessageMoveTask` is not used: it cannot be verified message by message
//! (and emulators do not offer it). Instead, in batches of ten: receive from the DLQ (with all
//! its message attributes), send each body and its attributes to the source queue, check that
//! the copy is the original (see [`verify`]: SQS's MD5 of the body and of the message
//! attributes, as it answered the send, equal those it answered the receive with), and only
//! then delete it from the DLQ. A message whose send failed or did not verify stays in the DLQ
//! (it becomes visible again after the visibility timeout) and is counted as a failure.
//!
//! A run receives at most as many messages as the DLQ held when it began (visible and in
//! flight), or `limit` when that is lower. A message whose consumer keeps failing comes back
//! to the DLQ while the run goes on; without that bound it would be moved again and again for
//! as long as the run lasted. Receiving it again counts toward the bound like any other
//! message (`moved` counts moves, not distinct messages), so the run ends after a number of
//! moves fixed at its start; a message that arrives after the count was taken, or that SQS's
//! approximate count missed, waits for the next run.
//!
//! Messages in flight (received and not yet deleted, e.g. by a run that was killed) are
//! invisible until their visibility timeout ends: no run can move them before. A run that
//! ends with some still in flight says how many (SQS's approximate count) and when they will
//! be visible again (the longer of the queue's visibility timeout and the one a redrive
//! receives with), and is not complete: run again after that.
//!
//! Delivery is at least once, like SQS itself: a run killed between a send and its delete
//! leaves that message in both queues (FIFO queues drop it by deduplication id within five
//! minutes); consumers are expected to be idempotent.

use std::time::Duration;

use aws_sdk_sqs::types::{
    Message, MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
    SendMessageBatchResultEntry,
};
use aws_sdk_sqs::Client;
use serde::Serialize;

use super::RedriveError;

#[derive(Debug, Clone)]
pub struct Request {
    pub dlq: String,
    pub source: String,
    pub dry_run: bool,
    /// Stop after this many messages (`None`: after as many as the DLQ held at the start, or
    /// sooner when it reads empty). Either way no more than the DLQ held at the start.
    pub limit: Option<u64>,
    /// How long a received message stays hidden from others while it is moved.
    pub visibility_timeout: Duration,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub dlq: String,
    pub source: String,
    /// Messages in the DLQ when the run began (visible + in flight).
    pub found: u64,
    pub moved: u64,
    pub failures: u64,
    /// Messages still in flight in the DLQ when the run ended (received and not deleted:
    /// by an interrupted run, or this run's failures), which no run can move before they
    /// are visible again.
    pub in_flight: u64,
    /// When `in_flight`: run again after this many seconds (the longer of the queue's
    /// visibility timeout and [`Request::visibility_timeout`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun_after_seconds: Option<u64>,
    pub errors: Vec<String>,
}

impl Report {
    /// Every message the run could see was moved and none is left in flight.
    pub fn complete(&self) -> bool {
        self.failures == 0 && self.in_flight == 0
    }
}

fn aws(operation: &'static str, queue: &str, message: String) -> RedriveError {
    RedriveError::Aws {
        operation,
        resource: queue.to_string(),
        message,
    }
}

async fn queue_url(sqs: &Client, queue: &str) -> Result<String, RedriveError> {
    if queue.starts_with("https://") || queue.starts_with("http://") {
        return Ok(queue.to_string());
    }
    sqs.get_queue_url()
        .queue_name(queue)
        .send()
        .await
        .map_err(|e| aws("GetQueueUrl", queue, aws_errors::message(&e)))?
        .queue_url()
        .map(str::to_string)
        .ok_or_else(|| aws("GetQueueUrl", queue, "no URL returned".into()))
}

/// The source queue of a DLQ as SQS knows it (`ListDeadLetterSourceQueues`), when exactly one.
pub async fn source_of(sqs: &Client, dlq: &str) -> Result<Option<String>, RedriveError> {
    let url = queue_url(sqs, dlq).await?;
    let out = sqs
        .list_dead_letter_source_queues()
        .queue_url(&url)
        .send()
        .await
        .map_err(|e| aws("ListDeadLetterSourceQueues", dlq, aws_errors::message(&e)))?;
    Ok(match out.queue_urls() {
        [one] => Some(one.rsplit('/').next().unwrap_or(one).to_string()),
        _ => None,
    })
}

/// The DLQ's approximate numbers of visible and of in-flight messages, and its visibility
/// timeout in seconds.
async fn count(sqs: &Client, url: &str, queue: &str) -> Result<(u64, u64, u64), RedriveError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| aws("GetQueueAttributes", queue, aws_errors::message(&e)))?;
    let get = |name: QueueAttributeName| {
        out.attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((
        get(QueueAttributeName::ApproximateNumberOfMessages),
        get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        get(QueueAttributeName::VisibilityTimeout),
    ))
}

/// Sets what is still in flight, and when to run again, from a count of the DLQ.
fn in_flight(report: &mut Report, request: &Request, (_, hidden, timeout): (u64, u64, u64)) {
    report.in_flight = hidden;
    report.rerun_after_seconds =
        (hidden > 0).then(|| timeout.max(request.visibility_timeout.as_secs()));
}

/// Whether the copy SQS accepted is the message received from the DLQ, by the digests SQS
/// answered with: `Err` says what differs.
///
/// The attributes are verified by comparing SQS's `MD5OfMessageAttributes` of the send with
/// the one it answered the receive with, not with a digest computed here. The receive's digest
/// is SQS's own over the original's attributes (all of them: they are received with `All`),
/// the send's is SQS's over what it stored for the copy, by the same algorithm; equal digests
/// mean the copy carries the original's attributes, end to end. A digest computed here from
/// the attributes as the SDK decoded them would only prove that SQS stored what this process
/// sent: an attribute lost or altered on the way in (a decoding fault, say) would be sent
/// that way, digested that way, and pass. The body is verified the
/// same way. A message without attributes has no digest on either side; any other absence
/// cannot be verified and fails.
pub fn verify(received: &Message, sent: &SendMessageBatchResultEntry) -> Result<(), String> {
    if received.md5_of_body() != Some(sent.md5_of_message_body()) {
        return Err("the MD5 of the sent body does not match the received one".into());
    }
    let has_attributes = received.message_attributes().is_some_and(|a| !a.is_empty());
    match (
        received.md5_of_message_attributes(),
        sent.md5_of_message_attributes(),
    ) {
        (None, None) if !has_attributes => Ok(()),
        (Some(got), Some(put)) if got == put => Ok(()),
        (Some(_), Some(_)) => {
            Err("the MD5 of the sent message attributes does not match the received one".into())
        }
        (got, put) => Err(format!(
            "SQS answered {} MD5 of the message attributes on receive and {} on send; cannot verify them",
            if got.is_some() { "an" } else { "no" },
            if put.is_some() { "an" } else { "no" },
        )),
    }
}

/// Moves (or, dry, counts) the DLQ's messages; `progress` is called with the moved count and
/// the most this run will move (the DLQ's count at the start, or `limit` when lower).
pub async fn run(
    sqs: &Client,
    request: &Request,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<Report, RedriveError> {
    let dlq_url = queue_url(sqs, &request.dlq).await?;
    let source_url = queue_url(sqs, &request.source).await?;
    let start = count(sqs, &dlq_url, &request.dlq).await?;
    let found = start.0 + start.1;
    let mut report = Report {
        dry_run: request.dry_run,
        dlq: request.dlq.clone(),
        source: request.source.clone(),
        found,
        ..Report::default()
    };
    if request.dry_run {
        in_flight(&mut report, request, start);
        return Ok(report);
    }
    let fifo = request.source.ends_with(".fifo");
    // See the module docs: every message received counts, moved or not, returned or not.
    let cap = request.limit.map_or(found, |limit| limit.min(found));
    let mut received_so_far = 0u64;
    let mut empty_receives = 0;
    loop {
        let budget = cap.saturating_sub(received_so_far).min(10);
        if budget == 0 {
            break;
        }
        let received = sqs
            .receive_message()
            .queue_url(&dlq_url)
            .max_number_of_messages(budget as i32)
            .wait_time_seconds(1)
            .visibility_timeout(request.visibility_timeout.as_secs() as i32)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| aws("ReceiveMessage", &request.dlq, aws_errors::message(&e)))?;
        let messages = received.messages();
        if messages.is_empty() {
            // Long polls can come back empty while messages remain; two in a row, and none
            // visible, end the run (those in flight cannot be received before their
            // visibility timeout).
            empty_receives += 1;
            if empty_receives >= 2 && count(sqs, &dlq_url, &request.dlq).await?.0 == 0 {
                break;
            }
            if empty_receives >= 5 {
                break;
            }
            continue;
        }
        empty_receives = 0;
        received_so_far += messages.len() as u64;
        let mut entries = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let attrs = m.attributes();
            let group = attrs
                .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                .cloned();
            let dedup = attrs
                .and_then(|a| a.get(&MessageSystemAttributeName::MessageDeduplicationId))
                .cloned()
                .or_else(|| m.message_id().map(str::to_string));
            let mut entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(m.body().unwrap_or_default())
                .set_message_attributes(m.message_attributes().cloned());
            if fifo {
                entry = entry
                    .set_message_group_id(group.or_else(|| Some("redrive".into())))
                    .set_message_deduplication_id(dedup);
            }
            entries.push(
                entry
                    .build()
                    .map_err(|e| aws("SendMessageBatch", &request.source, e.to_string()))?,
            );
        }
        let sent = sqs
            .send_message_batch()
            .queue_url(&source_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| aws("SendMessageBatch", &request.source, aws_errors::message(&e)))?;
        let mut to_delete = Vec::new();
        for ok in sent.successful() {
            let Some(m) = ok.id().parse::<usize>().ok().and_then(|i| messages.get(i)) else {
                continue;
            };
            match verify(m, ok) {
                Ok(()) => to_delete.push(
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(ok.id())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()
                        .map_err(|e| aws("DeleteMessageBatch", &request.dlq, e.to_string()))?,
                ),
                Err(why) => {
                    report.failures += 1;
                    report.errors.push(format!(
                        "message {}: {why}; left in the DLQ (the copy sent as {} is in the source queue)",
                        m.message_id().unwrap_or("?"),
                        ok.message_id()
                    ));
                }
            }
        }
        for f in sent.failed() {
            report.failures += 1;
            report.errors.push(format!(
                "send {}: {} {}",
                f.id(),
                f.code(),
                f.message().unwrap_or("")
            ));
        }
        if !to_delete.is_empty() {
            let deleted = sqs
                .delete_message_batch()
                .queue_url(&dlq_url)
                .set_entries(Some(to_delete))
                .send()
                .await
                .map_err(|e| aws("DeleteMessageBatch", &request.dlq, aws_errors::message(&e)))?;
            report.moved += deleted.successful().len() as u64;
            for f in deleted.failed() {
                report.failures += 1;
                report.errors.push(format!(
                    "delete {}: {} (the message is now in both queues)",
                    f.id(),
                    f.code()
                ));
            }
        }
        progress(report.moved, cap);
    }
    let end = count(sqs, &dlq_url, &request.dlq).await?;
    in_flight(&mut report, request, end);
    Ok(report)
}

/// Where a DLQ redrive reads and where it writes, as far as the command line and the
/// configuration tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Both known: `--to`, or the `[[queues]]` entry the queue is (or is the DLQ of).
    Known { dlq: String, source: String },
    /// Only the DLQ: its source is the queue whose redrive policy names it (asked of SQS).
    AskSqs { dlq: String },
}

/// `queue` is a DLQ's name or URL, or the short name of a `[[queues]]` entry (then its DLQ
/// is meant); `--to` names the source and wins over the configuration's.
pub fn route(queue: &str, to: Option<&str>, config: Option<&stacks::config::Config>) -> Route {
    let from_config = config.and_then(|c| {
        c.queues
            .iter()
            .find(|q| c.dlq_name(q) == queue || q.name.get_ref() == queue)
            .map(|q| (c.dlq_name(q), c.queue_name(q)))
    });
    match (to, from_config) {
        (Some(to), Some((dlq, _))) => Route::Known {
            dlq,
            source: to.to_string(),
        },
        (Some(to), None) => Route::Known {
            dlq: queue.to_string(),
            source: to.to_string(),
        },
        (None, Some((dlq, source))) => Route::Known { dlq, source },
        (None, None) => Route::AskSqs {
            dlq: queue.to_string(),
        },
    }
}

/// The request of `redrive --dlq`: the route resolved (asking SQS when it must).
pub async fn request(
    sqs: &Client,
    queue: &str,
    to: Option<&str>,
    config: Option<&stacks::config::Config>,
    dry_run: bool,
    limit: Option<u64>,
) -> Result<Request, RedriveError> {
    let (dlq, source) = match route(queue, to, config) {
        Route::Known { dlq, source } => (dlq, source),
        Route::AskSqs { dlq } => {
            let source = source_of(sqs, &dlq)
                .await?
                .ok_or_else(|| RedriveError::NoSource { queue: dlq.clone() })?;
            (dlq, source)
        }
    };
    Ok(Request {
        dlq,
        source,
        dry_run,
        limit,
        visibility_timeout: Duration::from_secs(60),
    })
}

#[cfg(test)]
mod tests {
    //! The verification failure, which moto cannot produce: it answers a send and a receive
    //! with one function of one stored message, so a copy that differs from its original never
    //! comes out of it. These tests replay SQS's answers with aws-smithy-mocks instead; the
    //! round trip itself is tested against moto in `tests/tests/redrive_dlq.rs`.

    use super::*;
    use aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchOutput;
    use aws_sdk_sqs::operation::get_queue_attributes::GetQueueAttributesOutput;
    use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
    use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
    use aws_sdk_sqs::types::{DeleteMessageBatchResultEntry, MessageAttributeValue};
    use aws_smithy_mocks::{
        create_mock_http_client, mock, MockResponseInterceptor, Rule, RuleMode,
    };

    fn client(rules: &[&Rule]) -> Client {
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in rules {
            interceptor = interceptor.with_rule(rule);
        }
        Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_sqs::config::Credentials::new(
                    "test", "test", None, None, "test",
                ))
                .http_client(create_mock_http_client())
                .interceptor(interceptor)
                .build(),
        )
    }

    /// A received message: `attributes` gives it one attribute and SQS's digest of them.
    fn received(n: usize, attributes: Option<&str>) -> Message {
        let mut m = Message::builder()
            .message_id(format!("old-{n}"))
            .receipt_handle(format!("r-{n}"))
            .body(format!("body {n}"))
            .md5_of_body(format!("body-md5-{n}"));
        if let Some(md5) = attributes {
            m = m
                .message_attributes(
                    "kind",
                    MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value("upload")
                        .build()
                        .unwrap(),
                )
                .md5_of_message_attributes(md5);
        }
        m.build()
    }

    fn sent(n: usize, body_md5: &str, attributes_md5: Option<&str>) -> SendMessageBatchResultEntry {
        SendMessageBatchResultEntry::builder()
            .id(n.to_string())
            .message_id(format!("new-{n}"))
            .md5_of_message_body(body_md5)
            .set_md5_of_message_attributes(attributes_md5.map(str::to_string))
            .build()
            .unwrap()
    }

    #[test]
    fn verify_compares_both_digests_of_the_copy_with_the_original() {
        assert_eq!(
            verify(&received(0, None), &sent(0, "body-md5-0", None)),
            Ok(())
        );
        assert_eq!(
            verify(&received(0, Some("a")), &sent(0, "body-md5-0", Some("a"))),
            Ok(())
        );
        let body = verify(&received(0, Some("a")), &sent(0, "other", Some("a"))).unwrap_err();
        assert!(body.contains("body"), "{body}");
        let attributes =
            verify(&received(0, Some("a")), &sent(0, "body-md5-0", Some("b"))).unwrap_err();
        assert!(attributes.contains("message attributes do"), "{attributes}");
        // Attributes sent but no digest answered (or one answered for none): not verified.
        assert!(verify(&received(0, Some("a")), &sent(0, "body-md5-0", None)).is_err());
        assert!(verify(&received(0, None), &sent(0, "body-md5-0", Some("a"))).is_err());
        let mut bare = received(0, Some("a"));
        bare.md5_of_message_attributes = None;
        assert!(verify(&bare, &sent(0, "body-md5-0", None)).is_err());
    }

    #[tokio::test]
    async fn a_copy_that_does_not_verify_leaves_its_original_in_the_dlq() {
        let count = mock!(Client::get_queue_attributes).then_output(|| {
            GetQueueAttributesOutput::builder()
                .attributes(QueueAttributeName::ApproximateNumberOfMessages, "3")
                .attributes(
                    QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
                    "0",
                )
                .build()
        });
        let receive = mock!(Client::receive_message).then_output(|| {
            ReceiveMessageOutput::builder()
                .messages(received(0, Some("attrs-0")))
                .messages(received(1, Some("attrs-1")))
                .messages(received(2, None))
                .build()
        });
        // SQS accepts all three; the copy of 1 lost an attribute on the way (another digest),
        // the copy of 2 another body.
        let send = mock!(Client::send_message_batch).then_output(|| {
            SendMessageBatchOutput::builder()
                .successful(sent(0, "body-md5-0", Some("attrs-0")))
                .successful(sent(1, "body-md5-1", Some("attrs-1-changed")))
                .successful(sent(2, "body-md5-2-changed", None))
                .set_failed(Some(Vec::new()))
                .build()
                .unwrap()
        });
        // Only the verified original may be deleted: any other delete matches no rule, fails.
        let delete = mock!(Client::delete_message_batch)
            .match_requests(|r| r.entries().len() == 1 && r.entries()[0].receipt_handle() == "r-0")
            .then_output(|| {
                DeleteMessageBatchOutput::builder()
                    .successful(
                        DeleteMessageBatchResultEntry::builder()
                            .id("0")
                            .build()
                            .unwrap(),
                    )
                    .set_failed(Some(Vec::new()))
                    .build()
                    .unwrap()
            });
        let sqs = client(&[&count, &receive, &send, &delete]);
        let request = Request {
            dlq: "http://sqs.test/123/work-dlq".into(),
            source: "http://sqs.test/123/work".into(),
            dry_run: false,
            limit: None,
            visibility_timeout: Duration::from_secs(30),
        };
        let report = run(&sqs, &request, &|_, _| {}).await.unwrap();
        assert_eq!((report.found, report.moved, report.failures), (3, 1, 2));
        assert_eq!(delete.num_calls(), 1);
        assert_eq!(
            receive.num_calls(),
            1,
            "three received of three found: the run ends there"
        );
        assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
        assert!(
            report.errors[0].starts_with(
                "message old-1: the MD5 of the sent message attributes does not match"
            ) && report.errors[0].contains("new-1"),
            "{:?}",
            report.errors
        );
        assert!(
            report.errors[1].starts_with("message old-2: the MD5 of the sent body does not match"),
            "{:?}",
            report.errors
        );
    }

    #[test]
    fn the_route_comes_from_to_then_the_configuration_then_sqs() {
        let path = std::path::Path::new("gatekeeper.toml");
        let config = stacks::config::parse(
            path,
            "service = \"photos\"\nenvironment = \"prod\"\n[[queues]]\nname = \"thumbs\"\n",
        )
        .unwrap();
        let dlq = config.dlq_name(&config.queues[0]);
        let source = config.queue_name(&config.queues[0]);
        let known = |dlq: &str, source: &str| Route::Known {
            dlq: dlq.into(),
            source: source.into(),
        };
        assert_eq!(route("thumbs", None, Some(&config)), known(&dlq, &source));
        assert_eq!(route(&dlq, None, Some(&config)), known(&dlq, &source));
        assert_eq!(
            route("thumbs", Some("elsewhere"), Some(&config)),
            known(&dlq, "elsewhere")
        );
        assert_eq!(
            route("other-dlq", Some("q"), Some(&config)),
            known("other-dlq", "q")
        );
        assert_eq!(
            route("other-dlq", None, Some(&config)),
            Route::AskSqs {
                dlq: "other-dlq".into()
            }
        );
        assert_eq!(route("x", None, None), Route::AskSqs { dlq: "x".into() });
    }
}
