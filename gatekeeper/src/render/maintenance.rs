//! Maintenance reports: on, off, status, drain and redrive.
//!
//! Each report function writes one library result as text or JSON (the object redrive also
//! as markdown) and returns the exit status that result means; the progress views write to
//! standard error (a bar on a terminal, a line per change otherwise).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maintenance::plan::{LockPlan, OnPlan};
use maintenance::preflight::InFlight;
use maintenance::redrive::{self, dlq, Outcome, Report};
use maintenance::{Event, OffOutcome, OnOutcome, Status};
use state::lock::{LockInfo, LockState};

use crate::commands::common::{Output, OutputOrMarkdown};
use crate::ui::progress::Progress;
use crate::{ui, ExitStatus};

type Result = anyhow::Result<ExitStatus>;

fn lock_state(s: LockState) -> &'static str {
    match s {
        LockState::Held => "held",
        LockState::Parked => "parked",
        LockState::Free => "free",
    }
}

fn in_flight(in_flight: &[InFlight], out: &mut dyn Write) -> anyhow::Result<()> {
    if in_flight.is_empty() {
        writeln!(out, "preflight: no work in flight")?;
    } else {
        writeln!(
            out,
            "preflight: {} in flight (would be stranded):",
            in_flight.len()
        )?;
        for i in in_flight {
            writeln!(out, "  {} {}: {}", i.source, i.name, i.detail)?;
        }
    }
    Ok(())
}

