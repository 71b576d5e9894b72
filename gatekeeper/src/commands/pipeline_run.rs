//! `gatekeeper pipeline run|status|approve|stage|resume|abort`: a pipeline run through the
//! fenced state layer. `run` pins the revision and the configurations' digests and parks the
//! run; each `stage` takes the pipeline's lock for its run, checks the stage's gates (needs,
//! approval, soak, alarms, the pin), runs the stage's own gatekeeper command (`stack deploy`,
//! `canary run`, `promote`) on the pinned revision, journals how it ended, and parks the run
//! again (or frees the lock once the last stage is done). A run killed anywhere is continued by
//! `pipeline resume` (or the same `stage`) from any runner.
//!
//! Test hook: `GATEKEEPER_CRASH_AFTER=pipeline:<n>` aborts right after the run's record `n`
//! (0-based) is journaled.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use pipelines::run::{Record, RunView, StageState, PURPOSE, RUN_PREFIX};
use pipelines::{Kind, Pin, Pipeline};
use state::lock::{wall_now, Claim, Keeper, Mode};
use state::{Holder, RunJournal, Scope, StateError};
use tokio::io::AsyncReadExt;

use crate::commands::common::Output;
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
    pub file: PipelineFile,
    #[arg(long)]
    pub run: String,
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
    pub file: PipelineFile,
    #[arg(long)]
    pub run: String,
    /// Also write a markdown report of the stage here (for a CI job summary).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RunRef {
    #[command(flatten)]
    pub file: PipelineFile,
    #[arg(long)]
    pub run: String,
}

/// The pipeline's file, its state scope and AWS clients.
struct Ctx {
    pipeline: Pipeline,
    scope: Scope,
    clients: crate::aws::Clients,
}

async fn open(file: &PipelineFile) -> anyhow::Result<Ctx> {
    let pipeline = pipelines::load(&file.config)?;
    let region = pipeline.ci.region.clone();
    let clients = crate::aws::clients(region.as_deref()).await;
    let name = format!("{}-pipeline-{}", pipeline.service, pipeline.name);
    let scope = crate::store::scope(&pipeline.state, &name, &clients.s3)?;
    Ok(Ctx {
        pipeline,
        scope,
        clients,
    })
}

fn check_run_id(run: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        run.starts_with(RUN_PREFIX) && state::safe_segment(run),
        "--run {run:?}: not a pipeline run id ({RUN_PREFIX}...)"
    );
    Ok(())
}

async fn read(ctx: &Ctx, run: &str) -> anyhow::Result<(Vec<Record>, RunView)> {
    let envelopes: Vec<state::Envelope<Record>> = state::journal::read(&ctx.scope, run).await?;
    let records: Vec<Record> = envelopes.into_iter().map(|e| e.record).collect();
    let view = RunView::replay(&ctx.pipeline, &records)
        .map_err(|e| anyhow::anyhow!("{}/runs/{run}: {e}", ctx.scope.location()))?
        .with_context(|| format!("no run {run} in {}", ctx.scope.location()))?;
    Ok((records, view))
}

/// A journal of `run` under `keeper`, appending after `next` records; aborts after record `n`
/// when `GATEKEEPER_CRASH_AFTER=pipeline:<n>`.
struct Journal {
    inner: RunJournal,
    crash_after: Option<u64>,
}

impl Journal {
    async fn append(&mut self, record: &Record) -> anyhow::Result<()> {
        let seq = self.inner.append(record.at(), record).await?;
        if self.crash_after == Some(seq) {
            crate::ui::eprintln!("GATEKEEPER_CRASH_AFTER=pipeline:{seq}: aborting");
            std::process::abort();
        }
        Ok(())
    }
}

impl Journal {
    /// The run's journal after its `records` records, written as `keeper`'s generation.
    async fn after(ctx: &Ctx, run: &str, records: usize, keeper: &Keeper) -> anyhow::Result<Self> {
        Ok(Journal {
            inner: RunJournal::continue_at(
                &ctx.scope,
                run,
                records as u64,
                keeper.generation().await,
            )?,
            crash_after: crash_after(),
        })
    }
}

