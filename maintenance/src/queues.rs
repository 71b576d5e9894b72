//! Which queues belong to the service, how deep they are, and waiting for them to drain.

use std::time::Duration;

use aws_sdk_sqs::types::QueueAttributeName;
use aws_sdk_sqs::Client;
use serde::Serialize;

use super::{Event, MaintenanceError};

/// Messages in one queue, as SQS counts them (approximately, on real SQS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Depth {
    pub queue: String,
    pub visible: u64,
    pub in_flight: u64,
    pub delayed: u64,
}

impl Depth {
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight + self.delayed
    }
}

/// The queue's URL, or `None` when it does not exist.
pub async fn url(sqs: &Client, queue: &str) -> Result<Option<String>, MaintenanceError> {
    match sqs.get_queue_url().queue_name(queue).send().await {
        Ok(out) => Ok(out.queue_url().map(str::to_string)),
        Err(e) => {
            let text = aws_errors::message(&e);
            if text.contains("NonExistentQueue") || text.contains("does not exist") {
                Ok(None)
            } else {
                Err(MaintenanceError::Aws {
                    operation: "GetQueueUrl",
                    resource: queue.to_string(),
                    message: text,
                })
            }
        }
    }
}

/// Names of the queues whose names start with `prefix`, dead-letter queues left out.
pub async fn with_prefix(sqs: &Client, prefix: &str) -> Result<Vec<String>, MaintenanceError> {
    let mut names = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let out = sqs
            .list_queues()
            .queue_name_prefix(prefix)
            .set_next_token(next.take())
            .max_results(1000)
            .send()
            .await
            .map_err(|e| MaintenanceError::Aws {
                operation: "ListQueues",
                resource: prefix.to_string(),
                message: aws_errors::message(&e),
            })?;
        for u in out.queue_urls() {
            let name = u.rsplit('/').next().unwrap_or(u).to_string();
            if !is_dlq(&name) {
                names.push(name);
            }
        }
        match out.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_string()),
            _ => break,
        }
    }
    names.sort();
    Ok(names)
}

pub fn is_dlq(name: &str) -> bool {
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    base.ends_with("-dlq")
}

/// The depth of one queue; a missing queue is an error naming it.
pub async fn depth(sqs: &Client, queue: &str) -> Result<Depth, MaintenanceError> {
    let url = url(sqs, queue)
        .await?
        .ok_or_else(|| MaintenanceError::MissingQueue(queue.to_string()))?;
    let out = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .map_err(|e| MaintenanceError::Aws {
            operation: "GetQueueAttributes",
            resource: queue.to_string(),
            message: aws_errors::message(&e),
        })?;
    let get = |name: QueueAttributeName| {
        out.attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Depth {
        queue: queue.to_string(),
        visible: get(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        delayed: get(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
    })
}

/// How waiting for the queues ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DrainOutcome {
    /// Every queue read zero twice in a row.
    Drained { waited: Duration },
    /// The timeout passed; the queues still holding messages at the last look.
    TimedOut {
        waited: Duration,
        remaining: Vec<Depth>,
    },
}

/// Polls every queue until all of them read zero (visible, in flight and delayed) on two
/// consecutive looks, or `timeout` passes. SQS counts are approximate, hence the second look.
pub async fn drain(
    sqs: &Client,
    queues: &[String],
    timeout: Duration,
    poll: Duration,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Result<DrainOutcome, MaintenanceError> {
    let now = tokio::time::Instant::now();
    drain_after(sqs, queues, timeout, poll, now, on_event).await
}

/// Like [`drain`], but only looks taken at or after `not_before` count as empty: a queue
/// that empties before then (while services may still be enqueueing, their cached flag not
/// yet expired) is looked at again. The timeout applies to queues holding messages; empty
/// queues are waited on until `not_before` even past it.
pub async fn drain_after(
    sqs: &Client,
    queues: &[String],
    timeout: Duration,
    poll: Duration,
    not_before: tokio::time::Instant,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Result<DrainOutcome, MaintenanceError> {
    let start = tokio::time::Instant::now();
    let mut zero_looks = 0;
    loop {
        let looked = tokio::time::Instant::now();
        let mut depths = Vec::with_capacity(queues.len());
        for q in queues {
            depths.push(depth(sqs, q).await?);
        }
        let waited = start.elapsed();
        let empty = depths.iter().all(|d| d.total() == 0);
        on_event(Event::Depths {
            depths: depths.clone(),
            waited,
        });
        let counts = looked >= not_before;
        zero_looks = if empty && counts { zero_looks + 1 } else { 0 };
        if zero_looks >= 2 || (empty && counts && queues.is_empty()) {
            return Ok(DrainOutcome::Drained { waited });
        }
        if waited >= timeout && !empty {
            return Ok(DrainOutcome::TimedOut {
                waited,
                remaining: depths.into_iter().filter(|d| d.total() > 0).collect(),
            });
        }
        // The next look: after one poll, at the timeout, or at `not_before`, whichever is first.
        let now = tokio::time::Instant::now();
        let mut nap = poll;
        if waited < timeout {
            nap = nap.min(timeout - waited);
        }
        if now < not_before {
            nap = nap.min(not_before - now);
        }
        tokio::time::sleep(nap.max(Duration::from_millis(10))).await;
    }
}
