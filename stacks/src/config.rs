//! The stack half of `gatekeeper.toml`: the service, its environment, and the safety rails
//! to build for it.
//!
//! One file per service and environment. The tables `[canary]`, `[maintenance]` and
//! `[pipeline]` belong to other crates, which read their own view of the same text; this view
//! accepts them unread and rejects every other unknown key.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// A configuration problem, located in its file (`<file>:<line>:<col>: <key>: <message>`).
pub use config::Error as ConfigError;
/// A problem reading the file at all, or a [`ConfigError`].
pub use config::ReadError as LoadError;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Lower-case service name: `photos`.
    pub service: Spanned<String>,
    /// Lower-case environment name: `staging`, `prod`.
    pub environment: Spanned<String>,
    /// The AWS region, when it is not the one of the caller's environment.
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub stack: StackConfig,
    #[serde(default)]
    pub flag: FlagConfig,
    #[serde(default)]
    pub buckets: BucketsConfig,
    #[serde(default)]
    pub queues: Vec<QueueConfig>,
    #[serde(default)]
    pub alarms: AlarmsConfig,
    #[serde(default)]
    pub target_groups: Vec<TargetGroupConfig>,
    /// Read by the canary crate.
    #[serde(default, rename = "canary")]
    pub _canary: Option<toml::Value>,
    /// Read by the maintenance crate.
    #[serde(default, rename = "maintenance")]
    pub _maintenance: Option<toml::Value>,
    /// The state layer's `[state]` table (`state::StateConfig`).
    #[serde(default, rename = "state")]
    pub _state: Option<toml::Value>,
    /// Read by the pipelines crate (`pipelines::config`), which rejects its unknown keys.
    #[serde(default, rename = "pipeline")]
    pub _pipeline: Option<toml::Value>,
    /// Read by the canary crate (`canary::notify::NotifyConfig`), which rejects its unknown keys.
    #[serde(default, rename = "notify")]
    pub _notify: Option<toml::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackConfig {
    /// Stack name; default `<service>-<environment>-rails`.
    pub name: Option<Spanned<String>>,
    /// Tags put on the stack (and so on every resource that takes tags).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagConfig {
    /// SSM parameter name of the maintenance flag; default `/<service>/<environment>/maintenance`.
    pub parameter: Option<Spanned<String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketsConfig {
    /// Name of the ingestion bucket; default `<service>-<env>-ingestion-<account>-<region>`.
    pub ingestion: Option<Spanned<String>>,
    /// Name of the parking-lot bucket; default `<service>-<env>-parking-<account>-<region>`.
    pub parking_lot: Option<Spanned<String>>,
    /// Days after which noncurrent object versions expire. Current objects never expire.
    #[serde(default = "default_noncurrent_days")]
    pub noncurrent_version_days: Spanned<u32>,
    /// KMS key id or ARN for bucket encryption; default the AWS-managed `aws/s3` key.
    pub kms_key: Option<String>,
}

fn default_noncurrent_days() -> Spanned<u32> {
    Spanned::new(0..0, 90)
}

impl Default for BucketsConfig {
    fn default() -> Self {
        BucketsConfig {
            ingestion: None,
            parking_lot: None,
            noncurrent_version_days: default_noncurrent_days(),
            kms_key: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Short name; the queue is `<service>-<environment>-<name>`, its DLQ the same plus `-dlq`.
    pub name: Spanned<String>,
    #[serde(default)]
    pub fifo: bool,
    /// Receives before a message moves to the DLQ.
    #[serde(default = "default_max_receive")]
    pub max_receive_count: Spanned<u32>,
    #[serde(default = "default_visibility")]
    pub visibility_timeout_seconds: Spanned<u32>,
    /// Alarm when the oldest message is older than this.
    #[serde(default = "default_oldest_age")]
    pub oldest_message_alarm_seconds: Spanned<u32>,
}

fn default_max_receive() -> Spanned<u32> {
    Spanned::new(0..0, 5)
}
fn default_visibility() -> Spanned<u32> {
    Spanned::new(0..0, 300)
}
fn default_oldest_age() -> Spanned<u32> {
    Spanned::new(0..0, 900)
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsConfig {
    /// E-mail addresses subscribed to the alarm topic (teams route it to a ticketing inbox).
    #[serde(default)]
    pub emails: Vec<Spanned<String>>,
    #[serde(default = "default_period")]
    pub period_seconds: u32,
    #[serde(default = "default_evaluation_periods")]
    pub evaluation_periods: u32,
    #[serde(default)]
    pub custom: Vec<CustomAlarmConfig>,
}

fn default_period() -> u32 {
    60
}
fn default_evaluation_periods() -> u32 {
    5
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        AlarmsConfig {
            emails: Vec::new(),
            period_seconds: default_period(),
            evaluation_periods: default_evaluation_periods(),
            custom: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetGroupConfig {
    /// Short name, used in alarm names: `api`.
    pub name: Spanned<String>,
    /// The load balancer's ARN suffix, `app/<name>/<id>` (CloudWatch's `LoadBalancer` dimension).
    pub load_balancer: Spanned<String>,
    /// The target group's ARN suffix, `targetgroup/<name>/<id>` (`TargetGroup` dimension).
    pub target_group: Spanned<String>,
    /// Alarm when targets answer more 5xx than this in one period.
    #[serde(default = "default_max_5xx")]
    pub max_5xx: u32,
}

fn default_max_5xx() -> u32 {
    10
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomAlarmConfig {
    /// Short name; the alarm is `<service>-<environment>-<name>`.
    pub name: Spanned<String>,
    pub namespace: String,
    pub metric: String,
    /// `Average`, `Sum`, `Minimum`, `Maximum`, `SampleCount`, or a percentile like `p99`.
    pub statistic: Spanned<String>,
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    pub comparison: Comparison,
    /// A finite number (`nan` and `inf` are refused at load).
    pub threshold: Spanned<f64>,
    #[serde(default = "default_period")]
    pub period_seconds: u32,
    #[serde(default = "default_evaluation_periods")]
    pub evaluation_periods: u32,
    #[serde(default)]
    pub treat_missing_data: MissingData,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Comparison {
    GreaterThanThreshold,
    GreaterThanOrEqualToThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

impl Comparison {
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::GreaterThanThreshold => "GreaterThanThreshold",
            Comparison::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            Comparison::LessThanThreshold => "LessThanThreshold",
            Comparison::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MissingData {
    #[default]
    Missing,
    NotBreaching,
    Breaching,
    Ignore,
}

impl MissingData {
    pub fn as_str(self) -> &'static str {
        match self {
            MissingData::Missing => "missing",
            MissingData::NotBreaching => "notBreaching",
            MissingData::Breaching => "breaching",
            MissingData::Ignore => "ignore",
        }
    }
}

/// A loaded, validated configuration and the file it came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub file: PathBuf,
    pub text: String,
    pub config: Config,
}

/// Reads and validates `gatekeeper.toml`.
pub fn load(path: &Path) -> Result<Loaded, LoadError> {
    let document = config::Document::read(path)?;
    let config = view(&document)?;
    Ok(Loaded {
        file: path.to_path_buf(),
        text: document.text().to_string(),
        config,
    })
}

/// Parses and validates the text of `gatekeeper.toml`; `file` is only used in errors.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    view(&config::Document::parse(file, text)?)
}

/// The stack view of a parsed document, validated.
pub fn view(document: &config::Document) -> Result<Config, ConfigError> {
    let config: Config = document.view()?;
    crate::validate::config(&config).map_err(|v| {
        let (line, column) = line_col(document.text(), v.span.start);
        ConfigError {
            file: document.file().to_path_buf(),
            line,
            column,
            key: Some(v.key.clone()),
            message: v.message,
        }
    })?;
    Ok(config)
}

/// 1-based line and column of a byte offset.
pub use config::line_col;

impl Config {
    pub fn service(&self) -> &str {
        self.service.get_ref()
    }

    pub fn environment(&self) -> &str {
        self.environment.get_ref()
    }

    /// The names derived from the service and environment (`config::names`).
    pub fn names(&self) -> config::names::Names<'_> {
        config::names::Names::new(self.service(), self.environment())
    }

    /// `<service>-<environment>`: the prefix of every name the rails create.
    pub fn prefix(&self) -> String {
        self.names().prefix()
    }

    pub fn stack_name(&self) -> String {
        let custom = self.stack.name.as_ref().map(|n| n.get_ref().as_str());
        self.names().stack(custom)
    }

    pub fn flag_parameter(&self) -> String {
        let custom = self.flag.parameter.as_ref().map(|n| n.get_ref().as_str());
        self.names().flag_parameter(custom)
    }

    /// Full name of a work queue.
    pub fn queue_name(&self, queue: &QueueConfig) -> String {
        self.names().queue(queue.name.get_ref(), queue.fifo)
    }

    /// Full name of a work queue's dead-letter queue.
    pub fn dlq_name(&self, queue: &QueueConfig) -> String {
        self.names()
            .dead_letter_queue(queue.name.get_ref(), queue.fifo)
    }

    /// Prefix shared by every alarm of the service: how the gate finds them.
    pub fn alarm_prefix(&self) -> String {
        self.names().alarm_prefix()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_name_the_key() {
        let text = "service = \"photos\"\nenvironment = \"prod\"\n\n[[queues]]\nname = \"q\"\nmax_receive_count = \"five\"\n";
        let err = parse(Path::new("g.toml"), text).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("queues[0].max_receive_count"));
        assert_eq!((err.line, err.column), (6, 21));
        assert!(err
            .to_string()
            .starts_with("g.toml:6:21: queues[0].max_receive_count: invalid type"));
    }

    #[test]
    fn a_missing_field_is_named_with_its_table() {
        let text = "# photos\nservice = \"photos\"\n\n[[queues]]\nname = \"q\"\n";
        let err = parse(Path::new("g.toml"), text).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("environment"), "{err}");
        assert!(
            err.to_string()
                .starts_with("g.toml:1:1: environment: missing field `environment`"),
            "{err}"
        );
        let text = "service = \"photos\"\nenvironment = \"prod\"\n\n[[queues]]\nname = \"a\"\n\n[[queues]]\nmax_receive_count = 3\n";
        let err = parse(Path::new("g.toml"), text).unwrap_err();
        assert_eq!(err.key.as_deref(), Some("queues[1].name"), "{err}");
        assert_eq!(err.line, 7, "{err}");
        assert!(
            err.to_string()
                .starts_with("g.toml:7:1: queues[1].name: missing field `name`"),
            "{err}"
        );
    }

    #[test]
    fn an_alarm_threshold_must_be_a_finite_number() {
        for bad in ["nan", "inf", "-inf"] {
            let text = format!(
                "service = \"photos\"\nenvironment = \"prod\"\n\n[[alarms.custom]]\nname = \"slow\"\nnamespace = \"App\"\nmetric = \"Latency\"\nstatistic = \"p99\"\ncomparison = \"GreaterThanThreshold\"\nthreshold = {bad}\n"
            );
            let err = parse(Path::new("g.toml"), &text).unwrap_err();
            assert_eq!(
                err.key.as_deref(),
                Some("alarms.custom[0].threshold"),
                "{err}"
            );
            assert_eq!(err.line, 10, "{err}");
            assert!(err.to_string().contains("finite"), "{err}");
        }
    }
}
