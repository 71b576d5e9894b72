//! The AWS side of a run, built once from the configuration and the clients the CLI built
//! (AWS configuration is loaded there, never here): the load balancer or worker fleet, the
//! deployer, the metrics, the preflight, the lock and journals, the notifications.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use state::lock::{Claim, Keeper, LockState, Mode as LockMode};
use state::{Holder, Scope, StateError};

use crate::aws::{CloudWatch, MetricSource};
use crate::config::{Config, DeployerConfig, Fleet};
use crate::executor::Settings;
use crate::journal::{self, RunState};
use crate::machine::{Machine, Plan};
use crate::provider::{Clock, Deployer, LoadBalancer, Preflight, SystemClock};

/// The SDK clients a session acts through.
#[derive(Debug, Clone)]
pub struct Clients {
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub codedeploy: aws_sdk_codedeploy::Client,
    pub s3: aws_sdk_s3::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sts: aws_sdk_sts::Client,
    pub sns: aws_sdk_sns::Client,
}

/// A line for stderr: the library says, the CLI prints.
pub type Notice = Arc<dyn Fn(&str) + Send + Sync>;

/// The AWS side of a run, built once from the configuration.
pub struct Session {
    pub config: Config,
    pub lb: Box<dyn LoadBalancer>,
    /// The production side, for messages: the target group, or "the worker fleet".
    pub prod_name: String,
    pub metrics: CloudWatch,
    /// The lock and the journals of this service and environment.
    pub scope: Scope,
    pub preflight: crate::aws::AwsPreflight,
    pub deployer: Box<dyn Deployer>,
    sns: aws_sdk_sns::Client,
}

