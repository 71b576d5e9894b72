//! The `[maintenance]` view of `gatekeeper.toml`.
//!
//! ```toml
//! [maintenance]
//! queues = ["uploads", "unzip"]      # short names of `[[queues]]`; default: all of them
//! # queue_prefix = "photos-prod-"    # or every queue whose name starts with this
//! drain_timeout_seconds = 900
//! poll_interval_seconds = 5
//! concurrency = 16                   # redrive copies in flight
//! # ingestion_bucket = "..."         # default: [buckets] or the stack's outputs
//! # parking_lot_bucket = "..."
//!
//! [maintenance.in_flight]            # what `maintenance on` reports before it starts
//! queue_prefix = "photos-prod-batch-"  # non-empty queues with this prefix
//! # objects_prefix = "batches/"      # objects under <objects_prefix><batch>/ in ingestion
//! # command = ["./in-flight.sh"]     # prints a JSON array
//! refuse = false                     # true: stop (exit 2) when anything is in flight
//!
//! [[maintenance.hooks]]              # run in order once the queues are drained
//! name = "db-backup"
//! command = ["./backup.sh", "--label", "maintenance"]
//! timeout_seconds = 3600
//!
//! [maintenance.batches]              # how redrive treats `<batchId>/path` keys
//! id_prefix = ""                     # first key segment is a batch id when it starts with this
//! liveness = "queue"                 # "queue" | "command" | "none"
//! queue = "{prefix}-batch-{batch}"   # liveness = "queue": the batch is alive while this exists
//! # command = ["./batch-alive", "{batch}"]  # liveness = "command": exit 0 alive, 1 dead
//! rewrite = "{path}"                 # destination key of a dead batch's object
//! ```
//!
//! Dead-letter queues are never drained: their messages already failed and wait for a person
//! (`redrive --dlq`); `maintenance status` shows their depth.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use stacks::config::{line_col, ConfigError, LoadError};
use toml::Spanned;

#[derive(Debug, Deserialize)]
struct View {
    #[serde(default)]
    maintenance: Option<MaintenanceConfig>,
    #[serde(flatten)]
    _rest: toml::Table,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// Short names of `[[queues]]` to drain; default all of them.
    #[serde(default)]
    pub queues: Option<Vec<Spanned<String>>>,
    /// Drain every queue whose full name starts with this instead.
    #[serde(default)]
    pub queue_prefix: Option<Spanned<String>>,
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout_seconds: u64,
    #[serde(default = "default_poll")]
    pub poll_interval_seconds: Spanned<u64>,
    #[serde(default = "default_concurrency")]
    pub concurrency: Spanned<usize>,
    #[serde(default)]
    pub ingestion_bucket: Option<String>,
    #[serde(default)]
    pub parking_lot_bucket: Option<String>,
    #[serde(default)]
    pub in_flight: InFlightConfig,
    #[serde(default)]
    pub hooks: Vec<HookConfig>,
    #[serde(default)]
    pub batches: BatchesConfig,
}

fn default_drain_timeout() -> u64 {
    900
}
fn default_poll() -> Spanned<u64> {
    Spanned::new(0..0, 5)
}
fn default_concurrency() -> Spanned<usize> {
    Spanned::new(0..0, 16)
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        MaintenanceConfig {
            queues: None,
            queue_prefix: None,
            drain_timeout_seconds: default_drain_timeout(),
            poll_interval_seconds: default_poll(),
            concurrency: default_concurrency(),
            ingestion_bucket: None,
            parking_lot_bucket: None,
            in_flight: InFlightConfig::default(),
            hooks: Vec::new(),
            batches: BatchesConfig::default(),
        }
    }
}