/// `maintenance status`: 2 when the flag is on. `lock` is `(where, what)`, read for text only.
pub fn status(
    status: &Status,
    lock: Option<(String, Option<LockInfo>)>,
    output: Output,
    out: &mut dyn Write,
) -> Result {
    match output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(status)?)?,
        Output::Text => {
            match &status.flag {
                None => writeln!(out, "maintenance: off (no flag at {})", status.parameter)?,
                Some(f) => writeln!(
                    out,
                    "maintenance: {} (flag {}: {})",
                    if f.enabled { "ON" } else { "off" },
                    status.parameter,
                    f.to_json()
                )?,
            }
            for d in &status.queues {
                writeln!(
                    out,
                    "queue {}: {} visible, {} in flight, {} delayed",
                    d.queue, d.visible, d.in_flight, d.delayed
                )?;
            }
            for d in &status.dead_letter_queues {
                writeln!(out, "dlq   {}: {} messages", d.queue, d.total())?;
            }
            writeln!(
                out,
                "parking lot s3://{}: {} objects",
                status.parking_lot_bucket, status.parking_lot_objects
            )?;
            match lock {
                None => {}
                Some((at, None)) => writeln!(out, "lock {at}: never taken")?,
                Some((at, Some(l))) => writeln!(
                    out,
                    "lock {at}: {} by {} run {} (generation {})",
                    lock_state(l.state),
                    l.purpose,
                    l.run_id,
                    l.generation
                )?,
            }
        }
    }
    Ok(if status.flag.as_ref().is_some_and(|f| f.enabled) {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

/// `maintenance on --dry-run` (text in either output format): 0.
pub fn on_plan(plan: &OnPlan, out: &mut dyn Write) -> Result {
    writeln!(out, "dry run: nothing was changed")?;
    in_flight(&plan.in_flight, out)?;
    match &plan.lock {
        LockPlan::Resume { run, done } => {
            writeln!(out, "would resume run {run} (done: {})", done.join(", "))?
        }
        LockPlan::Refused {
            state,
            purpose,
            run,
            parked,
        } => writeln!(
            out,
            "the lock {} is {} by {purpose} run {run}: `on` would be refused{}",
            plan.lock_location,
            lock_state(*state),
            if *parked { " (unless --force)" } else { "" }
        )?,
        LockPlan::Take => writeln!(out, "would take the lock {}", plan.lock_location)?,
    }
    writeln!(
        out,
        "would set {} (now {})",
        plan.flag_parameter,
        plan.flag
            .as_ref()
            .map(|f| f.to_json())
            .unwrap_or_else(|| "absent".into())
    )?;
    for (q, total) in &plan.queues {
        writeln!(out, "would wait for queue {q} ({total} messages now)")?;
    }
    writeln!(out, "would count the queues as drained no sooner than {}s after setting the flag ([maintenance] flag_ttl_seconds)", plan.flag_ttl.as_secs())?;
    for (name, command) in &plan.hooks {
        writeln!(out, "would run hook {name}: {command}")?;
    }
    Ok(ExitStatus::Success)
}

/// `maintenance on`: 0 on (now or already), 2 refused, not drained or stopped.
pub fn on_outcome(
    outcome: &OnOutcome,
    flag_parameter: &str,
    output: Output,
    out: &mut dyn Write,
) -> Result {
    let status = match outcome {
        OnOutcome::Done { .. } | OnOutcome::AlreadyOn { .. } => ExitStatus::Success,
        _ => ExitStatus::Changes,
    };
    if output == Output::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(outcome)?)?;
        return Ok(status);
    }
    match outcome {
        OnOutcome::Done { run, flag, in_flight: found, waited } => {
            in_flight(found, out)?;
            writeln!(out, "maintenance is on: {}", flag.to_json())?;
            writeln!(out, "queues drained after {}s; hooks done (run {run}; the lock stays with it until `maintenance off`)", waited.as_secs())?;
        }
        OnOutcome::AlreadyOn { run } => writeln!(out, "maintenance is already on: run {run} is done; no hook runs again (`maintenance off` ends it)")?,
        OnOutcome::Held { reason } => writeln!(out, "refused: {reason}; nothing was changed")?,
        OnOutcome::Refused { in_flight: found } => {
            in_flight(found, out)?;
            writeln!(out, "refused: work is in flight and [maintenance.in_flight] refuse = true; the flag was not set")?;
        }
        OnOutcome::NotDrained { run, flag, waited, remaining } => {
            writeln!(out, "maintenance is on: {}", flag.to_json())?;
            writeln!(out, "queues not drained after {}s; hooks not run:", waited.as_secs())?;
            for d in remaining {
                writeln!(out, "  {}: {} visible, {} in flight, {} delayed", d.queue, d.visible, d.in_flight, d.delayed)?;
            }
            writeln!(out, "run `maintenance on` again to keep waiting (run {run}), or `maintenance off` to give up")?;
        }
        OnOutcome::Ended { run, who, not_run } => writeln!(out, "stopped: run {run} was ended by `maintenance off` ({who}); no hook runs after the flag is off; not run: {}", if not_run.is_empty() { "none".to_string() } else { not_run.join(", ") })?,
        OnOutcome::FlagCleared { run, hook } => writeln!(out, "stopped: the flag {flag_parameter} was found off before hook {hook}: it and the hooks after it were not run; `maintenance on` sets the flag again and resumes run {run}, `maintenance off` ends it")?,
    }
    Ok(status)
}

/// The head of `maintenance off --dry-run`; the redrive's own dry run follows unless
/// `--no-redrive`.
pub fn off_plan(
    flag_parameter: &str,
    redrive: bool,
    flag_ttl: Duration,
    output: Output,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    writeln!(out, "dry run: would clear {flag_parameter}")?;
    if redrive && output != Output::Json {
        writeln!(out, "would list the parking lot {}s after clearing it ([maintenance] flag_ttl_seconds); it holds now:", flag_ttl.as_secs())?;
    }
    Ok(())
}

/// `maintenance off`, before any redrive: the refusals print in either output format.
pub fn off_outcome(
    outcome: &OffOutcome,
    wait: Duration,
    output: Output,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    match outcome {
        OffOutcome::Cleared { cleared, run, handed_back } => {
            if output != Output::Json {
                writeln!(out, "maintenance is off: {} (run {run} ended)", cleared.flag.to_json())?;
                if let Some(c) = handed_back {
                    writeln!(out, "the lock is back with run {c}, parked as it was")?;
                }
            }
        }
        OffOutcome::Held { reason } => writeln!(out, "refused: {reason}; the flag was not changed")?,
        OffOutcome::StillRunning { run, hook } => writeln!(out, "run {run} is ended (no hook starts again) but is still running{} after {}s: the flag is still on; run `maintenance off` again once it stops", hook.as_ref().map(|h| format!(" hook {h}")).unwrap_or_default(), wait.as_secs())?,
    }
    Ok(())
}

