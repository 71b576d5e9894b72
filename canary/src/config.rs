//! The canary half of `gatekeeper.toml`: the `[canary]` table, plus `service`,
//! `environment` and `region` from the top of the file.
//!
//! ```toml
//! [canary]
//! fleet = "load-balancer"            # or "workers" (no load balancer: depool is a command)
//! listener_arn = "arn:aws:elasticloadbalancing:...:listener/app/photos-prod/50dc.../f1e2..."
//! prod_target_group_arn = "arn:...:targetgroup/photos-prod-api/73e2d6bc24d8a067"
//! canary_target_group_arn = "arn:...:targetgroup/photos-prod-canary/0a1b2c3d4e5f6a7b"
//! canary_weight = 5                  # percent of traffic the canary node gets while baking
//! wave_size = 2                      # nodes per promotion wave
//! drain_timeout_seconds = 300        # bound on deregistration (delay included)
//! health_timeout_seconds = 300       # bound on a node turning healthy
//! bake_seconds = 1800
//! interval_seconds = 60
//!
//! [canary.deployer]
//! kind = "command"                   # or "codedeploy"
//! command = ["deploy/deploy.sh"]     # run as: deploy.sh <node> <revision>
//! current = ["deploy/current.sh"]    # optional: prints the revision a node runs
//!
//! [canary.judge]                     # see canary::judge
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::judge::JudgeConfig;

/// What kind of fleet the canary node belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fleet {
    /// Nodes behind an application load balancer: depool = deregister, repool = register.
    #[default]
    LoadBalancer,
    /// Queue consumers behind no load balancer: depool and repool are commands.
    Workers,
}

/// The `[canary]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    #[serde(default)]
    pub fleet: Fleet,
    /// Load-balancer fleets: the listener whose default action forwards to both groups.
    pub listener_arn: Option<String>,
    pub prod_target_group_arn: Option<String>,
    pub canary_target_group_arn: Option<String>,
    /// The fleet's nodes. Load-balancer fleets default to the production group's targets.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// The node to canary; the first node (sorted) when absent.
    pub canary_node: Option<String>,
    #[serde(default = "default_weight")]
    pub canary_weight: u8,
    #[serde(default = "default_wave")]
    pub wave_size: usize,
    #[serde(default = "default_drain")]
    pub drain_timeout_seconds: u64,
    #[serde(default = "default_health")]
    pub health_timeout_seconds: u64,
    #[serde(default = "default_poll")]
    pub poll_seconds: u64,
    #[serde(default = "default_bake")]
    pub bake_seconds: u64,
    #[serde(default = "default_interval")]
    pub interval_seconds: u64,
    pub deployer: DeployerConfig,
    /// Run after the node is healthy in the canary group: `<command...> <node> <revision>`.
    #[serde(default)]
    pub smoke_command: Vec<String>,
    /// Workers: stop consuming on a node: `<command...> <node>`.
    #[serde(default)]
    pub depool_command: Vec<String>,
    /// Workers: start consuming on a node again: `<command...> <node>`.
    #[serde(default)]
    pub repool_command: Vec<String>,
    #[serde(default)]
    pub preflight: PreflightConfig,
    /// The config-compatibility gate run at preflight; none when absent.
    pub config_check: Option<ConfigCheck>,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub judge: JudgeConfig,
    /// How long each command step may run.
    #[serde(default)]
    pub timeouts: StepTimeouts,
    /// What a `--revision` may look like: it reaches the deployer's command line (and often a
    /// remote shell), so by default only letters, digits and `._:/@+=-`, at most 200.
    #[serde(default = "default_revision_pattern")]
    pub revision_pattern: String,
}

/// The default of `revision_pattern`: versions, git hashes and tags, `s3://bucket/key` paths.
pub const DEFAULT_REVISION_PATTERN: &str = r"^[A-Za-z0-9][A-Za-z0-9._:/@+=-]{0,199}$";

fn default_revision_pattern() -> String {
    DEFAULT_REVISION_PATTERN.to_string()
}

/// `[canary.timeouts]`: seconds each command step may run before it is stopped with its
/// whole process group (`SIGTERM`, then `SIGKILL` 5 s later) and the step fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StepTimeouts {
    /// The command deployer, per node: `<command...> <node> <revision>`.
    pub deploy_seconds: u64,
    /// `[canary.deployer] current`: which revision a node runs.
    pub current_seconds: u64,
    /// `smoke_command`.
    pub smoke_seconds: u64,
    /// `depool_command`: returns once the worker has finished what it holds.
    pub depool_seconds: u64,
    /// `repool_command`.
    pub repool_seconds: u64,
    /// `[canary.preflight] revision_check_command`.
    pub revision_check_seconds: u64,
}

