//! The AWS implementation of each provider trait. Clients come from the caller (the CLI
//! builds them once); nothing here loads configuration.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, StateValue};
use aws_sdk_elasticloadbalancingv2::error::ProvideErrorMetadata as _;
use aws_sdk_elasticloadbalancingv2::types::{
    Action as LbAction, ActionTypeEnum, ForwardActionConfig, TargetDescription, TargetGroupTuple,
};
use aws_smithy_types::DateTime;

use crate::config::{Config, MaintenanceRequirement};
use crate::machine::Pool;
use crate::provider::{
    Deployer, LoadBalancer, Metrics, NodeHealth, Preflight, ProviderError, Result, Sample,
};

fn aws_err(what: &str, e: impl std::error::Error) -> ProviderError {
    let mut msg = format!("{what}: {e}");
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    ProviderError::new(msg)
}

/// The `TargetGroup` dimension of a target group ARN: `targetgroup/<name>/<id>`.
pub fn target_group_dimension(arn: &str) -> &str {
    arn.splitn(6, ':').nth(5).unwrap_or(arn)
}

/// The `LoadBalancer` dimension of a listener ARN: `app/<name>/<id>`.
pub fn load_balancer_dimension(listener_arn: &str) -> String {
    let resource = listener_arn.splitn(6, ':').nth(5).unwrap_or(listener_arn);
    let parts: Vec<&str> = resource.split('/').collect();
    // listener/app/<name>/<lb-id>/<listener-id>
    parts.get(1..4).map(|p| p.join("/")).unwrap_or_default()
}

/// Production and canary target groups behind one listener.
#[derive(Debug, Clone)]
pub struct Elb {
    pub client: aws_sdk_elasticloadbalancingv2::Client,
    pub listener_arn: String,
    pub prod_arn: String,
    pub canary_arn: String,
}

impl Elb {
    fn arn(&self, pool: Pool) -> &str {
        match pool {
            Pool::Prod => &self.prod_arn,
            Pool::Canary => &self.canary_arn,
        }
    }

    fn targets(nodes: &[String]) -> Result<Vec<TargetDescription>> {
        Ok(nodes
            .iter()
            .map(|n| TargetDescription::builder().id(n).build())
            .collect())
    }
}

#[async_trait]
impl LoadBalancer for Elb {
    async fn members(&self, pool: Pool) -> Result<Vec<NodeHealth>> {
        let arn = self.arn(pool);
        let out = self
            .client
            .describe_target_health()
            .target_group_arn(arn)
            .send()
            .await
            .map_err(|e| aws_err(&format!("DescribeTargetHealth {arn}"), e))?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .filter_map(|d| {
                let node = d.target()?.id()?.to_string();
                let state = d
                    .target_health()
                    .and_then(|h| h.state())
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "unknown".into());
                Some(NodeHealth { node, state })
            })
            .collect())
    }

    async fn depool(&self, pool: Pool, nodes: &[String]) -> Result<()> {
        // Idempotent, so a resumed or rolled-back run can repeat it: ELBv2 refuses to deregister
        // a target that is not registered (InvalidTarget), so only current members are sent.
        let members = self.members(pool).await?;
        let nodes: Vec<String> = nodes
            .iter()
            .filter(|n| members.iter().any(|m| &m.node == *n))
            .cloned()
            .collect();
        if nodes.is_empty() {
            return Ok(());
        }
        let arn = self.arn(pool);
        let sent = self
            .client
            .deregister_targets()
            .target_group_arn(arn)
            .set_targets(Some(Self::targets(&nodes)?))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            // A deregistration that took effect but whose answer was lost is retried by the
            // SDK, and the retry is refused as InvalidTarget: done, when none is a member now.
            Err(e) if e.code().is_some_and(|c| c.starts_with("InvalidTarget")) => {
                let members = self.members(pool).await?;
                if nodes.iter().any(|n| members.iter().any(|m| &m.node == n)) {
                    Err(aws_err(&format!("DeregisterTargets {arn}"), e))
                } else {
                    Ok(())
                }
            }
            Err(e) => Err(aws_err(&format!("DeregisterTargets {arn}"), e)),
        }
    }

    async fn repool(&self, pool: Pool, nodes: &[String]) -> Result<()> {
        let arn = self.arn(pool);
        self.client
            .register_targets()
            .target_group_arn(arn)
            .set_targets(Some(Self::targets(nodes)?))
            .send()
            .await
            .map_err(|e| aws_err(&format!("RegisterTargets {arn}"), e))?;
        Ok(())
    }

    async fn set_weight(&self, canary: u8) -> Result<()> {
        let canary = i32::from(canary.min(100));
        let forward = ForwardActionConfig::builder()
            .target_groups(
                TargetGroupTuple::builder()
                    .target_group_arn(&self.prod_arn)
                    .weight(100 - canary)
                    .build(),
            )
            .target_groups(
                TargetGroupTuple::builder()
                    .target_group_arn(&self.canary_arn)
                    .weight(canary)
                    .build(),
            )
            .build();
        let action = LbAction::builder()
            .r#type(ActionTypeEnum::Forward)
            .forward_config(forward)
            .build();
        self.client
            .modify_listener()
            .listener_arn(&self.listener_arn)
            .default_actions(action)
            .send()
            .await
            .map_err(|e| aws_err(&format!("ModifyListener {}", self.listener_arn), e))?;
        Ok(())
    }

    async fn weight(&self) -> Result<u8> {
        let out = self
            .client
            .describe_listeners()
            .listener_arns(&self.listener_arn)
            .send()
            .await
            .map_err(|e| aws_err(&format!("DescribeListeners {}", self.listener_arn), e))?;
        let weight = out
            .listeners()
            .iter()
            .flat_map(|l| l.default_actions())
            .filter_map(|a| a.forward_config())
            .flat_map(|f| f.target_groups())
            .find(|t| t.target_group_arn() == Some(self.canary_arn.as_str()))
            .and_then(|t| t.weight())
            .unwrap_or(0);
        Ok(weight.clamp(0, 100) as u8)
    }
}