/// `maintenance off --no-redrive`, the flag cleared: when to run `redrive`.
pub fn parking_lot_left(flag_ttl: Duration, output: Output, out: &mut dyn Write) -> Result {
    if output != Output::Json {
        writeln!(out, "services may park uploads for {}s more ([maintenance] flag_ttl_seconds): run `gatekeeper redrive` after that", flag_ttl.as_secs())?;
    }
    Ok(ExitStatus::Success)
}

/// `maintenance off`'s progress: a running `on` was asked to stop.
pub fn off_event(e: Event) {
    if let Event::StopRequested { run, hook } = e {
        ui::eprintln!(
            "maintenance: run {run} is running{}: it was asked to stop before its next hook; waiting for it to let go of the lock",
            hook.map(|h| format!(" hook {h}")).unwrap_or_default()
        );
    }
}

/// An object redrive: 0 everything moved (or, dry, movable), 2 objects left for a person or
/// arrived during the run, 1 a failed object.
pub fn redrive(
    report: &Report,
    output: impl Into<OutputOrMarkdown>,
    out: &mut dyn Write,
) -> Result {
    let output = output.into();
    match output {
        OutputOrMarkdown::Json => writeln!(out, "{}", serde_json::to_string_pretty(report)?)?,
        OutputOrMarkdown::Text | OutputOrMarkdown::Markdown => {
            redrive_text(report, output == OutputOrMarkdown::Markdown, out)?
        }
    }
    Ok(redrive_status(report.failures > 0, report.complete()))
}

fn redrive_text(report: &Report, md: bool, out: &mut dyn Write) -> anyhow::Result<()> {
    let verb = if report.dry_run {
        "would move"
    } else {
        "moved"
    };
    if md {
        writeln!(
            out,
            "### Redrive s3://{} → s3://{}{}\n",
            report.parking_lot,
            report.ingestion,
            if report.dry_run { " (dry run)" } else { "" }
        )?;
        writeln!(out, "| | objects |\n|---|---:|")?;
        for (k, v) in [
            (verb, report.moved),
            ("of which already there", report.already_there),
            ("rewritten", report.rewritten),
            ("skipped", report.skipped),
            ("conflicts", report.conflicts),
            ("refused", report.refused),
            ("failures", report.failures),
            ("older versions kept noncurrent", report.superseded),
            ("arrived during the run", report.arrived.len()),
        ] {
            writeln!(out, "| {k} | {v} |")?;
        }
    } else {
        writeln!(
            out,
            "{} s3://{} -> s3://{}{}",
            ui::paint(ui::BOLD, "redrive", ui::stdout_color()),
            report.parking_lot,
            report.ingestion,
            if report.dry_run {
                " (dry run: nothing was changed)"
            } else {
                ""
            }
        )?;
        writeln!(
            out,
            "{verb} {} ({} already there), rewritten {}, skipped {}, conflicts {}, failures {}",
            report.moved,
            report.already_there,
            report.rewritten,
            report.skipped,
            report.conflicts,
            report.failures
        )?;
        if report.refused > 0 {
            writeln!(
                out,
                "refused {}: rewritten keys that would leave their batch, left for a person",
                report.refused
            )?;
        }
        if report.superseded > 0 {
            writeln!(
                out,
                "older versions kept noncurrent in s3://{}: {}",
                report.parking_lot, report.superseded
            )?;
        }
    }
    if !report.arrived.is_empty() {
        writeln!(
            out,
            "{}arrived during the run, still in s3://{}: {} (run again to move them)",
            if md { "\n" } else { "" },
            report.parking_lot,
            report.arrived.len()
        )?;
    }
    if !report.dead_batches.is_empty() {
        writeln!(out, "dead batches: {}", report.dead_batches.join(", "))?;
    }
    let color = !md && ui::stdout_color();
    let paint = |style, text| ui::paint(style, text, color);
    let bullet = if md { "- " } else { "  " };
    for r in &report.notable {
        let line = match &r.outcome {
            Outcome::Conflict { reason } => {
                format!("{}  {}: {reason}", paint(ui::BAD, "conflict"), r.key)
            }
            Outcome::Failed { error } => {
                format!("{}    {}: {error}", paint(ui::BAD, "failed"), r.key)
            }
            Outcome::Skipped { reason } => {
                format!("{}   {}: {reason}", paint(ui::WARN, "skipped"), r.key)
            }
            Outcome::Refused { reason } => {
                format!("{}   {}: {reason}", paint(ui::BAD, "refused"), r.key)
            }
            _ if r.dead_batch.is_some() => format!("rewritten {} -> {}", r.key, r.destination),
            _ => String::new(),
        };
        if !line.is_empty() {
            writeln!(out, "{bullet}{line}")?;
        }
        if !r.superseded.is_empty() {
            writeln!(
                out,
                "{bullet}kept      {}: {} older version(s) noncurrent: {}",
                r.key,
                r.superseded.len(),
                r.superseded.join(", ")
            )?;
        }
    }
    for key in &report.arrived {
        writeln!(out, "{bullet}arrived   {key}")?;
    }
    Ok(())
}

