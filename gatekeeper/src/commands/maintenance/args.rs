//! The arguments of `gatekeeper maintenance on|off|status`.

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: MaintenanceCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum MaintenanceCommand {
    /// Report work in flight, set the flag, wait for the queues to drain, run the hooks.
    On(OnArgs),
    /// Clear the flag, then redrive the parking lot.
    Off(OffArgs),
    /// Show the flag, queue depths and the parking lot's object count.
    Status(StatusArgs),
}

pub use crate::args::Common;

#[derive(Debug, clap::Args)]
pub struct OnArgs {
    #[command(flatten)]
    pub common: Common,
    /// Shown to users while maintenance lasts.
    #[arg(long, default_value = "Down for maintenance")]
    pub message: String,
    /// When maintenance is expected to end (RFC 3339), e.g. 2026-11-22T14:00:00Z.
    #[arg(long, value_name = "TIME", value_parser = maintenance::config::parse_until)]
    pub until: Option<String>,
    #[command(flatten)]
    pub dry: crate::args::DryRun,
    /// Seconds to wait for the queues; default `[maintenance] drain_timeout_seconds`.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Take the lock from a canary awaiting approval (it stays where it is, parked, and gets
    /// the lock back when `maintenance off` lets go; a running canary is never preempted), or
    /// resume a run whose holder on another host stopped renewing its lease.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct OffArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub dry: crate::args::DryRun,
    /// Only clear the flag; leave the parking lot for a later `gatekeeper redrive`.
    #[arg(long)]
    pub no_redrive: bool,
    /// Objects copied at once; default `[maintenance] concurrency`.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Take the lock from a canary awaiting approval (handed back at once), or end a run whose
    /// holder on another host stopped renewing its lease.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: Common,
}
