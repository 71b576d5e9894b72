//! `gatekeeper canary run|status|resume|abort`: one node through depool, deploy, smoke,
//! repool at a weight, bake; then roll back, or wait for `gatekeeper promote`.
//!
//! Test hook: `GATEKEEPER_CRASH_AFTER=<action>` (e.g. `deploy`, `set-weight`) or
//! `<mode>:<index>` (e.g. `canary:4`) aborts the process right after that action's
//! `completed` record is journaled; prefix `began:` to abort after its `began` record
//! instead. Crash tests use it to kill the gate between any two steps.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use canary::config::{Config, DeployerConfig, Fleet};
use canary::executor::{Executor, Progress, Providers, Settings};
use canary::journal::{self, Journal, Record, RunState};
use canary::machine::{Machine, Mode, Next, Outcome, Plan, Pool};
use canary::provider::{Clock, Deployer, LoadBalancer, Lock, LockInfo, SystemClock};
use serde::Serialize;

use crate::commands::common::Output;
use crate::ExitStatus;

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
}

/// `resume` and `abort` drive a run another process started: they refuse while that process
/// may still be driving it.
#[derive(Debug, Clone, clap::Args)]
pub struct TakeOver {
    #[command(flatten)]
    pub common: Common,
    /// Take the run over although its lock, held on another host, has not expired (its holder
    /// cannot be checked from here): only once that runner is known to be gone.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// The service's gatekeeper.toml (with a [canary] table).
    #[arg(long)]
    pub config: PathBuf,
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

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
    /// Print every action the run would take, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let rt = crate::aws::runtime()?;
    let result = rt.block_on(async {
        match &args.command {
            Sub::Run(a) => start(a, out).await,
            Sub::Status(c) => status(c, out).await,
            Sub::Resume(t) => resume(&t.common, t.force, Action::Resume, out).await,
            Sub::Abort(t) => resume(&t.common, t.force, Action::Abort, out).await,
        }
    });
    crate::aws::report_calls();
    result
}

/// The AWS side of a run, built once from the configuration.
pub(crate) struct Session {
    pub config: Config,
    pub clients: crate::aws::Clients,
    pub lb: Box<dyn LoadBalancer>,
    /// The production side, for messages: the target group, or "the worker fleet".
    pub prod_name: String,
    pub metrics: canary::aws::CloudWatch,
    pub lock: canary::aws::SsmLock,
    pub preflight: canary::aws::AwsPreflight,
    pub deployer: Box<dyn Deployer>,
}

impl Session {
    pub async fn open(path: &std::path::Path) -> anyhow::Result<Session> {
        let config = canary::config::load(path)?;
        let clients = crate::aws::clients(config.region.as_deref()).await;
        let c = &config.canary;
        let (lb, prod_name, source): (Box<dyn LoadBalancer>, String, _) = match c.fleet {
            Fleet::LoadBalancer => {
                let listener = c.listener_arn.clone().unwrap_or_default();
                let prod = c.prod_target_group_arn.clone().unwrap_or_default();
                let canary_tg = c.canary_target_group_arn.clone().unwrap_or_default();
                let source = canary::aws::MetricSource::TargetGroups {
                    load_balancer: canary::aws::load_balancer_dimension(&listener),
                    prod: canary::aws::target_group_dimension(&prod).to_string(),
                    canary: canary::aws::target_group_dimension(&canary_tg).to_string(),
                    latency_statistic: c.metrics.latency_statistic.clone(),
                };
                let lb = canary::aws::Elb {
                    client: clients.elb.clone(),
                    listener_arn: listener,
                    prod_arn: prod.clone(),
                    canary_arn: canary_tg,
                };
                (Box::new(lb) as Box<dyn LoadBalancer>, prod, source)
            }
            Fleet::Workers => {
                let pool = canary::workers::WorkerPool {
                    nodes: c.nodes.clone(),
                    depool_command: c.depool_command.clone(),
                    repool_command: c.repool_command.clone(),
                    state_file: config.journal_path().with_extension("pool.json"),
                };
                // The canary node is known once a run is planned: see `metrics_for`.
                let source = worker_source(&config, "", &c.nodes);
                (
                    Box::new(pool) as Box<dyn LoadBalancer>,
                    "the worker fleet".to_string(),
                    source,
                )
            }
        };
        let metrics = canary::aws::CloudWatch {
            client: clients.cloudwatch.clone(),
            source,
            alarm_prefix: config.alarm_prefix(),
        };
        let lock = canary::aws::SsmLock {
            client: clients.ssm.clone(),
            parameter: config.lock_parameter(),
        };
        let preflight = canary::aws::AwsPreflight::new(
            &config,
            clients.s3.clone(),
            clients.ssm.clone(),
            clients.sts.clone(),
        );
        let deployer: Box<dyn Deployer> = match &c.deployer {
            DeployerConfig::Command { command, current } => {
                Box::new(canary::command::CommandDeployer {
                    command: command.clone(),
                    current: current.clone(),
                    smoke: c.smoke_command.clone(),
                })
            }
            DeployerConfig::Codedeploy {
                application,
                deployment_group,
                node_tag,
                timeout_seconds,
            } => Box::new(canary::aws::CodeDeploy {
                client: clients.codedeploy.clone(),
                application: application.clone(),
                deployment_group: deployment_group.clone(),
                node_tag: node_tag.clone(),
                timeout: Duration::from_secs(*timeout_seconds),
                poll: Duration::from_secs(c.poll_seconds.max(1)),
                smoke: c.smoke_command.clone(),
            }),
        };
        Ok(Session {
            config,
            clients,
            lb,
            prod_name,
            metrics,
            lock,
            preflight,
            deployer,
        })
    }

