//! `gatekeeper promote`: approve a passed canary (recording who, from the caller identity,
//! and when) and deploy the rest of the fleet in waves. A step of the run, under its lock:
//! two `promote` at once, or a `promote` beside an `abort`, cannot both drive the fleet
//! (`canary::run::flow::promote`).
//!
//! Before it acts it shows the bake's evidence and asks for confirmation on a terminal; without
//! a terminal (CI) it needs `--yes`. `--reason` is recorded with the approver in the evidence.

use std::io::{IsTerminal, Write};

use canary::run::{flow, Action};
use canary::session::Session;

use crate::commands::common::Output;
use crate::session;
use crate::ExitStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub service: crate::args::ServiceConfig,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Promote without asking. Required when standard input is not a terminal (CI): without
    /// it `promote` shows the evidence, changes nothing and exits 2.
    #[arg(long)]
    pub yes: bool,
    /// Why this promotion is approved; recorded with the approver's ARN in the run's evidence.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub dry: crate::args::DryRun,
}

/// Shows the run's evidence (read only, no lock) and asks for confirmation: `Ok(true)` to go
/// on; `Ok(false)` after a refusal was written (exit 2, nothing changed).
async fn confirm(s: &Session, args: &Args, out: &mut dyn Write) -> anyhow::Result<bool> {
    let Ok(Some(run_id)) = s.current_run_id().await? else {
        // Nothing to show; the promotion says why it cannot go on.
        return Ok(true);
    };
    if let Some(run) = canary::journal::read_run(&s.scope, &run_id).await? {
        if args.output != Output::Json {
            let record = canary::evidence::record_of(&run);
            crate::render::canary::promote_evidence(&record, &args.service.config, &run_id, out)?;
        }
    }
    if args.yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        let why = format!(
            "promote asks for confirmation and standard input is not a terminal: pass --yes \
             (and --reason) to approve run {run_id}; nothing was changed"
        );
        crate::render::canary::refusal(&why, args.output, out)?;
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
        let s = session::open(&args.service.config).await?;
        let mut shown = session::shown();
        let mut hooks = session::hooks(&mut shown);
        let reply = if args.dry.dry_run {
            flow::preview(&s, Action::Promote, &mut hooks).await?
        } else {
            if !confirm(&s, args, out).await? {
                return Ok(ExitStatus::Changes);
            }
            flow::promote(&s, args.reason.clone(), &mut hooks).await?
        };
        session::finish(&reply, args.output, out)
    });
    crate::aws::report_calls();
    result
}