/// What the bake reads from CloudWatch.
#[derive(Debug, Clone)]
pub enum MetricSource {
    /// `AWS/ApplicationELB` per target group.
    TargetGroups {
        load_balancer: String,
        prod: String,
        canary: String,
        latency_statistic: String,
    },
    /// A worker fleet's own metrics with a node dimension: the canary node against the
    /// sum of the others.
    Workers {
        namespace: String,
        dimension: String,
        canary: String,
        others: Vec<String>,
        requests: String,
        errors: Option<String>,
        latency: Option<String>,
        latency_statistic: String,
    },
}

/// CloudWatch metrics and alarms.
#[derive(Debug, Clone)]
pub struct CloudWatch {
    pub client: aws_sdk_cloudwatch::Client,
    pub source: MetricSource,
    pub alarm_prefix: String,
}

struct Query {
    id: String,
    namespace: String,
    metric: String,
    dims: Vec<(String, String)>,
    stat: String,
}

impl CloudWatch {
    fn queries(&self) -> Vec<(usize, &'static str, Query)> {
        let mut q = Vec::new();
        match &self.source {
            MetricSource::TargetGroups {
                load_balancer,
                prod,
                canary,
                latency_statistic,
            } => {
                for (g, tg) in [(0, prod), (1, canary)] {
                    let dims = vec![
                        ("TargetGroup".to_string(), tg.clone()),
                        ("LoadBalancer".to_string(), load_balancer.clone()),
                    ];
                    for (kind, metric, stat) in [
                        ("requests", "RequestCount", "Sum"),
                        ("errors", "HTTPCode_Target_5XX_Count", "Sum"),
                        ("latency", "TargetResponseTime", latency_statistic.as_str()),
                    ] {
                        q.push((
                            g,
                            kind,
                            Query {
                                id: format!("g{g}_{kind}"),
                                namespace: "AWS/ApplicationELB".into(),
                                metric: metric.into(),
                                dims: dims.clone(),
                                stat: stat.into(),
                            },
                        ));
                    }
                }
            }
            MetricSource::Workers {
                namespace,
                dimension,
                canary,
                others,
                requests,
                errors,
                latency,
                latency_statistic,
            } => {
                let nodes = std::iter::once((1, canary)).chain(others.iter().map(|o| (0, o)));
                for (i, (g, node)) in nodes.enumerate() {
                    let dims = vec![(dimension.clone(), node.clone())];
                    let metrics = [
                        ("requests", Some(requests), "Sum"),
                        ("errors", errors.as_ref(), "Sum"),
                        ("latency", latency.as_ref(), latency_statistic.as_str()),
                    ];
                    for (kind, metric, stat) in metrics {
                        if let Some(metric) = metric {
                            q.push((
                                g,
                                kind,
                                Query {
                                    id: format!("n{i}_{kind}"),
                                    namespace: namespace.clone(),
                                    metric: metric.clone(),
                                    dims: dims.clone(),
                                    stat: stat.into(),
                                },
                            ));
                        }
                    }
                }
            }
        }
        q
    }
}