    /// The metrics of a run: a worker fleet compares the canary node with the other nodes.
    pub fn metrics_for(&self, plan: &Plan) -> canary::aws::CloudWatch {
        let mut metrics = self.metrics.clone();
        if self.config.canary.fleet == Fleet::Workers {
            let others: Vec<String> = plan
                .nodes
                .iter()
                .filter(|n| **n != plan.canary_node)
                .cloned()
                .collect();
            metrics.source = worker_source(&self.config, &plan.canary_node, &others);
        }
        metrics
    }

    pub fn settings(&self, holder: String, auto_promote: bool, dry_run: bool) -> Settings {
        let c = &self.config.canary;
        Settings {
            drain_timeout: Duration::from_secs(c.drain_timeout_seconds),
            health_timeout: Duration::from_secs(c.health_timeout_seconds),
            poll: Duration::from_secs(c.poll_seconds),
            bake: Duration::from_secs(c.bake_seconds),
            interval: Duration::from_secs(c.interval_seconds),
            judge: c.judge.clone(),
            holder,
            lock_ttl: Duration::from_secs(self.config.lock_ttl_seconds()),
            auto_promote,
            dry_run,
        }
    }

    /// The local journal, plus the S3 copy when configured.
    pub async fn journal(&self) -> anyhow::Result<Box<dyn Journal>> {
        let file = journal::FileJournal::new(&self.config.journal_path());
        match &self.config.canary.journal.s3 {
            None => Ok(Box::new(file)),
            Some(url) => {
                let s3 = canary::aws::S3Journal::open(
                    self.clients.s3.clone(),
                    url,
                    &self.config.prefix(),
                )
                .await?;
                Ok(Box::new(journal::Tee(vec![Box::new(file), Box::new(s3)])))
            }
        }
    }

    /// The last run: from the local journal, or from the S3 copy when that holds more (the
    /// run was started or continued on another runner).
    pub async fn last_run(&self) -> anyhow::Result<Option<RunState>> {
        let path = self.config.journal_path();
        let mut records = journal::read_file(&path)?;
        if let Some(url) = &self.config.canary.journal.s3 {
            let s3 =
                canary::aws::S3Journal::open(self.clients.s3.clone(), url, &self.config.prefix())
                    .await?;
            let remote = journal::parse(url, s3.text())?;
            if remote.len() > records.len() {
                records = remote;
            }
        }
        Ok(journal::last_run(&records))
    }

