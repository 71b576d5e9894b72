//! The builders of a service's safety rails: one template per service and environment.
//!
//! | resource | logical id | why |
//! |---|---|---|
//! | maintenance flag (SSM parameter) | `MaintenanceFlag` | services read it at runtime |
//! | ingestion bucket | `IngestionBucket` | where uploads land |
//! | parking-lot bucket | `ParkingLotBucket` | where uploads wait during maintenance |
//! | work queue + DLQ, per `[[queues]]` | `Queue<Name>`, `DeadLetterQueue<Name>` | the pipeline |
//! | KMS key for the alarm topic | `AlarmTopicKey` | CloudWatch can publish to a CMK-encrypted topic, not to `aws/sns` |
//! | SNS alarm topic + e-mail subscriptions | `AlarmTopic`, `AlarmEmail<N>` | where alarms go |
//! | CloudWatch alarms | `Alarm<...>` | oldest message, DLQ not empty, target 5xx, unhealthy hosts, custom |
//!
//! Outputs export every name and ARN the gate needs later, and never depend on an alarm's
//! attributes.

use std::collections::BTreeMap;

use crate::config::{Config, QueueConfig};
use crate::expr::pseudo;
use crate::template::{Output, Resource, Template};
use crate::{map, Expr};
use maintenance_flag::MaintenanceFlag;

/// The logical id for a named thing: `logical_id("Queue", "ingest-images")` is
/// `QueueIngestImages`.
pub fn logical_id(kind: &str, name: &str) -> String {
    let mut id = kind.to_string();
    for part in name.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}

/// Output ids of the values the gate reads back from the stack.
pub mod outputs {
    pub const FLAG_PARAMETER: &str = "MaintenanceFlagName";
    pub const INGESTION_BUCKET: &str = "IngestionBucketName";
    pub const PARKING_LOT_BUCKET: &str = "ParkingLotBucketName";
    pub const ALARM_TOPIC: &str = "AlarmTopicArn";
    pub const ALARM_PREFIX: &str = "AlarmNamePrefix";
}

/// Builds the safety-rails template of one service and environment.
pub fn build(config: &Config) -> Template {
    let mut b = Builder {
        config,
        template: Template::new(format!(
            "Safety rails of {} ({}): maintenance flag, buckets, queues and alarms. Managed by gatekeeper.",
            config.service(),
            config.environment()
        )),
    };
    b.template.metadata.insert(
        "Gatekeeper".into(),
        map! {
            "Service" => config.service(),
            "Environment" => config.environment(),
        },
    );
    b.flag();
    b.buckets();
    b.alarm_topic();
    for queue in &config.queues {
        b.queue(queue);
    }
    b.target_group_alarms();
    b.custom_alarms();
    b.template
}

struct Builder<'a> {
    config: &'a Config,
    template: Template,
}

