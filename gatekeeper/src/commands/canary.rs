//! `gatekeeper canary run|status|resume|abort` (and `report|export|history`, in
//! `canary_evidence`): one node through depool, deploy, smoke,
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
use canary::fenced::FencedLock;
use canary::journal::{self, Journal, Record, RunState, StateJournal};
use canary::machine::{Machine, Mode, Next, Outcome, Plan, Pool};
use canary::provider::{Clock, Deployer, LoadBalancer, SystemClock};
use serde::Serialize;
use state::lock::{Claim, Keeper, LockInfo, LockState, Mode as LockMode};
use state::{Holder, RunJournal, Scope, StateError};

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
    /// The bake's evidence: every look, the judge's bounds and e-values, the verdict.
    Report(crate::commands::canary_evidence::ReportArgs),
    /// The bake's observations in `gatekeeper judge`'s input format, to replay the decision.
    Export(crate::commands::canary_evidence::ExportArgs),
    /// The service's last runs: revision, outcome, who, when, how long.
    History(crate::commands::canary_evidence::HistoryArgs),
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
    #[arg(long)]
    pub force: bool,
    /// Read the run and the fleet, print every action this would take, and change nothing:
    /// no lock taken, nothing journaled.
    #[arg(long, conflicts_with = "force")]
    pub dry_run: bool,
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
            Sub::Resume(t) if t.dry_run => preview(&t.common, Action::Resume, out).await,
            Sub::Abort(t) if t.dry_run => preview(&t.common, Action::Abort, out).await,
            Sub::Resume(t) => resume(&t.common, t.force, Action::Resume, out).await,
            Sub::Abort(t) => resume(&t.common, t.force, Action::Abort, out).await,
            Sub::Report(a) => crate::commands::canary_evidence::report(a, out).await,
            Sub::Export(a) => crate::commands::canary_evidence::export(a, out).await,
            Sub::History(a) => crate::commands::canary_evidence::history(a, out).await,
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
    /// The lock and the journals of this service and environment.
    pub scope: Scope,
    pub preflight: canary::aws::AwsPreflight,
    pub deployer: Box<dyn Deployer>,
}