impl Default for StepTimeouts {
    fn default() -> Self {
        StepTimeouts {
            deploy_seconds: 1800,
            current_seconds: 60,
            smoke_seconds: 300,
            depool_seconds: 900,
            repool_seconds: 300,
            revision_check_seconds: 120,
        }
    }
}

/// The longest any command step may be given (a day): a larger value is taken for a mistake.
pub const MAX_STEP_TIMEOUT_SECONDS: u64 = 86_400;

impl StepTimeouts {
    pub fn deploy(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.deploy_seconds)
    }
    pub fn current(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.current_seconds)
    }
    pub fn smoke(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.smoke_seconds)
    }
    pub fn depool(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.depool_seconds)
    }
    pub fn repool(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.repool_seconds)
    }
    pub fn revision_check(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.revision_check_seconds)
    }

    fn check(&self) -> Result<(), (&'static str, String)> {
        for (key, v) in [
            ("deploy_seconds", self.deploy_seconds),
            ("current_seconds", self.current_seconds),
            ("smoke_seconds", self.smoke_seconds),
            ("depool_seconds", self.depool_seconds),
            ("repool_seconds", self.repool_seconds),
            ("revision_check_seconds", self.revision_check_seconds),
        ] {
            if !(1..=MAX_STEP_TIMEOUT_SECONDS).contains(&v) {
                return Err((
                    key,
                    format!("{v} is out of range 1..={MAX_STEP_TIMEOUT_SECONDS} (seconds)"),
                ));
            }
        }
        Ok(())
    }
}

/// CloudWatch's finest resolution for standard metrics: one datapoint a minute.
pub const MIN_INTERVAL_SECONDS: u64 = 60;

fn default_weight() -> u8 {
    5
}
fn default_wave() -> usize {
    1
}
fn default_drain() -> u64 {
    300
}
fn default_health() -> u64 {
    300
}
fn default_poll() -> u64 {
    5
}
fn default_bake() -> u64 {
    1800
}
fn default_interval() -> u64 {
    60
}

/// How a revision reaches a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DeployerConfig {
    /// Any tool: `<command...> <node> <revision>`; exit 0 means deployed.
    Command {
        command: Vec<String>,
        /// `<current...> <node>` prints the revision the node runs.
        #[serde(default)]
        current: Vec<String>,
    },
    /// AWS CodeDeploy: one deployment per node set, targeting those instances.
    Codedeploy {
        application: String,
        deployment_group: String,
        /// EC2 tag whose value is the node id: how a deployment targets one node.
        #[serde(default = "default_node_tag")]
        node_tag: String,
        #[serde(default = "default_codedeploy_timeout")]
        timeout_seconds: u64,
    },
}

fn default_node_tag() -> String {
    "gatekeeper-node".to_string()
}

fn default_codedeploy_timeout() -> u64 {
    3600
}

/// The maintenance flag state a run requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MaintenanceRequirement {
    #[default]
    Off,
    On,
    Any,
}

/// `[canary.preflight]`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreflightConfig {
    #[serde(default)]
    pub maintenance: MaintenanceRequirement,
    /// The flag's SSM parameter when the rails stack is not used; `[flag] parameter`, else
    /// `/<service>/<environment>/maintenance`, when absent. Must equal `[flag] parameter`
    /// when both are set.
    pub maintenance_parameter: Option<String>,
    /// For revisions that are not `s3://` objects: `<command...> <revision>` exits 0 when the
    /// revision can be fetched.
    #[serde(default)]
    pub revision_check_command: Vec<String>,
    /// Prefix of the service's alarms; `<service>-<environment>-` when absent.
    pub alarm_prefix: Option<String>,
}

/// `[canary.config_check]`: the configuration the fleet runs now and the one the revision
/// brings, compared by `gatekeeper check-config`'s rules before anything changes. A change that
/// breaks either direction (old code on the new configuration after a rollback, new code on
/// the old configuration in a mixed fleet) refuses the run.
///
/// Sources are written as for `check-config` (a file, `git:<rev>:<path>`, `ssm:/<path>`);
/// `{revision}` and `{previous}` stand for the revision being deployed and the one the fleet
/// runs. Relative file paths are taken from the current directory, as `check-config` does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigCheck {
    /// What the fleet runs on now, e.g. `ssm:/photos/prod` or `git:{previous}:config/app.yaml`.
    pub old: String,
    /// What the revision brings, e.g. `git:{revision}:config/app.yaml`.
    pub new: String,
    /// JSON Schema both code versions accept.
    pub schema: Option<PathBuf>,
    /// JSON Schema of the old code's configuration.
    pub old_schema: Option<PathBuf>,
    /// JSON Schema of the new code's configuration.
    pub new_schema: Option<PathBuf>,
    /// Accepted findings, as for `check-config --ignore`.
    pub ignore: Option<PathBuf>,
}

