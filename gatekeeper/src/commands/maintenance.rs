//! `gatekeeper maintenance on|off|status`.
//!
//! Exit status:
//! - `on`: 0 flag set, queues drained, hooks run; 2 refused by the preflight
//!   (`[maintenance.in_flight] refuse`) or the queues did not drain before the timeout (the
//!   flag stays on; run `on` again to keep waiting, or `off`); 1 an error (a failed hook, AWS).
//! - `off`: as `redrive` (0 all moved, 2 conflicts, 1 failures); the flag is cleared first,
//!   and the parking lot listed `[maintenance] flag_ttl_seconds` later, once every service
//!   has noticed and stopped parking uploads.
//! - `status`: 0 off, 2 on, 1 error.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use maintenance::{
    self, journal::Journal, preflight::InFlight, Event, OnOutcome, OnRequest,
};

use crate::commands::common::{self, Output};
use crate::commands::redrive;
use crate::ExitStatus;

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

#[derive(Debug, clap::Args)]
pub struct Common {
    /// The service's `gatekeeper.toml`.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, clap::Args)]
pub struct OnArgs {
    #[command(flatten)]
    pub common: Common,
    /// Shown to users while maintenance lasts.
    #[arg(long, default_value = "Down for maintenance")]
    pub message: String,
    /// When maintenance is expected to end (RFC 3339), e.g. 2026-11-22T14:00:00Z.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Show what would happen and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds to wait for the queues; default `[maintenance] drain_timeout_seconds`.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Where the journal of maintenance runs is kept.
    #[arg(long, value_name = "DIR", default_value = ".gatekeeper/journal")]
    pub journal_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct OffArgs {
    #[command(flatten)]
    pub common: Common,
    /// Show what would happen and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only clear the flag; leave the parking lot for a later `gatekeeper redrive`.
    #[arg(long)]
    pub no_redrive: bool,
    /// Objects copied at once; default `[maintenance] concurrency`.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    #[arg(long, value_name = "DIR", default_value = ".gatekeeper/journal")]
    pub journal_dir: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub common: Common,
}

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let common = match &args.command {
        MaintenanceCommand::On(a) => &a.common,
        MaintenanceCommand::Off(a) => &a.common,
        MaintenanceCommand::Status(a) => &a.common,
    };
    let loaded = common::load_config(&common.config)?;
    let mconfig = maintenance::config::load(&common.config)?;
    let rt = crate::aws::runtime()?;
    rt.block_on(async {
        let clients = crate::aws::clients(loaded.config.region.as_deref()).await;
        let target = maintenance::target(&loaded.config, &mconfig, &clients.sqs).await?;
        // `on` needs the buckets only to look for in-flight objects; the others need them.
        let buckets = redrive::buckets(&loaded.config, &mconfig, &clients).await;
        let buckets = match (&args.command, buckets) {
            (_, Ok(b)) => Some(b),
            (MaintenanceCommand::On(_), Err(_)) => None,
            (_, Err(e)) => return Err(e),
        };
        let parking = buckets.as_ref().map(|b| b.0.as_str()).unwrap_or_default();
        let mclients = maintenance::Clients {
            ssm: &clients.ssm,
            sqs: &clients.sqs,
            s3: &clients.s3,
            ingestion_bucket: buckets.as_ref().map(|b| b.1.as_str()),
        };
        match &args.command {
            MaintenanceCommand::Status(a) => {
                let status = maintenance::status(&mclients, &target, parking).await?;
                match a.common.output {
                    Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&status)?)?,
                    _ => {
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
                            writeln!(out, "queue {}: {} visible, {} in flight, {} delayed", d.queue, d.visible, d.in_flight, d.delayed)?;
                        }
                        for d in &status.dead_letter_queues {
                            writeln!(out, "dlq   {}: {} messages", d.queue, d.total())?;
                        }
                        writeln!(out, "parking lot s3://{}: {} objects", status.parking_lot_bucket, status.parking_lot_objects)?;
                    }
                }
                Ok(if status.flag.is_some_and(|f| f.enabled) { ExitStatus::Changes } else { ExitStatus::Success })
            }
            MaintenanceCommand::On(a) => {
                let journal_path = Journal::path_in(&a.journal_dir, &target.service, &target.environment);
                if a.dry_run {
                    let in_flight = maintenance::preflight::in_flight(&mclients, &mconfig.in_flight).await?;
                    let flag = maintenance::read_flag(&clients.ssm, &target.flag_parameter).await?;
                    let journal = Journal::open(&journal_path)?;
                    writeln!(out, "dry run: nothing was changed")?;
                    render_in_flight(&in_flight, out)?;
                    writeln!(out, "would set {} (now {})", target.flag_parameter, flag.map(|f| f.to_json()).unwrap_or_else(|| "absent".into()))?;
                    for q in &target.queues {
                        let d = maintenance::queues::depth(&clients.sqs, q).await?;
                        writeln!(out, "would wait for queue {q} ({} messages now)", d.total())?;
                    }
                    writeln!(out, "would count the queues as drained no sooner than {}s after setting the flag ([maintenance] flag_ttl_seconds)", mconfig.flag_ttl().as_secs())?;
                    for h in &mconfig.hooks {
                        writeln!(out, "would run hook {}: {}", h.name, h.command.get_ref().join(" "))?;
                    }
                    if let Some((run, steps)) = journal.unfinished() {
                        writeln!(out, "would resume run {run} (done: {})", steps.join(", "))?;
                    }
                    return Ok(ExitStatus::Success);
                }
                let who = caller(&clients).await?;
                let mut journal = Journal::open(&journal_path)?;
                let request = OnRequest {
                    message: a.message.clone(),
                    until: a.until.clone(),
                    who,
                    drain_timeout: a.timeout.map(Duration::from_secs).unwrap_or(mconfig.drain_timeout()),
                    poll_interval: mconfig.poll_interval(),
                    flag_ttl: mconfig.flag_ttl(),
                };
                let view = DrainView::new();
                let on_event = |e: Event| view.event(e);
                let outcome = maintenance::on(&mclients, &target, &mconfig, &mut journal, &request, &on_event).await;
                view.finish();
                let outcome = outcome?;
                if a.common.output == Output::Json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&outcome)?)?;
                }
                Ok(match outcome {
                    OnOutcome::Done { flag, in_flight, waited } => {
                        if a.common.output != Output::Json {
                            render_in_flight(&in_flight, out)?;
                            writeln!(out, "maintenance is on: {}", flag.to_json())?;
                            writeln!(out, "queues drained after {}s; hooks done", waited.as_secs())?;
                        }
                        ExitStatus::Success
                    }
                    OnOutcome::Refused { in_flight } => {
                        if a.common.output != Output::Json {
                            render_in_flight(&in_flight, out)?;
                            writeln!(out, "refused: work is in flight and [maintenance.in_flight] refuse = true; the flag was not set")?;
                        }
                        ExitStatus::Changes
                    }
                    OnOutcome::NotDrained { flag, waited, remaining } => {
                        if a.common.output != Output::Json {
                            writeln!(out, "maintenance is on: {}", flag.to_json())?;
                            writeln!(out, "queues not drained after {}s; hooks not run:", waited.as_secs())?;
                            for d in remaining {
                                writeln!(out, "  {}: {} visible, {} in flight, {} delayed", d.queue, d.visible, d.in_flight, d.delayed)?;
                            }
                            writeln!(out, "run `maintenance on` again to keep waiting, or `maintenance off` to give up")?;
                        }
                        ExitStatus::Changes
                    }
                })
            }
            MaintenanceCommand::Off(a) => {
                let concurrency = a.concurrency.unwrap_or(*mconfig.concurrency.get_ref()).max(1);
                let ttl = mconfig.flag_ttl().as_secs();
                if a.dry_run {
                    writeln!(out, "dry run: would clear {}", target.flag_parameter)?;
                    if a.no_redrive {
                        return Ok(ExitStatus::Success);
                    }
                    if a.common.output != Output::Json {
                        writeln!(out, "would list the parking lot {ttl}s after clearing it ([maintenance] flag_ttl_seconds); it holds now:")?;
                    }
                    let report = redrive::objects(&loaded.config, &mconfig, &clients, true, concurrency, None).await?;
                    redrive::render(&report, a.common.output, out)?;
                    return Ok(redrive::status_of(&report));
                }
                let who = caller(&clients).await?;
                let mut journal = Journal::open(&Journal::path_in(&a.journal_dir, &target.service, &target.environment))?;
                let cleared = maintenance::off(&clients.ssm, &target, &mut journal, &who, mconfig.flag_ttl()).await?;
                if a.common.output != Output::Json {
                    writeln!(out, "maintenance is off: {}", cleared.flag.to_json())?;
                }
                if a.no_redrive {
                    if a.common.output != Output::Json {
                        writeln!(out, "services may park uploads for {ttl}s more ([maintenance] flag_ttl_seconds): run `gatekeeper redrive` after that")?;
                    }
                    return Ok(ExitStatus::Success);
                }
                let report = redrive::objects(&loaded.config, &mconfig, &clients, false, concurrency, Some(cleared.noticed_by)).await?;
                redrive::render(&report, a.common.output, out)?;
                Ok(redrive::status_of(&report))
            }
        }
    })
}