impl MaintenanceConfig {
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_seconds)
    }
    pub fn poll_interval(&self) -> Duration {
        Duration::from_secs(*self.poll_interval_seconds.get_ref())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InFlightConfig {
    #[serde(default)]
    pub queue_prefix: Option<String>,
    #[serde(default)]
    pub objects_prefix: Option<String>,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    #[serde(default)]
    pub refuse: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    pub name: String,
    pub command: Spanned<Vec<String>>,
    #[serde(default = "default_hook_timeout")]
    pub timeout_seconds: u64,
}

fn default_hook_timeout() -> u64 {
    3600
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Liveness {
    #[default]
    Queue,
    Command,
    None,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchesConfig {
    #[serde(default)]
    pub id_prefix: String,
    #[serde(default)]
    pub liveness: Liveness,
    #[serde(default = "default_batch_queue")]
    pub queue: String,
    #[serde(default)]
    pub command: Option<Spanned<Vec<String>>>,
    #[serde(default = "default_rewrite")]
    pub rewrite: Spanned<String>,
}

fn default_batch_queue() -> String {
    "{prefix}-batch-{batch}".into()
}
fn default_rewrite() -> Spanned<String> {
    Spanned::new(0..0, "{path}".into())
}

impl Default for BatchesConfig {
    fn default() -> Self {
        BatchesConfig {
            id_prefix: String::new(),
            liveness: Liveness::default(),
            queue: default_batch_queue(),
            command: None,
            rewrite: default_rewrite(),
        }
    }
}

/// Reads the `[maintenance]` table of `path`; a file without one gets the defaults.
pub fn load(path: &Path) -> Result<MaintenanceConfig, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    Ok(parse(path, &text)?)
}

/// Parses the `[maintenance]` table of the text of `gatekeeper.toml`.
pub fn parse(file: &Path, text: &str) -> Result<MaintenanceConfig, ConfigError> {
    let view: View = toml::from_str(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        located(file, line, column, None, e.message().trim())
    })?;
    let config = view.maintenance.unwrap_or_default();
    let fail = |key: &str, span: std::ops::Range<usize>, message: &str| {
        let (line, column) = line_col(text, span.start);
        located(file, line, column, Some(key), message)
    };
    if config.queues.is_some() && config.queue_prefix.is_some() {
        let span = config
            .queue_prefix
            .as_ref()
            .map(|p| p.span())
            .unwrap_or(0..0);
        return Err(fail(
            "maintenance.queue_prefix",
            span,
            "give either `queues` or `queue_prefix`, not both",
        ));
    }
    if *config.concurrency.get_ref() == 0 {
        return Err(fail(
            "maintenance.concurrency",
            config.concurrency.span(),
            "must be at least 1",
        ));
    }
    if *config.poll_interval_seconds.get_ref() == 0 {
        return Err(fail(
            "maintenance.poll_interval_seconds",
            config.poll_interval_seconds.span(),
            "must be at least 1",
        ));
    }
    for (i, hook) in config.hooks.iter().enumerate() {
        if hook.command.get_ref().is_empty() {
            return Err(fail(
                &format!("maintenance.hooks[{i}].command"),
                hook.command.span(),
                "needs a program to run",
            ));
        }
    }
    let b = &config.batches;
    if b.liveness == Liveness::Command && b.command.as_ref().is_none_or(|c| c.get_ref().is_empty())
    {
        let span = b.command.as_ref().map(|c| c.span()).unwrap_or(0..0);
        return Err(fail(
            "maintenance.batches.command",
            span,
            "liveness = \"command\" needs a command, e.g. [\"./batch-alive\", \"{batch}\"]",
        ));
    }
    if !b.rewrite.get_ref().contains("{path}") {
        return Err(fail(
            "maintenance.batches.rewrite",
            b.rewrite.span(),
            "must contain {path}, or distinct objects of a dead batch would collide",
        ));
    }
    Ok(config)
}

fn located(
    file: &Path,
    line: usize,
    column: usize,
    key: Option<&str>,
    message: &str,
) -> ConfigError {
    ConfigError {
        file: PathBuf::from(file),
        line,
        column,
        key: key.map(str::to_string),
        message: match key {
            Some(k) => format!("{k}: {message}"),
            None => message.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<MaintenanceConfig, ConfigError> {
        parse(Path::new("gatekeeper.toml"), text)
    }

    #[test]
    fn absent_table_gives_defaults() {
        let c = parse_str("service = \"photos\"\nenvironment = \"prod\"\n").unwrap();
        assert_eq!(c, MaintenanceConfig::default());
        assert_eq!(c.drain_timeout(), Duration::from_secs(900));
        assert_eq!(c.batches.rewrite.get_ref(), "{path}");
    }

    #[test]
    fn full_table_parses() {
        let c = parse_str(
            r#"service = "photos"
[maintenance]
queues = ["uploads"]
drain_timeout_seconds = 60
concurrency = 4
[maintenance.in_flight]
queue_prefix = "photos-prod-batch-"
refuse = true
[[maintenance.hooks]]
name = "backup"
command = ["true"]
[maintenance.batches]
liveness = "command"
command = ["./alive", "{batch}"]
rewrite = "orphans/{batch}/{path}"
"#,
        )
        .unwrap();
        assert_eq!(c.queues.unwrap()[0].get_ref(), "uploads");
        assert_eq!(*c.concurrency.get_ref(), 4);
        assert!(c.in_flight.refuse);
        assert_eq!(c.hooks[0].timeout_seconds, 3600);
        assert_eq!(c.batches.liveness, Liveness::Command);
    }

    #[test]
    fn unknown_key_is_located() {
        let e = parse_str("service = \"x\"\n[maintenance]\ndrain_timeout = 5\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 1));
        assert!(e.message.contains("unknown field `drain_timeout`"), "{e}");
        assert!(e.to_string().starts_with("gatekeeper.toml:3:1: "), "{e}");
    }

    #[test]
    fn invalid_values_name_their_key() {
        let e = parse_str("[maintenance]\nconcurrency = 0\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("maintenance.concurrency"));
        assert_eq!((e.line, e.column), (2, 15));
        let e = parse_str("[maintenance.batches]\nrewrite = \"x/{batch}\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("maintenance.batches.rewrite"));
        assert_eq!(e.line, 2);
        let e = parse_str("[maintenance.batches]\nliveness = \"command\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("maintenance.batches.command"));
        let e = parse_str("[maintenance]\nqueues = [\"a\"]\nqueue_prefix = \"x\"\n").unwrap_err();
        assert_eq!(e.line, 3);
    }
}
