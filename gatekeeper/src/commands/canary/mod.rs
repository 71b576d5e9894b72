//! `gatekeeper canary run|status|resume|abort` (and `report|export|history`, in
//! `evidence`): one node through depool, deploy, smoke, repool at a weight, bake;
//! then roll back, or wait for `gatekeeper promote`. The decisions are the `canary` crate's
//! (`canary::run`, `canary::status`); this parses, calls and renders.

use std::io::Write;

use canary::provider::{Clock, SystemClock};
use canary::run::{flow, Action};
use canary::status::StatusReport;

use crate::session;
use crate::ExitStatus;

pub mod evidence;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, clap::Subcommand)]
pub enum Sub {
    /// Preflight, lock, and move one node through the canary.
    Run(RunArgs),
    /// Who holds the lock, where the last run stands, the listener's weights.
    Status(Common),
    /// Continue an interrupted run: a canary rolls back, a promotion finishes.
    Resume(TakeOver),
    /// Roll back from any point, a promotion included.
    Abort(TakeOver),
    /// The bake's evidence: every look, the judge's bounds and e-values, the verdict.
    Report(evidence::ReportArgs),
    /// The bake's observations in `gatekeeper judge`'s input format, to replay the decision.
    Export(evidence::ExportArgs),
    /// The service's last runs: revision, outcome, who, when, how long.
    History(evidence::HistoryArgs),
}

/// `resume` and `abort` drive a run another process started: they refuse while that process
/// may still be driving it.
#[derive(Debug, Clone, clap::Args)]
pub struct TakeOver {
    #[command(flatten)]
    pub common: Common,
    /// Take the run over although its lock, held on another host, has not expired (its holder
    /// cannot be checked from here): only once that runner is known to be gone. Refused
    /// while the holder keeps renewing its lease.
    #[arg(long, conflicts_with = "dry_run")]
    pub force: bool,
    #[command(flatten)]
    pub dry: crate::args::DryRun,
}

pub use crate::args::Common;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub common: Common,
    /// The revision to deploy (`s3://bucket/key` for CodeDeploy, anything for a command).
    #[arg(long)]
    pub revision: String,
    /// The revision a rollback redeploys; asked from the deployer when absent.
    #[arg(long)]
    pub previous_revision: Option<String>,
    /// The node to canary (default: `canary_node`, else the first node).
    #[arg(long)]
    pub canary_node: Option<String>,
    /// Promote without waiting for `gatekeeper promote` once the canary passes (CI).
    #[arg(long)]
    pub auto_promote: bool,
    #[command(flatten)]
    pub dry: crate::args::DryRun,
}

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let rt = crate::aws::runtime()?;
    let result = rt.block_on(async {
        match &args.command {
            Sub::Run(a) => start(a, out).await,
            Sub::Status(c) => status(c, out).await,
            Sub::Resume(t) => take_over(t, Action::Resume, out).await,
            Sub::Abort(t) => take_over(t, Action::Abort, out).await,
            Sub::Report(a) => evidence::report(a, out).await,
            Sub::Export(a) => evidence::export(a, out).await,
            Sub::History(a) => evidence::history(a, out).await,
        }
    });
    crate::aws::report_calls();
    result
}

async fn start(a: &RunArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let s = session::open(&a.common.service.config).await?;
    let request = flow::Request {
        revision: a.revision.clone(),
        previous_revision: a.previous_revision.clone(),
        canary_node: a.canary_node.clone(),
        auto_promote: a.auto_promote,
        dry_run: a.dry.dry_run,
    };
    let mut shown = session::shown();
    let reply = flow::start(&s, &request, &mut session::hooks(&mut shown)).await?;
    session::finish(&reply, a.common.output, out)
}

/// `resume` and `abort`, or their dry runs.
async fn take_over(
    t: &TakeOver,
    action: Action,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let s = session::open(&t.common.service.config).await?;
    let mut shown = session::shown();
    let mut hooks = session::hooks(&mut shown);
    let reply = match t.dry.dry_run {
        true => flow::preview(&s, action, &mut hooks).await?,
        false => flow::resume(&s, action, t.force, &mut hooks).await?,
    };
    session::finish(&reply, t.common.output, out)
}

async fn status(c: &Common, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let s = session::open(&c.service.config).await?;
    let now = SystemClock.now();
    let report = StatusReport::gather(&s).await?;
    crate::render::canary::status(&report, c.output, now, out)?;
    Ok(ExitStatus::Success)
}
