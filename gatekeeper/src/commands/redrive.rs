//! `gatekeeper redrive`: parked uploads back to the ingestion bucket, or a DLQ back to its
//! source queue.
//!
//! Exit status: 0 everything moved (or, dry, movable); 2 conflicts or refused keys left
//! objects in the parking lot for a person to decide, or uploads arrived during the run (run
//! again), or (`--dlq`) messages are still in flight; 1 an error or a failed object (the
//! source is kept).

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use maintenance::config::MaintenanceConfig;
use maintenance::redrive::{self, dlq, BatchRules, Event, Outcome, Report};
use stacks::config::Config;

use crate::aws::Clients;
use crate::commands::common::{self, OutputOrMarkdown as Output};
use crate::ui;
use crate::ExitStatus;

/// Test hook: the process kills itself (SIGKILL) right after this many copies are verified,
/// before their sources are deleted, so crash tests interrupt a redrive at its worst moment.
pub const KILL_AFTER_ENV: &str = "GATEKEEPER_TEST_KILL_AFTER_COPIES";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service's `gatekeeper.toml` (buckets, `[maintenance.batches]`, queue names).
    #[arg(long, value_name = "FILE", required_unless_present = "dlq")]
    pub config: Option<PathBuf>,
    /// Show what would move and change nothing.
    #[arg(long)]
    pub dry_run: bool,
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
    let rt = crate::aws::runtime()?;
    rt.block_on(async {
        let region = loaded.as_ref().and_then(|l| l.config.region.as_deref());
        let clients = crate::aws::clients(region).await;
        if let Some(queue) = &args.dlq {
            return run_dlq(
                args,
                queue,
                loaded.as_ref().map(|l| &l.config),
                &clients,
                out,
            )
            .await;
        }
        let config = &loaded.as_ref().expect("clap requires --config").config;
        let concurrency = args
            .concurrency
            .map(usize::from)
            .unwrap_or(*mconfig.concurrency.get_ref());
        let report = objects(config, &mconfig, &clients, args.dry_run, concurrency, None).await?;
        render(&report, args.output, out)?;
        Ok(status_of(&report))
    })
}

/// The exit status of an object redrive.
pub fn status_of(report: &Report) -> ExitStatus {
    if report.failures > 0 {
        ExitStatus::Error
    } else if !report.complete() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    }
}

/// Parking-lot and ingestion bucket names: `[maintenance]`, then `[buckets]`, then the rails
/// stack's outputs.
pub async fn buckets(
    config: &Config,
    mconfig: &MaintenanceConfig,
    clients: &Clients,
) -> anyhow::Result<(String, String)> {
    let mut parking = mconfig.parking_lot_bucket.clone().or_else(|| {
        config
            .buckets
            .parking_lot
            .as_ref()
            .map(|b| b.get_ref().clone())
    });
    let mut ingestion = mconfig.ingestion_bucket.clone().or_else(|| {
        config
            .buckets
            .ingestion
            .as_ref()
            .map(|b| b.get_ref().clone())
    });
    if parking.is_none() || ingestion.is_none() {
        let stack = config.stack_name();
        let live = stack_deploy::describe(&clients.cloudformation, &stack).await?;
        let output = |name: &str| {
            live.as_ref().and_then(|s| {
                s.outputs()
                    .iter()
                    .find(|o| o.output_key() == Some(name))
                    .and_then(|o| o.output_value().map(str::to_string))
            })
        };
        parking = parking.or_else(|| output("ParkingLotBucketName"));
        ingestion = ingestion.or_else(|| output("IngestionBucketName"));
        if parking.is_none() || ingestion.is_none() {
            anyhow::bail!(
                "cannot tell the bucket names: set [maintenance] parking_lot_bucket and ingestion_bucket, \
                 or [buckets] names, or deploy stack {stack} (its outputs name them)"
            );
        }
    }
    Ok((parking.unwrap_or_default(), ingestion.unwrap_or_default()))
}