impl Session {
    pub async fn open(path: &std::path::Path) -> anyhow::Result<Session> {
        let config = canary::config::load(path)?;
        let clients = crate::aws::clients(config.region.as_deref()).await;
        let scope = crate::store::scope(&config.state, &config.prefix(), &clients.s3)?;
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
                    state: scope.clone(),
                }
                .with_timeouts(c.timeouts);
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
        let preflight = canary::aws::AwsPreflight::new(
            &config,
            clients.s3.clone(),
            clients.ssm.clone(),
            clients.sts.clone(),
        );
        let deployer: Box<dyn Deployer> = match &c.deployer {
            DeployerConfig::Command { command, current } => Box::new(
                canary::command::CommandDeployer {
                    command: command.clone(),
                    current: current.clone(),
                    smoke: c.smoke_command.clone(),
                }
                .with_timeouts(c.timeouts),
            ),
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
            scope,
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
            evidence: canary::evidence::Context {
                service: self.config.service.clone(),
                environment: self.config.environment.clone(),
                started_by: holder.clone(),
                alarms_watched: vec![format!(
                    "{}* (alarms in ALARM stop the bake)",
                    self.config.alarm_prefix()
                )],
                config_check: None,
            },
            holder,
            lock_ttl: Duration::from_secs(self.config.lease_seconds()),
            auto_promote,
            dry_run,
        }
    }

    /// The newest canary run (every record checked).
    pub async fn last_run(&self) -> anyhow::Result<Option<RunState>> {
        Ok(journal::last_run(&self.scope).await?)
    }

    /// Who acts: the caller's ARN, else `$USER`.
    pub async fn who(&self) -> String {
        crate::store::caller(&self.clients.sts).await
    }

    /// Takes the deploy lock for `run_id` as this process, or says why not (exit 2).
    pub async fn take(
        &self,
        run_id: &str,
        who: &str,
        command: &str,
        mode: LockMode,
    ) -> anyhow::Result<Result<Keeper, String>> {
        let claim = Claim {
            run_id: run_id.to_string(),
            purpose: "canary".into(),
            holder: Holder::this_process(who, command),
            ttl: self.config.lease_seconds(),
        };
        match state::lock::acquire(&self.scope, &claim, mode, SystemClock.now()).await {
            Ok(lease) => Ok(Ok(Keeper::start(&self.scope, lease))),
            Err(StateError::Held(refusal)) => Ok(Err(format!("the deploy lock {refusal}"))),
            Err(e) => Err(e.into()),
        }
    }

    /// The run the lock names, else the newest canary run: what `resume`, `abort` and
    /// `promote` act on. `Err` when another purpose (maintenance) holds the lock.
    pub async fn current_run_id(&self) -> anyhow::Result<Result<Option<String>, String>> {
        if let Some((lock, _)) = state::lock::read(&self.scope).await? {
            if lock.state != LockState::Free {
                if lock.purpose != "canary" {
                    return Ok(Err(format!(
                        "the deploy lock {} is held by {} for {} run {}: no canary run to act on",
                        self.scope.lock_key(),
                        lock.holder,
                        lock.purpose,
                        lock.run_id
                    )));
                }
                return Ok(Ok(Some(lock.run_id)));
            }
        }
        Ok(Ok(self
            .scope
            .runs()
            .await?
            .into_iter()
            .rev()
            .find(|r| r.starts_with(journal::RUN_PREFIX))))
    }

    /// Drives `m` to its next resting point, rendering progress, and reports.
    #[allow(clippy::too_many_arguments)]
    pub async fn drive(
        &self,
        m: &mut Machine,
        journal: &mut dyn Journal,
        lock: &FencedLock,
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
        let dry_run = settings.dry_run;
        let notifier = (!dry_run).then(|| self.notifier(m)).flatten();
        if let Some(n) = &notifier {
            if m.mode() == Mode::Canary && matches!(m.next(), Next::Do { index: 0, .. }) {
                n.send(canary::notify::Change::Started);
            }
        }
        // A fresh run begins with the preflight; a dry run of it says the checks passed.
        let fresh = m.mode() == Mode::Canary && matches!(m.next(), Next::Do { index: 0, .. });
        let mut view = View::new(output, dry_run);
        let mut on_progress = |p: &Progress| {
            view.show(p);
            if let (Some(n), Some(change)) = (&notifier, canary::notify::Change::from_progress(p)) {
                n.send(change);
            }
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
                lock,
                clock: &SystemClock,
            },
            journal,
            settings,
            progress: &mut on_progress,
            stop: stop.clone(),
            lock_kept_at: 0,
        };
        let driven = async {
            if let Some(who) = approve {
                ex.approve(m, &who).await?;
            }
            if let Some(reason) = abort {
                ex.abort(m, reason).await?;
            }
            ex.drive(m).await
        }
        .await;
        drop(ex);
        view.finish();
        // A run still in flight (awaiting approval, halted, stopped) is parked: nothing new
        // starts over it, and any runner continues it. A finished run frees the lock.
        let in_flight = !matches!(driven, Ok(Next::Finished(_)));
        if let Err(e) = lock.set_down(in_flight && m.in_flight()).await {
            crate::ui::eprintln!("canary: {e}");
        }
        if let Some(n) = notifier {
            if let Some(change) = driven
                .as_ref()
                .ok()
                .and_then(canary::notify::Change::from_next)
            {
                n.send(change);
            }
            n.finish().await;
        }
        let next = driven?;
        let mut report = Report::new(m, &next);
        if dry_run {
            // A dry run reports what it checked and planned, never an outcome it did not reach.
            let planned = "every action above was planned and none was performed";
            let detail = match &next {
                Next::Finished(Outcome::Promoted) if fresh => {
                    Some(format!("dry run: the preflight checks passed; {planned}"))
                }
                Next::Finished(Outcome::Promoted) => Some(format!("dry run: {planned}")),
                Next::Finished(Outcome::RolledBack { reason }) => Some(format!(
                    "dry run: {planned}; it would roll back because: {reason}"
                )),
                _ => None,
            };
            if let Some(detail) = detail {
                report.state = "dry-run";
                report.detail = detail;
            }
        }
        match output {
            Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
            _ => writeln!(out, "{}", report.text())?,
        }
        Ok(match next {
            _ if report.state == "dry-run" => ExitStatus::Success,
            Next::AwaitApproval | Next::Finished(Outcome::Promoted) => ExitStatus::Success,
            Next::Finished(_) => ExitStatus::Changes,
            Next::Halted { .. } | Next::Do { .. } => ExitStatus::Error,
        })
    }
}

