//! `gatekeeper redrive`: parked uploads back to the ingestion bucket, or a DLQ back to its
//! source queue.
//!
//! Exit status: 0 everything moved (or, dry, movable); 2 conflicts or refused keys left
//! objects in the parking lot for a person to decide, or uploads arrived during the run (run
//! again), or (`--dlq`) messages are still in flight; 1 an error or a failed object (the
//! source is kept).

use std::io::Write;
use std::path::PathBuf;

use maintenance::config::MaintenanceConfig;
use maintenance::redrive::dlq;

use crate::commands::common::{self, OutputOrMarkdown as Output};
use crate::render;
use crate::ExitStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service's `gatekeeper.toml` (buckets, `[maintenance.batches]`, queue names).
    #[arg(long, value_name = "FILE", required_unless_present = "dlq")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub dry: crate::args::DryRun,
    /// Objects copied at once; default `[maintenance] concurrency` (16).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=512))]
    pub concurrency: Option<u16>,
    /// Move the messages of this dead-letter queue (name or URL) back to its source queue.
    #[arg(long, value_name = "QUEUE")]
    pub dlq: Option<String>,
    /// With `--dlq`: the source queue; default from `[[queues]]` or SQS's redrive policy.
    #[arg(long, value_name = "QUEUE", requires = "dlq")]
    pub to: Option<String>,
    /// With `--dlq`: move at most this many messages.
    #[arg(long, value_name = "N", requires = "dlq")]
    pub limit: Option<u64>,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    if args.dlq.is_some() && args.output == Output::Markdown {
        anyhow::bail!("--output markdown: `redrive --dlq` reports as text or json");
    }
    let loaded = args
        .config
        .as_deref()
        .map(common::load_config)
        .transpose()?;
    let mconfig = match &args.config {
        Some(path) => maintenance::config::load(path)?,
        None => MaintenanceConfig::default(),
    };
    let config = loaded.as_ref().map(|l| &l.config);
    let rt = crate::aws::runtime()?;
    rt.block_on(async {
        let clients = crate::aws::clients(config.and_then(|c| c.region.as_deref())).await;
        if let Some(queue) = &args.dlq {
            let request = dlq::request(
                &clients.sqs,
                queue,
                args.to.as_deref(),
                config,
                args.dry.dry_run,
                args.limit,
            )
            .await?;
            let (bar, progress) = render::maintenance::dlq_progress();
            let report = dlq::run(&clients.sqs, &request, &progress).await;
            bar.finish();
            return render::maintenance::dlq(&report?, args.output, out);
        }
        let config = config.expect("clap requires --config");
        let buckets =
            maintenance::buckets::resolve(config, &mconfig, &clients.cloudformation).await?;
        let concurrency =
            maintenance::plan::concurrency(args.concurrency.map(usize::from), &mconfig);
        let request = maintenance::plan::redrive_request(
            config,
            &mconfig,
            &buckets,
            concurrency,
            args.dry.dry_run,
            None,
        );
        let report = common::redrive_objects(&clients, &request).await?;
        render::maintenance::redrive(&report, args.output, out)
    })
}