impl ConfigCheck {
    /// `source` with `{revision}` and `{previous}` filled in.
    pub fn expand(source: &str, revision: &str, previous: &str) -> String {
        source
            .replace("{revision}", revision)
            .replace("{previous}", previous)
    }
}

/// `[canary.metrics]`: where the bake reads its numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// CloudWatch statistic for latency: `Average`, `Maximum` or a percentile like `p99`.
    #[serde(default = "default_latency_stat")]
    pub latency_statistic: String,
    /// Workers only: the namespace and metric names of the workers' own metrics,
    /// published with a dimension naming the node.
    pub namespace: Option<String>,
    pub requests_metric: Option<String>,
    pub errors_metric: Option<String>,
    pub latency_metric: Option<String>,
    #[serde(default = "default_node_dimension")]
    pub node_dimension: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            latency_statistic: default_latency_stat(),
            namespace: None,
            requests_metric: None,
            errors_metric: None,
            latency_metric: None,
            node_dimension: default_node_dimension(),
        }
    }
}

fn default_latency_stat() -> String {
    "p99".to_string()
}
fn default_node_dimension() -> String {
    "Node".to_string()
}

/// `[canary]` with the top-level keys it needs; every other table is somebody else's.
#[derive(Debug, Deserialize)]
struct View {
    service: String,
    environment: String,
    region: Option<String>,
    canary: Option<CanaryConfig>,
    #[serde(default)]
    state: state::StateConfig,
    #[serde(default)]
    notify: crate::notify::NotifyConfig,
    #[serde(default)]
    flag: FlagView,
}

/// `[flag]`, the name the rails stack gives the maintenance flag (stacks owns the table).
#[derive(Debug, Default, Deserialize)]
struct FlagView {
    parameter: Option<String>,
}

/// A loaded configuration: the service it belongs to and its `[canary]` table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub file: PathBuf,
    pub service: String,
    pub environment: String,
    pub region: Option<String>,
    pub canary: CanaryConfig,
    /// `[state]`: where the lock and the journals live.
    pub state: state::StateConfig,
    /// `[notify]`: where a run's state changes are published.
    pub notify: crate::notify::NotifyConfig,
    /// `[flag] parameter`: the maintenance flag's SSM name when the rails stack is given one.
    pub flag_parameter: Option<String>,
}

/// A configuration the user has to fix, located in the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", file.display())]
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{flag}: {revision:?} does not match canary.revision_pattern `{pattern}` ({}); a revision reaches the deployer's command line", file.display())]
    Revision {
        flag: String,
        revision: String,
        file: PathBuf,
        pattern: String,
    },
}

/// Reads `path` and parses its canary view.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let document = ::config::Document::read(path).map_err(|e| match e {
        ::config::ReadError::Read { file, source } => ConfigError::Read { file, source },
        ::config::ReadError::Invalid(e) => e.into(),
    })?;
    view(&document)
}

/// Parses the canary view of `text`; `file` only names the file in errors.
pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    view(&::config::Document::parse(file, text)?)
}

impl From<::config::Error> for ConfigError {
    fn from(e: ::config::Error) -> ConfigError {
        ConfigError::Invalid {
            message: e.keyed_message(),
            file: e.file,
            line: e.line,
            column: e.column,
        }
    }
}

