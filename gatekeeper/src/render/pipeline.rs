//! CI pipeline reports: a run's stages, approvals and status; what a step of a run did, and
//! the exit status it stands for.

use std::io::Write;

use canary::journal::rfc3339;
use pipelines::drive::{AbortReport, StageReport};
use pipelines::run::{RunView, StageState};
use pipelines::Pipeline;

use crate::ExitStatus;

/// `pipeline status --output json`.
pub fn status_json(out: &mut dyn Write, run: &str, view: &RunView) -> anyhow::Result<()> {
    let doc = serde_json::json!({ "run_id": run, "run": view });
    writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    Ok(())
}

/// `pipeline status`: the run, then each stage in order.
pub fn status_text(
    out: &mut dyn Write,
    pipeline: &Pipeline,
    run: &str,
    view: &RunView,
) -> anyhow::Result<()> {
    let ended = match (&view.aborted, view.finished()) {
        (Some((_, by)), _) => format!(", aborted by {by}"),
        (None, true) => ", finished".into(),
        _ => String::new(),
    };
    writeln!(
        out,
        "pipeline {} run {run}: revision {}, started {} by {}{ended}",
        pipeline.name,
        view.pin.revision,
        rfc3339(view.started_at),
        view.started_by,
    )?;
    for stage in pipeline.ordered() {
        let state = &view.stages[&stage.name];
        let detail = match state {
            StageState::Pending => String::new(),
            StageState::Running { since, by } => format!(" since {} by {by}", rfc3339(*since)),
            StageState::Done { at } => format!(" at {}", rfc3339(*at)),
            StageState::Failed { reason, .. } => format!(": {reason}"),
        };
        let approved = view
            .approvals
            .get(&stage.name)
            .map(|ap| {
                let why = ap.reason.as_ref().map(|r| format!(" ({r})"));
                let (who, at) = (&ap.who, rfc3339(ap.at));
                format!(", approved by {who} at {at}{}", why.unwrap_or_default())
            })
            .unwrap_or_default();
        let (name, kind) = (&stage.name, stage.kind.as_str());
        writeln!(out, "  {name} ({kind}): {}{detail}{approved}", state.name())?;
    }
    Ok(())
}

/// A refusal: nothing was `unchanged` (`changed`, `recorded`); exit 2.
pub fn refused(out: &mut dyn Write, why: &str, unchanged: &str) -> anyhow::Result<ExitStatus> {
    writeln!(out, "refused: {why}; nothing was {unchanged}")?;
    Ok(ExitStatus::Changes)
}

/// What `pipeline stage`/`resume` did; the stage command's exit code is the command's.
pub fn stage(out: &mut dyn Write, run: &str, report: &StageReport) -> anyhow::Result<ExitStatus> {
    match report {
        StageReport::Finished => writeln!(out, "run {run} is finished: every stage is done")?,
        StageReport::AlreadyDone(name) => {
            writeln!(out, "stage {name} of run {run} is already done")?
        }
        StageReport::Refused(why) => return refused(out, why, "changed"),
        StageReport::NotRun { stage, why } => {
            writeln!(out, "stage {stage}: {why}")?;
            return Ok(ExitStatus::Error);
        }
        StageReport::Ran { code, stdout, .. } => {
            write!(out, "{stdout}")?;
            return Ok(match code {
                0 => ExitStatus::Success,
                2 => ExitStatus::Changes,
                _ => ExitStatus::Error,
            });
        }
    }
    Ok(ExitStatus::Success)
}

/// The markdown report of a stage that ran (`pipeline stage --report`, for a CI job summary).
pub fn stage_markdown(pipeline: &Pipeline, run: &str, report: &StageReport) -> Option<String> {
    let StageReport::Ran {
        stage,
        kind,
        revision,
        code,
        stdout,
    } = report
    else {
        return None;
    };
    Some(format!(
        "### gatekeeper pipeline {} — stage {stage} ({})\n\nrun `{run}`, revision `{revision}`: **{}**\n\n```\n{}\n```\n",
        pipeline.name,
        kind.as_str(),
        if *code == 0 { "done" } else { "failed" },
        stdout.trim_end()
    ))
}

/// What `pipeline abort` did: 2 once aborted (the run's changes were undone), 1 when a
/// canary's rollback failed.
pub fn abort(
    out: &mut dyn Write,
    run: &str,
    who: &str,
    report: &AbortReport,
) -> anyhow::Result<ExitStatus> {
    match report {
        AbortReport::Refused(why) => refused(out, why, "changed"),
        AbortReport::AlreadyOver => {
            writeln!(out, "run {run} is already over")?;
            Ok(ExitStatus::Success)
        }
        AbortReport::Aborted { stdout, code } => {
            write!(out, "{stdout}")?;
            writeln!(out, "run {run} aborted by {who}")?;
            Ok(if *code == 0 {
                ExitStatus::Changes
            } else {
                ExitStatus::Error
            })
        }
    }
}
