//! The maintenance flag's contract: the JSON document stored in the SSM parameter.
//!
//! ```json
//! {"enabled": true, "message": "Back at 14:00 UTC", "until": "2026-11-22T14:00:00Z",
//!  "who": "arn:aws:sts::123456789012:assumed-role/release/alice", "when": "2026-11-22T12:58:03Z"}
//! ```
//!
//! Services read it at runtime (see the README's "maintenance flag contract"); only
//! `enabled` decides, the rest is for people. Unknown fields are ignored by readers so the
//! document can grow without breaking older services.

use serde::{Deserialize, Serialize};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
