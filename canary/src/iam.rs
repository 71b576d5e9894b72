//! The least-privilege IAM policy the gate needs to run a canary for one configuration:
//! every action the providers in [`crate::aws`] call, scoped to the resources the
//! configuration names. Actions that accept no resource-level scoping (the `Describe*` and
//! `GetMetricData` reads) are granted on `*`, as IAM requires.
//!
//! `sts:GetCallerIdentity` (who holds the lock, who approved) needs no permission.

use serde_json::{json, Value};

use crate::config::{Config, DeployerConfig, Fleet, MaintenanceRequirement};

/// What the configuration cannot tell.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Buckets revisions are read from (`s3://bucket/key` revisions: the preflight checks the
    /// object is there). Without any, no artifact read is granted and a note says so.
    pub artifact_buckets: Vec<String>,
}

/// Where the resources live: from the listener's ARN, else the configuration's region.
struct Scope {
    partition: String,
    region: String,
    account: String,
}

impl Scope {
    fn of(config: &Config) -> Scope {
        let from_arn = config
            .canary
            .listener_arn
            .as_deref()
            .map(|arn| arn.split(':').collect::<Vec<_>>())
            .filter(|parts| parts.len() >= 6);
        match from_arn {
            Some(parts) => Scope {
                partition: parts[1].to_string(),
                region: parts[3].to_string(),
                account: parts[4].to_string(),
            },
            None => Scope {
                partition: "aws".into(),
                region: config.region.clone().unwrap_or_else(|| "*".into()),
                account: "*".into(),
            },
        }
    }

    fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:{}:{service}:{}:{}:{resource}",
            self.partition, self.region, self.account
        )
    }

    /// An SSM parameter's ARN: `parameter/name` for `/name`.
    fn parameter(&self, name: &str) -> String {
        self.arn(
            "ssm",
            &format!("parameter/{}", name.trim_start_matches('/')),
        )
    }
}

fn statement(sid: &str, actions: &[&str], resources: Vec<String>) -> Value {
    json!({
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions,
        "Resource": resources,
    })
}