fn crash_after() -> Option<u64> {
    std::env::var("GATEKEEPER_CRASH_AFTER")
        .ok()?
        .strip_prefix("pipeline:")?
        .parse()
        .ok()
}

/// Takes the pipeline's lock for `run`: `Ok(Err(why))` when refused (exit 2).
async fn take(
    ctx: &Ctx,
    run: &str,
    who: &str,
    command: &str,
    mode: Mode,
) -> anyhow::Result<Result<Keeper, String>> {
    let claim = Claim {
        run_id: run.to_string(),
        purpose: PURPOSE.into(),
        holder: Holder::this_process(who, command),
        ttl: ctx.pipeline.state.lease_seconds(),
    };
    match state::lock::acquire(&ctx.scope, &claim, mode, wall_now()).await {
        Ok(lease) => Ok(Ok(Keeper::start(&ctx.scope, lease))),
        Err(StateError::Held(r)) => Ok(Err(r.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// Takes the lock to continue `run`, or writes why not (the caller exits 2, `nothing was
/// {unchanged}`).
async fn continue_run(
    ctx: &Ctx,
    run: &str,
    who: &str,
    command: &str,
    unchanged: &str,
    out: &mut dyn Write,
) -> anyhow::Result<Option<Keeper>> {
    match take(ctx, run, who, command, Mode::Continue { force: false }).await? {
        Ok(k) => Ok(Some(k)),
        Err(why) => {
            writeln!(out, "refused: {why}; nothing was {unchanged}")?;
            Ok(None)
        }
    }
}

pub async fn run(a: &RunArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let ctx = open(&a.file).await?;
    let pin = Pin::compute(&ctx.pipeline, &a.revision)?;
    let who = crate::store::caller(&ctx.clients.sts).await;
    let now = wall_now();
    let run_id = format!(
        "{RUN_PREFIX}{}-{}",
        canary::journal::utc_stamp(now),
        std::process::id()
    );
    let keeper = match take(&ctx, &run_id, &who, "pipeline run", Mode::Fresh).await? {
        Ok(k) => k,
        Err(why) => {
            crate::ui::eprintln!("refused: {why}; nothing was changed");
            return Ok(ExitStatus::Changes);
        }
    };
    let mut journal = Journal {
        inner: RunJournal::create(&ctx.scope, &run_id, keeper.generation().await)?,
        crash_after: crash_after(),
    };
    journal
        .append(&Record::Start {
            at: now,
            by: who,
            pin,
        })
        .await?;
    keeper.park(wall_now()).await?;
    // Only the id on stdout: CI jobs pass it on.
    writeln!(out, "{run_id}")?;
    crate::ui::eprintln!(
        "pipeline {}: run {run_id} of {} pinned; next: `gatekeeper pipeline stage <name> --run {run_id}`",
        ctx.pipeline.name, a.revision
    );
    Ok(ExitStatus::Success)
}

pub async fn status(a: &StatusArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let ctx = open(&a.file).await?;
    let run = match &a.run {
        Some(r) => {
            check_run_id(r)?;
            r.clone()
        }
        None => ctx
            .scope
            .runs()
            .await?
            .into_iter()
            .rfind(|r| r.starts_with(RUN_PREFIX))
            .with_context(|| format!("no pipeline run in {}", ctx.scope.location()))?,
    };
    let (_, view) = read(&ctx, &run).await?;
    if a.output == Output::Json {
        let doc = serde_json::json!({ "run_id": run, "run": view });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(ExitStatus::Success);
    }
    writeln!(
        out,
        "pipeline {} run {run}: revision {}, started {} by {}{}",
        ctx.pipeline.name,
        view.pin.revision,
        canary::journal::rfc3339(view.started_at),
        view.started_by,
        match (&view.aborted, view.finished()) {
            (Some((_, by)), _) => format!(", aborted by {by}"),
            (None, true) => ", finished".into(),
            _ => String::new(),
        }
    )?;
    for stage in ctx.pipeline.ordered() {
        let state = &view.stages[&stage.name];
        let detail = match state {
            StageState::Pending => String::new(),
            StageState::Running { since, by } => {
                format!(" since {} by {by}", canary::journal::rfc3339(*since))
            }
            StageState::Done { at } => format!(" at {}", canary::journal::rfc3339(*at)),
            StageState::Failed { reason, .. } => format!(": {reason}"),
        };
        let approved = view
            .approvals
            .get(&stage.name)
            .map(|ap| {
                format!(
                    ", approved by {} at {}{}",
                    ap.who,
                    canary::journal::rfc3339(ap.at),
                    ap.reason
                        .as_ref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                )
            })
            .unwrap_or_default();
        writeln!(
            out,
            "  {} ({}): {}{detail}{approved}",
            stage.name,
            stage.kind.as_str(),
            state.name()
        )?;
    }
    Ok(ExitStatus::Success)
}

pub async fn approve(a: &ApproveArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    check_run_id(&a.run)?;
    let ctx = open(&a.file).await?;
    let stage = ctx
        .pipeline
        .stage(&a.stage)
        .with_context(|| {
            format!(
                "--stage {}: no such stage in {}",
                a.stage,
                a.file.config.display()
            )
        })?
        .clone();
    let who = crate::store::caller(&ctx.clients.sts).await;
    if stage.gates.approval.is_empty() {
        writeln!(
            out,
            "refused: stage {} needs no approval; nothing was recorded",
            a.stage
        )?;
        return Ok(ExitStatus::Changes);
    }
    if !pipelines::approval_allowed(&stage.gates.approval, &who) {
        writeln!(
            out,
            "refused: {who} may not approve stage {} (allowed: {}); nothing was recorded",
            a.stage,
            stage.gates.approval.join(", ")
        )?;
        return Ok(ExitStatus::Changes);
    }
    let Some(keeper) =
        continue_run(&ctx, &a.run, &who, "pipeline approve", "recorded", out).await?
    else {
        return Ok(ExitStatus::Changes);
    };
    let result = async {
        let (records, view) = read(&ctx, &a.run).await?;
        if view.ended() {
            anyhow::bail!("run {} is over: nothing to approve", a.run);
        }
        let mut journal = Journal::after(&ctx, &a.run, records.len(), &keeper).await?;
        journal
            .append(&Record::Approved {
                at: wall_now(),
                stage: a.stage.clone(),
                who: who.clone(),
                reason: Some(a.reason.clone()),
            })
            .await
    }
    .await;
    keeper.park(wall_now()).await?;
    result?;
    writeln!(out, "stage {} of run {} approved by {who}", a.stage, a.run)?;
    Ok(ExitStatus::Success)
}

/// `stage NAME --run ID` and `resume --run ID` (the stage in flight, else the next one).
pub async fn stage(a: &StageArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    check_run_id(&a.run)?;
    let ctx = open(&a.file).await?;
    drive_stage(&ctx, &a.run, Some(&a.name), a.report.as_ref(), out).await
}

pub async fn resume(a: &RunRef, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    check_run_id(&a.run)?;
    let ctx = open(&a.file).await?;
    drive_stage(&ctx, &a.run, None, None, out).await
}

async fn drive_stage(
    ctx: &Ctx,
    run: &str,
    name: Option<&str>,
    report: Option<&PathBuf>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let who = crate::store::caller(&ctx.clients.sts).await;
    let Some(keeper) = continue_run(ctx, run, &who, "pipeline stage", "changed", out).await? else {
        return Ok(ExitStatus::Changes);
    };
    let result = stage_under_lock(ctx, run, name, report, &who, &keeper, out).await;
    // Free the lock once the run is over; else park it for the next stage.
    let over = read(ctx, run)
        .await
        .map(|(_, v)| v.ended())
        .unwrap_or(false);
    let now = wall_now();
    if over {
        keeper.release(now).await?;
    } else {
        keeper.park(now).await?;
    }
    result
}

async fn stage_under_lock(
    ctx: &Ctx,
    run: &str,
    name: Option<&str>,
    report: Option<&PathBuf>,
    who: &str,
    keeper: &Keeper,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let (records, view) = read(ctx, run).await?;
    // Without a name (resume): the stage in flight, else the first not done.
    let name = match name {
        Some(n) => n.to_string(),
        None => match ctx
            .pipeline
            .ordered()
            .into_iter()
            .find(|s| !matches!(view.stages.get(&s.name), Some(StageState::Done { .. })))
        {
            Some(s) => s.name.clone(),
            None => {
                writeln!(out, "run {run} is finished: every stage is done")?;
                return Ok(ExitStatus::Success);
            }
        },
    };
    let now = wall_now();
    match view.may_run(&ctx.pipeline, run, &name, now) {
        Ok(true) => {
            writeln!(out, "stage {name} of run {run} is already done")?;
            return Ok(ExitStatus::Success);
        }
        Ok(false) => {}
        Err(why) => {
            writeln!(out, "refused: {why}; nothing was changed")?;
            return Ok(ExitStatus::Changes);
        }
    }
    if let Err(changed) = view.pin.check(&ctx.pipeline) {
        writeln!(out, "refused: {changed}; nothing was changed")?;
        return Ok(ExitStatus::Changes);
    }
    let stage = ctx
        .pipeline
        .stage(&name)
        .expect("may_run checked it")
        .clone();
    let config = ctx.pipeline.stage_config_path(&stage);
    if stage.gates.alarms_clean {
        let prefix = format!("{}-{}-", ctx.pipeline.service, stage.environment);
        let firing = alarms_firing(&ctx.clients.cloudwatch, &prefix).await?;
        if !firing.is_empty() {
            writeln!(
                out,
                "refused: stage {name} needs its alarms clean, and {} in ALARM; nothing was changed",
                firing.join(", ")
            )?;
            return Ok(ExitStatus::Changes);
        }
    }
    let mut journal = Journal::after(ctx, run, records.len(), keeper).await?;
    if !matches!(view.stages.get(&name), Some(StageState::Running { .. })) {
        journal
            .append(&Record::StageStarted {
                at: now,
                stage: name.clone(),
                by: who.to_string(),
            })
            .await?;
    }
    let revision = &view.pin.revision;
    let reason = format!("pipeline {} run {run}", ctx.pipeline.name);
    let config_arg = config.display().to_string();
    let argv: Vec<&str> = match stage.kind {
        Kind::Stack => vec!["stack", "deploy", "--config", &config_arg],
        Kind::Canary => vec![
            "canary",
            "run",
            "--config",
            &config_arg,
            "--revision",
            revision,
        ],
        Kind::Promote => vec![
            "promote",
            "--config",
            &config_arg,
            "--yes",
            "--reason",
            &reason,
        ],
        Kind::Maintenance => {
            let why = "maintenance stages are not run by `pipeline stage` yet: run `gatekeeper maintenance on|off` in the job";
            journal
                .append(&Record::StageFailed {
                    at: wall_now(),
                    stage: name.clone(),
                    reason: why.into(),
                })
                .await?;
            writeln!(out, "stage {name}: {why}")?;
            return Ok(ExitStatus::Error);
        }
    };
    // A stage rerun after its runner died: the canary it started may be waiting already.
    let done_before = match stage.kind {
        Kind::Canary | Kind::Promote => canary_already(ctx, &config, stage.kind, revision).await?,
        _ => None,
    };
    let (code, stdout) = match done_before {
        Some(note) => (0, note),
        None => {
            keeper.check(wall_now()).await?;
            run_child(&argv).await?
        }
    };
    write!(out, "{stdout}")?;
    let ended = if code == 0 {
        Record::StageDone {
            at: wall_now(),
            stage: name.clone(),
        }
    } else {
        Record::StageFailed {
            at: wall_now(),
            stage: name.clone(),
            reason: format!("`gatekeeper {}` exited {code}", argv.join(" ")),
        }
    };
    journal.append(&ended).await?;
    if let Some(path) = report {
        let text = format!(
            "### gatekeeper pipeline {} — stage {name} ({})\n\nrun `{run}`, revision `{revision}`: **{}**\n\n```\n{}\n```\n",
            ctx.pipeline.name,
            stage.kind.as_str(),
            if code == 0 { "done" } else { "failed" },
            stdout.trim_end()
        );
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(match code {
        0 => ExitStatus::Success,
        2 => ExitStatus::Changes,
        _ => ExitStatus::Error,
    })
}

/// When a canary stage's canary already waits for approval on `revision` (or a promote stage's
/// run is promoted), what to say instead of running it again.
async fn canary_already(
    ctx: &Ctx,
    config: &std::path::Path,
    kind: Kind,
    revision: &str,
) -> anyhow::Result<Option<String>> {
    let c = canary::config::load(config)?;
    let scope = crate::store::scope(&c.state, &c.prefix(), &ctx.clients.s3)?;
    let Some(last) = canary::journal::last_run(&scope).await? else {
        return Ok(None);
    };
    let p = last.machine.plan();
    if p.revision != revision {
        return Ok(None);
    }
    let id = p.run_id.clone();
    Ok(match (kind, &last.finished, last.machine.next()) {
        (Kind::Canary, None, canary::machine::Next::AwaitApproval) => Some(format!(
            "canary {id} of {revision} already awaits approval\n"
        )),
        (Kind::Canary | Kind::Promote, Some((_, canary::machine::Outcome::Promoted)), _) => {
            Some(format!("canary {id} of {revision} already promoted\n"))
        }
        _ => None,
    })
}

/// Runs this binary with `argv`, its stderr passed through, its stdout collected.
async fn run_child(argv: &[&str]) -> anyhow::Result<(i32, String)> {
    let exe = std::env::current_exe().context("the gatekeeper binary's path")?;
    let mut child = tokio::process::Command::new(exe)
        .args(argv)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting the stage's command")?;
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        pipe.read_to_string(&mut stdout).await?;
    }
    let status = child.wait().await?;
    Ok((status.code().unwrap_or(1), stdout))
}

async fn alarms_firing(
    cw: &aws_sdk_cloudwatch::Client,
    prefix: &str,
) -> anyhow::Result<Vec<String>> {
    let out = cw
        .describe_alarms()
        .alarm_name_prefix(prefix)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("DescribeAlarms {prefix}*: {}", aws_errors::message(&e)))?;
    Ok(out
        .metric_alarms()
        .iter()
        .filter_map(|a| a.alarm_name().map(str::to_string))
        .collect())
}

pub async fn abort(a: &RunRef, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    check_run_id(&a.run)?;
    let ctx = open(&a.file).await?;
    let who = crate::store::caller(&ctx.clients.sts).await;
    let Some(keeper) = continue_run(&ctx, &a.run, &who, "pipeline abort", "changed", out).await?
    else {
        return Ok(ExitStatus::Changes);
    };
    let result = async {
        let (records, view) = read(&ctx, &a.run).await?;
        if view.ended() {
            writeln!(out, "run {} is already over", a.run)?;
            return Ok(ExitStatus::Success);
        }
        // A canary stage in flight, or done and awaiting its promotion: roll it back.
        let mut code = 0;
        for stage in ctx.pipeline.ordered() {
            let started = !matches!(view.stages.get(&stage.name), Some(StageState::Pending));
            if stage.kind == Kind::Canary && started {
                let config = ctx.pipeline.stage_config_path(stage).display().to_string();
                let (c, stdout) = run_child(&["canary", "abort", "--config", &config]).await?;
                write!(out, "{stdout}")?;
                code = code.max(if c == 2 { 0 } else { c });
            }
        }
        let mut journal = Journal::after(&ctx, &a.run, records.len(), &keeper).await?;
        journal
            .append(&Record::Aborted {
                at: wall_now(),
                by: who.clone(),
                reason: None,
            })
            .await?;
        writeln!(out, "run {} aborted by {who}", a.run)?;
        Ok(if code == 0 {
            ExitStatus::Changes
        } else {
            ExitStatus::Error
        })
    }
    .await;
    keeper.release(wall_now()).await?;
    result
}