/// The canary view of a parsed document, validated.
pub fn view(document: &::config::Document) -> Result<Config, ConfigError> {
    let file = document.file();
    let at = |path: &str, message: String| -> ConfigError {
        let mut e = document.error_at(path, "");
        e.key = None;
        e.message = message;
        e.into()
    };
    // A key of `[canary]` or of one of its tables, where it is written.
    let canary_key = |key: &str| -> String {
        ["", "timeouts.", "preflight.", "deployer.", "judge."]
            .iter()
            .map(|table| format!("canary.{table}{key}"))
            .find(|path| document.contains(path))
            .unwrap_or_else(|| format!("canary.{key}"))
    };
    let view: View = document.view()?;
    let canary = view.canary.ok_or_else(|| {
        at(
            "canary",
            "canary: missing table: add a [canary] section".to_string(),
        )
    })?;
    let mut config = Config {
        file: file.to_path_buf(),
        service: view.service,
        environment: view.environment,
        region: view.region,
        canary,
        state: view.state,
        notify: view.notify,
        flag_parameter: view.flag.parameter,
    };
    if let (Some(flag), Some(own)) = (
        &config.flag_parameter,
        &config.canary.preflight.maintenance_parameter,
    ) {
        if flag != own {
            return Err(at(
                "canary.preflight.maintenance_parameter",
                format!(
                    "canary.preflight.maintenance_parameter: {own:?} is not the flag the rails \
                     stack creates ([flag] parameter = {flag:?}): remove it, the preflight \
                     reads [flag] parameter"
                ),
            ));
        }
    }
    config.notify.validate().map_err(|(key, message)| {
        at(&format!("notify.{key}"), format!("notify.{key}: {message}"))
    })?;
    config
        .state
        .validate()
        .map_err(|(key, message)| at(&format!("state.{key}"), format!("state.{key}: {message}")))?;
    // A continuous metric without `min_samples` counts intervals: with intervals shorter than
    // CloudWatch's minute most of them are empty, and the count can never be reached.
    let c = &config.canary;
    if c.bake_seconds > 0
        && c.interval_seconds > 0
        && c.interval_seconds < MIN_INTERVAL_SECONDS
        && c.judge
            .metrics
            .iter()
            .any(|m| m.kind == crate::judge::Kind::Continuous && m.min_samples.is_none())
    {
        return Err(at(
            "canary.interval_seconds",
            format!(
                "canary.interval_seconds: {} is below {MIN_INTERVAL_SECONDS}: CloudWatch delivers \
                 one datapoint a minute, so the judge's default min_samples (one per interval) \
                 can never be reached and no healthy canary can pass; use \
                 {MIN_INTERVAL_SECONDS} or more, or set min_samples for every continuous metric",
                c.interval_seconds
            ),
        ));
    }
    config.default_aggregate_min_samples();
    config.validate().map_err(|(key, message)| {
        if matches!(key, "service" | "environment") {
            // Top-level keys: they name the journal, state and lock files.
            return at(key, format!("{key}: {message}"));
        }
        let path = canary_key(key);
        at(&path, format!("{path}: {message}"))
    })?;
    Ok(config)
}

/// `[canary.judge]` alone, for `gatekeeper judge --config`: the judge's defaults when the file
/// has none. `adjust` applies the command line's overrides before the check, and a value that
/// fails the check is located at its key (`canary.judge.metrics[1].threshold`).
pub fn judge_view(
    document: &::config::Document,
    adjust: impl FnOnce(&mut JudgeConfig),
) -> Result<JudgeConfig, ConfigError> {
    #[derive(Deserialize)]
    struct JudgeOnly {
        #[serde(default)]
        canary: Option<CanaryJudge>,
    }
    #[derive(Deserialize)]
    struct CanaryJudge {
        #[serde(default)]
        judge: Option<JudgeConfig>,
    }
    let view: JudgeOnly = document.view()?;
    let mut judge = view.canary.and_then(|c| c.judge).unwrap_or_default();
    adjust(&mut judge);
    judge.validate().map_err(|e| match e {
        crate::judge::JudgeError::Config { key, message } => document
            .error_at(&format!("canary.judge.{key}"), message)
            .into(),
        other => ConfigError::Invalid {
            file: document.file().to_path_buf(),
            line: 1,
            column: 1,
            message: other.to_string(),
        },
    })?;
    Ok(judge)
}

/// The fewest intervals a continuous metric needs before it may pass, when the configuration
/// does not say: the bake reads one latency aggregate per interval, not one per request.
pub const DEFAULT_AGGREGATE_MIN_SAMPLES: u64 = 10;

impl Config {
    /// How many intervals the bake judges (at least one).
    pub fn bake_intervals(&self) -> u64 {
        let c = &self.canary;
        c.bake_seconds
            .checked_div(c.interval_seconds)
            .unwrap_or(1)
            .max(1)
    }

