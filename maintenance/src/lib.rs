//! Maintenance mode: set the flag, wait for the queues to drain, run the hooks; and back.
//!
//! `on` is a sequence of steps, each recorded in a local journal
//! (`.gatekeeper/journal/maintenance-<service>-<environment>.jsonl`) when it completes:
//!
//! 1. `preflight`: report work in flight that maintenance would strand (see [`preflight`]).
//! 2. `flag-on`: write the SSM flag (enabled, message, until, who, when) and read it back.
//! 3. `drained`: wait until every selected queue reads zero, visible and in flight, on looks
//!    taken no sooner than `[maintenance] flag_ttl_seconds` after the flag was read back:
//!    services cache the flag that long, and until their caches expire they still accept
//!    work. Empty queues do not end the wait early.
//! 4. `hook:<name>`: run each hook in order; the first failure stops the run.
//! 5. `done`.
//!
//! A rerun after an interruption resumes the unfinished run: hooks already recorded are not
//! run again (a database backup is not taken twice); the flag, the preflight and the drain
//! are cheap and idempotent and are checked again. The flag TTL is counted from the `at` of
//! the `flag-on` record, so a resume waits only what is left of it. `off` ends the run in the
//! journal; after it, services may keep parking uploads for the TTL ([`Cleared::noticed_by`]),
//! which the redrive waits out before it lists the parking lot.
//!
//! Nothing here prints; progress is reported through [`Event`]s.

pub mod config;
pub mod journal;
pub mod preflight;
pub mod queues;
pub mod redrive;

use std::time::Duration;

use maintenance_flag::MaintenanceFlag;
use serde::Serialize;
use stacks::config::Config;

pub use config::MaintenanceConfig;
pub use queues::{Depth, DrainOutcome};

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    #[error("{operation} on {resource}: {message}")]
    Aws {
        operation: &'static str,
        resource: String,
        message: String,
    },
    #[error("queue {0} does not exist; check [[queues]] / [maintenance] queues in the configuration, or deploy the rails stack")]
    MissingQueue(String),
    #[error("[maintenance] queues: {0:?} is not the name of any [[queues]] entry")]
    UnknownQueue(String),
    #[error("SSM parameter {parameter} holds {found:?}, not the flag just written; another writer may be racing this one")]
    ReadBack { parameter: String, found: String },
    #[error("SSM parameter {parameter} does not hold a maintenance flag: {message}")]
    BadFlag { parameter: String, message: String },
    #[error("hook {name}: {message}")]
    Hook { name: String, message: String },
    #[error("in-flight command {command}: {message}")]
    InFlightCommand { command: String, message: String },
    #[error("journal {path}: {message}")]
    Journal { path: String, message: String },
}

pub(crate) fn sdk_message<E>(e: &E) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    // A service's own code and message say it best; transport errors need the whole chain.
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => aws_smithy_types::error::display::DisplayErrorContext(e).to_string(),
    }
}

/// Progress of a maintenance command, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Event {
    /// A run interrupted earlier is resumed; these steps are already done.
    Resumed {
        run: String,
        done: Vec<String>,
    },
    InFlight(Vec<preflight::InFlight>),
    FlagWritten(MaintenanceFlag),
    /// No queue counts as drained before this much longer has passed: services may still
    /// answer from the flag they cached before it was set.
    WaitingForFlagReaders {
        left: Duration,
    },
    Depths {
        depths: Vec<Depth>,
        waited: Duration,
    },
    HookStarted {
        name: String,
    },
    HookSkipped {
        name: String,
    },
    HookFinished {
        name: String,
        output: String,
    },
}

/// The service's queues and flag, resolved from both views of `gatekeeper.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub service: String,
    pub environment: String,
    pub flag_parameter: String,
    /// Work queues to drain, full names.
    pub queues: Vec<String>,
    /// Their dead-letter queues (shown, never drained).
    pub dlqs: Vec<String>,
}