/// `redrive --dlq`: 0 all moved, 2 messages still in flight, 1 a failure.
pub fn dlq(report: &dlq::Report, output: OutputOrMarkdown, out: &mut dyn Write) -> Result {
    match output {
        OutputOrMarkdown::Json => writeln!(out, "{}", serde_json::to_string_pretty(report)?)?,
        _ => {
            if report.dry_run {
                writeln!(
                    out,
                    "dry run: would move {} messages from {} to {}; nothing was changed",
                    report.found, report.dlq, report.source
                )?;
            } else {
                writeln!(
                    out,
                    "moved {} of {} messages from {} to {}, failures {}",
                    report.moved, report.found, report.dlq, report.source, report.failures
                )?;
            }
            if let Some(after) = report.rerun_after_seconds {
                writeln!(
                    out,
                    "{} messages still in flight in {} (received, not deleted: by an interrupted run?); \
                     they are visible again within {after}s: run again then",
                    report.in_flight, report.dlq
                )?;
            }
            for e in &report.errors {
                writeln!(out, "  {e}")?;
            }
        }
    }
    Ok(redrive_status(report.failures > 0, report.complete()))
}

/// An object redrive's progress: a counting bar, and a line per conflict, failure and dead
/// batch. `on_copied` runs after each verified copy (the crash tests' hook).
pub fn redrive_progress(
    parking_lot: &str,
    on_copied: impl Fn() + Send + Sync + 'static,
) -> (Arc<Progress>, redrive::Sink) {
    let progress = Arc::new(Progress::spinner("redrive"));
    let parking = parking_lot.to_string();
    let (done, total) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let sink: redrive::Sink = {
        let p = progress.clone();
        Arc::new(move |event| match event {
            redrive::Event::WaitingForFlagReaders { left } => p.line(&format!(
                "listing s3://{parking} in {}s ([maintenance] flag_ttl_seconds): services \
                 answering from their cached flag may still park uploads",
                left.as_secs_f64().ceil()
            )),
            redrive::Event::Listed { objects, batches } => {
                total.store(objects as u64, Ordering::SeqCst);
                p.bar("objects", 0, objects as u64, String::new());
                p.line(&format!(
                    "{objects} objects in s3://{parking}, {batches} batches"
                ));
            }
            redrive::Event::Batch { id, alive } if !alive => {
                p.line(&format!("batch {id} is gone: its objects are rewritten"))
            }
            redrive::Event::Batch { .. } => {}
            redrive::Event::Copied { .. } => on_copied(),
            redrive::Event::Finished(r) => {
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                p.bar("objects", n, total.load(Ordering::SeqCst), String::new());
                match &r.outcome {
                    Outcome::Conflict { reason } => {
                        p.line(&format!("conflict: {}: {reason}", r.key))
                    }
                    Outcome::Failed { error } => p.line(&format!("failed: {}: {error}", r.key)),
                    _ => {}
                }
            }
        })
    };
    (progress, sink)
}