/// The caller's ARN, recorded in the flag as `who`.
async fn caller(clients: &crate::aws::Clients) -> anyhow::Result<String> {
    let id = clients
        .sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "GetCallerIdentity: {}",
                aws_sdk_sts::error::DisplayErrorContext(&e)
            )
        })?;
    Ok(id.arn().unwrap_or("unknown").to_string())
}

fn render_in_flight(in_flight: &[InFlight], out: &mut dyn Write) -> anyhow::Result<()> {
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

/// One bar per queue on a terminal (messages gone out of the most seen); a line per change
/// otherwise.
struct DrainView {
    multi: Option<indicatif::MultiProgress>,
    state: Mutex<DrainState>,
}

#[derive(Default)]
struct DrainState {
    bars: BTreeMap<String, (indicatif::ProgressBar, u64)>,
    last: Option<Vec<(String, u64)>>,
}

impl DrainView {
    fn new() -> Self {
        DrainView {
            multi: std::io::stderr()
                .is_terminal()
                .then(indicatif::MultiProgress::new),
            state: Mutex::new(DrainState::default()),
        }
    }

    fn line(&self, text: String) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => crate::ui::eprintln!("{text}"),
        }
    }

    fn event(&self, e: Event) {
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
                if let Some(multi) = &self.multi {
                    for (queue, total) in &now {
                        let entry = state.bars.entry(queue.clone()).or_insert_with(|| {
                            let bar = multi.add(indicatif::ProgressBar::new(0));
                            bar.set_style(
                                indicatif::ProgressStyle::with_template(
                                    "{prefix:>30} [{bar:30}] {msg}",
                                )
                                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                                .progress_chars("=> "),
                            );
                            bar.set_prefix(queue.clone());
                            (bar, 0)
                        });
                        entry.1 = entry.1.max(*total);
                        entry.0.set_length(entry.1.max(1));
                        entry.0.set_position(entry.1 - total);
                        entry
                            .0
                            .set_message(format!("{total} left ({}s)", waited.as_secs()));
                    }
                } else if state.last.as_ref() != Some(&now) {
                    let text: Vec<String> = now.iter().map(|(q, n)| format!("{q}={n}")).collect();
                    crate::ui::eprintln!("drain ({}s): {}", waited.as_secs(), text.join(" "));
                }
                state.last = Some(now);
            }
            Event::HookStarted { name } => self.line(format!("hook {name}: running")),
            Event::HookSkipped { name } => {
                self.line(format!("hook {name}: already done in this run, skipped"))
            }
            Event::HookFinished { name, output } => {
                self.line(format!("hook {name}: done"));
                for l in output.lines() {
                    self.line(format!("  {l}"));
                }
            }
        }
    }

    fn finish(&self) {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for (bar, _) in state.bars.values() {
            bar.finish_and_clear();
        }
    }
}
