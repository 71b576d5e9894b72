//! `gatekeeper maintenance on|off|status`.
//!
//! Both `on` and `off` act under the service's lock in the state layer (`[state]`); see the
//! `maintenance` crate's docs for what each does with it.
//!
//! Exit status:
//! - `on`: 0 flag set, queues drained, hooks run (or already on); 2 refused by the lock (a
//!   second `on`, a canary), refused by the preflight (`[maintenance.in_flight] refuse`), the
//!   queues did not drain before the timeout (the flag stays on; run `on` again to keep
//!   waiting, or `off`), or the run was ended by `maintenance off` or found the flag cleared
//!   before a hook; 1 an error (a failed hook, AWS, the state layer).
//! - `off`: as `redrive` (0 all moved, 2 conflicts, 1 failures); the flag is cleared first,
//!   and the parking lot listed `[maintenance] flag_ttl_seconds` later, once every service
//!   has noticed and stopped parking uploads. 2 when the lock is held by a canary, or a
//!   running `on` did not stop in time (its run is ended; the flag is still on).
//! - `status`: 0 off, 2 on, 1 error.

use std::io::Write;

use maintenance::plan::{self, AfterOff};
use maintenance::{Locking, OnRequest};

use crate::commands::common::{self, Output};
use crate::render::maintenance::{self as render, DrainView};
use crate::ExitStatus;

mod args;
pub use args::*;

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let common = match &args.command {
        MaintenanceCommand::On(a) => &a.common,
        MaintenanceCommand::Off(a) => &a.common,
        MaintenanceCommand::Status(a) => &a.common,
    };
    let loaded = common::load_config(&common.service.config)?;
    let (config, mconfig) = (
        &loaded.config,
        maintenance::config::load(&common.service.config)?,
    );
    let rt = crate::aws::runtime()?;
    rt.block_on(async {
        let clients = crate::aws::clients(config.region.as_deref()).await;
        let target = maintenance::target(config, &mconfig, &clients.sqs).await?;
        // `on` needs the buckets only to look for in-flight objects; the others need them.
        let buckets = maintenance::buckets::resolve(config, &mconfig, &clients.cloudformation);
        let buckets = match &args.command {
            MaintenanceCommand::On(_) => buckets.await.ok(),
            _ => Some(buckets.await?),
        };
        let name = format!("{}-{}", target.service, target.environment);
        let scope = crate::store::scope(&mconfig.state, &name, &clients.s3)?;
        let locking = |force| Locking {
            scope: scope.clone(),
            lease: mconfig.state.lease_seconds(),
            force,
        };
        let mclients = maintenance::Clients {
            ssm: &clients.ssm,
            sqs: &clients.sqs,
            s3: &clients.s3,
            ingestion_bucket: buckets.as_ref().map(|b| b.ingestion.as_str()),
        };
        let ttl = mconfig.flag_ttl();
        match &args.command {
            MaintenanceCommand::Status(a) => {
                let parking = buckets
                    .as_ref()
                    .map(|b| b.parking_lot.as_str())
                    .unwrap_or_default();
                let status = maintenance::status(&mclients, &target, parking).await?;
                let lock = match a.common.output {
                    Output::Text => Some((scope.location(), maintenance::lock_info(&scope).await?)),
                    Output::Json => None,
                };
                render::status(&status, lock, a.common.output, out)
            }
            MaintenanceCommand::On(a) if a.dry.dry_run => render::on_plan(
                &plan::plan_on(&mclients, &target, &mconfig, &scope).await?,
                out,
            ),
            MaintenanceCommand::On(a) => {
                let who = crate::store::caller(&clients.sts).await;
                let request =
                    OnRequest::new(&a.message, a.until.as_deref(), who, a.timeout, &mconfig);
                let view = DrainView::new();
                let on_event = |e| view.event(e);
                let outcome = maintenance::on(
                    &mclients,
                    &target,
                    &mconfig,
                    &locking(a.force),
                    &request,
                    &on_event,
                )
                .await;
                view.finish();
                render::on_outcome(&outcome?, &target.flag_parameter, a.common.output, out)
            }
            MaintenanceCommand::Off(a) => {
                let buckets = buckets.expect("resolved above for `off`");
                let concurrency = plan::concurrency(a.concurrency, &mconfig);
                let request = |dry, after| {
                    plan::redrive_request(config, &mconfig, &buckets, concurrency, dry, after)
                };
                let output = a.common.output;
                if a.dry.dry_run {
                    render::off_plan(&target.flag_parameter, !a.no_redrive, ttl, output, out)?;
                    if a.no_redrive {
                        return Ok(ExitStatus::Success);
                    }
                    return render::redrive(
                        &common::redrive_objects(&clients, &request(true, None)).await?,
                        output,
                        out,
                    );
                }
                let who = crate::store::caller(&clients.sts).await;
                let wait = plan::off_wait(&mconfig, mconfig.state.lease_seconds());
                let outcome = maintenance::off(
                    &clients.ssm,
                    &target,
                    &locking(a.force),
                    &who,
                    ttl,
                    wait,
                    &render::off_event,
                )
                .await?;
                render::off_outcome(&outcome, wait, output, out)?;
                match plan::after_off(&outcome, !a.no_redrive) {
                    AfterOff::NotCleared => Ok(ExitStatus::Changes),
                    AfterOff::LeaveParkingLot => render::parking_lot_left(ttl, output, out),
                    AfterOff::Redrive { list_after } => {
                        let report =
                            common::redrive_objects(&clients, &request(false, Some(list_after)))
                                .await?;
                        render::redrive(&report, output, out)
                    }
                }
            }
        }
    })
}
