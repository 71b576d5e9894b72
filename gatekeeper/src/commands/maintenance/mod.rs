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

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use maintenance::{self, preflight::InFlight, Event, Locking, OffOutcome, OnOutcome, OnRequest};

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
    #[arg(long, value_name = "TIME", value_parser = maintenance::config::parse_until)]
    pub until: Option<String>,
    /// Show what would happen and change nothing.
    #[arg(long)]
    pub dry_run: bool,
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
    /// Show what would happen and change nothing.
    #[arg(long)]
    pub dry_run: bool,
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
        let scope = crate::store::scope(
            &mconfig.state,
            &format!("{}-{}", target.service, target.environment),
            &clients.s3,
        )?;
        let lease = mconfig.state.lease_seconds();
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
                        match maintenance::lock_info(&scope).await? {
                            None => writeln!(out, "lock {}: never taken", scope.location())?,
                            Some(l) => writeln!(out, "lock {}: {} by {} run {} (generation {})", scope.location(), lock_state(l.state), l.purpose, l.run_id, l.generation)?,
                        }
                    }
                }
                Ok(if status.flag.is_some_and(|f| f.enabled) { ExitStatus::Changes } else { ExitStatus::Success })
            }
            MaintenanceCommand::On(a) => {
                if a.dry_run {
                    let in_flight = maintenance::preflight::in_flight(&mclients, &mconfig.in_flight).await?;
                    let flag = maintenance::read_flag(&clients.ssm, &target.flag_parameter).await?;
                    let lock = maintenance::lock_info(&scope).await?;
                    writeln!(out, "dry run: nothing was changed")?;
                    render_in_flight(&in_flight, out)?;
                    match &lock {
                        Some(l) if l.purpose == maintenance::PURPOSE && l.state != state::LockState::Free => {
                            let p = maintenance::progress(&scope, &l.run_id).await?;
                            writeln!(out, "would resume run {} (done: {})", l.run_id, p.steps().join(", "))?;
                        }
                        Some(l) if l.state != state::LockState::Free => writeln!(
                            out,
                            "the lock {} is {} by {} run {}: `on` would be refused{}",
                            scope.location(), lock_state(l.state), l.purpose, l.run_id,
                            if l.state == state::LockState::Parked { " (unless --force)" } else { "" }
                        )?,
                        _ => writeln!(out, "would take the lock {}", scope.location())?,
                    }
                    writeln!(out, "would set {} (now {})", target.flag_parameter, flag.map(|f| f.to_json()).unwrap_or_else(|| "absent".into()))?;
                    for q in &target.queues {
                        let d = maintenance::queues::depth(&clients.sqs, q).await?;
                        writeln!(out, "would wait for queue {q} ({} messages now)", d.total())?;
                    }
                    writeln!(out, "would count the queues as drained no sooner than {}s after setting the flag ([maintenance] flag_ttl_seconds)", mconfig.flag_ttl().as_secs())?;
                    for h in &mconfig.hooks {
                        writeln!(out, "would run hook {}: {}", h.name, h.command.get_ref().join(" "))?;
                    }
                    return Ok(ExitStatus::Success);
                }
                let who = crate::store::caller(&clients.sts).await;
                let request = OnRequest {
                    message: a.message.clone(),
                    until: a.until.clone(),
                    who,
                    drain_timeout: a.timeout.map(Duration::from_secs).unwrap_or(mconfig.drain_timeout()),
                    poll_interval: mconfig.poll_interval(),
                    flag_ttl: mconfig.flag_ttl(),
                };
                let locking = Locking { scope, lease, force: a.force };
                let view = DrainView::new();
                let on_event = |e: Event| view.event(e);
                let outcome = maintenance::on(&mclients, &target, &mconfig, &locking, &request, &on_event).await;
                view.finish();
                let outcome = outcome?;
                if a.common.output == Output::Json {
                    writeln!(out, "{}", serde_json::to_string_pretty(&outcome)?)?;
                }
                let text = a.common.output != Output::Json;
                Ok(match outcome {
                    OnOutcome::Done { run, flag, in_flight, waited } => {
                        if text {
                            render_in_flight(&in_flight, out)?;
                            writeln!(out, "maintenance is on: {}", flag.to_json())?;
                            writeln!(out, "queues drained after {}s; hooks done (run {run}; the lock stays with it until `maintenance off`)", waited.as_secs())?;
                        }
                        ExitStatus::Success
                    }
                    OnOutcome::AlreadyOn { run } => {
                        if text {
                            writeln!(out, "maintenance is already on: run {run} is done; no hook runs again (`maintenance off` ends it)")?;
                        }
                        ExitStatus::Success
                    }
                    OnOutcome::Held { reason } => {
                        if text {
                            writeln!(out, "refused: {reason}; nothing was changed")?;
                        }
                        ExitStatus::Changes
                    }
                    OnOutcome::Refused { in_flight } => {
                        if text {
                            render_in_flight(&in_flight, out)?;
                            writeln!(out, "refused: work is in flight and [maintenance.in_flight] refuse = true; the flag was not set")?;
                        }
                        ExitStatus::Changes
                    }
                    OnOutcome::NotDrained { run, flag, waited, remaining } => {
                        if text {
                            writeln!(out, "maintenance is on: {}", flag.to_json())?;
                            writeln!(out, "queues not drained after {}s; hooks not run:", waited.as_secs())?;
                            for d in remaining {
                                writeln!(out, "  {}: {} visible, {} in flight, {} delayed", d.queue, d.visible, d.in_flight, d.delayed)?;
                            }
                            writeln!(out, "run `maintenance on` again to keep waiting (run {run}), or `maintenance off` to give up")?;
                        }
                        ExitStatus::Changes
                    }
                    OnOutcome::Ended { run, who, not_run } => {
                        if text {
                            writeln!(out, "stopped: run {run} was ended by `maintenance off` ({who}); no hook runs after the flag is off; not run: {}", if not_run.is_empty() { "none".to_string() } else { not_run.join(", ") })?;
                        }
                        ExitStatus::Changes
                    }
                    OnOutcome::FlagCleared { run, hook } => {
                        if text {
                            writeln!(out, "stopped: the flag {} was found off before hook {hook}: it and the hooks after it were not run; `maintenance on` sets the flag again and resumes run {run}, `maintenance off` ends it", target.flag_parameter)?;
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
                let who = crate::store::caller(&clients.sts).await;
                let locking = Locking { scope, lease, force: a.force };
                // A running `on` is let finish its hook: its longest timeout, and two leases.
                let longest = mconfig.hooks.iter().map(|h| h.timeout_seconds).max().unwrap_or(0);
                let wait = Duration::from_secs(longest + 2 * lease);
                let on_event = |e: Event| {
                    if let Event::StopRequested { run, hook } = e {
                        crate::ui::eprintln!(
                            "maintenance: run {run} is running{}: it was asked to stop before its next hook; waiting for it to let go of the lock",
                            hook.map(|h| format!(" hook {h}")).unwrap_or_default()
                        );
                    }
                };
                let outcome = maintenance::off(&clients.ssm, &target, &locking, &who, mconfig.flag_ttl(), wait, &on_event).await?;
                let cleared = match outcome {
                    OffOutcome::Cleared { cleared, run, handed_back } => {
                        if a.common.output != Output::Json {
                            writeln!(out, "maintenance is off: {} (run {run} ended)", cleared.flag.to_json())?;
                            if let Some(c) = handed_back {
                                writeln!(out, "the lock is back with run {c}, parked as it was")?;
                            }
                        }
                        cleared
                    }
                    OffOutcome::Held { reason } => {
                        writeln!(out, "refused: {reason}; the flag was not changed")?;
                        return Ok(ExitStatus::Changes);
                    }
                    OffOutcome::StillRunning { run, hook } => {
                        writeln!(out, "run {run} is ended (no hook starts again) but is still running{} after {}s: the flag is still on; run `maintenance off` again once it stops", hook.map(|h| format!(" hook {h}")).unwrap_or_default(), wait.as_secs())?;
                        return Ok(ExitStatus::Changes);
                    }
                };
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

fn lock_state(s: state::LockState) -> &'static str {
    match s {
        state::LockState::Held => "held",
        state::LockState::Parked => "parked",
        state::LockState::Free => "free",
    }
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
            Event::Preempted { run, purpose } => self.line(format!(
                "maintenance: --force took the lock from {purpose} run {run}, which was parked (awaiting \
                 approval): it stays where it is, and gets the lock back when `maintenance off` lets go"
            )),
            Event::StopRequested { .. } => {}
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
