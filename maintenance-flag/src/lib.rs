//! Read gatekeeper's maintenance flag inside a service.
//!
//! `gatekeeper maintenance on` writes a JSON document ([`MaintenanceFlag`]) to an SSM
//! parameter (default `/<service>/<environment>/maintenance`). A service reads it through a
//! [`FlagReader`], which asks SSM at most once per TTL however many requests ask it:
//!
//! ```no_run
//! # async fn example(ssm: aws_sdk_ssm::Client) {
//! use std::time::Duration;
//! use maintenance_flag::FlagReader;
//!
//! let flag = FlagReader::new(ssm, "/photos/prod/maintenance", Duration::from_secs(10));
//! // In a request handler:
//! let state = flag.get().await;
//! if state.enabled {
//!     let status = 503;
//!     let retry_after = maintenance_flag::retry_after_seconds(&state, std::time::SystemTime::now());
//!     let body = maintenance_flag::error_body(&state);
//!     // respond with `status`, a `Retry-After: {retry_after}` header and `body`
//! }
//! # }
//! ```
//!
//! The contract:
//! - **Read interval**: a TTL of 10 to 30 seconds. `maintenance on` counts the queues as
//!   drained, and runs its hooks, only once `[maintenance] flag_ttl_seconds` (default 30) has
//!   passed since the flag was written; `maintenance off` waits as long before it redrives.
//!   A reader's TTL must not exceed that setting.
//! - **Only `enabled` decides.** `message` and `until` are for people; unknown fields are
//!   ignored, so the document can grow.
//! - **Errors keep the last known state.** A failed or unreadable read never flips the flag;
//!   it is retried after the TTL. Before any successful read the flag counts as off, so a
//!   service still starts when SSM is unreachable ([`FlagReader::try_get`] tells the
//!   difference). A missing parameter is off (maintenance was never turned on).
//! - **While on**, an API answers `503 Service Unavailable` with `Retry-After` (seconds
//!   until `until`, or 60) and the JSON body of [`error_body`]:
//!   `{"error":"maintenance","message":"...","until":"..."}`. A web front end that sees
//!   `error == "maintenance"` shows the message and reloads after `Retry-After`.

use std::time::{Duration, SystemTime};

use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime;
use tokio::sync::Mutex;
use tokio::time::Instant;

pub use stacks::flag::MaintenanceFlag;

/// The `error` code of a 503 answered during maintenance.
pub const ERROR_CODE: &str = "maintenance";

/// `Retry-After` when the flag names no end, or its end has passed.
pub const DEFAULT_RETRY_AFTER: u64 = 60;

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// SSM could not be asked (network, permissions, throttling).
    #[error("GetParameter {parameter}: {message}")]
    Ssm { parameter: String, message: String },
    /// The parameter does not hold a flag document.
    #[error("SSM parameter {parameter} is not a maintenance flag: {message}")]
    Invalid { parameter: String, message: String },
}

/// Reads the flag with a TTL cache; cheap to share (`Arc<FlagReader>`) between handlers.
#[derive(Debug)]
pub struct FlagReader {
    ssm: aws_sdk_ssm::Client,
    parameter: String,
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    known: Option<MaintenanceFlag>,
    checked: Option<Instant>,
    last_error: Option<ReadError>,
}

impl FlagReader {
    pub fn new(ssm: aws_sdk_ssm::Client, parameter: impl Into<String>, ttl: Duration) -> Self {
        FlagReader {
            ssm,
            parameter: parameter.into(),
            ttl,
            state: Mutex::new(State::default()),
        }
    }

    pub fn parameter(&self) -> &str {
        &self.parameter
    }

    /// The flag: cached for the TTL; the last known value when a read fails; off before
    /// any read succeeded.
    pub async fn get(&self) -> MaintenanceFlag {
        match self.try_get().await {
            Ok(flag) => flag,
            Err((known, _)) => known.unwrap_or_default(),
        }
    }

    /// Like [`get`](Self::get), but a failed read is an error carrying the last known value.
    pub async fn try_get(&self) -> Result<MaintenanceFlag, (Option<MaintenanceFlag>, ReadError)> {
        // One caller refreshes while the others wait for its answer.
        let mut state = self.state.lock().await;
        let fresh = state.checked.is_some_and(|t| t.elapsed() < self.ttl);
        if !fresh {
            state.checked = Some(Instant::now());
            match read(&self.ssm, &self.parameter).await {
                Ok(flag) => {
                    state.known = Some(flag);
                    state.last_error = None;
                }
                Err(e) => state.last_error = Some(e),
            }
        }
        match (&state.last_error, &state.known) {
            (None, Some(flag)) => Ok(flag.clone()),
            (None, None) => Ok(MaintenanceFlag::default()),
            (Some(e), known) => Err((known.clone(), e.clone())),
        }
    }
}

/// One uncached read. A missing parameter is off.
pub async fn read(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
) -> Result<MaintenanceFlag, ReadError> {
    match ssm.get_parameter().name(parameter).send().await {
        Ok(out) => {
            let value = out.parameter().and_then(|p| p.value()).unwrap_or_default();
            MaintenanceFlag::from_json(value).map_err(|e| ReadError::Invalid {
                parameter: parameter.to_string(),
                message: e.to_string(),
            })
        }
        Err(e) => {
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found())
            {
                return Ok(MaintenanceFlag::default());
            }
            Err(ReadError::Ssm {
                parameter: parameter.to_string(),
                message: aws_errors::message(&e),
            })
        }
    }
}

/// Seconds for `Retry-After`: until `until` (at least 1), or [`DEFAULT_RETRY_AFTER`].
pub fn retry_after_seconds(flag: &MaintenanceFlag, now: SystemTime) -> u64 {
    let until = flag
        .until
        .as_deref()
        .and_then(|u| DateTime::from_str(u, Format::DateTime).ok())
        .and_then(|d| SystemTime::try_from(d).ok());
    match until.and_then(|u| u.duration_since(now).ok()) {
        Some(left) => left.as_secs().max(1),
        None => DEFAULT_RETRY_AFTER,
    }
}

/// The JSON body of a 503 answered during maintenance.
pub fn error_body(flag: &MaintenanceFlag) -> String {
    serde_json::json!({
        "error": ERROR_CODE,
        "message": flag.message,
        "until": flag.until,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(until: Option<&str>) -> MaintenanceFlag {
        MaintenanceFlag {
            enabled: true,
            message: "Back at 14:00 UTC".into(),
            until: until.map(str::to_string),
            who: None,
            when: None,
        }
    }

    #[test]
    fn retry_after_counts_down_to_until() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let until = DateTime::from_secs(1_800_000_000 + 90)
            .fmt(Format::DateTime)
            .unwrap();
        assert_eq!(retry_after_seconds(&on(Some(&until)), now), 90);
        let past = DateTime::from_secs(1_700_000_000)
            .fmt(Format::DateTime)
            .unwrap();
        assert_eq!(
            retry_after_seconds(&on(Some(&past)), now),
            DEFAULT_RETRY_AFTER
        );
        assert_eq!(retry_after_seconds(&on(None), now), DEFAULT_RETRY_AFTER);
        assert_eq!(
            retry_after_seconds(&on(Some("soon")), now),
            DEFAULT_RETRY_AFTER
        );
    }

    #[test]
    fn error_body_carries_the_code_a_front_end_checks() {
        let body: serde_json::Value =
            serde_json::from_str(&error_body(&on(Some("2030-01-01T00:00:00Z")))).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": "maintenance", "message": "Back at 14:00 UTC",
                               "until": "2030-01-01T00:00:00Z"})
        );
    }
}