impl Session {
    /// The run's notifications, when `[notify] sns_topic_arn` is set.
    fn notifier(&self, m: &Machine) -> Option<Notifier> {
        let topic = self.config.notify.sns_topic_arn.clone()?;
        let p = m.plan();
        let run = canary::notify::RunContext {
            service: self.config.service.clone(),
            environment: self.config.environment.clone(),
            run_id: p.run_id.clone(),
            revision: p.revision.clone(),
            previous: p.previous.clone(),
            config: self.config.file.display().to_string(),
        };
        let sns = canary::aws::Sns {
            client: self.clients.sns.clone(),
            topic_arn: topic,
        };
        Some(Notifier::start(sns, run))
    }
}

/// Publishes a run's state changes in order, on a task of its own: the run never waits on a
/// notification, and one that cannot be sent is reported on stderr.
struct Notifier {
    tx: tokio::sync::mpsc::UnboundedSender<canary::notify::Change>,
    task: tokio::task::JoinHandle<()>,
}

impl Notifier {
    fn start(sns: canary::aws::Sns, run: canary::notify::RunContext) -> Notifier {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<canary::notify::Change>();
        let task = tokio::spawn(async move {
            while let Some(change) = rx.recv().await {
                let message = canary::notify::message(&change, &run);
                if let Err(e) = sns.publish(&message).await {
                    crate::ui::eprintln!("canary: notification {} not sent: {e}", change.name());
                }
            }
        });
        Notifier { tx, task }
    }

    fn send(&self, change: canary::notify::Change) {
        // The receiver lives until `finish`.
        let _ = self.tx.send(change);
    }