/// Resolves the queues to drain: `[maintenance] queues` (short names of `[[queues]]`), every
/// queue named with `queue_prefix` (listed from SQS), or all `[[queues]]`.
pub async fn target(
    stack: &Config,
    config: &MaintenanceConfig,
    sqs: &aws_sdk_sqs::Client,
) -> Result<Target, MaintenanceError> {
    let (queues, dlqs) = if let Some(prefix) = &config.queue_prefix {
        let queues = queues::with_prefix(sqs, prefix.get_ref()).await?;
        let dlqs = queues
            .iter()
            .map(|q| match q.strip_suffix(".fifo") {
                Some(base) => format!("{base}-dlq.fifo"),
                None => format!("{q}-dlq"),
            })
            .collect();
        (queues, dlqs)
    } else {
        let mut chosen = Vec::new();
        match &config.queues {
            Some(names) => {
                for n in names {
                    let q = stack
                        .queues
                        .iter()
                        .find(|q| q.name.get_ref() == n.get_ref())
                        .ok_or_else(|| MaintenanceError::UnknownQueue(n.get_ref().clone()))?;
                    chosen.push(q);
                }
            }
            None => chosen.extend(stack.queues.iter()),
        }
        (
            chosen.iter().map(|q| stack.queue_name(q)).collect(),
            chosen.iter().map(|q| stack.dlq_name(q)).collect(),
        )
    };
    Ok(Target {
        service: stack.service().to_string(),
        environment: stack.environment().to_string(),
        flag_parameter: stack.flag_parameter(),
        queues,
        dlqs,
    })
}

/// Now, as RFC 3339 in UTC.
#[expect(
    clippy::disallowed_methods,
    reason = "the flag's `when` is wall-clock time for people"
)]
pub fn now_rfc3339() -> String {
    aws_smithy_types::DateTime::from(std::time::SystemTime::now())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}

/// The flag as stored, or `None` when the parameter does not exist (maintenance never set,
/// which the contract counts as off): the one reader, [`maintenance_flag::read_stored`].
pub async fn read_flag(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
) -> Result<Option<MaintenanceFlag>, MaintenanceError> {
    maintenance_flag::read_stored(ssm, parameter)
        .await
        .map_err(|e| match e {
            maintenance_flag::ReadError::Invalid { parameter, message } => {
                MaintenanceError::BadFlag { parameter, message }
            }
            maintenance_flag::ReadError::Ssm { parameter, message } => MaintenanceError::Aws {
                operation: "GetParameter",
                resource: parameter,
                message,
            },
        })
}

/// Writes the flag and reads it back; the stored document must be the one written.
pub async fn write_flag(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
    flag: &MaintenanceFlag,
) -> Result<(), MaintenanceError> {
    ssm.put_parameter()
        .name(parameter)
        .value(flag.to_json())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .description("gatekeeper maintenance flag (JSON); see the README's flag contract")
        .send()
        .await
        .map_err(|e| MaintenanceError::Aws {
            operation: "PutParameter",
            resource: parameter.to_string(),
            message: sdk_message(&e),
        })?;
    match read_flag(ssm, parameter).await? {
        Some(stored) if &stored == flag => Ok(()),
        other => Err(MaintenanceError::ReadBack {
            parameter: parameter.to_string(),
            found: other.map(|f| f.to_json()).unwrap_or_default(),
        }),
    }
}

/// What `maintenance on` was asked to do.
#[derive(Debug, Clone)]
pub struct OnRequest {
    pub message: String,
    pub until: Option<String>,
    /// The caller's identity (STS ARN), recorded in the flag.
    pub who: String,
    pub drain_timeout: Duration,
    pub poll_interval: Duration,
    /// `[maintenance] flag_ttl_seconds`: no hook runs before this long after the flag write.
    pub flag_ttl: Duration,
}

/// How `maintenance on` ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum OnOutcome {
    /// Flag set, queues drained, hooks run.
    Done {
        flag: MaintenanceFlag,
        in_flight: Vec<preflight::InFlight>,
        waited: Duration,
    },
    /// Preflight found work in flight and `[maintenance.in_flight] refuse` is set; nothing changed.
    Refused { in_flight: Vec<preflight::InFlight> },
    /// The flag is on but the queues did not drain in time; hooks were not run.
    NotDrained {
        flag: MaintenanceFlag,
        waited: Duration,
        remaining: Vec<Depth>,
    },
}

