//! This binary's side of a pipeline run ([`pipelines::drive::Host`]): the wall clock,
//! CloudWatch's alarms, the canary's journal, and the stage's command run as a child of this
//! same binary (its stderr passed through, its stdout collected). The subprocess stays here:
//! the commands it runs are this binary's, and only the binary knows its own path.
//!
//! Crash point (`hooks`, test builds only): `pipeline:<n>` aborts right after the run's record `n`
//! (0-based) is journaled.

use std::path::Path;

use anyhow::Context;
use pipelines::drive::{Driver, Host, HostError};
use pipelines::run::CanaryRun;
use pipelines::Pipeline;
use tokio::io::AsyncReadExt;

/// The pipeline's file, its state scope and this binary as the run's host.
pub struct Ctx {
    pub pipeline: Pipeline,
    pub scope: state::Scope,
    pub host: CliHost,
}

impl Ctx {
    pub async fn open(config: &Path) -> anyhow::Result<Ctx> {
        let pipeline = pipelines::load(config)?;
        let clients = crate::aws::clients(pipeline.ci.region.as_deref()).await;
        let name = format!("{}-pipeline-{}", pipeline.service, pipeline.name);
        let scope = crate::store::scope(&pipeline.state, &name, &clients.s3)?;
        let host = CliHost::new(clients);
        Ok(Ctx {
            pipeline,
            scope,
            host,
        })
    }

    /// The driver of this pipeline's runs, as the caller.
    pub async fn driver(&self) -> Driver<'_, CliHost> {
        self.driver_as(crate::store::caller(&self.host.clients.sts).await)
    }

    pub fn driver_as(&self, who: String) -> Driver<'_, CliHost> {
        let (pipeline, scope, host) = (&self.pipeline, &self.scope, &self.host);
        Driver {
            pipeline,
            scope,
            who,
            host,
        }
    }
}

/// The host of the commands of `gatekeeper pipeline`.
pub struct CliHost {
    pub clients: crate::aws::Clients,
    crash_after: Option<u64>,
}

impl CliHost {
    pub fn new(clients: crate::aws::Clients) -> Self {
        let crash_after =
            crate::hooks::crash_point().and_then(|v| v.strip_prefix("pipeline:")?.parse().ok());
        CliHost {
            clients,
            crash_after,
        }
    }
}

#[async_trait::async_trait(?Send)]
impl Host for CliHost {
    fn now(&self) -> u64 {
        state::lock::wall_now()
    }

    fn journaled(&self, seq: u64) {
        if self.crash_after == Some(seq) {
            crate::hooks::crash(&format!("pipeline:{seq}"));
        }
    }

    async fn alarms_firing(&self, prefix: &str) -> Result<Vec<String>, HostError> {
        let out = self
            .clients
            .cloudwatch
            .describe_alarms()
            .alarm_name_prefix(prefix)
            .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!("DescribeAlarms {prefix}*: {}", aws_errors::message(&e))
            })?;
        Ok(out
            .metric_alarms()
            .iter()
            .filter_map(|a| a.alarm_name().map(str::to_string))
            .collect())
    }

    async fn canary_run(&self, config: &Path) -> Result<Option<CanaryRun>, HostError> {
        let c = canary::config::load(config).map_err(anyhow::Error::from)?;
        let scope = crate::store::scope(&c.state, &c.prefix(), &self.clients.s3)?;
        let Some(last) = canary::journal::last_run(&scope).await? else {
            return Ok(None);
        };
        let plan = last.machine.plan();
        Ok(Some(CanaryRun {
            id: plan.run_id.clone(),
            revision: plan.revision.clone(),
            awaiting_approval: last.finished.is_none()
                && matches!(last.machine.next(), canary::machine::Next::AwaitApproval),
            promoted: matches!(last.finished, Some((_, canary::machine::Outcome::Promoted))),
        }))
    }

    async fn run(&self, argv: &[String]) -> Result<(i32, String), HostError> {
        let exe = std::env::current_exe().context("the gatekeeper binary's path")?;
        let mut child = tokio::process::Command::new(exe)
            .args(argv)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the stage's command")?;
        let mut stdout = String::new();
        if let Some(mut pipe) = child.stdout.take() {
            pipe.read_to_string(&mut stdout).await?;
        }
        let status = child.wait().await?;
        Ok((status.code().unwrap_or(1), stdout))
    }
}