    async fn holder(&self) -> String {
        let who = canary::provider::Preflight::caller(&self.preflight)
            .await
            .unwrap_or_else(|_| std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
        format!("{who} on {} (pid {})", local_host(), std::process::id())
    }

    /// Drives `m` to its next resting point, rendering progress, and reports.
    #[allow(clippy::too_many_arguments)]
    pub async fn drive(
        &self,
        m: &mut Machine,
        journal: &mut dyn Journal,
        settings: Settings,
        approve: Option<String>,
        abort: Option<&str>,
        output: Output,
        out: &mut dyn Write,
    ) -> anyhow::Result<ExitStatus> {
        let stop = Arc::new(AtomicBool::new(false));
        if !settings.dry_run {
            watch_signals(stop.clone());
        }
        let crash = std::env::var("GATEKEEPER_CRASH_AFTER").ok();
        let mut view = View::new(output, settings.dry_run);
        let mut on_progress = |p: &Progress| {
            view.show(p);
            if let (
                Some(hook),
                Progress::Journaled {
                    mode,
                    index,
                    action,
                    phase,
                },
            ) = (&crash, p)
            {
                let (want_phase, what) = match hook.strip_prefix("began:") {
                    Some(rest) => ("began", rest),
                    None => ("completed", hook.as_str()),
                };
                if *phase == want_phase
                    && (what == action.name() || what == format!("{}:{index}", mode.as_str()))
                {
                    crate::ui::eprintln!("GATEKEEPER_CRASH_AFTER={hook}: aborting");
                    std::process::abort();
                }
            }
        };
        let metrics = self.metrics_for(m.plan());
        let mut ex = Executor {
            providers: Providers {
                lb: self.lb.as_ref(),
                deployer: self.deployer.as_ref(),
                metrics: &metrics,
                preflight: &self.preflight,
                lock: &self.lock,
                clock: &SystemClock,
            },
            journal,
            settings,
            progress: &mut on_progress,
            stop: stop.clone(),
            lock_kept_at: 0,
        };
        if let Some(who) = approve {
            ex.approve(m, &who).await?;
        }
        if let Some(reason) = abort {
            ex.abort(m, reason).await?;
        }
        let next = ex.drive(m).await?;
        drop(ex);
        view.finish();
        let report = Report::new(m, &next);
        match output {
            Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
            _ => writeln!(out, "{}", report.text())?,
        }
        Ok(match next {
            Next::AwaitApproval | Next::Finished(Outcome::Promoted) => ExitStatus::Success,
            Next::Finished(_) => ExitStatus::Changes,
            Next::Halted { .. } | Next::Do { .. } => ExitStatus::Error,
        })
    }
}

/// A worker fleet's own metrics: `canary` against `others`, by the node dimension.
fn worker_source(config: &Config, canary: &str, others: &[String]) -> canary::aws::MetricSource {
    let m = &config.canary.metrics;
    canary::aws::MetricSource::Workers {
        namespace: m.namespace.clone().unwrap_or_default(),
        dimension: m.node_dimension.clone(),
        canary: canary.to_string(),
        others: others.to_vec(),
        requests: m.requests_metric.clone().unwrap_or_default(),
        errors: m.errors_metric.clone(),
        latency: m.latency_metric.clone(),
        latency_statistic: m.latency_statistic.clone(),
    }
}

/// First SIGINT/SIGTERM: stop at the next safe point and roll back. Second: stop now.
fn watch_signals(stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        loop {
            #[cfg(unix)]
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
            if stop.swap(true, Ordering::SeqCst) {
                crate::ui::eprintln!(
                    "canary: second signal: stopping now; run `gatekeeper canary resume`"
                );
                #[expect(
                    clippy::exit,
                    clippy::disallowed_methods,
                    reason = "a second signal stops at once, as it says"
                )]
                std::process::exit(130);
            }
            crate::ui::eprintln!(
                "canary: signal received: rolling back at the next safe point (again to stop now)"
            );
        }
    });
}

