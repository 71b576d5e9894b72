//! The `[maintenance]` view of `gatekeeper.toml`.
//!
//! ```toml
//! [maintenance]
//! queues = ["uploads", "unzip"]      # short names of `[[queues]]`; default: all of them
//! # queue_prefix = "photos-prod-"    # or every queue whose name starts with this
//! drain_timeout_seconds = 900
//! poll_interval_seconds = 5
//! flag_ttl_seconds = 30              # the longest TTL with which a service caches the flag
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
//! [maintenance.batches]              # how redrive treats `<batchId>/path` keys; without this
//!                                    # table no key is a batch key and none is rewritten
//! id_prefix = "batch-"               # required: the first key segment is a batch id when it
//!                                    # starts with this (`batch-42/a/x.jpg`, not `docs/x.jpg`)
//! liveness = "queue"                 # "queue" (default) | "command" | "none"
//! queue = "{prefix}-batch-{batch}"   # liveness = "queue": the batch is alive while this exists
//! # command = ["./batch-alive", "{batch}"]  # liveness = "command": exit 0 alive, 1 dead
//! rewrite = "{path}"                 # destination key of a dead batch's object
//! ```
//!
//! `flag_ttl_seconds` is how long a service may keep answering from its cached flag
//! (`maintenance-flag`'s reader TTL, 10 to 30 seconds by the contract). `maintenance on` runs
//! no hook before that long has passed since the flag was set, and `maintenance off` lists
//! the parking lot no sooner than that long after clearing it.
//!
//! A `[maintenance.batches]` table whose liveness check is not `"none"` needs a non-empty
//! `id_prefix`: a batch is recognised by how its id starts, never by a key merely having a
//! folder, so an ordinary upload such as `docs/x.jpg` keeps its key.
//!
//! Dead-letter queues are never drained: their messages already failed and wait for a person
//! (`redrive --dlq`); `maintenance status` shows their depth.

use std::path::{Path, PathBuf};
use std::time::Duration;

use config::line_col;
use serde::Deserialize;
use stacks::config::{ConfigError, LoadError};
use toml::Spanned;

#[derive(Debug, Deserialize)]
struct View {
    /// They name the maintenance journal: checked here too, whatever view loads first.
    #[serde(default)]
    service: Option<Spanned<String>>,
    #[serde(default)]
    environment: Option<Spanned<String>>,
    #[serde(default)]
    maintenance: Option<MaintenanceConfig>,
    /// The top-level `[state]` table: where the lock and the run journals live.
    #[serde(default)]
    state: Option<Spanned<state::StateConfig>>,
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
    /// The longest TTL with which a service caches the flag; see the module docs.
    #[serde(default = "default_flag_ttl")]
    pub flag_ttl_seconds: Spanned<u64>,
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
    /// `None` (no `[maintenance.batches]` table): no key is a batch key.
    #[serde(default)]
    pub batches: Option<Spanned<BatchesConfig>>,
    /// The top-level `[state]` table, read with this view (not a `[maintenance]` key).
    #[serde(skip)]
    pub state: state::StateConfig,
}

fn default_drain_timeout() -> u64 {
    900
}
fn default_poll() -> Spanned<u64> {
    Spanned::new(0..0, 5)
}
/// The longest reader TTL the flag contract allows (`maintenance-flag`: 10 to 30 seconds).
pub const DEFAULT_FLAG_TTL_SECONDS: u64 = 30;
/// A larger `flag_ttl_seconds` is taken for a mistake (milliseconds, say).
pub const MAX_FLAG_TTL_SECONDS: u64 = 3600;