/// A DLQ redrive's progress: messages moved of those found.
pub fn dlq_progress() -> (Arc<Progress>, impl Fn(u64, u64) + Send + Sync) {
    let progress = Arc::new(Progress::spinner("redrive --dlq"));
    let on_moved = {
        let p = progress.clone();
        move |moved: u64, found: u64| {
            p.bar("messages", moved, found.max(moved), String::new());
        }
    };
    (progress, on_moved)
}

/// `maintenance on`'s progress: one bar per queue on a terminal (messages gone out of the most
/// seen); a line per change otherwise.
pub struct DrainView {
    progress: Progress,
    state: Mutex<DrainState>,
}

#[derive(Default)]
struct DrainState {
    /// The most messages seen in each queue.
    most: BTreeMap<String, u64>,
    last: Option<Vec<(String, u64)>>,
}

impl DrainView {
    pub fn new() -> Self {
        DrainView {
            progress: Progress::lines(),
            state: Mutex::new(DrainState::default()),
        }
    }

    fn line(&self, text: String) {
        self.progress.line(&text);
    }

    pub fn event(&self, e: Event) {
        match e {
            Event::Resumed { run, done } => self.line(format!(
                "maintenance: resuming run {run} (done: {})",
                done.join(", ")
            )),
            Event::InFlight(items) if !items.is_empty() => self.line(format!(
                "maintenance: {} items of work in flight",
                items.len()
            )),
            Event::InFlight(_) => {}
            Event::FlagWritten(f) => self.line(format!("maintenance: flag set: {}", f.to_json())),
            Event::WaitingForFlagReaders { left } => self.line(format!(
                "maintenance: services cache the flag: the queues count as drained no sooner \
                 than {}s from now ([maintenance] flag_ttl_seconds)",
                left.as_secs_f64().ceil()
            )),
            Event::Depths { depths, waited } => {
                let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
                let now: Vec<(String, u64)> = depths
                    .iter()
                    .map(|d| (d.queue.clone(), d.total()))
                    .collect();
                let mut drawn = self.progress.is_terminal();
                for (queue, total) in &now {
                    let most = state.most.entry(queue.clone()).or_default();
                    *most = (*most).max(*total);
                    let message = format!("{total} left ({}s)", waited.as_secs());
                    drawn &= self.progress.bar(queue, *most - total, *most, message);
                }
                if !drawn && state.last.as_ref() != Some(&now) {
                    let text: Vec<String> = now.iter().map(|(q, n)| format!("{q}={n}")).collect();
                    self.line(format!("drain ({}s): {}", waited.as_secs(), text.join(" ")));
                }
                state.last = Some(now);
            }
            Event::HookStarted { name } => self.line(format!("hook {name}: running")),
            Event::HookSkipped { name } => {
                self.line(format!("hook {name}: already done in this run, skipped"))
            }
            Event::Preempted { run, purpose } => self.line(format!(
                "maintenance: --force took the lock from {purpose} run {run}, which was parked (awaiting \
                 approval): it stays where it is, and gets the lock back when `maintenance off` lets go"
            )),
            Event::StopRequested { .. } => {}
            Event::HookFinished { name, output } => {
                self.line(format!("hook {name}: done"));
                for l in output.lines() {
                    self.line(format!("  {l}"));
                }
            }
        }
    }

    pub fn finish(&self) {
        self.progress.finish();
    }
}

/// How a redrive, of objects or of a dead-letter queue, ends: 1 when anything failed, 2 when
/// work is left (a dry run, a limit, messages in flight), 0 when all was moved.
fn redrive_status(failed: bool, complete: bool) -> ExitStatus {
    if failed {
        ExitStatus::Error
    } else if !complete {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    }
}