async fn start(a: &RunArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let s = Session::open(&a.common.config).await?;
    if let Some(run) = s.last_run().await? {
        if run.finished.is_none() && run.machine.in_flight() && !a.dry_run {
            anyhow::bail!(
                "run {} ({} → {}) by {} is not finished ({}): `gatekeeper canary resume`, \
                 `gatekeeper promote` or `gatekeeper canary abort` it first",
                run.machine.plan().run_id,
                run.machine.plan().previous,
                run.machine.plan().revision,
                run.holder,
                describe(&run.machine.next()),
            );
        }
    }
    for note in s.config.unchecked_preflight(&a.revision) {
        crate::ui::eprintln!("preflight: {note}");
    }
    let c = &s.config.canary;
    let mut nodes = c.nodes.clone();
    if nodes.is_empty() {
        nodes =
            s.lb.members(Pool::Prod)
                .await?
                .into_iter()
                .map(|h| h.node)
                .collect();
        nodes.sort();
    }
    if nodes.len() < 2 {
        anyhow::bail!(
            "{}: the production group has {} node(s): a canary needs at least two",
            s.prod_name,
            nodes.len()
        );
    }
    let canary_node = a
        .canary_node
        .clone()
        .or_else(|| c.canary_node.clone())
        .unwrap_or_else(|| nodes[0].clone());
    if !nodes.contains(&canary_node) {
        anyhow::bail!(
            "canary node {canary_node} is not in the fleet ({})",
            nodes.join(", ")
        );
    }
    let previous = match &a.previous_revision {
        Some(p) => p.clone(),
        None => s.deployer.current(&canary_node).await?.with_context(|| {
            format!(
                "cannot tell which revision {canary_node} runs (the rollback target): pass \
                 --previous-revision, or set canary.deployer.current in {}",
                a.common.config.display()
            )
        })?,
    };
    if previous == a.revision {
        anyhow::bail!(
            "{canary_node} already runs {}: nothing to deploy",
            a.revision
        );
    }
    let now = SystemClock.now();
    let plan = Plan {
        run_id: format!("{}-{now}-{}", s.config.prefix(), std::process::id()),
        revision: a.revision.clone(),
        previous,
        canary_node,
        nodes,
        canary_weight: c.canary_weight,
        wave_size: c.wave_size,
        auto_promote: a.auto_promote,
    };
    let holder = if a.dry_run {
        "dry-run".to_string()
    } else {
        s.holder().await
    };
    let mut journal: Box<dyn Journal> = if a.dry_run {
        Box::new(journal::MemoryJournal::default())
    } else {
        s.journal().await?
    };
    journal
        .append(&Record::Start {
            at: now,
            holder: holder.clone(),
            plan: plan.clone(),
        })
        .await?;
    let mut m = Machine::new(plan);
    let settings = s.settings(holder, a.auto_promote, a.dry_run);
    s.drive(
        &mut m,
        journal.as_mut(),
        settings,
        None,
        None,
        a.common.output,
        out,
    )
    .await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Resume,
    Abort,
}

