//! `gatekeeper promote`: approve a passed canary (recording who, from the caller identity,
//! and when) and deploy the rest of the fleet in waves. A step of the run, under its lock:
//! two `promote` at once, or a `promote` beside an `abort`, cannot both drive the fleet.

use std::io::Write;
use std::path::PathBuf;

use canary::journal::{Journal, Record};
use canary::machine::Next;
use canary::provider::{Clock, SystemClock};

use crate::commands::canary::{take_over, Continued, Session};
use crate::commands::common::Output;
use crate::ExitStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service's gatekeeper.toml (with a [canary] table).
    #[arg(long)]
    pub config: PathBuf,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let rt = crate::aws::runtime()?;
    let result = rt.block_on(async {
        let s = Session::open(&args.config).await?;
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