#[async_trait]
impl Metrics for CloudWatch {
    async fn window(&self, start: u64, end: u64) -> Result<(Sample, Sample)> {
        // One bucket spanning the window: CloudWatch periods are whole minutes, and so are the
        // bake's windows (executor::next_window).
        let period = end.saturating_sub(start).max(60);
        let queries = self.queries();
        let mut req = self
            .client
            .get_metric_data()
            .start_time(DateTime::from_secs(start as i64))
            .end_time(DateTime::from_secs(end as i64));
        for (_, _, q) in &queries {
            let mut metric = Metric::builder()
                .namespace(&q.namespace)
                .metric_name(&q.metric);
            for (k, v) in &q.dims {
                metric = metric.dimensions(Dimension::builder().name(k).value(v).build());
            }
            req = req.metric_data_queries(
                MetricDataQuery::builder()
                    .id(&q.id)
                    .metric_stat(
                        MetricStat::builder()
                            .metric(metric.build())
                            .period(period as i32)
                            .stat(&q.stat)
                            .build(),
                    )
                    .build(),
            );
        }
        let out = req.send().await.map_err(|e| aws_err("GetMetricData", e))?;
        let mut groups = [Sample::default(), Sample::default()];
        let mut latency: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for r in out.metric_data_results() {
            let Some((g, kind, _)) = queries
                .iter()
                .find(|(_, _, q)| Some(q.id.as_str()) == r.id())
            else {
                continue;
            };
            let values = r.values();
            match *kind {
                "requests" => groups[*g].requests += values.iter().sum::<f64>().round() as u64,
                "errors" => groups[*g].errors += values.iter().sum::<f64>().round() as u64,
                _ => latency[*g].extend(values.iter().map(|v| {
                    if matches!(self.source, MetricSource::TargetGroups { .. }) {
                        v * 1000.0 // TargetResponseTime is in seconds
                    } else {
                        *v
                    }
                })),
            }
        }
        for g in 0..2 {
            if groups[g].requests > 0 && !latency[g].is_empty() {
                groups[g].latency_ms =
                    Some(latency[g].iter().sum::<f64>() / latency[g].len() as f64);
            }
            groups[g].errors = groups[g].errors.min(groups[g].requests);
        }
        let [baseline, canary] = groups;
        Ok((baseline, canary))
    }

    async fn alarms_firing(&self) -> Result<Vec<String>> {
        let out = self
            .client
            .describe_alarms()
            .alarm_name_prefix(&self.alarm_prefix)
            .state_value(StateValue::Alarm)
            .send()
            .await
            .map_err(|e| aws_err(&format!("DescribeAlarms {}*", self.alarm_prefix), e))?;
        let mut names: Vec<String> = out
            .metric_alarms()
            .iter()
            .filter_map(|a| a.alarm_name().map(str::to_string))
            .chain(
                out.composite_alarms()
                    .iter()
                    .filter_map(|a| a.alarm_name().map(str::to_string)),
            )
            .collect();
        names.sort();
        Ok(names)
    }
}

/// Preflight checks against S3, SSM and STS.
#[derive(Debug, Clone)]
pub struct AwsPreflight {
    pub s3: aws_sdk_s3::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub sts: aws_sdk_sts::Client,
    pub maintenance: MaintenanceRequirement,
    pub maintenance_parameter: String,
    pub revision_check_command: Vec<String>,
    pub config_check: Option<crate::config::ConfigCheck>,
}

impl AwsPreflight {
    pub fn new(
        config: &Config,
        s3: aws_sdk_s3::Client,
        ssm: aws_sdk_ssm::Client,
        sts: aws_sdk_sts::Client,
    ) -> Self {
        AwsPreflight {
            s3,
            ssm,
            sts,
            maintenance: config.canary.preflight.maintenance,
            maintenance_parameter: config.maintenance_parameter(),
            revision_check_command: config.canary.preflight.revision_check_command.clone(),
            config_check: config.canary.config_check.clone(),
        }
    }
}