async fn resume(
    c: &Common,
    force: bool,
    action: Action,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let s = Session::open(&c.config).await?;
    let Some(run) = s.last_run().await? else {
        writeln!(
            out,
            "no canary run in {}",
            s.config.journal_path().display()
        )?;
        return Ok(ExitStatus::Success);
    };
    let mut m = run.machine.clone();
    let plan = m.plan().clone();
    if run.finished.is_some() || (!m.in_flight() && m.outcome().is_none()) {
        let mut journal = s.journal().await?;
        if run.finished.is_none() {
            // Stopped before the lock: nothing changed; close the run.
            journal
                .append(&Record::Finish {
                    at: SystemClock.now(),
                    outcome: Outcome::Refused {
                        reason: "interrupted before anything changed".into(),
                    },
                })
                .await?;
        }
        let outcome = run.finished.as_ref().map(|f| &f.1).or(m.outcome());
        writeln!(
            out,
            "run {} is over: {}",
            plan.run_id,
            outcome_text(outcome)
        )?;
        return Ok(ExitStatus::Success);
    }
    let holder = s.holder().await;
    let now = SystemClock.now();
    let ttl = s.config.lock_ttl_seconds();
    match s.lock.holder().await? {
        Some(lock) if lock.expires_at > now => {
            if let Some(refusal) = takeover_refusal(&lock, &plan.run_id, &local_host(), force) {
                anyhow::bail!("{refusal}");
            }
            // From here on this process drives the run: a second `resume` sees it alive.
            s.lock
                .renew(&LockInfo {
                    holder: holder.clone(),
                    run_id: plan.run_id.clone(),
                    acquired_at: now,
                    expires_at: now + ttl,
                })
                .await?;
        }
        // Free or expired: whoever held it is gone.
        _ => {}
    }
    let mut journal = s.journal().await?;
    let settings = s.settings(holder, false, false);
    let abort = match (action, m.mode(), m.next()) {
        (Action::Abort, _, _) => Some("aborted by `gatekeeper canary abort`"),
        (Action::Resume, Mode::Canary, Next::AwaitApproval) if plan.auto_promote => {
            Some("resumed after an interruption before the automatic promotion: rolling back")
        }
        (Action::Resume, Mode::Canary, Next::AwaitApproval) => {
            writeln!(
                out,
                "run {} passed its canary and awaits approval: `gatekeeper promote` or `gatekeeper canary abort`",
                plan.run_id
            )?;
            return Ok(ExitStatus::Success);
        }
        (Action::Resume, Mode::Canary, _) => Some("resumed after an interruption: rolling back"),
        _ => None,
    };
    s.drive(
        &mut m,
        journal.as_mut(),
        settings,
        None,
        abort,
        c.output,
        out,
    )
    .await
}

/// This machine's name, as lock holders record it.
fn local_host() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".into())
}

/// The host and process of a lock holder recorded as `<who> on <host> (pid <pid>)`.
fn holder_process(holder: &str) -> Option<(&str, u32)> {
    let (rest, pid) = holder.strip_suffix(')')?.rsplit_once(" (pid ")?;
    let (_, host) = rest.rsplit_once(" on ")?;
    Some((host, pid.parse().ok()?))
}

/// Why `resume`/`abort` of `run_id` must not act while `lock` (unexpired) is held, if it must
/// not: another run holds it, or this run's holder may still be alive.
fn takeover_refusal(lock: &LockInfo, run_id: &str, host: &str, force: bool) -> Option<String> {
    if lock.run_id != run_id {
        return Some(format!(
            "the deploy lock is held by another run, {} ({}), until {}: run {run_id} in the \
             journal is not the live one; see `gatekeeper canary status`",
            lock.run_id, lock.holder, lock.expires_at
        ));
    }
    match holder_process(&lock.holder) {
        Some((h, pid)) if h == host => {
            let alive =
                pid != std::process::id() && std::path::Path::new(&format!("/proc/{pid}")).exists();
            alive.then(|| {
                format!(
                    "run {run_id} is still being driven by pid {pid} on this host ({}): wait \
                     for it, or stop it (SIGTERM rolls back at the next safe point)",
                    lock.holder
                )
            })
        }
        _ if force => None,
        _ => Some(format!(
            "run {run_id} is held by {} until {}, on a host this one cannot check: if that \
             runner is gone, take the run over with --force",
            lock.holder, lock.expires_at
        )),
    }
}

fn outcome_text(o: Option<&Outcome>) -> String {
    match o {
        Some(Outcome::Promoted) => "promoted".into(),
        Some(Outcome::RolledBack { reason }) => format!("rolled back ({reason})"),
        Some(Outcome::Refused { reason }) => format!("refused ({reason})"),
        None => "unfinished".into(),
    }
}

fn describe(next: &Next) -> String {
    match next {
        Next::Do { action, .. } => format!("next: {action}"),
        Next::AwaitApproval => "awaiting approval".into(),
        Next::Halted { reason } => format!("halted: {reason}"),
        Next::Finished(o) => outcome_text(Some(o)),
    }
}

#[derive(Debug, Serialize)]
struct StatusReport {
    lock: Option<canary::provider::LockInfo>,
    lock_parameter: String,
    canary_weight: Option<u8>,
    run: Option<RunSummary>,
}

#[derive(Debug, Serialize)]
struct RunSummary {
    run_id: String,
    holder: String,
    started_at: u64,
    revision: String,
    previous: String,
    canary_node: String,
    mode: Mode,
    state: String,
    approved_by: Option<String>,
    outcome: Option<Outcome>,
}