    /// A continuous metric without `min_samples` counts intervals in the bake: at most
    /// [`DEFAULT_AGGREGATE_MIN_SAMPLES`], and never more than the bake has.
    fn default_aggregate_min_samples(&mut self) {
        let intervals = self.bake_intervals();
        for m in &mut self.canary.judge.metrics {
            if m.kind == crate::judge::Kind::Continuous && m.min_samples.is_none() {
                m.min_samples = Some(intervals.min(DEFAULT_AGGREGATE_MIN_SAMPLES));
            }
        }
    }

    /// The preflight checks this configuration cannot make for `revision`, each with the key
    /// that would enable it: the run goes on without them, but says so.
    pub fn unchecked_preflight(&self, revision: &str) -> Vec<String> {
        let c = &self.canary;
        let mut notes = Vec::new();
        if c.config_check.is_none() {
            notes.push(
                "configuration compatibility is not checked: add [canary.config_check] (old, new) \
                 so that a change that is not backward compatible refuses the run"
                    .to_string(),
            );
        }
        if !revision.starts_with("s3://") && c.preflight.revision_check_command.is_empty() {
            notes.push(format!(
                "revision {revision} is not checked for availability: set \
                 canary.preflight.revision_check_command, so that a lagging mirror stops the run \
                 before it changes anything"
            ));
        }
        notes
    }

    /// `<service>-<environment>`.
    pub fn prefix(&self) -> String {
        self.names().prefix()
    }

