//! `gatekeeper pipeline`: CI pipelines of `[pipeline]` stages.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use pipelines::Platform;

use crate::ExitStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write the CI configuration of the pipeline: one job per stage, approvals handed to the
    /// platform, runs serialised. The same configuration gives the same bytes.
    Emit(EmitArgs),
}

#[derive(Debug, clap::Args)]
pub struct EmitArgs {
    /// The CI platform.
    #[arg(value_enum)]
    pub platform: PlatformArg,
    /// The file holding `[pipeline]`, relative to the repository's root (the jobs read it
    /// there); run from the root.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Write `gatekeeper.yml` (GitHub: use `.github/workflows`) or `.gitlab-ci.yml` (GitLab:
    /// the repository's root) into this directory instead of printing it.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlatformArg {
    Github,
    Gitlab,
}

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    match &args.command {
        Command::Emit(args) => emit(args, out),
    }
}

fn emit(args: &EmitArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let platform = match args.platform {
        PlatformArg::Github => Platform::Github,
        PlatformArg::Gitlab => Platform::Gitlab,
    };
    let pipeline = pipelines::load(&args.config)?;
    let config_path = args
        .config
        .to_str()
        .with_context(|| format!("{}: not a UTF-8 path", args.config.display()))?;
    let text = pipelines::emit(&pipeline, platform, config_path)?;
    match &args.out {
        None => out.write_all(text.as_bytes())?,
        Some(dir) => {
            let file = dir.join(platform.file_name());
            write_if_changed(&file, &text)?;
            writeln!(out, "{}", file.display())?;
        }
    }
    Ok(ExitStatus::Success)
}

/// Writes `text` to `file` (creating its directory), leaving an identical file untouched.
fn write_if_changed(file: &Path, text: &str) -> anyhow::Result<()> {
    if std::fs::read(file).is_ok_and(|old| old == text.as_bytes()) {
        return Ok(());
    }
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    std::fs::write(file, text).with_context(|| format!("{}: cannot write", file.display()))
}