impl Session {
    pub fn new(config: Config, clients: Clients, scope: Scope) -> Session {
        let c = &config.canary;
        let (lb, prod_name, source): (Box<dyn LoadBalancer>, String, _) = match c.fleet {
            Fleet::LoadBalancer => {
                let listener = c.listener_arn.clone().unwrap_or_default();
                let prod = c.prod_target_group_arn.clone().unwrap_or_default();
                let canary_tg = c.canary_target_group_arn.clone().unwrap_or_default();
                let source = MetricSource::TargetGroups {
                    load_balancer: crate::aws::load_balancer_dimension(&listener),
                    prod: crate::aws::target_group_dimension(&prod).to_string(),
                    canary: crate::aws::target_group_dimension(&canary_tg).to_string(),
                    latency_statistic: c.metrics.latency_statistic.clone(),
                };
                let lb = crate::aws::Elb {
                    client: clients.elb.clone(),
                    listener_arn: listener,
                    prod_arn: prod.clone(),
                    canary_arn: canary_tg,
                };
                (Box::new(lb) as Box<dyn LoadBalancer>, prod, source)
            }
            Fleet::Workers => {
                let pool = crate::workers::WorkerPool {
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
        let metrics = CloudWatch {
            client: clients.cloudwatch.clone(),
            source,
            alarm_prefix: config.alarm_prefix(),
        };
        let preflight = crate::aws::AwsPreflight::new(
            &config,
            clients.s3.clone(),
            clients.ssm.clone(),
            clients.sts.clone(),
        );
        let deployer: Box<dyn Deployer> = match &c.deployer {
            DeployerConfig::Command { command, current } => Box::new(
                crate::command::CommandDeployer {
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
            } => Box::new(crate::aws::CodeDeploy {
                client: clients.codedeploy.clone(),
                application: application.clone(),
                deployment_group: deployment_group.clone(),
                node_tag: node_tag.clone(),
                timeout: Duration::from_secs(*timeout_seconds),
                poll: Duration::from_secs(c.poll_seconds.max(1)),
                smoke: c.smoke_command.clone(),
            }),
        };
        Session {
            config,
            lb,
            prod_name,
            metrics,
            scope,
            preflight,
            deployer,
            sns: clients.sns,
        }
    }

    /// The metrics of a run: a worker fleet compares the canary node with the other nodes.
    pub fn metrics_for(&self, plan: &Plan) -> CloudWatch {
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
            evidence: crate::evidence::Context {
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

    /// The run asked for, or the newest canary run; an error when there is none.
    pub async fn find_run(&self, run: Option<&str>) -> anyhow::Result<RunState> {
        use anyhow::Context;
        let found = match run {
            Some(id) => {
                anyhow::ensure!(
                    state::safe_segment(id),
                    "--run {id:?}: not a run id (letters, digits, `-`, `_`, `.`)"
                );
                journal::read_run(&self.scope, id).await?
            }
            None => self.last_run().await?,
        };
        found.with_context(|| match run {
            Some(id) => format!("no run {id} in {}", self.scope.location()),
            None => format!("no canary run in {}", self.scope.location()),
        })
    }

    /// Who acts: the caller's ARN, else `$USER`.
    pub async fn who(&self) -> String {
        match self.preflight.caller().await {
            Ok(arn) => arn,
            Err(_) => std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
        }
    }

    /// Takes the deploy lock for `run_id` as this process, or says why not (exit 2).
    pub async fn take(
        &self,
        run_id: &str,
        who: &str,
        command: &str,
        mode: LockMode,
    ) -> anyhow::Result<Result<Keeper, String>> {
        let claim = self.claim(run_id, who, command);
        match state::lock::acquire(&self.scope, &claim, mode, SystemClock.now()).await {
            Ok(lease) => Ok(Ok(Keeper::start(&self.scope, lease))),
            Err(StateError::Held(refusal)) => Ok(Err(format!("the deploy lock {refusal}"))),
            Err(e) => Err(e.into()),
        }
    }

    /// The claim this process makes on the lock for `run_id`.
    pub fn claim(&self, run_id: &str, who: &str, command: &str) -> Claim {
        Claim {
            run_id: run_id.to_string(),
            purpose: "canary".into(),
            holder: Holder::this_process(who, command),
            ttl: self.config.lease_seconds(),
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

    /// The run's notifications, when `[notify] sns_topic_arn` is set.
    pub(crate) fn notifier(&self, m: &Machine, notice: Notice) -> Option<Notifier> {
        let topic = self.config.notify.sns_topic_arn.clone()?;
        let p = m.plan();
        let run = crate::notify::RunContext {
            service: self.config.service.clone(),
            environment: self.config.environment.clone(),
            run_id: p.run_id.clone(),
            revision: p.revision.clone(),
            previous: p.previous.clone(),
            config: self.config.file.display().to_string(),
        };
        let sns = crate::aws::Sns {
            client: self.sns.clone(),
            topic_arn: topic,
        };
        Some(Notifier::start(sns, run, notice))
    }
}

/// Publishes a run's state changes in order, on a task of its own: the run never waits on a
/// notification, and one that cannot be sent is said as a notice.
pub(crate) struct Notifier {
    tx: tokio::sync::mpsc::UnboundedSender<crate::notify::Change>,
    task: tokio::task::JoinHandle<()>,
    notice: Notice,
}

impl Notifier {
    fn start(sns: crate::aws::Sns, run: crate::notify::RunContext, notice: Notice) -> Notifier {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<crate::notify::Change>();
        let said = notice.clone();
        let task = tokio::spawn(async move {
            while let Some(change) = rx.recv().await {
                let message = crate::notify::message(&change, &run);
                if let Err(e) = sns.publish(&message).await {
                    said(&format!(
                        "canary: notification {} not sent: {e}",
                        change.name()
                    ));
                }
            }
        });
        Notifier { tx, task, notice }
    }

    pub(crate) fn send(&self, change: crate::notify::Change) {
        // The receiver lives until `finish`.
        let _ = self.tx.send(change);
    }

    /// Sends what is queued, for at most 30 s.
    pub(crate) async fn finish(self) {
        drop(self.tx);
        if tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .is_err()
        {
            (self.notice)("canary: notifications still unsent after 30 s were dropped");
        }
    }
}

/// A worker fleet's own metrics: `canary` against `others`, by the node dimension.
fn worker_source(config: &Config, canary: &str, others: &[String]) -> MetricSource {
    let m = &config.canary.metrics;
    MetricSource::Workers {
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

/// Sets `stop` at SIGINT or SIGTERM and calls `on_signal` with whether it was the second:
/// the first stops the run at its next safe point (it rolls back), the second is the
/// caller's to act on (stop now).
pub fn watch_signals(stop: Arc<AtomicBool>, on_signal: Arc<dyn Fn(bool) + Send + Sync>) {
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
            on_signal(stop.swap(true, Ordering::SeqCst));
        }
    });
}