/// The policy document, and notes for the reader (what was left out and why).
pub fn policy(config: &Config, options: &Options) -> (Value, Vec<String>) {
    let c = &config.canary;
    let s = Scope::of(config);
    let mut statements = Vec::new();
    let mut notes = Vec::new();

    if c.fleet == Fleet::LoadBalancer {
        statements.push(statement(
            "ReadLoadBalancer",
            &[
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeTargetHealth",
            ],
            vec!["*".into()],
        ));
        let groups: Vec<String> = [&c.prod_target_group_arn, &c.canary_target_group_arn]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        statements.push(statement(
            "MoveNodesBetweenTargetGroups",
            &[
                "elasticloadbalancing:DeregisterTargets",
                "elasticloadbalancing:RegisterTargets",
            ],
            groups,
        ));
        statements.push(statement(
            "ShiftListenerWeights",
            &["elasticloadbalancing:ModifyListener"],
            c.listener_arn.iter().cloned().collect(),
        ));
    }

    statements.push(statement(
        "ReadMetricsAndAlarms",
        &["cloudwatch:DescribeAlarms", "cloudwatch:GetMetricData"],
        vec!["*".into()],
    ));

    if c.preflight.maintenance != MaintenanceRequirement::Any {
        statements.push(statement(
            "ReadMaintenanceFlag",
            &["ssm:GetParameter"],
            vec![s.parameter(&config.maintenance_parameter())],
        ));
    }

    if let Some(check) = &c.config_check {
        let paths: Vec<&str> = [&check.old, &check.new]
            .into_iter()
            .filter_map(|src| src.strip_prefix("ssm:"))
            .collect();
        if !paths.is_empty() {
            let mut resources = Vec::new();
            for path in paths {
                let path = path.trim_end_matches('/');
                for r in [s.parameter(path), s.parameter(&format!("{path}/*"))] {
                    if !resources.contains(&r) {
                        resources.push(r);
                    }
                }
            }
            statements.push(statement(
                "ReadConfigurationTree",
                &["ssm:GetParametersByPath"],
                resources,
            ));
            let mut decrypt = statement(
                "DecryptSecureStringsThroughSsm",
                &["kms:Decrypt"],
                vec![s.arn("kms", "key/*")],
            );
            decrypt["Condition"] = json!({
                "StringEquals": { "kms:ViaService": format!("ssm.{}.amazonaws.com", s.region) }
            });
            statements.push(decrypt);
        }
    }

    match config.state.backend() {
        Ok(state::Backend::S3 { bucket, prefix }) => {
            // The lock, the runs and the worker roles of this service and environment only.
            let scope = if prefix.is_empty() {
                config.prefix()
            } else {
                format!("{prefix}/{}", config.prefix())
            };
            statements.push(statement(
                "DeployLockAndJournal",
                &["s3:GetObject", "s3:PutObject"],
                vec![format!("arn:{}:s3:::{bucket}/{scope}/*", s.partition)],
            ));
            // Listing replays a run; without it a missing object answers 403, not 404.
            let mut list = statement(
                "ListRunsOfThisService",
                &["s3:ListBucket"],
                vec![format!("arn:{}:s3:::{bucket}", s.partition)],
            );
            list["Condition"] = json!({ "StringLike": { "s3:prefix": format!("{scope}/*") } });
            statements.push(list);
        }
        _ => notes.push(
            "no [state] url: the lock and the journals are local to one machine, so runs \
             cannot be resumed from another runner (set state.url = \"s3://bucket/prefix\")"
                .to_string(),
        ),
    }

    if options.artifact_buckets.is_empty() {
        notes.push(
            "no --artifact-bucket: s3:// revisions cannot be checked by the preflight \
             (add the bucket revisions are read from)"
                .to_string(),
        );
    } else {
        statements.push(statement(
            "CheckRevisionIsThere",
            &["s3:GetObject"],
            options
                .artifact_buckets
                .iter()
                .map(|b| format!("arn:{}:s3:::{b}/*", s.partition))
                .collect(),
        ));
    }

    if let Some(topic) = &config.notify.sns_topic_arn {
        statements.push(statement(
            "NotifyRunChanges",
            &["sns:Publish"],
            vec![topic.clone()],
        ));
    }

    match &c.deployer {
        DeployerConfig::Codedeploy {
            application,
            deployment_group,
            ..
        } => {
            statements.push(statement(
                "DeployThroughCodeDeploy",
                &[
                    "codedeploy:CreateDeployment",
                    "codedeploy:GetDeployment",
                    "codedeploy:GetDeploymentGroup",
                    "codedeploy:StopDeployment",
                    "codedeploy:UpdateDeploymentGroup",
                ],
                vec![s.arn(
                    "codedeploy",
                    &format!("deploymentgroup:{application}/{deployment_group}"),
                )],
            ));
            // CreateDeployment also reads the deployment configuration and registers the
            // revision with the application.
            statements.push(statement(
                "CodeDeployRevisionAndConfig",
                &[
                    "codedeploy:GetApplicationRevision",
                    "codedeploy:GetDeploymentConfig",
                    "codedeploy:RegisterApplicationRevision",
                ],
                vec![
                    s.arn("codedeploy", &format!("application:{application}")),
                    s.arn("codedeploy", "deploymentconfig:*"),
                ],
            ));
        }
        DeployerConfig::Command { .. } => notes.push(
            "the command deployer runs your own tool: its permissions are that tool's, not \
             the gate's"
                .to_string(),
        ),
    }
    if c.fleet == Fleet::Workers {
        notes.push(
            "a worker fleet's depool_command and repool_command run with the caller's \
             permissions, which this policy does not cover"
                .to_string(),
        );
    }

    (
        json!({ "Version": "2012-10-17", "Statement": statements }),
        notes,
    )
}