fn default_flag_ttl() -> Spanned<u64> {
    Spanned::new(0..0, DEFAULT_FLAG_TTL_SECONDS)
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
            flag_ttl_seconds: default_flag_ttl(),
            concurrency: default_concurrency(),
            ingestion_bucket: None,
            parking_lot_bucket: None,
            in_flight: InFlightConfig::default(),
            hooks: Vec::new(),
            batches: None,
            state: state::StateConfig::default(),
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
    /// How long a service may still answer from the flag it cached before a write.
    pub fn flag_ttl(&self) -> Duration {
        Duration::from_secs(*self.flag_ttl_seconds.get_ref())
    }
    /// The batch rules, when `[maintenance.batches]` is given.
    pub fn batches(&self) -> Option<&BatchesConfig> {
        self.batches.as_ref().map(|b| b.get_ref())
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InFlightConfig {
    #[serde(default)]
    pub queue_prefix: Option<String>,
    #[serde(default)]
    pub objects_prefix: Option<String>,
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// How long `command` may run before it is stopped with its process group.
    #[serde(default = "default_in_flight_timeout")]
    pub timeout_seconds: u64,
    #[serde(default)]
    pub refuse: bool,
}

fn default_in_flight_timeout() -> u64 {
    60
}

impl Default for InFlightConfig {
    fn default() -> Self {
        InFlightConfig {
            queue_prefix: None,
            objects_prefix: None,
            command: None,
            timeout_seconds: default_in_flight_timeout(),
            refuse: false,
        }
    }
}

/// The longest any command may be given (a day): a larger value is taken for a mistake.
pub const MAX_COMMAND_TIMEOUT_SECONDS: u64 = 86_400;

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
    /// How every batch id starts; required (non-empty) unless `liveness = "none"`.
    #[serde(default)]
    pub id_prefix: Option<Spanned<String>>,
    #[serde(default)]
    pub liveness: Liveness,
    #[serde(default = "default_batch_queue")]
    pub queue: String,
    #[serde(default)]
    pub command: Option<Spanned<Vec<String>>>,
    /// How long the liveness `command` may run per batch before it is stopped.
    #[serde(default = "default_liveness_timeout")]
    pub timeout_seconds: u64,
    #[serde(default = "default_rewrite")]
    pub rewrite: Spanned<String>,
}

fn default_liveness_timeout() -> u64 {
    30
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
            id_prefix: None,
            liveness: Liveness::default(),
            queue: default_batch_queue(),
            command: None,
            timeout_seconds: default_liveness_timeout(),
            rewrite: default_rewrite(),
        }
    }
}

/// Checks `maintenance on --until`: an RFC 3339 date and time (`2026-11-22T14:00:00Z`), as the
/// flag contract says; fit for clap's `value_parser`, so a bad value stops before any AWS call.
pub fn parse_until(text: &str) -> Result<String, String> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text, &Rfc3339)
        .map(|_| text.to_string())
        .map_err(|_| {
            format!("{text:?} is not an RFC 3339 date and time, e.g. 2026-11-22T14:00:00Z")
        })
}

/// Reads the `[maintenance]` table of `path`; a file without one gets the defaults.
pub fn load(path: &Path) -> Result<MaintenanceConfig, LoadError> {
    Ok(view(&config::Document::read(path)?)?)
}

/// Parses the `[maintenance]` table of the text of `gatekeeper.toml`.
pub fn parse(file: &Path, text: &str) -> Result<MaintenanceConfig, ConfigError> {
    view(&config::Document::parse(file, text)?)
}