/// `s3://bucket/key` → (bucket, key).
pub fn split_s3(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/')?;
    (!bucket.is_empty() && !key.is_empty()).then_some((bucket, key))
}

#[async_trait]
impl Preflight for AwsPreflight {
    async fn revision_exists(&self, revision: &str) -> Result<()> {
        if let Some((bucket, key)) = split_s3(revision) {
            return self
                .s3
                .head_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    ProviderError::new(format!(
                        "revision {revision} is not there (HeadObject: {e}): \
                         is the artifact mirror behind?"
                    ))
                });
        }
        if !self.revision_check_command.is_empty() {
            crate::command::run(&self.revision_check_command, &[revision])
                .await
                .map_err(|e| ProviderError::new(format!("revision {revision}: {e}")))?;
        }
        Ok(())
    }

    async fn maintenance_ok(&self) -> Result<()> {
        if self.maintenance == MaintenanceRequirement::Any {
            return Ok(());
        }
        let p = &self.maintenance_parameter;
        let out = self.ssm.get_parameter().name(p).send().await.map_err(|e| {
            ProviderError::new(format!(
                "maintenance flag {p}: {e}: deploy the rails stack, or set \
                     canary.preflight.maintenance = \"any\""
            ))
        })?;
        let value = out.parameter().and_then(|p| p.value()).unwrap_or_default();
        let enabled = serde_json::from_str::<serde_json::Value>(value)
            .ok()
            .and_then(|v| v.get("enabled").and_then(|e| e.as_bool()))
            .ok_or_else(|| {
                ProviderError::new(format!("maintenance flag {p}: unreadable value {value:?}"))
            })?;
        let want = self.maintenance == MaintenanceRequirement::On;
        if enabled != want {
            return Err(ProviderError::new(format!(
                "maintenance mode is {} ({p}) but canary.preflight.maintenance requires it {}",
                if enabled { "on" } else { "off" },
                if want { "on" } else { "off" }
            )));
        }
        Ok(())
    }

    async fn config_compatible(&self, revision: &str, previous: &str) -> Result<()> {
        let Some(check) = &self.config_check else {
            return Ok(());
        };
        let report = compat_report(&self.ssm, check, revision, previous)
            .await
            .map_err(|e| ProviderError::new(format!("config check: {e}")))?;
        match report.verdict() {
            compat::Verdict::Compatible => Ok(()),
            verdict => {
                let what = if verdict == compat::Verdict::Breaking {
                    "the configuration change is not backward compatible"
                } else {
                    "the configuration check cannot pass"
                };
                let text = report.to_text();
                Err(ProviderError::new(format!(
                    "{what} ({} → {}):\n{}",
                    report.old_source,
                    report.new_source,
                    text.trim_end()
                )))
            }
        }
    }

    async fn caller(&self) -> Result<String> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| aws_err("GetCallerIdentity", e))?;
        Ok(out.arn().unwrap_or("unknown").to_string())
    }
}

/// Every parameter under `path` (GetParametersByPath, recursive, decrypted, every page), for
/// `ssm:/<path>` configuration sources. A SecureString's value is hashed by `compat` as soon as
/// it is loaded and never printed.
pub async fn parameter_tree(
    client: &aws_sdk_ssm::Client,
    path: &str,
) -> std::result::Result<Vec<compat::Parameter>, String> {
    use aws_sdk_ssm::types::ParameterType;
    let mut out = Vec::new();
    let mut pages = client
        .get_parameters_by_path()
        .path(path)
        .recursive(true)
        .with_decryption(true)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            format!(
                "GetParametersByPath {path}: {}",
                aws_sdk_ssm::error::DisplayErrorContext(e)
            )
        })?;
        for p in page.parameters() {
            let kind = match p.r#type() {
                Some(ParameterType::SecureString) => compat::ParameterKind::SecureString,
                Some(ParameterType::StringList) => compat::ParameterKind::StringList,
                _ => compat::ParameterKind::String,
            };
            out.push(compat::Parameter {
                name: p.name().unwrap_or_default().to_string(),
                value: p.value().unwrap_or_default().to_string(),
                kind,
            });
        }
    }
    if out.is_empty() {
        return Err(format!("no parameters under {path}"));
    }
    Ok(out)
}

/// SSM trees fetched ahead, served to `compat::load` (which is synchronous).
struct Fetched(std::collections::BTreeMap<String, Vec<compat::Parameter>>);