async fn status(c: &Common, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let s = Session::open(&c.config).await?;
    let lock = s.lock.holder().await?;
    let weight = s.lb.weight().await.ok();
    let run = s.last_run().await?.map(|r| {
        let p = r.machine.plan();
        RunSummary {
            run_id: p.run_id.clone(),
            holder: r.holder.clone(),
            started_at: r.started_at,
            revision: p.revision.clone(),
            previous: p.previous.clone(),
            canary_node: p.canary_node.clone(),
            mode: r.machine.mode(),
            state: match &r.finished {
                Some((_, o)) => outcome_text(Some(o)),
                None => describe(&r.machine.next()),
            },
            approved_by: r.machine.approved_by().map(str::to_string),
            outcome: r.finished.map(|f| f.1),
        }
    });
    let report = StatusReport {
        lock,
        lock_parameter: s.lock.parameter.clone(),
        canary_weight: weight,
        run,
    };
    if c.output == Output::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitStatus::Success);
    }
    match &report.lock {
        Some(l) => writeln!(
            out,
            "lock {}: held by {} (run {}) since {}, expires {}",
            report.lock_parameter, l.holder, l.run_id, l.acquired_at, l.expires_at
        )?,
        None => writeln!(out, "lock {}: free", report.lock_parameter)?,
    }
    if let Some(w) = report.canary_weight {
        writeln!(
            out,
            "listener weights: {}/{w} (prod/canary)",
            100 - w as u16
        )?;
    }
    match &report.run {
        Some(r) => {
            writeln!(
                out,
                "last run {} by {}: {} → {} on {}",
                r.run_id, r.holder, r.previous, r.revision, r.canary_node
            )?;
            writeln!(out, "  mode {}: {}", r.mode.as_str(), r.state)?;
            if let Some(who) = &r.approved_by {
                writeln!(out, "  approved by {who}")?;
            }
        }
        None => writeln!(
            out,
            "no run journaled in {}",
            s.config.journal_path().display()
        )?,
    }
    Ok(ExitStatus::Success)
}

/// The result of a run, for text and JSON.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    run_id: String,
    revision: String,
    previous: String,
    canary_node: String,
    state: &'static str,
    detail: String,
    approved_by: Option<String>,
}

impl Report {
    fn new(m: &Machine, next: &Next) -> Self {
        let p = m.plan();
        let (state, detail) = match next {
            Next::AwaitApproval => (
                "awaiting-approval",
                "the canary passed: `gatekeeper promote` promotes it, `gatekeeper canary abort` rolls it back".to_string(),
            ),
            Next::Finished(Outcome::Promoted) => ("promoted", "every node runs the revision; weights 100/0".into()),
            Next::Finished(Outcome::RolledBack { reason }) => ("rolled-back", reason.clone()),
            Next::Finished(Outcome::Refused { reason }) => ("refused", reason.clone()),
            Next::Halted { reason } => (
                "halted",
                format!("{reason}: fix it, then `gatekeeper canary resume`"),
            ),
            Next::Do { action, .. } => ("stopped", format!("before {action}")),
        };
        Report {
            run_id: p.run_id.clone(),
            revision: p.revision.clone(),
            previous: p.previous.clone(),
            canary_node: p.canary_node.clone(),
            state,
            detail,
            approved_by: m.approved_by().map(str::to_string),
        }
    }

    fn text(&self) -> String {
        format!(
            "canary {} ({} → {} on {}): {}: {}",
            self.run_id, self.previous, self.revision, self.canary_node, self.state, self.detail
        )
    }
}

/// Progress on stderr: a line per step, a bar during the bake on a terminal.
struct View {
    output: Output,
    dry_run: bool,
    bar: Option<indicatif::ProgressBar>,
    terminal: bool,
}

impl View {
    fn new(output: Output, dry_run: bool) -> Self {
        View {
            output,
            dry_run,
            bar: None,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(b) => b.println(text),
            None => crate::ui::eprintln!("{text}"),
        }
    }

