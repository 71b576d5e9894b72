//! Which buckets the parking lot and the ingestion bucket are: `[maintenance]`
//! `parking_lot_bucket`/`ingestion_bucket`, then `[buckets]`, then the rails stack's outputs
//! (`ParkingLotBucketName`, `IngestionBucketName`). The stack is read only when the
//! configuration leaves a name out.

use serde::Serialize;
use stacks::config::Config;

use crate::{MaintenanceConfig, MaintenanceError};

/// The stack outputs that name the buckets.
pub const PARKING_LOT_OUTPUT: &str = "ParkingLotBucketName";
pub const INGESTION_OUTPUT: &str = "IngestionBucketName";

/// The parking lot and the ingestion bucket of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Buckets {
    pub parking_lot: String,
    pub ingestion: String,
}

/// The names the configuration gives, before the stack is asked for the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configured {
    pub parking_lot: Option<String>,
    pub ingestion: Option<String>,
    /// The rails stack, whose outputs name what the configuration leaves out.
    pub stack: String,
}

impl Configured {
    /// `[maintenance]` first, then `[buckets]`.
    pub fn from_config(config: &Config, mconfig: &MaintenanceConfig) -> Self {
        let named = |b: &Option<toml::Spanned<String>>| b.as_ref().map(|b| b.get_ref().clone());
        Configured {
            parking_lot: mconfig
                .parking_lot_bucket
                .clone()
                .or_else(|| named(&config.buckets.parking_lot)),
            ingestion: mconfig
                .ingestion_bucket
                .clone()
                .or_else(|| named(&config.buckets.ingestion)),
            stack: config.stack_name(),
        }
    }

    /// The stack to read outputs from: `None` when the configuration names both buckets.
    pub fn stack_to_read(&self) -> Option<&str> {
        (self.parking_lot.is_none() || self.ingestion.is_none()).then_some(self.stack.as_str())
    }

    /// Fills what the configuration leaves out from the stack's outputs (`output(key)`; the
    /// stack not deployed answers `None` for every key).
    pub fn resolve(
        self,
        output: impl Fn(&str) -> Option<String>,
    ) -> Result<Buckets, MaintenanceError> {
        let parking_lot = self.parking_lot.or_else(|| output(PARKING_LOT_OUTPUT));
        let ingestion = self.ingestion.or_else(|| output(INGESTION_OUTPUT));
        match (parking_lot, ingestion) {
            (Some(parking_lot), Some(ingestion)) => Ok(Buckets {
                parking_lot,
                ingestion,
            }),
            _ => Err(MaintenanceError::NoBuckets { stack: self.stack }),
        }
    }
}

/// Resolves the buckets, describing the rails stack only when the configuration leaves a
/// name out.
pub async fn resolve(
    config: &Config,
    mconfig: &MaintenanceConfig,
    cloudformation: &aws_sdk_cloudformation::Client,
) -> Result<Buckets, MaintenanceError> {
    let configured = Configured::from_config(config, mconfig);
    let live = match configured.stack_to_read() {
        Some(stack) => stack_deploy::describe(cloudformation, stack).await?,
        None => None,
    };
    configured.resolve(|key| {
        live.as_ref().and_then(|s| {
            s.outputs()
                .iter()
                .find(|o| o.output_key() == Some(key))
                .and_then(|o| o.output_value().map(str::to_string))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured(parking_lot: Option<&str>, ingestion: Option<&str>) -> Configured {
        Configured {
            parking_lot: parking_lot.map(str::to_string),
            ingestion: ingestion.map(str::to_string),
            stack: "photos-prod-rails".into(),
        }
    }

    fn config(text: &str) -> (Config, MaintenanceConfig) {
        let path = std::path::Path::new("gatekeeper.toml");
        let config = stacks::config::parse(path, text).unwrap();
        let mconfig = crate::config::parse(path, text).unwrap();
        (config, mconfig)
    }

    #[test]
    fn maintenance_names_win_over_buckets_names() {
        let (c, m) = config(
            "service = \"photos\"\nenvironment = \"prod\"\n[buckets]\ningestion = \"b-in\"\nparking_lot = \"b-park\"\n\
             [maintenance]\nparking_lot_bucket = \"m-park\"\n",
        );
        let got = Configured::from_config(&c, &m);
        assert_eq!(got.parking_lot.as_deref(), Some("m-park"));
        assert_eq!(got.ingestion.as_deref(), Some("b-in"));
        assert_eq!(
            got.stack_to_read(),
            None,
            "both named: the stack is not read"
        );
    }

    #[test]
    fn the_stack_is_read_only_for_what_the_configuration_leaves_out() {
        let c = configured(Some("park"), None);
        assert_eq!(c.stack_to_read(), Some("photos-prod-rails"));
        let got = c
            .resolve(|key| match key {
                PARKING_LOT_OUTPUT => Some("from-stack-park".into()),
                INGESTION_OUTPUT => Some("from-stack-in".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            got,
            Buckets {
                parking_lot: "park".into(),
                ingestion: "from-stack-in".into()
            }
        );
    }

    #[test]
    fn no_name_anywhere_names_what_to_set() {
        let e = configured(None, Some("in")).resolve(|_| None).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("[maintenance] parking_lot_bucket"), "{text}");
        assert!(text.contains("photos-prod-rails"), "{text}");
    }
}