    /// Sends what is queued, for at most 30 s.
    async fn finish(self) {
        drop(self.tx);
        if tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .is_err()
        {
            crate::ui::eprintln!("canary: notifications still unsent after 30 s were dropped");
        }
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

/// Prints why the gate refused and returns exit 2: nothing was changed or written.
fn refused(out: &mut dyn Write, why: &str) -> anyhow::Result<ExitStatus> {
    writeln!(out, "refused: {why}")?;
    Ok(ExitStatus::Changes)
}

async fn start(a: &RunArgs, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let s = Session::open(&a.common.config).await?;
    // Checked before the first AWS request: the revision reaches the deployer's commands.
    s.config.check_revision("--revision", &a.revision)?;
    for note in s.config.unchecked_preflight(&a.revision) {
        crate::ui::eprintln!("preflight: {note}");
    }
    let now = SystemClock.now();
    let run_id = journal::new_run_id(now);
    if a.dry_run {
        let lock = FencedLock::new(s.scope.clone(), None);
        let plan = plan_run(&s, a, &run_id).await?;
        let mut journal = journal::MemoryJournal::default();
        journal
            .append(&Record::Start {
                at: now,
                holder: "dry-run".into(),
                plan: plan.clone(),
            })
            .await?;
        let settings = s.settings("dry-run".into(), a.auto_promote, true);
        let mut m = Machine::new(plan);
        return s
            .drive(
                &mut m,
                &mut journal,
                &lock,
                settings,
                None,
                None,
                a.common.output,
                out,
            )
            .await;
    }
    // The lock first: a refused run writes nothing another command reads.
    let who = s.who().await;
    let keeper = match s.take(&run_id, &who, "canary run", LockMode::Fresh).await? {
        Ok(k) => k,
        Err(why) => return refused(out, &why),
    };
    let generation = keeper.generation().await;
    let lock = FencedLock::new(s.scope.clone(), Some(keeper));
    let prepared = async {
        if let Some(run) = s.last_run().await? {
            if run.finished.is_none() && run.machine.in_flight() {
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
        plan_run(&s, a, &run_id).await
    }
    .await;
    let plan = match prepared {
        Ok(plan) => plan,
        Err(e) => {
            // Nothing was journaled or changed: free the lock for the next run.
            if let Err(le) = lock.set_down(false).await {
                crate::ui::eprintln!("canary: {le}");
            }
            return Err(e);
        }
    };
    let holder = Holder::this_process(&who, "canary run").to_string();
    let mut journal = StateJournal(RunJournal::create(&s.scope, &run_id, generation)?);
    journal
        .append(&Record::Start {
            at: now,
            holder: holder.clone(),
            plan: plan.clone(),
        })
        .await?;
    let mut m = Machine::new(plan);
    let settings = s.settings(holder, a.auto_promote, false);
    s.drive(
        &mut m,
        &mut journal,
        &lock,
        settings,
        None,
        None,
        a.common.output,
        out,
    )
    .await
}

/// The run's plan: the fleet, the canary node and the revision a rollback redeploys.
async fn plan_run(s: &Session, a: &RunArgs, run_id: &str) -> anyhow::Result<Plan> {
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
    Ok(Plan {
        run_id: run_id.to_string(),
        revision: a.revision.clone(),
        previous,
        canary_node,
        nodes,
        canary_weight: c.canary_weight,
        wave_size: c.wave_size,
        auto_promote: a.auto_promote,
        repair: false,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Resume,
    Abort,
    Promote,
}

/// A run this process took over: its state after the lock, its journal, and the lock.
pub(crate) struct Continued {
    pub run: RunState,
    pub journal: StateJournal,
    pub lock: FencedLock,
    pub holder: String,
}

/// Takes the lock for the current run (`resume`, `abort`, `promote`), then reads it: the lock
/// first, so that what is read cannot change underneath. `Ok(Err(why))`: refused (exit 2).
pub(crate) async fn take_over(
    s: &Session,
    command: &str,
    force: bool,
) -> anyhow::Result<Result<Option<Continued>, String>> {
    let run_id = match s.current_run_id().await? {
        Ok(Some(id)) => id,
        Ok(None) => return Ok(Ok(None)),
        Err(why) => return Ok(Err(why)),
    };
    let who = s.who().await;
    let keeper = match s
        .take(&run_id, &who, command, LockMode::Continue { force })
        .await?
    {
        Ok(k) => k,
        Err(why) => return Ok(Err(why)),
    };
    let generation = keeper.generation().await;
    let lock = FencedLock::new(s.scope.clone(), Some(keeper));
    let run = match journal::read_run(&s.scope, &run_id).await {
        Ok(Some(run)) => run,
        other => {
            // A run killed before its first record changed nothing; an unreadable one is not
            // ours to drive. Either way the lock is freed only in the first case.
            let in_flight = other.is_err();
            if let Err(e) = lock.set_down(in_flight).await {
                crate::ui::eprintln!("canary: {e}");
            }
            return match other {
                Ok(_) => Ok(Ok(None)),
                Err(e) => Err(e.into()),
            };
        }
    };
    let holder = Holder::this_process(&who, command).to_string();
    let journal = StateJournal(RunJournal::continue_at(
        &s.scope,
        &run_id,
        run.records.len() as u64,
        generation,
    )?);
    Ok(Ok(Some(Continued {
        run,
        journal,
        lock,
        holder,
    })))
}

async fn resume(
    c: &Common,
    force: bool,
    action: Action,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let s = Session::open(&c.config).await?;
    let command = match action {
        Action::Resume => "canary resume",
        Action::Abort => "canary abort",
        Action::Promote => "promote",
    };
    let Continued {
        run,
        mut journal,
        lock,
        holder,
    } = match take_over(&s, command, force).await? {
        Ok(Some(t)) => t,
        Ok(None) => {
            writeln!(out, "no canary run in flight in {}", s.scope.location())?;
            return Ok(ExitStatus::Success);
        }
        Err(why) => return refused(out, &why),
    };
    let mut m = run.machine.clone();
    let plan = m.plan().clone();
    if run.finished.is_some() || !m.in_flight() {
        // The journal says the run is over; the world may not agree (a node left in the
        // canary group, a weight not 0): then a repair run puts it back.
        let canary_members = s.lb.members(Pool::Canary).await?;
        let weight = s.lb.weight().await.unwrap_or(0);
        if canary_members.is_empty() && weight == 0 {
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
            lock.set_down(false).await?;
            let outcome = run.finished.as_ref().map(|f| &f.1).or(m.outcome());
            writeln!(
                out,
                "run {} is over: {}",
                plan.run_id,
                outcome_text(outcome)
            )?;
            return Ok(ExitStatus::Success);
        }
        let left: Vec<String> = canary_members.into_iter().map(|h| h.node).collect();
        crate::ui::eprintln!(
            "canary: run {} is over ({}) but {} left in the canary group at weight {weight}: \
             repairing",
            plan.run_id,
            outcome_text(run.finished.as_ref().map(|f| &f.1).or(m.outcome())),
            if left.is_empty() {
                "nothing".to_string()
            } else {
                left.join(", ")
            },
        );
        return repair(&s, &plan, lock, holder, c.output, out).await;
    }
    journal
        .append(&Record::Took {
            at: SystemClock.now(),
            holder: holder.clone(),
            command: command.into(),
        })
        .await?;
    let settings = s.settings(holder, false, false);
    let abort = match (action, m.mode(), m.next()) {
        (Action::Abort, _, _) => Some("aborted by `gatekeeper canary abort`"),
        (Action::Resume, Mode::Canary, Next::AwaitApproval) if plan.auto_promote => {
            Some("resumed after an interruption before the automatic promotion: rolling back")
        }
        (Action::Resume, Mode::Canary, Next::AwaitApproval) => {
            lock.set_down(true).await?;
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
        &mut journal,
        &lock,
        settings,
        None,
        abort,
        c.output,
        out,
    )
    .await
}

/// What `resume`, `abort` or `promote` would do to the current run, decided as they decide
/// it from the run's journal, the lock and the fleet (all read for real), then every action
/// printed and none performed: no lock is taken and nothing is journaled. Refusals are the
/// real command's (exit 2); otherwise it exits 0 and never reports an outcome.
pub(crate) async fn preview(
    c: &Common,
    action: Action,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    let s = Session::open(&c.config).await?;
    let run_id = match s.current_run_id().await? {
        Ok(Some(id)) => id,
        Ok(None) if action == Action::Promote => {
            return refused(
                out,
                &format!(
                    "no canary run in {}: `gatekeeper canary run` first",
                    s.scope.location()
                ),
            );
        }
        Ok(None) => {
            writeln!(out, "no canary run in flight in {}", s.scope.location())?;
            return Ok(ExitStatus::Success);
        }
        Err(why) => return refused(out, &why),
    };
    if let Some((lock, _)) = state::lock::read(&s.scope).await? {
        // The refusal the command would meet taking the lock, decided by the same rule.
        let command = match action {
            Action::Resume => "canary resume",
            Action::Abort => "canary abort",
            Action::Promote => "promote",
        };
        let claim = Claim {
            run_id: run_id.clone(),
            purpose: "canary".into(),
            holder: Holder::this_process(&s.who().await, command),
            ttl: s.config.lease_seconds(),
        };
        let mode = LockMode::Continue { force: false };
        if let Some(why) = state::lock::refusal(&lock, &claim, mode, SystemClock.now()) {
            return refused(out, &format!("the deploy lock {why}"));
        }
    }
    let Some(run) = journal::read_run(&s.scope, &run_id).await? else {
        writeln!(out, "run {run_id} has no record: nothing to do")?;
        return Ok(ExitStatus::Success);
    };
    let mut m = run.machine.clone();
    let over = run.finished.is_some() || !m.in_flight();
    if action == Action::Promote && (over || m.next() != Next::AwaitApproval) {
        let state = match &run.finished {
            Some((_, o)) => outcome_text(Some(o)),
            None => describe(&m.next()),
        };
        return refused(
            out,
            &format!(
                "run {run_id} is not awaiting approval ({state}): only a passed canary can be \
                 promoted"
            ),
        );
    }
    let (approve, abort) = if over {
        let canary_members = s.lb.members(Pool::Canary).await?;
        let weight = s.lb.weight().await.unwrap_or(0);
        let outcome = outcome_text(run.finished.as_ref().map(|f| &f.1).or(m.outcome()));
        if canary_members.is_empty() && weight == 0 {
            writeln!(out, "run {run_id} is over: {outcome}; nothing to do")?;
            return Ok(ExitStatus::Success);
        }
        // The real command repairs: a rollback journaled as a run of its own.
        crate::ui::eprintln!(
            "dry run: run {run_id} is over ({outcome}) but the fleet is not: it would repair"
        );
        m = Machine::new(Plan {
            run_id: format!("{run_id}-repair"),
            repair: true,
            auto_promote: false,
            ..m.plan().clone()
        });
        (None, None)
    } else {
        match (action, m.mode(), m.next()) {
            (Action::Promote, _, _) => (Some(s.who().await), None),
            (Action::Abort, _, _) => (None, Some("aborted by `gatekeeper canary abort`")),
            (Action::Resume, Mode::Canary, Next::AwaitApproval) if m.plan().auto_promote => (
                None,
                Some("resumed after an interruption before the automatic promotion: rolling back"),
            ),
            (Action::Resume, Mode::Canary, Next::AwaitApproval) => {
                writeln!(
                    out,
                    "run {run_id} passed its canary and awaits approval: `gatekeeper promote` or \
                     `gatekeeper canary abort`; resume has nothing to do"
                )?;
                return Ok(ExitStatus::Success);
            }
            (Action::Resume, Mode::Canary, _) => {
                (None, Some("resumed after an interruption: rolling back"))
            }
            _ => (None, None),
        }
    };
    let lock = FencedLock::new(s.scope.clone(), None);
    let mut journal = journal::MemoryJournal::default();
    let settings = s.settings("dry-run".into(), false, true);
    s.drive(
        &mut m,
        &mut journal,
        &lock,
        settings,
        approve,
        abort,
        c.output,
        out,
    )
    .await
}

/// A repair run: rolls back what an ended run left behind, journaled as a run of its own.
async fn repair(
    s: &Session,
    ended: &Plan,
    lock: FencedLock,
    holder: String,
    output: Output,
    out: &mut dyn Write,
) -> anyhow::Result<ExitStatus> {
    // The repair is journaled as a run of its own, under the lock this process took for the
    // ended run: no moment passes with the lock free. Interrupted, it is found again the
    // same way (the lock still names the ended run, and the world still disagrees).
    let now = SystemClock.now();
    let run_id = format!("{}-repair", journal::new_run_id(now));
    let generation = lock
        .generation()
        .await
        .context("the deploy lock was lost before the repair")?;
    let plan = Plan {
        run_id: run_id.clone(),
        repair: true,
        auto_promote: false,
        ..ended.clone()
    };
    let mut journal = StateJournal(RunJournal::create(&s.scope, &run_id, generation)?);
    journal
        .append(&Record::Start {
            at: now,
            holder: holder.clone(),
            plan: plan.clone(),
        })
        .await?;
    let mut m = Machine::new(plan);
    let settings = s.settings(holder, false, false);
    s.drive(
        &mut m,
        &mut journal,
        &lock,
        settings,
        None,
        None,
        output,
        out,
    )
    .await
}

pub(crate) fn outcome_text(o: Option<&Outcome>) -> String {
    match o {
        Some(Outcome::Promoted) => "promoted".into(),
        Some(Outcome::RolledBack { reason }) => format!("rolled back ({reason})"),
        Some(Outcome::Refused { reason }) => format!("refused ({reason})"),
        None => "unfinished".into(),
    }
}

pub(crate) fn describe(next: &Next) -> String {
    match next {
        Next::Do { action, .. } => format!("next: {action}"),
        Next::AwaitApproval => "awaiting approval".into(),
        Next::Halted { reason } => format!("halted: {reason}"),
        Next::Finished(o) => outcome_text(Some(o)),
    }
}

#[derive(Debug, Serialize)]
struct StatusReport {
    /// The lock object as it is (`state`: held, parked or free; `generation`...).
    lock: Option<LockInfo>,
    lock_object: String,
    canary_weight: Option<u8>,
    run: Option<RunSummary>,
    /// The run's nodes: which group each is in, its health there, the revision it runs.
    nodes: Vec<NodeLine>,
    /// The bake's evidence so far: the last look, the verdict once reached.
    bake: Option<BakeSummary>,
}

#[derive(Debug, Serialize)]
struct NodeLine {
    node: String,
    /// `prod`, `canary` or `none` (depooled).
    group: &'static str,
    health: Option<String>,
    revision: Option<String>,
}

#[derive(Debug, Serialize)]
struct BakeSummary {
    look: u32,
    of: u32,
    verdict: Option<&'static str>,
    metrics: Vec<evidence::record::MetricLook>,
}

#[derive(Debug, Serialize)]
struct RunSummary {
    run_id: String,
    holder: String,
    started_at: String,
    revision: String,
    previous: String,
    canary_node: String,
    mode: Mode,
    state: String,
    approved_by: Option<String>,
    outcome: Option<Outcome>,
}

/// `2026-12-04T10:15:00Z` and how far from now: `in 12 min`, `3 min ago`.
fn when(at: u64, now: u64) -> String {
    let stamp = journal::rfc3339(at);
    let (d, later) = if at >= now {
        (at - now, true)
    } else {
        (now - at, false)
    };
    let span = if d < 90 {
        format!("{d} s")
    } else if d < 90 * 60 {
        format!("{} min", (d + 30) / 60)
    } else {
        format!("{:.1} h", d as f64 / 3600.0)
    };
    if later {
        format!("{stamp} (in {span})")
    } else {
        format!("{stamp} ({span} ago)")
    }
}

async fn status(c: &Common, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let s = Session::open(&c.config).await?;
    let now = SystemClock.now();
    let lock = state::lock::read(&s.scope).await?.map(|(l, _)| l);
    let weight = s.lb.weight().await.ok();
    let run = match lock
        .as_ref()
        .filter(|l| l.state != LockState::Free && l.purpose == "canary")
    {
        Some(l) => journal::read_run(&s.scope, &l.run_id).await?,
        None => None,
    };
    let run = match run {
        Some(r) => Some(r),
        None => s.last_run().await?,
    };
    // Each node's group and revision, and the bake's evidence so far.
    let mut nodes = Vec::new();
    let mut bake = None;
    if let Some(r) = &run {
        let p = r.machine.plan();
        let prod = s.lb.members(Pool::Prod).await.unwrap_or_default();
        let canary_group = s.lb.members(Pool::Canary).await.unwrap_or_default();
        for node in &p.nodes {
            let group = |members: &[canary::provider::NodeHealth]| {
                members
                    .iter()
                    .find(|h| &h.node == node)
                    .map(|h| h.state.clone())
            };
            let (group, health) = match (group(&prod), group(&canary_group)) {
                (Some(h), _) => ("prod", Some(h)),
                (None, Some(h)) => ("canary", Some(h)),
                (None, None) => ("none", None),
            };
            nodes.push(NodeLine {
                node: node.clone(),
                group,
                health,
                revision: s.deployer.current(node).await.ok().flatten(),
            });
        }
        bake = canary::evidence::bake_record(&r.records)
            .ok()
            .flatten()
            .map(|b| BakeSummary {
                look: b.looks.last().map_or(0, |l| l.index),
                of: b.looks.last().map_or(0, |l| l.of),
                verdict: b.verdict.as_ref().map(|v| v.outcome.as_str()),
                metrics: b
                    .looks
                    .last()
                    .map(|l| l.metrics.clone())
                    .unwrap_or_default(),
            });
    }
    let run = run.map(|r| {
        let p = r.machine.plan();
        RunSummary {
            run_id: p.run_id.clone(),
            holder: r.holder.clone(),
            started_at: journal::rfc3339(r.started_at),
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
        lock_object: s.scope.store().describe(&s.scope.lock_key()),
        canary_weight: weight,
        run,
        nodes,
        bake,
    };
    if c.output == Output::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(ExitStatus::Success);
    }
    match &report.lock {
        Some(l) if l.state == LockState::Held => writeln!(
            out,
            "lock {}: held by {} for {} run {} (generation {}), since {}, lease until {}",
            report.lock_object,
            l.holder,
            l.purpose,
            l.run_id,
            l.generation,
            when(l.acquired_at, now),
            when(l.expires_at, now)
        )?,
        Some(l) if l.state == LockState::Parked => writeln!(
            out,
            "lock {}: parked: {} run {} is in flight with no process driving it (generation {})",
            report.lock_object, l.purpose, l.run_id, l.generation
        )?,
        _ => writeln!(out, "lock {}: free", report.lock_object)?,
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
                "last run {} by {}: {} → {} on {}, started {}",
                r.run_id, r.holder, r.previous, r.revision, r.canary_node, r.started_at
            )?;
            writeln!(out, "  mode {}: {}", r.mode.as_str(), r.state)?;
            if let Some(who) = &r.approved_by {
                writeln!(out, "  approved by {who}")?;
            }
        }
        None => writeln!(out, "no canary run in {}", s.scope.location())?,
    }
    for n in &report.nodes {
        writeln!(
            out,
            "  node {}: {}{}, revision {}",
            n.node,
            n.group,
            n.health
                .as_ref()
                .map(|h| format!(" ({h})"))
                .unwrap_or_default(),
            n.revision.as_deref().unwrap_or("unknown")
        )?;
    }
    if let Some(b) = &report.bake {
        writeln!(
            out,
            "  bake: look {} of {}{}",
            b.look,
            b.of,
            b.verdict
                .map(|v| format!(", verdict {v}"))
                .unwrap_or_default()
        )?;
        for m in &b.metrics {
            let bound = |v: Option<f64>| v.map_or("∞".to_string(), |v| format!("{v:.2}x"));
            writeln!(
                out,
                "    {}: {} ratio {} [{} .. {}] e-value {} (fails at {:.0})",
                m.name,
                m.status.as_str(),
                m.estimate.map_or("-".to_string(), |e| format!("{e:.2}x")),
                m.lower.map_or("0.00x".to_string(), |v| format!("{v:.2}x")),
                bound(m.upper),
                m.e_value.map_or("-".to_string(), |e| format!("{e:.3}")),
                m.e_threshold
            )?;
        }
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