    fn show(&mut self, p: &Progress) {
        let _ = self.output;
        match p {
            Progress::Step {
                mode,
                index,
                total,
                action,
                dry_run,
            } => {
                let verb = if *dry_run { "would " } else { "" };
                self.line(format!(
                    "[{} {}/{}] {verb}{action}",
                    mode.as_str(),
                    index + 1,
                    total
                ));
            }
            Progress::Waiting {
                what,
                elapsed_s,
                deadline_s,
            } => {
                if self.terminal {
                    self.line(format!(
                        "  waiting for {what}: {elapsed_s}s of {deadline_s}s"
                    ));
                }
            }
            Progress::Waited { what, took_s } => {
                self.line(format!("  {what}: took {took_s}s"));
            }
            Progress::Bake {
                interval,
                of,
                baseline,
                canary,
                verdict,
            } => {
                if self.terminal && self.bar.is_none() && *of > 1 {
                    let bar = indicatif::ProgressBar::new(*of);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "  bake [{bar:30}] {pos}/{len} {msg}",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    self.bar = Some(bar);
                }
                let msg = format!(
                    "baseline {} req {} err, canary {} req {} err{}",
                    baseline.requests,
                    baseline.errors,
                    canary.requests,
                    canary.errors,
                    verdict
                        .map(|v| format!(": {}", v.as_str()))
                        .unwrap_or_default()
                );
                match &self.bar {
                    Some(b) => {
                        b.set_position(*interval);
                        b.set_message(msg);
                    }
                    None => crate::ui::eprintln!("  bake {interval}/{of}: {msg}"),
                }
            }
            Progress::Approved { who } => self.line(format!("approved by {who}")),
            Progress::Failed { action, reason } => {
                self.line(format!("  failed: {action}: {reason}"))
            }
            Progress::RollingBack { reason } => self.line(format!("rolling back: {reason}")),
            Progress::Journaled { .. } => {}
        }
        let _ = self.dry_run;
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(run_id: &str, holder: &str) -> LockInfo {
        LockInfo {
            holder: holder.into(),
            run_id: run_id.into(),
            acquired_at: 100,
            expires_at: 10_000,
        }
    }

    #[test]
    fn holders_name_their_host_and_process() {
        assert_eq!(
            holder_process("arn:aws:iam::1:user/ci on runner-7 (pid 4242)"),
            Some(("runner-7", 4242))
        );
        assert_eq!(holder_process("someone"), None);
        assert_eq!(holder_process("a on b (pid x)"), None);
    }

    #[test]
    fn another_runs_lock_is_never_taken_over() {
        let other = lock("run-2", "ci on here (pid 1)");
        for force in [false, true] {
            let why = takeover_refusal(&other, "run-1", "here", force).unwrap();
            assert!(why.contains("held by another run, run-2"), "{why}");
        }
    }

    #[test]
    fn a_live_holder_on_this_host_is_refused_and_a_dead_one_is_not() {
        // This test's own parent is alive for as long as the test runs.
        let parent = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()?
                    .split_whitespace()
                    .nth(1)?
                    .parse()
                    .ok()
            })
            .unwrap_or(1u32);
        let live = lock("run-1", &format!("ci on here (pid {parent})"));
        let why = takeover_refusal(&live, "run-1", "here", true).unwrap();
        assert!(
            why.contains(&format!("still being driven by pid {parent}")),
            "{why}"
        );
        // Pids stop well below this on Linux: nobody can be running as it.
        let dead = lock("run-1", "ci on here (pid 4194304)");
        assert_eq!(takeover_refusal(&dead, "run-1", "here", false), None);
        // A holder that is this very process (a resume of its own run) is no obstacle.
        let me = lock("run-1", &format!("ci on here (pid {})", std::process::id()));
        assert_eq!(takeover_refusal(&me, "run-1", "here", false), None);
    }

    #[test]
    fn a_holder_on_another_host_needs_force() {
        let remote = lock("run-1", "ci on runner-7 (pid 12)");
        let why = takeover_refusal(&remote, "run-1", "here", false).unwrap();
        assert!(why.contains("--force"), "{why}");
        assert_eq!(takeover_refusal(&remote, "run-1", "here", true), None);
    }
}