/// `maintenance on`, journaled and resumable (see the module docs).
pub async fn on(
    clients: &Clients<'_>,
    target: &Target,
    config: &MaintenanceConfig,
    journal: &mut journal::Journal,
    request: &OnRequest,
    on_event: &(dyn Fn(Event) + Send + Sync),
) -> Result<OnOutcome, MaintenanceError> {
    let resumed = journal.resume_or_start()?;
    if let Some((run, done)) = resumed {
        on_event(Event::Resumed { run, done });
    }
    // Every queue must exist before anything changes: a typo is not a drained queue.
    for q in &target.queues {
        queues::depth(clients.sqs, q).await?;
    }
    let in_flight = preflight::in_flight(clients, &config.in_flight).await?;
    on_event(Event::InFlight(in_flight.clone()));
    if !in_flight.is_empty() && config.in_flight.refuse && !journal.done("flag-on") {
        journal.end("refused")?;
        return Ok(OnOutcome::Refused { in_flight });
    }
    journal.record("preflight")?;

    // A resumed run keeps the flag it wrote, so `when` tells when maintenance began.
    let current = read_flag(clients.ssm, &target.flag_parameter).await?;
    let (flag, noticed_by) = match current {
        Some(f) if f.enabled && journal.done("flag-on") => {
            let noticed_by = noticed_by(journal.completed_at("flag-on"), request.flag_ttl);
            (f, noticed_by)
        }
        _ => {
            let flag = MaintenanceFlag {
                enabled: true,
                message: request.message.clone(),
                until: request.until.clone(),
                who: Some(request.who.clone()),
                when: Some(now_rfc3339()),
            };
            write_flag(clients.ssm, &target.flag_parameter, &flag).await?;
            let noticed_by = tokio::time::Instant::now() + request.flag_ttl;
            // Written again in a resumed run (someone cleared it): the TTL starts again too.
            journal.record_again("flag-on")?;
            (flag, noticed_by)
        }
    };
    on_event(Event::FlagWritten(flag.clone()));
    let left = noticed_by.saturating_duration_since(tokio::time::Instant::now());
    if !left.is_zero() {
        on_event(Event::WaitingForFlagReaders { left });
    }

    let outcome = queues::drain_after(
        clients.sqs,
        &target.queues,
        request.drain_timeout,
        request.poll_interval,
        noticed_by,
        on_event,
    )
    .await?;
    let waited = match outcome {
        DrainOutcome::Drained { waited } => waited,
        DrainOutcome::TimedOut { waited, remaining } => {
            return Ok(OnOutcome::NotDrained {
                flag,
                waited,
                remaining,
            })
        }
    };
    journal.record("drained")?;

    for hook in &config.hooks {
        let step = format!("hook:{}", hook.name);
        if journal.done(&step) {
            on_event(Event::HookSkipped {
                name: hook.name.clone(),
            });
            continue;
        }
        on_event(Event::HookStarted {
            name: hook.name.clone(),
        });
        let output = preflight::run_hook(hook).await?;
        journal.record(&step)?;
        on_event(Event::HookFinished {
            name: hook.name.clone(),
            output,
        });
    }
    journal.end("done")?;
    Ok(OnOutcome::Done {
        flag,
        in_flight,
        waited,
    })
}

/// When every service has noticed a flag read back at `at` (RFC 3339, from the journal):
/// `ttl` after it, counted from now as far as it has not passed. A time that cannot be read,
/// or lies in the future (the clock moved back), waits the whole TTL from now.
#[expect(
    clippy::disallowed_methods,
    reason = "compares with a wall-clock time read back from the journal"
)]
fn noticed_by(at: Option<&str>, ttl: Duration) -> tokio::time::Instant {
    let since = at
        .and_then(|at| {
            aws_smithy_types::DateTime::from_str(at, aws_smithy_types::date_time::Format::DateTime)
                .ok()
        })
        .and_then(|at| std::time::SystemTime::try_from(at).ok())
        .and_then(|at| std::time::SystemTime::now().duration_since(at).ok())
        .unwrap_or(Duration::ZERO);
    tokio::time::Instant::now() + ttl.saturating_sub(since)
}

