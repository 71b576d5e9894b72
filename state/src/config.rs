//! `[state]` in `gatekeeper.toml`: where the lock and the journals live.
//!
//! ```toml
//! [state]
//! url = "s3://photos-prod-gatekeeper/state"   # shared by every runner (CI, laptops)
//! # dir = ".gatekeeper/state"                 # without url: this machine only
//! lease_seconds = 120                          # renewed every third of it
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The `[state]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// `s3://bucket/prefix`: state every runner shares. Without it, state is local to this
    /// machine (`dir`), which suits a laptop but not ephemeral CI runners.
    pub url: Option<String>,
    /// The local directory when there is no `url`; `.gatekeeper/state` when absent.
    pub dir: Option<PathBuf>,
    /// How long a holder's lease lasts without renewal (seconds); renewed every third.
    pub lease_seconds: Option<u64>,
}

/// Where the state lives, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    S3 { bucket: String, prefix: String },
    Local { dir: PathBuf },
}

pub const DEFAULT_LEASE_SECONDS: u64 = 120;

impl StateConfig {
    pub fn lease_seconds(&self) -> u64 {
        self.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS)
    }

    /// The backend, or what is wrong with `url` (the key to name is `state.url`).
    pub fn backend(&self) -> Result<Backend, String> {
        match &self.url {
            Some(url) => {
                let rest = url
                    .strip_prefix("s3://")
                    .ok_or_else(|| format!("{url:?}: expected s3://bucket/prefix"))?;
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                let prefix = prefix.trim_matches('/');
                let bucket_ok = (3..=63).contains(&bucket.len())
                    && bucket.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'
                    });
                if !bucket_ok {
                    return Err(format!("{bucket:?} is not an S3 bucket name"));
                }
                if !prefix.is_empty() && !prefix.split('/').all(crate::safe_segment) {
                    return Err(format!(
                        "{prefix:?}: prefix segments are letters, digits, `-`, `_`, `.`"
                    ));
                }
                Ok(Backend::S3 {
                    bucket: bucket.to_string(),
                    prefix: prefix.to_string(),
                })
            }
            None => Ok(Backend::Local {
                dir: self
                    .dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(".gatekeeper/state")),
            }),
        }
    }

    /// Checks everything that can be checked offline: (key, message) of the first problem.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        self.backend().map_err(|m| ("url", m))?;
        if let Some(l) = self.lease_seconds {
            if !(3..=3600).contains(&l) {
                return Err(("lease_seconds", "must be between 3 and 3600".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_defaults() {
        let c = StateConfig {
            url: Some("s3://photos-prod-gatekeeper/state/v1".into()),
            ..Default::default()
        };
        assert_eq!(
            c.backend().unwrap(),
            Backend::S3 {
                bucket: "photos-prod-gatekeeper".into(),
                prefix: "state/v1".into()
            }
        );
        assert_eq!(
            StateConfig::default().backend().unwrap(),
            Backend::Local {
                dir: ".gatekeeper/state".into()
            }
        );
        for bad in [
            "http://x/y",
            "s3://Bad_Bucket/x",
            "s3://bucket/../x",
            "s3://bucket/a;b",
        ] {
            let c = StateConfig {
                url: Some(bad.into()),
                ..Default::default()
            };
            assert!(c.validate().is_err(), "{bad}");
        }
    }
}