impl Builder<'_> {
    fn add(&mut self, id: impl Into<String>, resource: Resource) {
        self.template.resources.insert(id.into(), resource);
    }

    fn output(&mut self, id: &str, description: &str, value: Expr) {
        let export = format!("{}-{id}", self.config.stack_name());
        self.template
            .outputs
            .insert(id.to_string(), Output::exported(description, value, export));
    }

    fn flag(&mut self) {
        let initial = MaintenanceFlag::default().to_json();
        self.add(
            "MaintenanceFlag",
            Resource::new("AWS::SSM::Parameter")
                .property("Name", self.config.flag_parameter())
                .property("Type", "String")
                .property("Value", initial)
                .property(
                    "Description",
                    format!(
                        "Maintenance mode of {} ({}). The stack sets the initial value only; `gatekeeper maintenance on|off` writes it.",
                        self.config.service(),
                        self.config.environment()
                    ),
                ),
        );
        self.output(
            outputs::FLAG_PARAMETER,
            "SSM parameter holding the maintenance flag",
            Expr::reference("MaintenanceFlag"),
        );
    }

    fn buckets(&mut self) {
        let buckets = &self.config.buckets;
        for (id, role, explicit, output) in [
            (
                "IngestionBucket",
                "ingestion",
                &buckets.ingestion,
                outputs::INGESTION_BUCKET,
            ),
            (
                "ParkingLotBucket",
                "parking",
                &buckets.parking_lot,
                outputs::PARKING_LOT_BUCKET,
            ),
        ] {
            let name = match explicit {
                Some(n) => Expr::str(n.get_ref().clone()),
                None => Expr::sub(format!(
                    "{}-{role}-${{{}}}-${{{}}}",
                    self.config.prefix(),
                    pseudo::ACCOUNT_ID,
                    pseudo::REGION
                )),
            };
            let mut sse = BTreeMap::from([("SSEAlgorithm".to_string(), Expr::str("aws:kms"))]);
            if let Some(key) = &buckets.kms_key {
                sse.insert("KMSMasterKeyID".into(), Expr::str(key.clone()));
            }
            let bucket = Resource::new("AWS::S3::Bucket")
                .property("BucketName", name)
                .property("VersioningConfiguration", map! { "Status" => "Enabled" })
                .property(
                    "BucketEncryption",
                    map! {
                        "ServerSideEncryptionConfiguration" => Expr::list([map! {
                            "ServerSideEncryptionByDefault" => Expr::Map(sse),
                            "BucketKeyEnabled" => true,
                        }]),
                    },
                )
                .property(
                    "PublicAccessBlockConfiguration",
                    map! {
                        "BlockPublicAcls" => true,
                        "BlockPublicPolicy" => true,
                        "IgnorePublicAcls" => true,
                        "RestrictPublicBuckets" => true,
                    },
                )
                .property(
                    "OwnershipControls",
                    map! { "Rules" => Expr::list([map! { "ObjectOwnership" => "BucketOwnerEnforced" }]) },
                )
                // Current objects never expire: in the parking lot they are uploads waiting
                // to be redriven. Only old noncurrent versions and abandoned multipart
                // uploads are cleaned up.
                .property(
                    "LifecycleConfiguration",
                    map! {
                        "Rules" => Expr::list([map! {
                            "Id" => "expire-noncurrent-versions",
                            "Status" => "Enabled",
                            "NoncurrentVersionExpiration" => map! {
                                "NoncurrentDays" => *buckets.noncurrent_version_days.get_ref(),
                            },
                            "AbortIncompleteMultipartUpload" => map! { "DaysAfterInitiation" => 7u32 },
                        }]),
                    },
                )
                .retained()
                .skip_check(
                    "CKV_AWS_18",
                    "Server access logging needs a separate log bucket owned by the account's logging setup; object-level events are recorded by CloudTrail data events.",
                );
            self.add(id, bucket);
            self.add(
                format!("{id}Policy"),
                Resource::new("AWS::S3::BucketPolicy")
                    .property("Bucket", Expr::reference(id))
                    .property(
                        "PolicyDocument",
                        map! {
                            "Version" => "2012-10-17",
                            "Statement" => Expr::list([map! {
                                "Sid" => "DenyInsecureTransport",
                                "Effect" => "Deny",
                                "Principal" => "*",
                                "Action" => "s3:*",
                                "Resource" => Expr::list([
                                    Expr::get_att(id, "Arn"),
                                    Expr::sub(format!("${{{id}.Arn}}/*")),
                                ]),
                                "Condition" => map! {
                                    "Bool" => map! { "aws:SecureTransport" => "false" },
                                },
                            }]),
                        },
                    ),
            );
            self.output(
                output,
                &format!(
                    "Name of the {} bucket",
                    if role == "parking" {
                        "parking-lot"
                    } else {
                        role
                    }
                ),
                Expr::reference(id),
            );
        }
    }

    fn alarm_topic(&mut self) {
        self.add(
            "AlarmTopicKey",
            Resource::new("AWS::KMS::Key")
                .property(
                    "Description",
                    format!("Encrypts the alarm topic of {}", self.config.prefix()),
                )
                .property("EnableKeyRotation", true)
                .property(
                    "KeyPolicy",
                    map! {
                        "Version" => "2012-10-17",
                        "Statement" => Expr::list([
                            map! {
                                "Sid" => "AccountAdministers",
                                "Effect" => "Allow",
                                "Principal" => map! {
                                    "AWS" => Expr::sub(format!("arn:${{{}}}:iam::${{{}}}:root", pseudo::PARTITION, pseudo::ACCOUNT_ID)),
                                },
                                "Action" => "kms:*",
                                "Resource" => "*",
                            },
                            map! {
                                "Sid" => "CloudWatchPublishesAlarms",
                                "Effect" => "Allow",
                                "Principal" => map! { "Service" => "cloudwatch.amazonaws.com" },
                                "Action" => Expr::list(["kms:Decrypt".into(), "kms:GenerateDataKey*".into()]),
                                "Resource" => "*",
                            },
                        ]),
                    },
                ),
        );
        self.add(
            "AlarmTopic",
            Resource::new("AWS::SNS::Topic")
                .property("TopicName", format!("{}-alarms", self.config.prefix()))
                .property("KmsMasterKeyId", Expr::reference("AlarmTopicKey")),
        );
        for (i, email) in self.config.alarms.emails.iter().enumerate() {
            self.add(
                format!("AlarmEmail{}", i + 1),
                Resource::new("AWS::SNS::Subscription")
                    .property("TopicArn", Expr::reference("AlarmTopic"))
                    .property("Protocol", "email")
                    .property("Endpoint", email.get_ref().clone()),
            );
        }
        self.output(
            outputs::ALARM_TOPIC,
            "SNS topic that receives every alarm of the service",
            Expr::reference("AlarmTopic"),
        );
        self.output(
            outputs::ALARM_PREFIX,
            "Prefix of every alarm name of the service",
            Expr::str(self.config.alarm_prefix()),
        );
    }

    fn queue(&mut self, queue: &QueueConfig) {
        let short = queue.name.get_ref();
        let id = logical_id("Queue", short);
        let dlq_id = logical_id("DeadLetterQueue", short);
        let fifo = |r: Resource| {
            let r = r.skip_check(
                "CKV_AWS_27",
                "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled). A KMS key would stop S3 event notifications and SNS from delivering to the queue unless its key policy granted them.",
            );
            if queue.fifo {
                r.property("FifoQueue", true)
            } else {
                r
            }
        };
        // Queues hold work: retained like buckets, so a rename or a removal never drops
        // messages on the floor.
        self.add(
            &dlq_id,
            fifo(
                Resource::new("AWS::SQS::Queue")
                    .property("QueueName", self.config.dlq_name(queue))
                    .property("MessageRetentionPeriod", 1_209_600u32)
                    .property("SqsManagedSseEnabled", true),
            )
            .retained(),
        );
        self.add(
            &id,
            fifo(
                Resource::new("AWS::SQS::Queue")
                    .property("QueueName", self.config.queue_name(queue))
                    .property(
                        "VisibilityTimeout",
                        *queue.visibility_timeout_seconds.get_ref(),
                    )
                    .property("SqsManagedSseEnabled", true)
                    .property(
                        "RedrivePolicy",
                        map! {
                            "deadLetterTargetArn" => Expr::get_att(&dlq_id, "Arn"),
                            "maxReceiveCount" => *queue.max_receive_count.get_ref(),
                        },
                    ),
            )
            .retained(),
        );
        let alarms = &self.config.alarms;
        let base = format!("{}{short}", self.config.alarm_prefix());
        self.add(
            logical_id("AlarmOldestMessage", short),
            self.alarm(
                format!("{base}-oldest-message"),
                format!(
                    "The oldest message of {} is older than {} s: consumers are stuck or too slow.",
                    self.config.queue_name(queue),
                    queue.oldest_message_alarm_seconds.get_ref()
                ),
                "AWS/SQS",
                "ApproximateAgeOfOldestMessage",
                "Maximum",
                map! { "QueueName" => Expr::get_att(&id, "QueueName") },
                "GreaterThanThreshold",
                Expr::Int(i64::from(*queue.oldest_message_alarm_seconds.get_ref())),
                alarms.evaluation_periods,
                "notBreaching",
            ),
        );
        self.add(
            logical_id("AlarmDeadLetters", short),
            self.alarm(
                format!("{base}-dlq-not-empty"),
                format!(
                    "Messages are waiting in {}: they failed {} times and need a redrive.",
                    self.config.dlq_name(queue),
                    queue.max_receive_count.get_ref()
                ),
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "Maximum",
                map! { "QueueName" => Expr::get_att(&dlq_id, "QueueName") },
                "GreaterThanThreshold",
                Expr::Int(0),
                1,
                "notBreaching",
            ),
        );
        for (suffix, what, value) in [
            ("Url", "URL", Expr::reference(&id)),
            ("Arn", "ARN", Expr::get_att(&id, "Arn")),
        ] {
            self.output(
                &format!("{id}{suffix}"),
                &format!("{what} of the {short} queue"),
                value,
            );
        }
        for (suffix, what, value) in [
            ("Url", "URL", Expr::reference(&dlq_id)),
            ("Arn", "ARN", Expr::get_att(&dlq_id, "Arn")),
        ] {
            self.output(
                &format!("{dlq_id}{suffix}"),
                &format!("{what} of the dead-letter queue of {short}"),
                value,
            );
        }
    }

    fn target_group_alarms(&mut self) {
        for tg in &self.config.target_groups {
            let short = tg.name.get_ref();
            let dims = map! {
                "LoadBalancer" => tg.load_balancer.get_ref().clone(),
                "TargetGroup" => tg.target_group.get_ref().clone(),
            };
            let base = format!("{}tg-{short}", self.config.alarm_prefix());
            self.add(
                logical_id("AlarmTarget5xx", short),
                self.alarm(
                    format!("{base}-5xx"),
                    format!(
                        "Targets of {short} answered more than {} 5xx in one period.",
                        tg.max_5xx
                    ),
                    "AWS/ApplicationELB",
                    "HTTPCode_Target_5XX_Count",
                    "Sum",
                    dims.clone(),
                    "GreaterThanThreshold",
                    Expr::Int(i64::from(tg.max_5xx)),
                    self.config.alarms.evaluation_periods,
                    "notBreaching",
                ),
            );
            self.add(
                logical_id("AlarmUnhealthyHosts", short),
                self.alarm(
                    format!("{base}-unhealthy-hosts"),
                    format!("At least one target of {short} is unhealthy."),
                    "AWS/ApplicationELB",
                    "UnHealthyHostCount",
                    "Maximum",
                    dims,
                    "GreaterThanThreshold",
                    Expr::Int(0),
                    self.config.alarms.evaluation_periods,
                    "notBreaching",
                ),
            );
        }
    }

    fn custom_alarms(&mut self) {
        for a in &self.config.alarms.custom {
            let short = a.name.get_ref();
            let dims = Expr::Map(
                a.dimensions
                    .iter()
                    .map(|(k, v)| (k.clone(), Expr::str(v.clone())))
                    .collect(),
            );
            let mut alarm = self.alarm(
                format!("{}{short}", self.config.alarm_prefix()),
                a.description.clone().unwrap_or_else(|| {
                    format!("{} {} of {}", a.statistic.get_ref(), a.metric, a.namespace)
                }),
                &a.namespace,
                &a.metric,
                a.statistic.get_ref(),
                dims,
                a.comparison.as_str(),
                Expr::Float(*a.threshold.get_ref()),
                a.evaluation_periods,
                a.treat_missing_data.as_str(),
            );
            alarm
                .properties
                .insert("Period".into(), Expr::from(a.period_seconds));
            self.add(logical_id("Alarm", short), alarm);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn alarm(
        &self,
        name: String,
        description: String,
        namespace: &str,
        metric: &str,
        statistic: &str,
        dimensions: Expr,
        comparison: &str,
        threshold: Expr,
        evaluation_periods: u32,
        missing: &str,
    ) -> Resource {
        let dimensions = match dimensions {
            Expr::Map(m) => Expr::list(
                m.into_iter()
                    .map(|(k, v)| map! { "Name" => k, "Value" => v }),
            ),
            other => other,
        };
        let stat = if statistic.starts_with('p') {
            ("ExtendedStatistic", statistic)
        } else {
            ("Statistic", statistic)
        };
        Resource::new("AWS::CloudWatch::Alarm")
            .property("AlarmName", name)
            .property("AlarmDescription", description)
            .property("Namespace", namespace)
            .property("MetricName", metric)
            .property(stat.0, stat.1)
            .property("Dimensions", dimensions)
            .property("ComparisonOperator", comparison)
            .property("Threshold", threshold)
            .property("Period", self.config.alarms.period_seconds)
            .property("EvaluationPeriods", evaluation_periods)
            .property("TreatMissingData", missing)
            .property("AlarmActions", Expr::list([Expr::reference("AlarmTopic")]))
            .property("OKActions", Expr::list([Expr::reference("AlarmTopic")]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_ids_are_pascal_case() {
        assert_eq!(logical_id("Queue", "ingest-images"), "QueueIngestImages");
        assert_eq!(logical_id("Alarm", "api_p99"), "AlarmApiP99");
    }
}