impl compat::ParameterSource for Fetched {
    fn parameters_by_path(
        &self,
        path: &str,
    ) -> std::result::Result<Vec<compat::Parameter>, String> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| format!("{path} was not fetched"))
    }
}

/// The `[canary.config_check]` report for a run from `previous` to `revision`.
pub async fn compat_report(
    ssm: &aws_sdk_ssm::Client,
    check: &crate::config::ConfigCheck,
    revision: &str,
    previous: &str,
) -> std::result::Result<compat::Report, String> {
    use crate::config::ConfigCheck;
    let old = compat::Source::parse(&ConfigCheck::expand(&check.old, revision, previous))
        .map_err(|e| format!("old: {e}"))?;
    let new = compat::Source::parse(&ConfigCheck::expand(&check.new, revision, previous))
        .map_err(|e| format!("new: {e}"))?;
    let mut trees = std::collections::BTreeMap::new();
    for source in [&old, &new] {
        if let compat::Source::Ssm(path) = source {
            if !trees.contains_key(path) {
                trees.insert(path.clone(), parameter_tree(ssm, path).await?);
            }
        }
    }
    let store = Fetched(trees);
    let old = compat::load(&old, Some(&store)).map_err(|e| e.to_string())?;
    let new = compat::load(&new, Some(&store)).map_err(|e| e.to_string())?;
    let load = |p: &std::path::Path| compat::Schema::load(p).map_err(|e| e.to_string());
    let schemas = match (&check.schema, &check.old_schema, &check.new_schema) {
        (Some(both), _, _) => Some(compat::Schemas {
            old: Some(load(both)?),
            new: Some(load(both)?),
        }),
        (None, None, None) => None,
        (None, o, n) => Some(compat::Schemas {
            old: o.as_deref().map(load).transpose()?,
            new: n.as_deref().map(load).transpose()?,
        }),
    };
    let ignores = match &check.ignore {
        Some(path) => compat::Ignores::load(path).map_err(|e| e.to_string())?,
        None => compat::Ignores::default(),
    };
    Ok(compat::check(&old, &new, schemas.as_ref(), &ignores))
}

/// AWS CodeDeploy: one deployment per set of nodes, targeted by a tag whose value is the
/// node (instance) id.
#[derive(Debug, Clone)]
pub struct CodeDeploy {
    pub client: aws_sdk_codedeploy::Client,
    pub application: String,
    pub deployment_group: String,
    pub node_tag: String,
    pub timeout: Duration,
    pub poll: Duration,
    pub smoke: Vec<String>,
}

impl CodeDeploy {
    fn revision(revision: &str) -> Result<aws_sdk_codedeploy::types::RevisionLocation> {
        use aws_sdk_codedeploy::types::{
            BundleType, RevisionLocation, RevisionLocationType, S3Location,
        };
        let (bucket, key) = split_s3(revision).ok_or_else(|| {
            ProviderError::new(format!(
                "revision {revision}: CodeDeploy revisions are s3://bucket/key.zip"
            ))
        })?;
        let bundle = if key.ends_with(".tar.gz") || key.ends_with(".tgz") {
            BundleType::TarGZip
        } else if key.ends_with(".tar") {
            BundleType::Tar
        } else {
            BundleType::Zip
        };
        Ok(RevisionLocation::builder()
            .revision_type(RevisionLocationType::S3)
            .s3_location(
                S3Location::builder()
                    .bucket(bucket)
                    .key(key)
                    .bundle_type(bundle)
                    .build(),
            )
            .build())
    }
}

