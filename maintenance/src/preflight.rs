//! Work in flight before maintenance begins, and the hooks run once the queues are drained.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::config::{HookConfig, InFlightConfig};
use super::{queues, Clients, MaintenanceError};

/// One piece of work that maintenance would strand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InFlight {
    /// `queue`, `objects` or `command`.
    pub source: String,
    /// The queue, the batch prefix, or what the command named.
    pub name: String,
    pub detail: String,
}

/// Finds in-flight work by every configured means: non-empty queues with a prefix, objects
/// under `<objects_prefix><batch>/` in the ingestion bucket, and a command printing a JSON
/// array (of strings, or of objects with `name`/`id` and optional `detail`).
pub async fn in_flight(
    clients: &Clients<'_>,
    config: &InFlightConfig,
) -> Result<Vec<InFlight>, MaintenanceError> {
    let mut found = Vec::new();
    if let Some(prefix) = &config.queue_prefix {
        for q in queues::with_prefix(clients.sqs, prefix).await? {
            let d = queues::depth(clients.sqs, &q).await?;
            if d.total() > 0 {
                found.push(InFlight {
                    source: "queue".into(),
                    name: q,
                    detail: format!(
                        "{} visible, {} in flight, {} delayed",
                        d.visible, d.in_flight, d.delayed
                    ),
                });
            }
        }
    }
    if let Some(prefix) = &config.objects_prefix {
        let bucket = clients
            .ingestion_bucket
            .ok_or_else(|| MaintenanceError::Aws {
                operation: "ListObjectsV2",
                resource: "ingestion bucket".into(),
                message: "[maintenance.in_flight] objects_prefix needs the ingestion bucket's name ([maintenance] ingestion_bucket)".into(),
            })?;
        let mut batches: BTreeMap<String, u64> = BTreeMap::new();
        for key in list_keys(clients.s3, bucket, prefix).await? {
            let rest = &key[prefix.len()..];
            // `<prefix><batch>/` itself (the empty "folder" object consoles create) is not
            // under the batch's folder and holds no work; a batch left with only that is over.
            if let Some((batch, path)) = rest.split_once('/') {
                if !path.is_empty() {
                    *batches.entry(batch.to_string()).or_default() += 1;
                }
            }
        }
        for (batch, n) in batches {
            found.push(InFlight {
                source: "objects".into(),
                name: format!("{prefix}{batch}/"),
                detail: format!("{n} objects in s3://{bucket}"),
            });
        }
    }
    if let Some(command) = &config.command {
        found.extend(command_in_flight(command, config.timeout_seconds).await?);
    }
    Ok(found)
}

async fn command_in_flight(
    command: &[String],
    timeout_seconds: u64,
) -> Result<Vec<InFlight>, MaintenanceError> {
    let shown = command.join(" ");
    let fail = |message: String| MaintenanceError::InFlightCommand {
        command: shown.clone(),
        message,
    };
    let step = command_step::Step::new(command, &[], Duration::from_secs(timeout_seconds));
    let out = command_step::run(&step)
        .await
        .map_err(|e| fail(format!("{e} ([maintenance.in_flight] timeout_seconds)")))?;
    if !out.status.success() {
        return Err(fail(format!("{}: {}", out.status, out.stderr.trim())));
    }
    let value: serde_json::Value =
        serde_json::from_str(&out.stdout).map_err(|e| fail(format!("stdout is not JSON: {e}")))?;
    let items = value
        .as_array()
        .ok_or_else(|| fail("stdout must be a JSON array".into()))?;
    Ok(items
        .iter()
        .map(|item| {
            let text = |k: &str| item.get(k).and_then(|v| v.as_str()).map(str::to_string);
            InFlight {
                source: "command".into(),
                name: item
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| text("name"))
                    .or_else(|| text("id"))
                    .unwrap_or_else(|| item.to_string()),
                detail: text("detail").unwrap_or_default(),
            }
        })
        .collect())
}

/// Every key under `prefix`.
pub async fn list_keys(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<String>, MaintenanceError> {
    let mut keys = Vec::new();
    let mut pages = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| MaintenanceError::Aws {
            operation: "ListObjectsV2",
            resource: format!("s3://{bucket}/{prefix}"),
            message: aws_errors::message(&e),
        })?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    Ok(keys)
}

pub async fn count_objects(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<u64, MaintenanceError> {
    Ok(list_keys(s3, bucket, prefix).await?.len() as u64)
}

/// Runs a hook to completion; a non-zero exit or the timeout is an error naming the hook.
/// Returns the last lines of its output for the report.
pub async fn run_hook(hook: &HookConfig) -> Result<String, MaintenanceError> {
    let fail = |message: String| MaintenanceError::Hook {
        name: hook.name.clone(),
        message,
    };
    let step = command_step::Step::new(
        hook.command.get_ref(),
        &[],
        Duration::from_secs(hook.timeout_seconds),
    );
    let out = command_step::run(&step)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut text = out.stdout;
    text.push_str(&out.stderr);
    let tail = command_step::tail(&text, 20).join("\n");
    if !out.status.success() {
        return Err(fail(format!("exited with {}: {tail}", out.status)));
    }
    Ok(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hook_past_its_timeout_is_stopped_and_named() {
        let hook = HookConfig {
            name: "db-backup".into(),
            command: toml::Spanned::new(
                0..0,
                vec!["sh".into(), "-c".into(), "sleep 1000 & sleep 1000".into()],
            ),
            timeout_seconds: 1,
        };
        let err = run_hook(&hook).await.unwrap_err().to_string();
        assert!(
            err.starts_with(
                "hook db-backup: `sh -c sleep 1000 & sleep 1000` still running after 1s"
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn an_in_flight_command_past_its_timeout_names_the_key() {
        let command = vec!["sleep".to_string(), "1000".to_string()];
        let err = command_in_flight(&command, 1)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("still running after 1s"), "{err}");
        assert!(
            err.contains("[maintenance.in_flight] timeout_seconds"),
            "{err}"
        );
    }
}
