//! `gatekeeper promote`: approve a passed canary (recording who, from the caller identity,
//! and when) and deploy the rest of the fleet in waves. A step of the run, under its lock:
//! two `promote` at once, or a `promote` beside an `abort`, cannot both drive the fleet.
//!
//! Before it acts it shows the bake's evidence and asks for confirmation on a terminal; without
//! a terminal (CI) it needs `--yes`. `--reason` is recorded with the approver in the evidence.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use canary::journal::{Journal, Record};
use canary::machine::Next;
use canary::provider::{Clock, SystemClock};

use crate::commands::canary::{preview, take_over, Action, Continued, Session};
use crate::commands::common::Output;
use crate::ExitStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service's gatekeeper.toml (with a [canary] table).
    #[arg(long)]
    pub config: PathBuf,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Promote without asking. Required when standard input is not a terminal (CI): without
    /// it `promote` shows the evidence, changes nothing and exits 2.
    #[arg(long)]
    pub yes: bool,
    /// Why this promotion is approved; recorded with the approver's ARN in the run's evidence.
    #[arg(long)]
    pub reason: Option<String>,
    /// Read the run and the fleet, print every action the promotion would take, and change
    /// nothing: no confirmation asked, no lock taken, nothing journaled.
    #[arg(long)]
    pub dry_run: bool,
}

/// Shows the run's evidence (read only, no lock) and asks for confirmation: `Ok(true)` to go
/// on; `Ok(false)` after a refusal was written (exit 2, nothing changed).
async fn confirm(s: &Session, args: &Args, out: &mut dyn Write) -> anyhow::Result<bool> {
    let Ok(Some(run_id)) = s.current_run_id().await? else {
        // Nothing to show; take_over says why it cannot go on.
        return Ok(true);
    };
    let text = args.output != Output::Json;
    if let Some(run) = canary::journal::read_run(&s.scope, &run_id).await? {
        match crate::commands::canary_evidence::record_of(&run) {
            Ok(record) if text => {
                let report = evidence::render(&record, evidence::Format::Text);
                // The summary and the per-metric table; the look-by-look table is in the report.
                let summary = report.split("\nlook ").next().unwrap_or(&report);
                writeln!(out, "{}", summary.trim_end())?;
                writeln!(
                    out,
                    "full report: gatekeeper canary report --config {} --run {run_id} --output html --out report.html",
                    args.config.display()
                )?;
            }
            Ok(_) => {}
            Err(e) if text => writeln!(out, "no evidence to show: {e:#}")?,
            Err(_) => {}
        }
    }
    if args.yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        writeln!(
            out,
            "refused: promote asks for confirmation and standard input is not a terminal: pass \
             --yes (and --reason) to approve run {run_id}; nothing was changed"
        )?;
        return Ok(false);
    }
    write!(out, "promote run {run_id} to the whole fleet? [y/N] ")?;
    out.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes") {
        return Ok(true);
    }
    writeln!(out, "not promoted: nothing was changed")?;
    Ok(false)
}

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let rt = crate::aws::runtime()?;
    let result = rt.block_on(async {
        if args.dry_run {
            let common = crate::commands::canary::Common {
                config: args.config.clone(),
                output: args.output,
            };
            return preview(&common, Action::Promote, out).await;
        }
        let s = Session::open(&args.config).await?;
        if !confirm(&s, args, out).await? {
            return Ok(ExitStatus::Changes);
        }
        let Continued {
            run,
            mut journal,
            lock,
            holder,
        } = match take_over(&s, "promote", false).await? {
            Ok(Some(t)) => t,
            Ok(None) => {
                writeln!(
                    out,
                    "refused: no canary run in {}: `gatekeeper canary run` first",
                    s.scope.location()
                )?;
                return Ok(ExitStatus::Changes);
            }
            Err(why) => {
                writeln!(out, "refused: {why}")?;
                return Ok(ExitStatus::Changes);
            }
        };
        let mut m = run.machine.clone();
        if run.finished.is_some() || m.next() != Next::AwaitApproval {
            // Not ours to change: put the lock back as it was found.
            lock.set_down(run.finished.is_none() && m.in_flight())
                .await?;
            let state = match &run.finished {
                Some((_, o)) => crate::commands::canary::outcome_text(Some(o)),
                None => crate::commands::canary::describe(&m.next()),
            };
            writeln!(
                out,
                "refused: run {} is not awaiting approval ({state}): only a passed canary can be \
                 promoted",
                m.plan().run_id,
            )?;
            return Ok(ExitStatus::Changes);
        }
        let who = s.who().await;
        journal
            .append(&Record::Took {
                at: SystemClock.now(),
                holder: holder.clone(),
                command: "promote".into(),
            })
            .await?;
        let now = SystemClock.now();
        let verdict_recorded = canary::evidence::bake_record(&run.records)
            .ok()
            .flatten()
            .is_some_and(|r| r.verdict.is_some());
        if verdict_recorded {
            journal
                .append(&Record::Evidence {
                    at: now,
                    entry: Box::new(evidence::Entry::Approval(evidence::record::Approval {
                        who: who.clone(),
                        at: now,
                        reason: args.reason.clone(),
                    })),
                })
                .await?;
        }
        let settings = s.settings(holder, false, false);
        s.drive(
            &mut m,
            &mut journal,
            &lock,
            settings,
            Some(who),
            None,
            args.output,
            out,
        )
        .await
    });
    crate::aws::report_calls();
    result
}