#[async_trait]
impl Deployer for CodeDeploy {
    async fn deploy(&self, nodes: &[String], revision: &str) -> Result<()> {
        use aws_sdk_codedeploy::types::{DeploymentStatus, Ec2TagFilter, Ec2TagFilterType};
        let location = Self::revision(revision)?;
        // An in-place deployment goes to the instances its group selects (CodeDeploy takes
        // `targetInstances` only for blue/green): the group is the gate's own, and before each
        // deployment its EC2 tag filters are set to exactly these nodes (filters in one set
        // match any of them). The lock keeps other runs of the service off the group meanwhile.
        let filters = nodes
            .iter()
            .map(|n| {
                Ec2TagFilter::builder()
                    .key(&self.node_tag)
                    .value(n)
                    .r#type(Ec2TagFilterType::KeyAndValue)
                    .build()
            })
            .collect();
        self.client
            .update_deployment_group()
            .application_name(&self.application)
            .current_deployment_group_name(&self.deployment_group)
            .set_ec2_tag_filters(Some(filters))
            .send()
            .await
            .map_err(|e| {
                aws_err(
                    &format!(
                        "UpdateDeploymentGroup {}/{} (to target {})",
                        self.application,
                        self.deployment_group,
                        nodes.join(",")
                    ),
                    e,
                )
            })?;
        let created = self
            .client
            .create_deployment()
            .application_name(&self.application)
            .deployment_group_name(&self.deployment_group)
            .revision(location)
            .description(format!("gatekeeper: {revision} to {}", nodes.join(",")))
            .send()
            .await
            .map_err(|e| {
                aws_err(
                    &format!(
                        "CreateDeployment {}/{}",
                        self.application, self.deployment_group
                    ),
                    e,
                )
            })?;
        let id = created.deployment_id().unwrap_or_default().to_string();
        let start = std::time::Instant::now();
        loop {
            let out = self
                .client
                .get_deployment()
                .deployment_id(&id)
                .send()
                .await
                .map_err(|e| aws_err(&format!("GetDeployment {id}"), e))?;
            let info = out.deployment_info();
            match info.and_then(|i| i.status()) {
                Some(DeploymentStatus::Succeeded) => return Ok(()),
                Some(s @ (DeploymentStatus::Failed | DeploymentStatus::Stopped)) => {
                    let why = info
                        .and_then(|i| i.error_information())
                        .and_then(|e| e.message())
                        .unwrap_or("no error information");
                    return Err(ProviderError::new(format!(
                        "CodeDeploy deployment {id} {}: {why}",
                        s.as_str()
                    )));
                }
                _ => {}
            }
            if start.elapsed() >= self.timeout {
                let _ = self
                    .client
                    .stop_deployment()
                    .deployment_id(&id)
                    .auto_rollback_enabled(false)
                    .send()
                    .await;
                return Err(ProviderError::new(format!(
                    "CodeDeploy deployment {id} did not finish in {}s (deployer.timeout_seconds); stopped it",
                    self.timeout.as_secs()
                )));
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    async fn current(&self, _node: &str) -> Result<Option<String>> {
        let group = self
            .client
            .get_deployment_group()
            .application_name(&self.application)
            .deployment_group_name(&self.deployment_group)
            .send()
            .await
            .map_err(|e| aws_err("GetDeploymentGroup", e))?;
        let Some(id) = group
            .deployment_group_info()
            .and_then(|g| g.last_successful_deployment())
            .and_then(|d| d.deployment_id())
        else {
            return Ok(None);
        };
        let d = self
            .client
            .get_deployment()
            .deployment_id(id)
            .send()
            .await
            .map_err(|e| aws_err(&format!("GetDeployment {id}"), e))?;
        Ok(d.deployment_info()
            .and_then(|i| i.revision())
            .and_then(|r| r.s3_location())
            .and_then(|s| Some(format!("s3://{}/{}", s.bucket()?, s.key()?))))
    }

    async fn smoke(&self, node: &str, revision: &str) -> Result<()> {
        if self.smoke.is_empty() {
            return Ok(());
        }
        crate::command::run(&self.smoke, &[node, revision])
            .await
            .map(|_| ())
    }
}

/// Run notifications published to an SNS topic (`[notify] sns_topic_arn`).
pub struct Sns {
    pub client: aws_sdk_sns::Client,
    pub topic_arn: String,
}

impl Sns {
    pub async fn publish(&self, m: &crate::notify::Message) -> Result<()> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&m.subject)
            .message(&m.body)
            .send()
            .await
            .map_err(|e| aws_err(&format!("Publish {}", self.topic_arn), e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_from_arns() {
        assert_eq!(
            target_group_dimension(
                "arn:aws:elasticloadbalancing:eu-west-1:123:targetgroup/photos-api/73e2d6bc"
            ),
            "targetgroup/photos-api/73e2d6bc"
        );
        assert_eq!(
            load_balancer_dimension(
                "arn:aws:elasticloadbalancing:eu-west-1:123:listener/app/photos/50dc/f1e2"
            ),
            "app/photos/50dc"
        );
        assert_eq!(split_s3("s3://b/k/v.zip"), Some(("b", "k/v.zip")));
        assert_eq!(split_s3("v1.2"), None);
    }
}
