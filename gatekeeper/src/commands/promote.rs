//! `gatekeeper promote`: approve a passed canary (recording who, from the caller identity,
//! and when) and deploy the rest of the fleet in waves.

use std::io::Write;
use std::path::PathBuf;

use canary::machine::Next;
use canary::provider::Preflight;

use crate::commands::canary::Session;
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
        let Some(run) = s.last_run().await? else {
            anyhow::bail!(
                "no canary run in {}: `gatekeeper canary run` first",
                s.config.journal_path().display()
            );
        };
        let mut m = run.machine.clone();
        if run.finished.is_some() || m.next() != Next::AwaitApproval {
            anyhow::bail!(
                "run {} is not awaiting approval ({}): only a passed canary can be promoted",
                m.plan().run_id,
                match &run.finished {
                    Some((_, o)) => format!("{o:?}"),
                    None => format!("{:?}", m.next()),
                }
            );
        }
        let who = s.preflight.caller().await?;
        let holder = format!("{who} (promote, pid {})", std::process::id());
        let mut journal = s.journal().await?;
        let settings = s.settings(holder, false, false);
        s.drive(
            &mut m,
            journal.as_mut(),
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