    /// The names derived from the service and environment (`config::names`), the same the
    /// rails stack uses.
    pub fn names(&self) -> ::config::names::Names<'_> {
        ::config::names::Names::new(&self.service, &self.environment)
    }

    /// The lease of the deploy lock (seconds).
    pub fn lease_seconds(&self) -> u64 {
        self.state.lease_seconds()
    }

    /// The maintenance flag's SSM parameter, the one the rails stack creates: `[flag]
    /// parameter`, else `canary.preflight.maintenance_parameter`, else
    /// `/<service>/<environment>/maintenance` (stacks' `Config::flag_parameter`).
    pub fn maintenance_parameter(&self) -> String {
        let custom = self.flag_parameter.as_deref().or(self
            .canary
            .preflight
            .maintenance_parameter
            .as_deref());
        self.names().flag_parameter(custom)
    }

    pub fn alarm_prefix(&self) -> String {
        self.canary
            .preflight
            .alarm_prefix
            .clone()
            .unwrap_or_else(|| self.names().alarm_prefix())
    }

    /// Refuses a revision the configured `revision_pattern` does not match: it is passed to the
    /// deployer's commands, and a documented `ssh "$1" ... "$2"` would run it in a remote shell.
    /// Call before the first AWS request.
    pub fn check_revision(&self, flag: &str, revision: &str) -> Result<(), ConfigError> {
        let pattern = &self.canary.revision_pattern;
        let re = regex_lite::Regex::new(pattern).map_err(|e| ConfigError::Invalid {
            file: self.file.clone(),
            line: 0,
            column: 0,
            message: format!("canary.revision_pattern: {e}"),
        })?;
        if re.is_match(revision) {
            return Ok(());
        }
        Err(ConfigError::Revision {
            flag: flag.to_string(),
            revision: revision.to_string(),
            file: self.file.clone(),
            pattern: pattern.clone(),
        })
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        let c = &self.canary;
        for (key, name) in [
            ("service", &self.service),
            ("environment", &self.environment),
        ] {
            stacks::validate::short_name(name).map_err(|m| (key, m))?;
        }
        if let Err(e) = regex_lite::Regex::new(&c.revision_pattern) {
            return Err(("revision_pattern", format!("not a regular expression: {e}")));
        }
        if !c.revision_pattern.starts_with('^') || !c.revision_pattern.ends_with('$') {
            return Err((
                "revision_pattern",
                "must match the whole revision: begin with ^ and end with $".into(),
            ));
        }
        c.timeouts.check()?;
        if c.canary_weight == 0 || c.canary_weight > 50 {
            return Err(("canary_weight", "must be between 1 and 50 (percent)".into()));
        }
        if c.wave_size == 0 {
            return Err(("wave_size", "must be at least 1".into()));
        }
        if c.bake_seconds > 0 && c.interval_seconds == 0 {
            return Err((
                "interval_seconds",
                "must be above 0 when bake_seconds is".into(),
            ));
        }
        match c.fleet {
            Fleet::LoadBalancer => {
                for (key, v) in [
                    ("listener_arn", &c.listener_arn),
                    ("prod_target_group_arn", &c.prod_target_group_arn),
                    ("canary_target_group_arn", &c.canary_target_group_arn),
                ] {
                    match v {
                        None => return Err((key, "required for a load-balancer fleet".into())),
                        Some(arn) if !arn.starts_with("arn:") => {
                            return Err((key, format!("`{arn}` is not an ARN")))
                        }
                        _ => {}
                    }
                }
                if c.prod_target_group_arn == c.canary_target_group_arn {
                    return Err((
                        "canary_target_group_arn",
                        "must differ from prod_target_group_arn".into(),
                    ));
                }
            }
            Fleet::Workers => {
                if c.nodes.len() < 2 {
                    return Err(("nodes", "a worker fleet lists at least two nodes".into()));
                }
                if c.depool_command.is_empty() || c.repool_command.is_empty() {
                    return Err((
                        "depool_command",
                        "a worker fleet needs depool_command and repool_command".into(),
                    ));
                }
                if c.metrics.namespace.is_none() || c.metrics.requests_metric.is_none() {
                    return Err((
                        "metrics",
                        "a worker fleet needs metrics.namespace and metrics.requests_metric".into(),
                    ));
                }
            }
        }
        if let Some(node) = &c.canary_node {
            if !c.nodes.is_empty() && !c.nodes.contains(node) {
                return Err(("canary_node", format!("`{node}` is not in nodes")));
            }
        }
        if let Some(check) = &c.config_check {
            if check.schema.is_some() && (check.old_schema.is_some() || check.new_schema.is_some())
            {
                return Err((
                    "config_check",
                    "schema names the schema of both versions: drop old_schema/new_schema, \
                     or give those two instead"
                        .into(),
                ));
            }
            if check.old.trim().is_empty() || check.new.trim().is_empty() {
                return Err(("config_check", "old and new must name a source".into()));
            }
        }
        if let DeployerConfig::Command { command, .. } = &c.deployer {
            if command.is_empty() {
                return Err(("deployer", "command must name a program".into()));
            }
        }
        self.canary
            .judge
            .validate()
            .map_err(|e| ("judge", e.to_string()))?;
        // A bound the bake can never reach would roll back every healthy canary as
        // "inconclusive: not enough data".
        let intervals = self.bake_intervals();
        for m in &self.canary.judge.metrics {
            if m.kind == crate::judge::Kind::Continuous && m.min_samples() > intervals {
                return Err((
                    "min_samples",
                    format!(
                        "metric `{}`: the bake reads one aggregate per interval, so its {intervals} \
                         interval(s) (bake_seconds / interval_seconds) can never reach \
                         min_samples = {}; lower it or lengthen the bake",
                        m.name,
                        m.min_samples()
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
service = "photos"
environment = "prod"

[stack]
tags = { team = "media" }

[canary]
listener_arn = "arn:aws:elasticloadbalancing:us-east-1:1:listener/app/p/1/2"
prod_target_group_arn = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/prod/1"
canary_target_group_arn = "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/canary/2"

[canary.deployer]
kind = "command"
command = ["deploy.sh"]
"#;

    #[test]
    fn the_preflight_watches_the_flag_the_rails_stack_names() {
        let custom = format!("{BASE}\n[flag]\nparameter = \"/shared/photos-flag\"\n");
        let c = parse(Path::new("g.toml"), &custom).unwrap();
        assert_eq!(c.maintenance_parameter(), "/shared/photos-flag");
        // The same name twice is fine; two names for one flag are refused, located.
        let same = custom.replace(
            "[canary.deployer]",
            "[canary.preflight]\nmaintenance_parameter = \"/shared/photos-flag\"\n\n[canary.deployer]",
        );
        assert_eq!(
            parse(Path::new("g.toml"), &same)
                .unwrap()
                .maintenance_parameter(),
            "/shared/photos-flag"
        );
        let other = same.replace(
            "maintenance_parameter = \"/shared/photos-flag\"",
            "maintenance_parameter = \"/photos/prod/maintenance\"",
        );
        let err = parse(Path::new("g.toml"), &other).unwrap_err().to_string();
        assert!(
            err.contains("canary.preflight.maintenance_parameter")
                && err.contains("/shared/photos-flag"),
            "{err}"
        );
        assert!(err.starts_with("g.toml:"), "{err}");
    }

    #[test]
    fn defaults_fill_in_and_other_tables_are_ignored() {
        let c = parse(Path::new("g.toml"), BASE).unwrap();
        assert_eq!(c.canary.canary_weight, 5);
        assert_eq!(c.canary.bake_seconds, 1800);
        assert_eq!(c.maintenance_parameter(), "/photos/prod/maintenance");
        assert_eq!(c.alarm_prefix(), "photos-prod-");
        assert_eq!(
            c.state.backend().unwrap(),
            state::Backend::Local {
                dir: ".gatekeeper/state".into()
            }
        );
        assert_eq!(c.lease_seconds(), state::config::DEFAULT_LEASE_SECONDS);
    }

    #[test]
    fn latency_without_min_samples_counts_the_bakes_intervals() {
        // The default judge: 1800 s / 60 s = 30 intervals, one latency aggregate each.
        let c = parse(Path::new("g.toml"), BASE).unwrap();
        let latency = c.canary.judge.metrics.iter().find(|m| m.name == "latency");
        assert_eq!(
            latency.unwrap().min_samples(),
            DEFAULT_AGGREGATE_MIN_SAMPLES
        );
        // A short bake lowers it to what the bake has.
        let short = BASE.replace(
            "[canary.deployer]",
            "bake_seconds = 180\ninterval_seconds = 60\n\n[canary.deployer]",
        );
        let c = parse(Path::new("g.toml"), &short).unwrap();
        let latency = c.canary.judge.metrics.iter().find(|m| m.name == "latency");
        assert_eq!(latency.unwrap().min_samples(), 3);
    }

    #[test]
    fn a_min_samples_the_bake_cannot_reach_is_refused() {
        let text = format!(
            "{BASE}\n[[canary.judge.metrics]]\nname = \"latency\"\nkind = \"continuous\"\nmin_samples = 50\n"
        );
        let err = parse(Path::new("g.toml"), &text).unwrap_err().to_string();
        assert!(
            err.contains("canary.min_samples: metric `latency`"),
            "{err}"
        );
        assert!(err.contains("30 interval(s)"), "{err}");
        assert!(err.contains("min_samples = 50"), "{err}");
    }

    #[test]
    fn preflight_checks_it_cannot_make_are_named() {
        let c = parse(Path::new("g.toml"), BASE).unwrap();
        let notes = c.unchecked_preflight("v2");
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("[canary.config_check]"), "{notes:?}");
        assert!(notes[1].contains("revision_check_command"), "{notes:?}");
        // An S3 revision is checked with HeadObject; a configured command checks the rest.
        assert_eq!(c.unchecked_preflight("s3://b/k.zip").len(), 1);
        let text = BASE.replace(
            "[canary.deployer]",
            "[canary.preflight]\nrevision_check_command = [\"true\"]\n\n[canary.config_check]\nold = \"a.yaml\"\nnew = \"b.yaml\"\n\n[canary.deployer]",
        );
        let c = parse(Path::new("g.toml"), &text).unwrap();
        assert!(c.unchecked_preflight("v2").is_empty());
    }

    #[test]
    fn unknown_key_is_located() {
        let text = BASE.replace(
            "[canary.deployer]",
            "canary_wieght = 5\n\n[canary.deployer]",
        );
        let err = parse(Path::new("g.toml"), &text).unwrap_err().to_string();
        assert!(
            err.starts_with("g.toml:13:1: canary.canary_wieght: unknown field"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_field_is_named_with_its_table() {
        // A table inside [canary] that lacks a field: located at its header.
        let text = BASE.replace(
            "[canary.deployer]",
            "[canary.config_check]\nold = \"a.yaml\"\n\n[canary.deployer]",
        );
        let err = parse(Path::new("g.toml"), &text).unwrap_err().to_string();
        assert!(
            err.starts_with("g.toml:13:1: canary.config_check.new: missing field `new`"),
            "{err}"
        );
        // [canary] itself without its deployer.
        let text = BASE.replace(
            "[canary.deployer]\nkind = \"command\"\ncommand = [\"deploy.sh\"]\n",
            "",
        );
        let err = parse(Path::new("g.toml"), &text).unwrap_err().to_string();
        assert!(
            err.starts_with("g.toml:8:1: canary.deployer: missing field `deployer`"),
            "{err}"
        );
        // A top-level field the canary view needs: named alone, at the start of the file.
        let text = BASE.replace("environment = \"prod\"\n", "");
        let err = parse(Path::new("g.toml"), &text).unwrap_err().to_string();
        assert!(
            err.starts_with("g.toml:1:1: environment: missing field `environment`"),
            "{err}"
        );
    }

    #[test]
    fn invalid_value_names_the_key_and_line() {
        let text = BASE.replace(
            "[canary.deployer]",
            "canary_weight = 80\n\n[canary.deployer]",
        );
        let err = parse(Path::new("g.toml"), &text).unwrap_err().to_string();
        assert_eq!(
            err,
            "g.toml:13:17: canary.canary_weight: must be between 1 and 50 (percent)"
        );
    }

    #[test]
    fn missing_canary_table_says_so() {
        let err = parse(
            Path::new("g.toml"),
            "service = \"a\"\nenvironment = \"b\"\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "g.toml:1:1: canary: missing table: add a [canary] section"
        );
    }

    #[test]
    fn worker_fleet_needs_commands() {
        let text = r#"
service = "photos"
environment = "prod"
[canary]
fleet = "workers"
nodes = ["w1", "w2"]
[canary.deployer]
kind = "command"
command = ["deploy.sh"]
"#;
        let err = parse(Path::new("g.toml"), text).unwrap_err().to_string();
        assert!(
            err.contains("canary.depool_command: a worker fleet needs"),
            "{err}"
        );
    }

    fn err(text: &str) -> String {
        parse(Path::new("g.toml"), text).unwrap_err().to_string()
    }

    #[test]
    fn a_service_name_that_is_not_a_name_is_refused() {
        let text = BASE.replace("service = \"photos\"", "service = \"../../../tmp/x\"");
        let e = err(&text);
        assert!(
            e.starts_with("g.toml:2:11: service: `../../../tmp/x` must be"),
            "{e}"
        );
        let text = BASE.replace("environment = \"prod\"", "environment = \"a/b\"");
        assert!(
            err(&text).starts_with("g.toml:3:15: environment: "),
            "{}",
            err(&text)
        );
    }

    #[test]
    fn a_default_judge_needs_whole_minute_intervals() {
        let text = BASE.replace(
            "[canary.deployer]",
            "bake_seconds = 180\ninterval_seconds = 30\n\n[canary.deployer]",
        );
        let e = err(&text);
        assert!(e.starts_with("g.toml:"), "{e}");
        assert!(e.contains("canary.interval_seconds: 30 is below 60"), "{e}");
        // With min_samples for its continuous metric, a judge may read shorter intervals.
        let text = format!(
            "{}\n[[canary.judge.metrics]]\nname = \"latency\"\nkind = \"continuous\"\nmin_samples = 2\n",
            BASE.replace("[canary.deployer]", "bake_seconds = 180\ninterval_seconds = 30\n\n[canary.deployer]")
        );
        parse(Path::new("g.toml"), &text).unwrap();
    }

    #[test]
    fn step_timeouts_default_and_are_checked() {
        let c = parse(Path::new("g.toml"), BASE).unwrap();
        assert_eq!(c.canary.timeouts, StepTimeouts::default());
        let text = format!("{BASE}\n[canary.timeouts]\ndeploy_seconds = 0\n");
        let e = err(&text);
        assert!(
            e.contains("canary.timeouts.deploy_seconds: 0 is out of range"),
            "{e}"
        );
        let text = format!("{BASE}\n[canary.timeouts]\nsmoke_seconds = 30\n");
        let c = parse(Path::new("g.toml"), &text).unwrap();
        assert_eq!(c.canary.timeouts.smoke_seconds, 30);
        assert_eq!(c.canary.timeouts.deploy_seconds, 1800);
    }

    #[test]
    fn revisions_are_checked_against_the_pattern() {
        let c = parse(Path::new("g.toml"), BASE).unwrap();
        for ok in [
            "v2",
            "1.4.0-rc1",
            "s3://artifacts/photos/v2.zip",
            "3f2a9c1",
            "release/2026.11",
        ] {
            c.check_revision("--revision", ok).unwrap();
        }
        for bad in ["v2;touch /tmp/x $(id)", "", "-rf", "v2 v3", "`id`", "a\nb"] {
            let e = c.check_revision("--revision", bad).unwrap_err().to_string();
            assert!(e.starts_with("--revision: "), "{e}");
            assert!(e.contains("canary.revision_pattern"), "{e}");
        }
        let text = BASE.replace(
            "[canary.deployer]",
            "revision_pattern = \"^v[0-9]+$\"\n\n[canary.deployer]",
        );
        let c = parse(Path::new("g.toml"), &text).unwrap();
        c.check_revision("--revision", "v12").unwrap();
        assert!(c.check_revision("--revision", "v1.2").is_err());
        let text = BASE.replace(
            "[canary.deployer]",
            "revision_pattern = \"v[0-9]+\"\n\n[canary.deployer]",
        );
        assert!(err(&text).contains("canary.revision_pattern: must match the whole revision"));
    }
}