/// The flag `off` wrote, and when services have noticed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleared {
    pub flag: MaintenanceFlag,
    /// The flag TTL after the write was read back: until then a service may still answer
    /// from its cached flag and park uploads (see `redrive::Request::list_after`).
    pub noticed_by: tokio::time::Instant,
}

/// `maintenance off`: clears the flag (keeping who turned it off, and when) and reads it back.
pub async fn off(
    ssm: &aws_sdk_ssm::Client,
    target: &Target,
    journal: &mut journal::Journal,
    who: &str,
    flag_ttl: Duration,
) -> Result<Cleared, MaintenanceError> {
    let flag = MaintenanceFlag {
        enabled: false,
        message: String::new(),
        until: None,
        who: Some(who.to_string()),
        when: Some(now_rfc3339()),
    };
    write_flag(ssm, &target.flag_parameter, &flag).await?;
    let noticed_by = tokio::time::Instant::now() + flag_ttl;
    journal.end("off")?;
    Ok(Cleared { flag, noticed_by })
}

/// What `maintenance status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    pub parameter: String,
    /// `None`: the parameter does not exist (maintenance was never turned on).
    pub flag: Option<MaintenanceFlag>,
    pub queues: Vec<Depth>,
    pub dead_letter_queues: Vec<Depth>,
    pub parking_lot_bucket: String,
    pub parking_lot_objects: u64,
}

pub async fn status(
    clients: &Clients<'_>,
    target: &Target,
    parking_lot_bucket: &str,
) -> Result<Status, MaintenanceError> {
    let flag = read_flag(clients.ssm, &target.flag_parameter).await?;
    let mut queues = Vec::new();
    for q in &target.queues {
        queues.push(queues::depth(clients.sqs, q).await?);
    }
    let mut dead_letter_queues = Vec::new();
    for q in &target.dlqs {
        if queues::url(clients.sqs, q).await?.is_some() {
            dead_letter_queues.push(queues::depth(clients.sqs, q).await?);
        }
    }
    let parking_lot_objects = preflight::count_objects(clients.s3, parking_lot_bucket, "").await?;
    Ok(Status {
        parameter: target.flag_parameter.clone(),
        flag,
        queues,
        dead_letter_queues,
        parking_lot_bucket: parking_lot_bucket.to_string(),
        parking_lot_objects,
    })
}

/// The clients maintenance uses, borrowed from the caller.
#[derive(Debug, Clone, Copy)]
pub struct Clients<'a> {
    pub ssm: &'a aws_sdk_ssm::Client,
    pub sqs: &'a aws_sdk_sqs::Client,
    pub s3: &'a aws_sdk_s3::Client,
    /// Where `[maintenance.in_flight] objects_prefix` is looked for.
    pub ingestion_bucket: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_ttl_counts_from_the_journaled_read_back() {
        let ttl = Duration::from_secs(30);
        let left = |at: Option<&str>| {
            noticed_by(at, ttl).saturating_duration_since(tokio::time::Instant::now())
        };
        assert!(left(Some("2020-01-01T00:00:00Z")).is_zero(), "long past");
        assert!(
            left(None) > Duration::from_secs(29),
            "unknown: the whole TTL"
        );
        assert!(left(Some("garbage")) > Duration::from_secs(29));
        assert!(left(Some("2999-01-01T00:00:00Z")) > Duration::from_secs(29));
        #[expect(
            clippy::disallowed_methods,
            reason = "noticed_by reads the system clock"
        )]
        let ten_ago = aws_smithy_types::DateTime::from(
            std::time::SystemTime::now() - Duration::from_secs(10),
        )
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap();
        let rest = left(Some(&ten_ago));
        assert!(
            rest > Duration::from_secs(19) && rest <= Duration::from_secs(20),
            "{rest:?}"
        );
    }
}
