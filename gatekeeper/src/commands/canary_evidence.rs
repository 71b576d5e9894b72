//! `gatekeeper canary report|export|history`: the bake's evidence, read from the run's journal
//! in the state layer (any runner can read it), rendered by the `evidence` crate.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use canary::journal::{self, RunState};
use evidence::{BakeRecord, Format};
use serde::Serialize;

use crate::commands::canary::{describe, outcome_text, Common, Session};
use crate::commands::common::Output;
use crate::ExitStatus;

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The service's gatekeeper.toml (with a [canary] table).
    #[arg(long)]
    pub config: PathBuf,
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
    /// The service's gatekeeper.toml (with a [canary] table).
    #[arg(long)]
    pub config: PathBuf,
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

/// The run asked for, or the newest canary run; an error when there is none.
async fn the_run(s: &Session, run: Option<&str>) -> anyhow::Result<RunState> {
    let found = match run {
        Some(id) => {
            anyhow::ensure!(
                state::safe_segment(id),
                "--run {id:?}: not a run id (letters, digits, `-`, `_`, `.`)"
            );
            journal::read_run(&s.scope, id).await?
        }
        None => s.last_run().await?,
    };
    found.with_context(|| match run {
        Some(id) => format!("no run {id} in {}", s.scope.location()),
        None => format!("no canary run in {}", s.scope.location()),
    })
}

/// The run's bake record; an error when it never began a bake.
pub(crate) fn record_of(run: &RunState) -> anyhow::Result<BakeRecord> {
    let id = &run.machine.plan().run_id;
    canary::evidence::bake_record(&run.records)
        .with_context(|| format!("run {id}: its bake's evidence"))?
        .with_context(|| format!("run {id} has no bake: it ended before the canary took traffic"))
}

fn write_to(path: Option<&Path>, text: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    match path {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display())),
        None => Ok(out.write_all(text.as_bytes())?),
    }
}

pub async fn report(a: &ReportArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let s = Session::open(&a.config).await?;
    let run = the_run(&s, a.run.as_deref()).await?;
    let record = record_of(&run)?;
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
    let s = Session::open(&a.config).await?;
    let run = the_run(&s, a.run.as_deref()).await?;
    let record = record_of(&run)?;
    if let Some(p) = &a.judge_config {
        std::fs::write(p, evidence::export::judge_toml(&record))
            .with_context(|| format!("writing {}", p.display()))?;
    }
    write_to(a.out.as_deref(), &evidence::export::jsonl(&record), out)?;
    Ok(ExitStatus::Success)
}

#[derive(Serialize)]
struct HistoryLine {
    run_id: String,
    revision: String,
    previous: String,
    outcome: String,
    started_by: String,
    started_at: String,
    /// Seconds from the run's start to its last record.
    duration_s: u64,
    approved_by: Option<String>,
}

pub async fn history(a: &HistoryArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let s = Session::open(&a.common.config).await?;
    let runs = s.scope.runs().await?;
    let mut lines = Vec::new();
    for id in runs
        .iter()
        .rev()
        .filter(|r| r.starts_with(journal::RUN_PREFIX))
        .take(a.limit)
    {
        let Some(run) = journal::read_run(&s.scope, id).await? else {
            continue;
        };
        let last_at = run
            .records
            .iter()
            .map(journal::Record::at)
            .max()
            .unwrap_or(run.started_at);
        let p = run.machine.plan();
        lines.push(HistoryLine {
            run_id: id.clone(),
            revision: p.revision.clone(),
            previous: p.previous.clone(),
            outcome: match &run.finished {
                Some((_, o)) => outcome_text(Some(o)),
                None => describe(&run.machine.next()),
            },
            started_by: run.holder.clone(),
            started_at: journal::rfc3339(run.started_at),
            duration_s: last_at.saturating_sub(run.started_at),
            approved_by: run.machine.approved_by().map(str::to_string),
        });
    }
    match a.common.output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&lines)?)?,
        _ => {
            if lines.is_empty() {
                writeln!(out, "no canary run in {}", s.scope.location())?;
            }
            for l in &lines {
                writeln!(
                    out,
                    "{}  {} -> {}  {}  started {} by {}, {}{}",
                    l.run_id,
                    l.previous,
                    l.revision,
                    l.outcome,
                    l.started_at,
                    l.started_by,
                    duration(l.duration_s),
                    l.approved_by
                        .as_ref()
                        .map(|w| format!(", approved by {w}"))
                        .unwrap_or_default()
                )?;
            }
        }
    }
    Ok(ExitStatus::Success)
}

fn duration(s: u64) -> String {
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}
