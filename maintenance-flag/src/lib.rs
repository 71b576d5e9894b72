//! gatekeeper's maintenance flag: the contract, and a reader for services.
//!
//! `gatekeeper maintenance on` writes a JSON document ([`MaintenanceFlag`]) to an SSM
//! parameter (default `/<service>/<environment>/maintenance`). A service reads it through a
//! `FlagReader` (feature `ssm`, on by default), which asks SSM at most once per TTL however
//! many requests ask it:
//!
//! ```no_run
//! # #[cfg(feature = "ssm")]
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
//! Without default features the crate is the contract alone (the document,
//! [`retry_after_seconds`], [`error_body`]): no AWS SDK, no template engine. `stacks` writes
//! the flag's first value with it.
//!
//! The contract:
//! - **Read interval**: a TTL of 10 to 30 seconds. `maintenance on` counts the queues as
//!   drained, and runs its hooks, only once `[maintenance] flag_ttl_seconds` (default 30) has
//!   passed since the flag was written; `maintenance off` waits as long before it redrives.
//!   A reader's TTL must not exceed that setting.
//! - **Only `enabled` decides.** `message` and `until` are for people; unknown fields are
//!   ignored, so the document can grow.
//! - **A missing parameter is off** (maintenance was never turned on); an empty or unreadable
//!   value is an error, never off. Every reader, gatekeeper's own included, goes through
//!   `read_stored` (feature `ssm`), which applies that rule in one place.
//! - **Errors keep the last known state.** A failed or unreadable read never flips the flag;
//!   it is retried after the TTL. Before any successful read the flag counts as off, so a
//!   service still starts when SSM is unreachable (`FlagReader::try_get` tells the
//!   difference).
//! - **While on**, an API answers `503 Service Unavailable` with `Retry-After` (seconds
//!   until `until`, or 60) and the JSON body of [`error_body`]:
//!   `{"error":"maintenance","message":"...","until":"..."}`. A web front end that sees
//!   `error == "maintenance"` shows the message and reloads after `Retry-After`.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

#[cfg(feature = "ssm")]
mod ssm;
#[cfg(feature = "ssm")]
pub use ssm::{read, read_stored, FlagReader, ReadError};

/// The document stored in the parameter:
///
/// ```json
/// {"enabled": true, "message": "Back at 14:00 UTC", "until": "2026-11-22T14:00:00Z",
///  "who": "arn:aws:sts::123456789012:assumed-role/release/alice", "when": "2026-11-22T12:58:03Z"}
/// ```
///
/// Only `enabled` decides, the rest is for people. Unknown fields are ignored by readers so the
/// document can grow without breaking older services.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceFlag {
    pub enabled: bool,
    #[serde(default)]
    pub message: String,
    /// When maintenance is expected to end (RFC 3339), for people and `Retry-After`.
    #[serde(default)]
    pub until: Option<String>,
    /// Who set the flag (the caller identity's ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
    /// When the flag was set (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
}

impl MaintenanceFlag {
    /// The compact JSON stored in the parameter.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("the flag always serializes")
    }

    /// Reads a stored value. An empty or unreadable value is an error, never "off": a reader
    /// that cannot tell should keep its last known state.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// The `error` code of a 503 answered during maintenance.
pub const ERROR_CODE: &str = "maintenance";

/// `Retry-After` when the flag names no end, or its end has passed.
pub const DEFAULT_RETRY_AFTER: u64 = 60;

/// Seconds for `Retry-After`: until `until` (at least 1), or [`DEFAULT_RETRY_AFTER`].
pub fn retry_after_seconds(flag: &MaintenanceFlag, now: SystemTime) -> u64 {
    let until = flag.until.as_deref().and_then(|u| {
        time::OffsetDateTime::parse(u, &time::format_description::well_known::Rfc3339).ok()
    });
    match until.and_then(|u| SystemTime::from(u).duration_since(now).ok()) {
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
    use std::time::Duration;

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
    fn default_flag_is_off_and_compact() {
        assert_eq!(
            MaintenanceFlag::default().to_json(),
            r#"{"enabled":false,"message":"","until":null}"#
        );
    }

    #[test]
    fn readers_ignore_unknown_fields() {
        let f = MaintenanceFlag::from_json(r#"{"enabled":true,"future":1}"#).unwrap();
        assert!(f.enabled);
        assert!(MaintenanceFlag::from_json("").is_err());
    }

    #[test]
    fn retry_after_counts_down_to_until() {
        // 2027-01-15T08:00:00Z
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(
            retry_after_seconds(&on(Some("2027-01-15T08:01:30Z")), now),
            90
        );
        assert_eq!(
            retry_after_seconds(&on(Some("2027-01-15T09:01:30+01:00")), now),
            90,
            "an offset counts"
        );
        assert_eq!(
            retry_after_seconds(&on(Some("2023-11-14T22:13:20Z")), now),
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
