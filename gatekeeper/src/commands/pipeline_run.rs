//! `gatekeeper pipeline run|status|approve|stage|resume|abort`: a pipeline run through the
//! fenced state layer, driven by [`pipelines::drive`] (the gates, the pin, the stage's command
//! and how it ended are decided there) with this binary as its host ([`crate::pipeline_host`]);
//! the reports are [`crate::render::pipeline`]'s.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use pipelines::{run as runs, Pin};

use crate::commands::common::Output;
use crate::pipeline_host::Ctx;
use crate::render::pipeline as render;
use crate::ExitStatus;

#[derive(Debug, Clone, clap::Args)]
pub struct PipelineFile {
    /// The file holding `[pipeline]`.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub file: PipelineFile,
    /// The revision every stage deploys.
    #[arg(long)]
    pub revision: String,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub file: PipelineFile,
    /// The run (default: the newest).
    #[arg(long)]
    pub run: Option<String>,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    #[command(flatten)]
    pub at: RunRef,
    #[arg(long)]
    pub stage: String,
    /// Why: recorded with the approver's principal ARN.
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, clap::Args)]
pub struct StageArgs {
    /// The stage to run.
    pub name: String,
    #[command(flatten)]
    pub at: RunRef,
    /// Also write a markdown report of the stage here (for a CI job summary).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunRef {
    #[command(flatten)]
    pub file: PipelineFile,
    #[arg(long)]
    pub run: String,
}

/// Checks `--run` (before anything is read), then opens the pipeline.
async fn open(at: &RunRef) -> anyhow::Result<Ctx> {
    runs::check_run_id(&at.run).map_err(anyhow::Error::msg)?;
    Ctx::open(&at.file.config).await
}

pub async fn run(a: &RunArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let ctx = Ctx::open(&a.file.config).await?;
    let pin = Pin::compute(&ctx.pipeline, &a.revision)?;
    let driver = ctx.driver().await;
    let stamp = canary::journal::utc_stamp(state::lock::wall_now());
    let run_id = runs::run_id(&stamp, std::process::id());
    if let Err(why) = driver.start(&run_id, pin).await? {
        crate::ui::eprintln!("refused: {why}; nothing was changed");
        return Ok(ExitStatus::Changes);
    }
    // Only the id on stdout: CI jobs pass it on.
    writeln!(out, "{run_id}")?;
    crate::ui::eprintln!(
        "pipeline {}: run {run_id} of {} pinned; next: `gatekeeper pipeline stage <name> --run {run_id}`",
        ctx.pipeline.name, a.revision
    );
    Ok(ExitStatus::Success)
}

pub async fn status(a: &StatusArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let ctx = Ctx::open(&a.file.config).await?;
    (a.run.as_deref().map(runs::check_run_id).transpose()).map_err(anyhow::Error::msg)?;
    let (run, view) = ctx.driver_as(String::new()).view(a.run.as_deref()).await?;
    match a.output {
        Output::Json => render::status_json(out, &run, &view)?,
        Output::Text => render::status_text(out, &ctx.pipeline, &run, &view)?,
    }
    Ok(ExitStatus::Success)
}

pub async fn approve(a: &ApproveArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let ctx = open(&a.at).await?;
    let (file, run) = (a.at.file.config.display(), &a.at.run);
    let stage = (ctx.pipeline.stage(&a.stage))
        .with_context(|| format!("--stage {}: no such stage in {file}", a.stage))?;
    let driver = ctx.driver().await;
    if let Err(why) = driver.approve(run, stage, &a.reason).await? {
        return render::refused(out, &why, "recorded");
    }
    let (stage, who) = (&a.stage, &driver.who);
    writeln!(out, "stage {stage} of run {run} approved by {who}")?;
    Ok(ExitStatus::Success)
}

pub async fn stage(a: &StageArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let ctx = open(&a.at).await?;
    let run = &a.at.run;
    let report = ctx.driver().await.stage(run, Some(&a.name)).await?;
    let status = render::stage(out, run, &report)?;
    let markdown = render::stage_markdown(&ctx.pipeline, run, &report);
    if let (Some(path), Some(text)) = (&a.report, markdown) {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(status)
}

/// The stage in flight, else the next one.
pub async fn resume(a: &RunRef, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let ctx = open(a).await?;
    let report = ctx.driver().await.stage(&a.run, None).await?;
    render::stage(out, &a.run, &report)
}

pub async fn abort(a: &RunRef, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let ctx = open(a).await?;
    let driver = ctx.driver().await;
    let report = driver.abort(&a.run).await?;
    render::abort(out, &a.run, &driver.who, &report)
}
