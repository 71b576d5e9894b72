//! `gatekeeper canary report|export|history`: the bake's evidence, read from the run's journal
//! in the state layer (any runner can read it), rendered by the `evidence` crate.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use evidence::Format;

use super::Common;
use crate::session;
use crate::ExitStatus;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub service: crate::args::ServiceConfig,
    /// The run (default: the newest canary run).
    #[arg(long)]
    pub run: Option<String>,
    /// text, markdown, json or html (one self-contained file: inline SVG, no script, no
    /// network).
    #[arg(long, default_value = "text", value_parser = parse_format)]
    pub output: Format,
    /// Write the report here instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub service: crate::args::ServiceConfig,
    /// The run (default: the newest canary run).
    #[arg(long)]
    pub run: Option<String>,
    /// Write the observations (JSON lines, `gatekeeper judge --input`'s format) here instead of
    /// standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also write the `[canary.judge]` table the bake ran with, for `gatekeeper judge --config`.
    #[arg(long)]
    pub judge_config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub common: Common,
    /// How many runs, newest first.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
}

fn write_to(path: Option<&Path>, text: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    match path {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => Ok(out.write_all(text.as_bytes())?),
    }
}

pub async fn report(a: &ReportArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let s = session::open(&a.service.config).await?;
    let run = s.find_run(a.run.as_deref()).await?;
    let record = canary::evidence::record_of(&run)?;
    write_to(a.out.as_deref(), &evidence::render(&record, a.output), out)?;
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|v| !v.is_empty()) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&summary)
            .with_context(|| format!("GITHUB_STEP_SUMMARY {}", Path::new(&summary).display()))?;
        f.write_all(evidence::render(&record, Format::Markdown).as_bytes())?;
    }
    Ok(ExitStatus::Success)
}

pub async fn export(a: &ExportArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let s = session::open(&a.service.config).await?;
    let run = s.find_run(a.run.as_deref()).await?;
    let record = canary::evidence::record_of(&run)?;
    if let Some(p) = &a.judge_config {
        std::fs::write(p, evidence::export::judge_toml(&record))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    write_to(a.out.as_deref(), &evidence::export::jsonl(&record), out)?;
    Ok(ExitStatus::Success)
}

pub async fn history(a: &HistoryArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let s = session::open(&a.common.service.config).await?;
    let lines = canary::status::history(&s, a.limit).await?;
    let location = s.scope.location();
    crate::render::canary::history(&lines, a.common.output, &location, out)?;
    Ok(ExitStatus::Success)
}
