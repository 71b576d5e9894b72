//! Every flag more than one command takes, defined once (as ripgrep's `flags/defs.rs`): its
//! name, its help and its values. A command flattens the ones it takes, so `--config`,
//! `--dry-run`, `--output` and `--exit-code-on-changes` read and behave the same everywhere.
//! Flags with a meaning of their own in one command (`redrive --config`, optional beside
//! `--dlq`; `synth --config`, repeatable) stay with that command.

use std::path::PathBuf;

/// `--config FILE`: the service's configuration, required.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceConfig {
    /// The service's `gatekeeper.toml`.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// `--config FILE` and `--output text|json`: what every `canary` and `maintenance` subcommand
/// takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    #[command(flatten)]
    pub service: ServiceConfig,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// `--dry-run`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct DryRun {
    /// Print what this would do, and change nothing: it reads what it needs, but takes no
    /// lock, journals nothing and writes nothing.
    #[arg(long)]
    pub dry_run: bool,
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
