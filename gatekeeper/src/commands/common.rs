//! What several commands share: loading configurations, output formats.

use std::path::{Path, PathBuf};

use stacks::config::{self, Loaded};

/// The example service compiled into the binary: the default of commands run without
/// `--config`, so a fresh checkout can try them offline.
pub const EXAMPLE_PATH: &str = "examples/photos/prod.toml";
pub const EXAMPLE: &str = include_str!("../../../examples/photos/prod.toml");

/// Loads and validates each configuration (the embedded example when none is given).
pub fn load_configs(paths: &[PathBuf]) -> anyhow::Result<Vec<Loaded>> {
    if paths.is_empty() {
        return Ok(vec![load_example()?]);
    }
    paths.iter().map(|p| load_config(p)).collect()
}

pub fn load_config(path: &Path) -> anyhow::Result<Loaded> {
    let loaded = config::load(path)?;
    tracing::info!(file = %path.display(), "configuration loaded");
    Ok(loaded)
}

pub fn load_example() -> anyhow::Result<Loaded> {
    let file = PathBuf::from(EXAMPLE_PATH);
    let config = config::parse(&file, EXAMPLE)?;
    Ok(Loaded {
        file,
        text: EXAMPLE.to_string(),
        config,
    })
}

/// `--output` of a command whose reports are text or JSON (`canary`, `promote`,
/// `maintenance`): `--output markdown` is refused there, not printed as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Output {
    #[default]
    Text,
    Json,
}

/// `--output` of a command that also renders markdown (for a pull request or
/// `GITHUB_STEP_SUMMARY`): `diff`, `plan`, `check-config`, `judge`, `redrive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputOrMarkdown {
    #[default]
    Text,
    Json,
    Markdown,
}

impl From<Output> for OutputOrMarkdown {
    fn from(output: Output) -> Self {
        match output {
            Output::Text => OutputOrMarkdown::Text,
            Output::Json => OutputOrMarkdown::Json,
        }
    }
}

/// The stack tags of a configuration, as CloudFormation takes them.
pub fn stack_tags(loaded: &Loaded) -> Vec<(String, String)> {
    loaded
        .config
        .stack
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `--exit-code-on-changes`, defined once for `diff`, `plan` and `check-config`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct ChangesExit {
    /// Exit code when changes are found (check-config: when the change is not compatible):
    /// 2, the default, stops a CI step that did not look at the result; 0 lets a report-only
    /// step (a pull-request comment, annotations) pass. Errors exit 1 either way. Unlike
    /// terraform, where `plan` exits 0 on changes unless given `-detailed-exitcode`, the gate's
    /// default is the detailed form: a forgotten flag fails safe.
    #[arg(
        long = "exit-code-on-changes",
        value_enum,
        value_name = "CODE",
        default_value = "2"
    )]
    pub on_changes: OnChanges,
}

/// The exit code of "changes present".
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnChanges {
    #[value(name = "0")]
    Zero,
    #[value(name = "2")]
    Two,
}

impl ChangesExit {
    /// The status of a command that found changes, or none.
    pub fn status(&self, changed: bool) -> crate::ExitStatus {
        match (changed, self.on_changes) {
            (true, OnChanges::Two) => crate::ExitStatus::Changes,
            _ => crate::ExitStatus::Success,
        }
    }
}

/// Runs an object redrive with its progress on standard error (`redrive`, `maintenance off`).
pub async fn redrive_objects(
    clients: &crate::aws::Clients,
    request: &maintenance::redrive::Request,
) -> anyhow::Result<maintenance::redrive::Report> {
    let (bar, sink) = crate::render::maintenance::redrive_progress(
        &request.parking_lot,
        crate::hooks::after_each_copy(),
    );
    let redrive_clients = maintenance::redrive::Clients {
        s3: clients.s3.clone(),
        sqs: clients.sqs.clone(),
    };
    let report = maintenance::redrive::run(&redrive_clients, request, sink).await;
    bar.finish();
    Ok(report?)
}