/// Runs the object redrive with a progress bar on standard error; the parking lot is listed
/// no sooner than `list_after` (a dry run does not wait).
pub async fn objects(
    config: &Config,
    mconfig: &MaintenanceConfig,
    clients: &Clients,
    dry_run: bool,
    concurrency: usize,
    list_after: Option<tokio::time::Instant>,
) -> anyhow::Result<Report> {
    let (parking, ingestion) = buckets(config, mconfig, clients).await?;
    let mut request = redrive::Request::new(
        &parking,
        &ingestion,
        BatchRules::from_config(mconfig.batches(), &config.prefix()),
    );
    request.concurrency = concurrency;
    request.dry_run = dry_run;
    request.list_after = list_after;
    let bar = Bar::new("redrive");
    let kill_after: Option<usize> = std::env::var(KILL_AFTER_ENV)
        .ok()
        .and_then(|v| v.parse().ok());
    let copies = Arc::new(AtomicUsize::new(0));
    let sink: redrive::Sink = {
        let bar = bar.clone();
        Arc::new(move |event| match event {
            Event::WaitingForFlagReaders { left } => bar.line(&format!(
                "listing s3://{parking} in {}s ([maintenance] flag_ttl_seconds): services \
                 answering from their cached flag may still park uploads",
                left.as_secs_f64().ceil()
            )),
            Event::Listed { objects, batches } => {
                bar.set_length(objects as u64);
                bar.line(&format!(
                    "{objects} objects in s3://{parking}, {batches} batches"
                ));
            }
            Event::Batch { id, alive } if !alive => {
                bar.line(&format!("batch {id} is gone: its objects are rewritten"))
            }
            Event::Batch { .. } => {}
            Event::Copied { .. } => {
                let n = copies.fetch_add(1, Ordering::SeqCst) + 1;
                if kill_after.is_some_and(|k| n >= k) {
                    kill_self();
                }
            }
            Event::Finished(r) => {
                bar.inc(1);
                match &r.outcome {
                    Outcome::Conflict { reason } => {
                        bar.line(&format!("conflict: {}: {reason}", r.key))
                    }
                    Outcome::Failed { error } => bar.line(&format!("failed: {}: {error}", r.key)),
                    _ => {}
                }
            }
        })
    };
    let report = redrive::run(
        &redrive::Clients {
            s3: clients.s3.clone(),
            sqs: clients.sqs.clone(),
        },
        &request,
        sink,
    )
    .await;
    bar.finish();
    Ok(report?)
}

/// The crash-test hook: die as `kill -9` would, with no cleanup at all.
fn kill_self() -> ! {
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status();
    std::process::abort()
}

/// The report in `output` (`maintenance off`, which renders no markdown, passes its own
/// `--output`).
pub fn render(
    report: &Report,
    output: impl Into<Output>,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let output = output.into();
    match output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(report)?)?,
        Output::Text | Output::Markdown => {
            let md = output == Output::Markdown;
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
                    _ if r.dead_batch.is_some() => {
                        format!("rewritten {} -> {}", r.key, r.destination)
                    }
                    _ => String::new(),
                };
                let bullet = if md { "- " } else { "  " };
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
                writeln!(out, "{}arrived   {key}", if md { "- " } else { "  " })?;
            }
        }
    }
    Ok(())
}

async fn run_dlq(
    args: &Args,
    queue: &str,
    config: Option<&Config>,
    clients: &Clients,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let from_config = config.and_then(|c| {
        c.queues
            .iter()
            .find(|q| c.dlq_name(q) == queue || q.name.get_ref() == queue)
            .map(|q| (c.dlq_name(q), c.queue_name(q)))
    });
    let (dlq_name, source) = match (&args.to, from_config) {
        (Some(to), Some((dlq, _))) => (dlq, to.clone()),
        (Some(to), None) => (queue.to_string(), to.clone()),
        (None, Some(pair)) => pair,
        (None, None) => {
            let source = dlq::source_of(&clients.sqs, queue).await?.ok_or_else(|| {
                anyhow::anyhow!(
                    "cannot tell the source queue of {queue}: give --to <queue>, or --config with its [[queues]] entry"
                )
            })?;
            (queue.to_string(), source)
        }
    };
    let request = dlq::Request {
        dlq: dlq_name,
        source,
        dry_run: args.dry_run,
        limit: args.limit,
        visibility_timeout: std::time::Duration::from_secs(60),
    };
    let bar = Bar::new("redrive --dlq");
    let progress = {
        let bar = bar.clone();
        move |moved: u64, found: u64| {
            bar.set_length(found.max(moved));
            bar.set_position(moved);
        }
    };
    let report = dlq::run(&clients.sqs, &request, &progress).await;
    bar.finish();
    let report = report?;
    match args.output {
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
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
    Ok(if report.failures > 0 {
        ExitStatus::Error
    } else if !report.complete() {
        ExitStatus::Changes
    } else {
        ExitStatus::Success
    })
}

/// A counting bar on standard error when it is a terminal; plain lines otherwise.
#[derive(Clone)]
pub struct Bar {
    bar: Option<indicatif::ProgressBar>,
    prefix: String,
}

impl Bar {
    pub fn new(prefix: &str) -> Self {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(prefix.to_string());
            bar
        });
        Bar {
            bar,
            prefix: prefix.to_string(),
        }
    }

    pub fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("{}: {text}", self.prefix)),
            None => ui::eprintln!("{}: {text}", self.prefix),
        }
    }

    pub fn set_length(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(n);
        }
    }

    pub fn set_position(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(n);
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
