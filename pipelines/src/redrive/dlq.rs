//! Moves the messages of a dead-letter queue back to its source queue.
//!
//! SQS's own `StartMessageMoveTask` is not used: it cannot be verified message by message
//! (and emulators do not offer it). Instead, in batches of ten: receive from the DLQ, send
//! each body and its attributes to the source queue, check that SQS's MD5 of the sent body
//! equals the MD5 of the received one, and only then delete it from the DLQ. A message whose
//! send failed or did not verify stays in the DLQ (it becomes visible again after the
//! visibility timeout) and is counted as a failure.
//!
//! Delivery is at least once, like SQS itself: a run killed between a send and its delete
//! leaves that message in both queues (FIFO queues drop it by deduplication id within five
//! minutes); consumers are expected to be idempotent.

use std::time::Duration;

use aws_sdk_sqs::types::{
    MessageSystemAttributeName, QueueAttributeName, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use serde::Serialize;

use super::{sdk_message, RedriveError};

#[derive(Debug, Clone)]
pub struct Request {
    pub dlq: String,
    pub source: String,
    pub dry_run: bool,
    /// Stop after this many messages (`None`: until the DLQ reads empty).
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
    pub errors: Vec<String>,
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
        .map_err(|e| aws("GetQueueUrl", queue, sdk_message(&e)))?
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
        .map_err(|e| aws("ListDeadLetterSourceQueues", dlq, sdk_message(&e)))?;
    Ok(match out.queue_urls() {
        [one] => Some(one.rsplit('/').next().unwrap_or(one).to_string()),
        _ => None,
    })
}

async fn count(sqs: &Client, url: &str, queue: &str) -> Result<u64, RedriveError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| aws("GetQueueAttributes", queue, sdk_message(&e)))?;
    Ok(out
        .attributes()
        .map(|a| {
            a.values()
                .filter_map(|v| v.parse::<u64>().ok())
                .sum::<u64>()
        })
        .unwrap_or(0))
}

/// Moves (or, dry, counts) the DLQ's messages; `progress` is called with the moved count.
pub async fn run(
    sqs: &Client,
    request: &Request,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) -> Result<Report, RedriveError> {
    let dlq_url = queue_url(sqs, &request.dlq).await?;
    let source_url = queue_url(sqs, &request.source).await?;
    let found = count(sqs, &dlq_url, &request.dlq).await?;
    let mut report = Report {
        dry_run: request.dry_run,
        dlq: request.dlq.clone(),
        source: request.source.clone(),
        found,
        ..Report::default()
    };
    if request.dry_run {
        return Ok(report);
    }
    let fifo = request.source.ends_with(".fifo");
    let mut empty_receives = 0;
    loop {
        let budget = request
            .limit
            .map(|l| l.saturating_sub(report.moved + report.failures))
            .unwrap_or(10)
            .min(10);
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
            .map_err(|e| aws("ReceiveMessage", &request.dlq, sdk_message(&e)))?;
        let messages = received.messages();
        if messages.is_empty() {
            // Long polls can come back empty while messages remain; two in a row, and a zero
            // count, end the run.
            empty_receives += 1;
            if empty_receives >= 2 && count(sqs, &dlq_url, &request.dlq).await? == 0 {
                break;
            }
            if empty_receives >= 5 {
                break;
            }
            continue;
        }
        empty_receives = 0;
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
            .map_err(|e| aws("SendMessageBatch", &request.source, sdk_message(&e)))?;
        let mut to_delete = Vec::new();
        for ok in sent.successful() {
            let Some(m) = ok.id().parse::<usize>().ok().and_then(|i| messages.get(i)) else {
                continue;
            };
            if m.md5_of_body() == Some(ok.md5_of_message_body()) {
                to_delete.push(
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(ok.id())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()
                        .map_err(|e| aws("DeleteMessageBatch", &request.dlq, e.to_string()))?,
                );
            } else {
                report.failures += 1;
                report.errors.push(format!(
                    "message {}: MD5 of the sent body does not match; left in the DLQ",
                    m.message_id().unwrap_or("?")
                ));
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
                .map_err(|e| aws("DeleteMessageBatch", &request.dlq, sdk_message(&e)))?;
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
        progress(report.moved, found);
    }
    Ok(report)
}