/// The `[maintenance]` view of a parsed document, validated.
pub fn view(document: &config::Document) -> Result<MaintenanceConfig, ConfigError> {
    let (file, text) = (document.file(), document.text());
    let view: View = document.view()?;
    let mut config = view.maintenance.unwrap_or_default();
    let fail = |key: &str, span: std::ops::Range<usize>, message: &str| {
        if span.is_empty() && span.start == 0 {
            return document.error_at(key, message);
        }
        let (line, column) = line_col(text, span.start);
        located(file, line, column, Some(key), message)
    };
    if let Some(st) = view.state {
        if let Err((key, message)) = st.get_ref().validate() {
            return Err(fail(&format!("state.{key}"), st.span(), &message));
        }
        config.state = st.into_inner();
    }
    for (key, name) in [
        ("service", &view.service),
        ("environment", &view.environment),
    ] {
        if let Some(name) = name {
            stacks::validate::short_name(name.get_ref()).map_err(|m| fail(key, name.span(), &m))?;
        }
    }
    let timeout = |key: &str, v: u64| {
        if (1..=MAX_COMMAND_TIMEOUT_SECONDS).contains(&v) {
            Ok(())
        } else {
            Err(fail(
                key,
                0..0,
                &format!("{v} is out of range 1..={MAX_COMMAND_TIMEOUT_SECONDS} (seconds)"),
            ))
        }
    };
    timeout(
        "maintenance.in_flight.timeout_seconds",
        config.in_flight.timeout_seconds,
    )?;
    for (i, hook) in config.hooks.iter().enumerate() {
        timeout(
            &format!("maintenance.hooks[{i}].timeout_seconds"),
            hook.timeout_seconds,
        )?;
    }
    if let Some(b) = &config.batches {
        timeout(
            "maintenance.batches.timeout_seconds",
            b.get_ref().timeout_seconds,
        )?;
    }
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
    if *config.flag_ttl_seconds.get_ref() > MAX_FLAG_TTL_SECONDS {
        return Err(fail(
            "maintenance.flag_ttl_seconds",
            config.flag_ttl_seconds.span(),
            &format!("must be at most {MAX_FLAG_TTL_SECONDS} (seconds)"),
        ));
    }
    let Some(table) = &config.batches else {
        return Ok(config);
    };
    let b = table.get_ref();
    match &b.id_prefix {
        None if b.liveness != Liveness::None => {
            return Err(fail(
                "maintenance.batches.id_prefix",
                table.span(),
                "is required unless liveness = \"none\": how every batch id starts, e.g. \"batch-\"; \
                 without it the first folder of any key would be taken for a batch",
            ));
        }
        Some(p) if p.get_ref().is_empty() => {
            return Err(fail(
                "maintenance.batches.id_prefix",
                p.span(),
                "must not be empty: the first folder of any key would be taken for a batch",
            ));
        }
        Some(p) if p.get_ref().contains('/') => {
            return Err(fail(
                "maintenance.batches.id_prefix",
                p.span(),
                "a batch id is a key's first segment: it cannot contain /",
            ));
        }
        _ => {}
    }
    if b.liveness == Liveness::Command && b.command.as_ref().is_none_or(|c| c.get_ref().is_empty())
    {
        let span = b.command.as_ref().map(|c| c.span()).unwrap_or(table.span());
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
        message: message.to_string(),
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
        assert_eq!(c.batches(), None, "no table: no key is a batch key");
        assert_eq!(c.flag_ttl(), Duration::from_secs(DEFAULT_FLAG_TTL_SECONDS));
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
id_prefix = "batch-"
liveness = "command"
command = ["./alive", "{batch}"]
rewrite = "orphans/{batch}/{path}"
"#,
        )
        .unwrap();
        assert_eq!(c.queues.as_ref().unwrap()[0].get_ref(), "uploads");
        assert_eq!(*c.concurrency.get_ref(), 4);
        assert!(c.in_flight.refuse);
        assert_eq!(c.hooks[0].timeout_seconds, 3600);
        let batches = c.batches().unwrap();
        assert_eq!(batches.liveness, Liveness::Command);
        assert_eq!(batches.id_prefix.as_ref().unwrap().get_ref(), "batch-");
    }

    #[test]
    fn deserialization_errors_name_the_key() {
        let e = parse_str("service = \"x\"\n[maintenance]\ndrain_timeout = 5\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("maintenance.drain_timeout"), "{e}");
        let e = parse_str(
            "service = \"x\"\n[maintenance]\nconcurrency = 2\n\n[[maintenance.hooks]]\nname = \"backup\"\n",
        )
        .unwrap_err();
        assert_eq!(
            e.key.as_deref(),
            Some("maintenance.hooks[0].command"),
            "{e}"
        );
        assert!(
            e.to_string().starts_with(
                "gatekeeper.toml:5:1: maintenance.hooks[0].command: missing field `command`"
            ),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_is_located() {
        let e = parse_str("service = \"x\"\n[maintenance]\ndrain_timeout = 5\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 1));
        assert!(e.message.contains("unknown field `drain_timeout`"), "{e}");
        assert!(e.to_string().starts_with("gatekeeper.toml:3:1: "), "{e}");
    }

    #[test]
    fn the_state_table_is_read_with_this_view_and_located() {
        let c =
            parse_str("service = \"x\"\n[state]\nurl = \"s3://photos-prod-gk/state\"\n").unwrap();
        assert_eq!(c.state.url.as_deref(), Some("s3://photos-prod-gk/state"));
        let e = parse_str("service = \"x\"\n[state]\nlease_seconds = 1\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("state.lease_seconds"), "{e}");
        let e = parse_str("[state]\nurl = \"http://x\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("state.url"), "{e}");
        let e = parse_str("[state]\nurls = \"s3://b/x\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("state.urls"), "{e}");
    }

    #[test]
    fn invalid_values_name_their_key() {
        let e = parse_str("[maintenance]\nconcurrency = 0\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("maintenance.concurrency"));
        assert_eq!((e.line, e.column), (2, 15));
        let e = parse_str("[maintenance.batches]\nid_prefix = \"b-\"\nrewrite = \"x/{batch}\"\n")
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("maintenance.batches.rewrite"));
        assert_eq!(e.line, 3);
        let e = parse_str("[maintenance.batches]\nid_prefix = \"b-\"\nliveness = \"command\"\n")
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("maintenance.batches.command"));
        let e = parse_str("[maintenance]\nflag_ttl_seconds = 30000\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("maintenance.flag_ttl_seconds"));
        assert_eq!((e.line, e.column), (2, 20));
        let e = parse_str("[maintenance]\nqueues = [\"a\"]\nqueue_prefix = \"x\"\n").unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn batch_rules_need_an_id_prefix_unless_liveness_is_none() {
        // Any batch table with a liveness check but no way to tell batch ids from folders.
        for text in [
            "service = \"photos\"\n[maintenance.batches]\nrewrite = \"orphans/{path}\"\n",
            "service = \"photos\"\n[maintenance.batches]\nliveness = \"queue\"\n",
            "service = \"photos\"\n[maintenance.batches]\nliveness = \"command\"\ncommand = [\"./alive\"]\n",
        ] {
            let e = parse_str(text).unwrap_err();
            assert_eq!(e.key.as_deref(), Some("maintenance.batches.id_prefix"), "{text}");
            assert_eq!(e.line, 2, "located at the table: {e}");
            assert!(
                e.to_string()
                    .starts_with("gatekeeper.toml:2:1: maintenance.batches.id_prefix: is required"),
                "{e}"
            );
        }
        let e = parse_str("[maintenance.batches]\nid_prefix = \"\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("maintenance.batches.id_prefix"));
        assert_eq!((e.line, e.column), (2, 13));
        assert!(e.message.contains("must not be empty"), "{e}");
        let e = parse_str("[maintenance.batches]\nid_prefix = \"b/\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("maintenance.batches.id_prefix"));

        // Without a check nothing is rewritten, so no prefix is needed.
        let c = parse_str("[maintenance.batches]\nliveness = \"none\"\n").unwrap();
        assert_eq!(c.batches().unwrap().liveness, Liveness::None);
        let c = parse_str("[maintenance.batches]\nid_prefix = \"b-\"\n").unwrap();
        assert_eq!(c.batches().unwrap().liveness, Liveness::Queue);
    }

    #[test]
    fn until_is_rfc_3339() {
        assert_eq!(
            parse_until("2026-11-22T14:00:00Z").unwrap(),
            "2026-11-22T14:00:00Z"
        );
        parse_until("2026-11-22T14:00:00+01:00").unwrap();
        for bad in ["tomorrow", "2026-11-22", "14:00", ""] {
            let e = parse_until(bad).unwrap_err();
            assert!(e.contains("is not an RFC 3339 date and time"), "{e}");
        }
    }

    #[test]
    fn names_and_timeouts_are_checked_in_the_maintenance_view() {
        let e = parse_str("service = \"../../../tmp/x\"\nenvironment = \"prod\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(":1:11: service: `../../../tmp/x` must be"),
            "{e}"
        );
        let e = parse_str(
            "service = \"x\"\n[[maintenance.hooks]]\nname = \"b\"\ncommand = [\"true\"]\ntimeout_seconds = 0\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("maintenance.hooks[0].timeout_seconds: 0 is out of range"),
            "{e}"
        );
        let c = parse_str("service = \"x\"\n").unwrap();
        assert_eq!(c.in_flight.timeout_seconds, 60);
    }
}
