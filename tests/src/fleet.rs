//! A canary fleet in moto: EC2 instances behind an application load balancer whose listener
//! forwards by weight to a production and a canary target group, the service's maintenance
//! flag, and a `gatekeeper.toml` whose `command` deployer records node → revision in a
//! temporary directory (`examples/photos/canary/deploy.sh`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;

use crate::{repo_root, unique, Moto};

/// One EC2 Query API call to moto (the tests carry no EC2 SDK): the response XML.
pub fn ec2_query(endpoint: &str, params: &[(&str, &str)]) -> String {
    let (status, body) = aws_query(endpoint, "ec2", "2016-11-15", params);
    assert_eq!(status, 200, "EC2 {params:?}: {body}");
    body
}

/// One Query API call (form-encoded POST) to moto for `service`: (HTTP status, response).
pub fn aws_query(
    endpoint: &str,
    service: &str,
    version: &str,
    params: &[(&str, &str)],
) -> (u16, String) {
    fn encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut body = format!("Version={version}");
    for (k, v) in params {
        body.push('&');
        body.push_str(&encode(k));
        body.push('=');
        body.push_str(&encode(v));
    }
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, \
         SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to moto");
    stream.write_all(request.as_bytes()).expect("send to moto");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read from moto");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

/// The judge of every test fleet: error rate (critical) and latency.
pub const JUDGE: &str = r#"[[canary.judge.metrics]]
name = "error_rate"
kind = "count"
tolerance = 0.2
critical = true
min_samples = 100

[[canary.judge.metrics]]
name = "latency"
kind = "continuous"
tolerance = 0.5
min_samples = 1
"#;

/// Metrics of a healthy canary: (requests, errors, latency) of production, then the canary.
pub const HEALTHY: ((f64, f64, f64), (f64, f64, f64)) =
    ((19_000.0, 19.0, 0.120), (1_000.0, 1.0, 0.121));

/// An S3 client for moto (path-style).
pub async fn s3(moto: &Moto) -> aws_sdk_s3::Client {
    let sdk = sdk(moto).await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    )
}

/// One datapoint per `(metric, value)`, stamped a few seconds ago, with these dimensions.
pub async fn put_datapoints(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    dimensions: &[(&str, &str)],
    values: &[(&str, f64)],
) {
    #[expect(
        clippy::disallowed_methods,
        reason = "datapoints are stamped with moto's wall clock"
    )]
    let now = std::time::SystemTime::now() - std::time::Duration::from_secs(5);
    put_datapoints_at(cloudwatch, namespace, dimensions, values, now).await;
}

/// [`put_datapoints`] stamped `at` (which may be in the next minutes: moto keeps them).
pub async fn put_datapoints_at(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    dimensions: &[(&str, &str)],
    values: &[(&str, f64)],
    now: std::time::SystemTime,
) {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    let dims: Vec<Dimension> = dimensions
        .iter()
        .map(|(k, v)| Dimension::builder().name(*k).value(*v).build())
        .collect();
    let mut req = cloudwatch.put_metric_data().namespace(namespace);
    for (name, value) in values {
        req = req.metric_data(
            MetricDatum::builder()
                .metric_name(*name)
                .set_dimensions(Some(dims.clone()))
                .value(*value)
                .timestamp(now.into())
                .build(),
        );
    }
    req.send().await.expect("PutMetricData");
}

/// Every `<tag>value</tag>` of an XML text, in order.
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(&open)
        .skip(1)
        .filter_map(|s| s.split_once(&close).map(|(v, _)| v.to_string()))
        .collect()
}

pub struct Fleet {
    pub moto: Moto,
    pub service: String,
    pub environment: String,
    pub listener_arn: String,
    pub prod_tg: String,
    pub canary_tg: String,
    pub lb_dimension: String,
    pub nodes: Vec<String>,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub s3: aws_sdk_s3::Client,
    /// The bucket of `[state] url`: the lock and the journals of this fleet's service.
    pub state_bucket: String,
}

pub async fn sdk(moto: &Moto) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ssm::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await
}

impl Fleet {
    /// `nodes` instances on revision `v1`, all healthy in production, weights 100/0.
    /// `extra` is appended to the `[canary]` table.
    pub async fn new(moto: &Moto, nodes: usize, extra: &str) -> Fleet {
        use aws_sdk_elasticloadbalancingv2::types::{
            Action, ActionTypeEnum, ForwardActionConfig, ProtocolEnum, TargetDescription,
            TargetGroupTuple, TargetTypeEnum,
        };
        let sdk = sdk(moto).await;
        let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
        let cloudwatch = aws_sdk_cloudwatch::Client::new(&sdk);
        let ssm = aws_sdk_ssm::Client::new(&sdk);
        let s3 = s3(moto).await;
        let state_bucket = unique("gk-state");
        s3.create_bucket()
            .bucket(&state_bucket)
            .send()
            .await
            .expect("CreateBucket state");
        let service = unique("cn");
        let environment = "e2e".to_string();

        let subnets = ec2_query(&moto.endpoint, &[("Action", "DescribeSubnets")]);
        let ids = xml_values(&subnets, "subnetId");
        let azs = xml_values(&subnets, "availabilityZone");
        let vpc = xml_values(&subnets, "vpcId")[0].clone();
        let mut picked: Vec<String> = Vec::new();
        let mut seen = BTreeSet::new();
        for (id, az) in ids.iter().zip(&azs) {
            if seen.insert(az.clone()) {
                picked.push(id.clone());
            }
        }
        let count = nodes.to_string();
        let run = ec2_query(
            &moto.endpoint,
            &[
                ("Action", "RunInstances"),
                ("ImageId", "ami-12c6146b"),
                ("InstanceType", "t3.micro"),
                ("MinCount", &count),
                ("MaxCount", &count),
                ("SubnetId", &picked[0]),
            ],
        );
        let mut instances = xml_values(&run, "instanceId");
        instances.sort();

        let lb = elb
            .create_load_balancer()
            .name(&service)
            .set_subnets(Some(picked.iter().take(2).cloned().collect()))
            .send()
            .await
            .expect("CreateLoadBalancer");
        let lb_arn = lb.load_balancers()[0]
            .load_balancer_arn()
            .unwrap()
            .to_string();
        let mut tgs = Vec::new();
        for suffix in ["prod", "canary"] {
            let tg = elb
                .create_target_group()
                .name(format!("{service}-{suffix}"))
                .protocol(ProtocolEnum::Http)
                .port(80)
                .vpc_id(&vpc)
                .target_type(TargetTypeEnum::Instance)
                .send()
                .await
                .expect("CreateTargetGroup");
            tgs.push(
                tg.target_groups()[0]
                    .target_group_arn()
                    .unwrap()
                    .to_string(),
            );
        }
        let (prod_tg, canary_tg) = (tgs[0].clone(), tgs[1].clone());
        elb.register_targets()
            .target_group_arn(&prod_tg)
            .set_targets(Some(
                instances
                    .iter()
                    .map(|i| TargetDescription::builder().id(i).port(80).build())
                    .collect(),
            ))
            .send()
            .await
            .expect("RegisterTargets");
        let forward = ForwardActionConfig::builder()
            .target_groups(
                TargetGroupTuple::builder()
                    .target_group_arn(&prod_tg)
                    .weight(100)
                    .build(),
            )
            .target_groups(
                TargetGroupTuple::builder()
                    .target_group_arn(&canary_tg)
                    .weight(0)
                    .build(),
            )
            .build();
        let listener = elb
            .create_listener()
            .load_balancer_arn(&lb_arn)
            .protocol(ProtocolEnum::Http)
            .port(80)
            .default_actions(
                Action::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .forward_config(forward)
                    .build(),
            )
            .send()
            .await
            .expect("CreateListener");
        let listener_arn = listener.listeners()[0].listener_arn().unwrap().to_string();
        let lb_dimension = lb_arn.split(":loadbalancer/").nth(1).unwrap().to_string();

        ssm.put_parameter()
            .name(format!("/{service}/{environment}/maintenance"))
            .value(r#"{"enabled":false}"#)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .expect("PutParameter flag");

        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        for i in &instances {
            std::fs::write(state.join(i), "v1\n").unwrap();
        }
        let scripts = repo_root().join("examples/photos/canary");
        let config = dir.path().join("gatekeeper.toml");
        // A `lease_seconds = N` line in `extra` goes to `[state]`.
        let lease: String = extra
            .lines()
            .filter(|l| l.starts_with("lease_seconds = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let extra: String = extra
            .lines()
            .filter(|l| !l.starts_with("lease_seconds = "))
            .map(|l| format!("{l}\n"))
            .collect();
        let text = format!(
            r#"service = "{service}"
environment = "{environment}"
region = "us-east-1"

[canary]
listener_arn = "{listener_arn}"
prod_target_group_arn = "{prod_tg}"
canary_target_group_arn = "{canary_tg}"
canary_weight = 5
wave_size = 2
drain_timeout_seconds = 5
health_timeout_seconds = 5
poll_seconds = 1
{timing}smoke_command = ["{smoke}"]
{extra}

[canary.deployer]
kind = "command"
command = ["{deploy}"]
current = ["{current}"]

[canary.metrics]
latency_statistic = "Average"

[canary.judge]
alpha = 0.05

{JUDGE}
[state]
url = "s3://{state_bucket}/gatekeeper"
{lease}"#,
            // Drain and bake at zero unless `extra` sets them.
            timing = [("bake_seconds", 0), ("interval_seconds", 0)]
                .iter()
                .filter(|(key, _)| !extra.contains(&format!("{key} =")))
                .map(|(key, v)| format!("{key} = {v}\n"))
                .collect::<String>(),
            smoke = scripts.join("smoke.sh").display(),
            deploy = scripts.join("deploy.sh").display(),
            current = scripts.join("current.sh").display(),
        );
        std::fs::write(&config, text).unwrap();
        Fleet {
            moto: moto.clone(),
            service,
            environment,
            listener_arn,
            prod_tg,
            canary_tg,
            lb_dimension,
            nodes: instances,
            dir,
            config,
            elb,
            cloudwatch,
            ssm,
            s3,
            state_bucket,
        }
    }

    /// The fleet's prod configuration, a staging one (the example's rails), and a pipeline file
    /// beside them whose runs live in the fleet's state bucket.
    pub fn pipeline(&self, approval: &str) -> PathBuf {
        let fleet = self;
        let dir = fleet.dir.path();
        let staging = std::fs::read_to_string(repo_root().join("examples/photos/prod.toml"))
            .unwrap()
            .replace(
                "service = \"photos\"",
                &format!("service = \"{}\"", fleet.service),
            )
            .replace("environment = \"prod\"", "environment = \"staging\"")
            .replace("region = \"eu-west-1\"", "region = \"us-east-1\"");
        std::fs::write(dir.join("staging.toml"), staging).unwrap();
        let file = dir.join("pipeline.toml");
        std::fs::write(
            &file,
            format!(
                "service = \"{service}\"\n\n[state]\nurl = \"s3://{bucket}/pipelines\"\nlease_seconds = 3\n\n\
                 [pipeline.ci]\nregion = \"us-east-1\"\n\n\
                 [[pipeline.stages]]\nname = \"staging\"\nconfig = \"staging.toml\"\nkind = \"stack\"\n\n\
                 [[pipeline.stages]]\nname = \"prod-canary\"\nconfig = \"gatekeeper.toml\"\nkind = \"canary\"\n\
                 needs = [\"staging\"]\n{approval}\n\n\
                 [[pipeline.stages]]\nname = \"promote\"\nconfig = \"gatekeeper.toml\"\nkind = \"promote\"\n\
                 needs = [\"prod-canary\"]\n",
                service = fleet.service,
                bucket = fleet.state_bucket,
            ),
        )
        .unwrap();
        file
    }

    /// `gatekeeper <args> --config <this fleet's config>` against moto, deploy state wired.
    pub fn gatekeeper(&self, args: &[&str]) -> Command {
        let mut cmd = self.moto.gatekeeper();
        cmd.args(args)
            .arg("--config")
            .arg(&self.config)
            .env("CANARY_STATE_DIR", self.dir.path().join("state"))
            .env_remove("GATEKEEPER_CRASH_AFTER");
        cmd
    }

    pub async fn members(&self, tg: &str) -> BTreeSet<String> {
        let out = self
            .elb
            .describe_target_health()
            .target_group_arn(tg)
            .send()
            .await
            .expect("DescribeTargetHealth");
        out.target_health_descriptions()
            .iter()
            .filter_map(|d| d.target()?.id().map(str::to_string))
            .collect()
    }

    /// (prod, canary) weights of the listener's forward action.
    pub async fn weights(&self) -> (i32, i32) {
        let out = self
            .elb
            .describe_listeners()
            .listener_arns(&self.listener_arn)
            .send()
            .await
            .expect("DescribeListeners");
        let mut w = (-1, -1);
        for t in out.listeners()[0].default_actions()[0]
            .forward_config()
            .expect("weighted forward")
            .target_groups()
        {
            let weight = t.weight().unwrap_or(-1);
            if t.target_group_arn() == Some(self.prod_tg.as_str()) {
                w.0 = weight;
            } else if t.target_group_arn() == Some(self.canary_tg.as_str()) {
                w.1 = weight;
            }
        }
        w
    }

    /// node → revision, as the deploy script recorded it.
    pub fn revisions(&self) -> BTreeMap<String, String> {
        self.nodes
            .iter()
            .map(|n| {
                let rev = std::fs::read_to_string(self.dir.path().join("state").join(n))
                    .unwrap_or_default();
                (n.clone(), rev.trim().to_string())
            })
            .collect()
    }

    /// The lock object in the state bucket, if it was ever taken.
    pub async fn lock(&self) -> Option<serde_json::Value> {
        let key = format!("gatekeeper/{}-{}/lock.json", self.service, self.environment);
        let out = self
            .s3
            .get_object()
            .bucket(&self.state_bucket)
            .key(key)
            .send()
            .await
            .ok()?;
        let body = out.body.collect().await.ok()?.into_bytes();
        Some(serde_json::from_slice(&body).expect("the lock is JSON"))
    }

    /// Held by a process or parked by a run in flight: anything but free.
    pub async fn lock_held(&self) -> bool {
        self.lock()
            .await
            .is_some_and(|l| l["state"].as_str() != Some("free"))
    }

    /// The run ids journaled in the state bucket, oldest first.
    pub async fn runs(&self) -> Vec<String> {
        let prefix = format!("gatekeeper/{}-{}/runs/", self.service, self.environment);
        let out = self
            .s3
            .list_objects_v2()
            .bucket(&self.state_bucket)
            .prefix(&prefix)
            .send()
            .await
            .expect("ListObjectsV2");
        let mut runs: Vec<String> = out
            .contents()
            .iter()
            .filter_map(|o| o.key()?.strip_prefix(&prefix)?.split('/').next())
            .map(str::to_string)
            .collect();
        runs.dedup();
        runs
    }

    /// Every record of `run` as JSON, in order.
    pub async fn records(&self, run: &str) -> Vec<serde_json::Value> {
        let prefix = format!(
            "gatekeeper/{}-{}/runs/{run}/",
            self.service, self.environment
        );
        let out = self
            .s3
            .list_objects_v2()
            .bucket(&self.state_bucket)
            .prefix(&prefix)
            .send()
            .await
            .expect("ListObjectsV2");
        let mut records = Vec::new();
        for o in out.contents() {
            let got = self
                .s3
                .get_object()
                .bucket(&self.state_bucket)
                .key(o.key().unwrap())
                .send()
                .await
                .expect("GetObject record");
            let body = got.body.collect().await.unwrap().into_bytes();
            records.push(serde_json::from_slice(&body).unwrap());
        }
        records
    }

    /// Puts one minute of ALB metrics per target group into moto's CloudWatch.
    pub async fn put_metrics(&self, prod: (f64, f64, f64), canary: (f64, f64, f64)) {
        for (tg, (requests, errors, latency_s)) in
            [(&self.prod_tg, prod), (&self.canary_tg, canary)]
        {
            let dim = tg.split_once(":targetgroup/").unwrap().1;
            let group = format!("targetgroup/{dim}");
            put_datapoints(
                &self.cloudwatch,
                "AWS/ApplicationELB",
                &[
                    ("TargetGroup", &group),
                    ("LoadBalancer", &self.lb_dimension),
                ],
                &[
                    ("RequestCount", requests),
                    ("HTTPCode_Target_5XX_Count", errors),
                    ("TargetResponseTime", latency_s),
                ],
            )
            .await;
        }
    }

    /// The canary node was deployed, then redeployed with the previous revision; nothing else.
    pub fn assert_canary_redeployed(&self, revision: &str, previous: &str) {
        let log = std::fs::read_to_string(self.dir.path().join("state/deploy.log")).unwrap();
        let canary = &self.nodes[0];
        assert_eq!(log, format!("{canary} {revision}\n{canary} {previous}\n"));
    }

    /// Production has every node, the canary group none, weights 100/0, every node on
    /// `revision` (whatever the lock says: a foreign lock object is left alone).
    pub async fn assert_safe_on_with_lock(&self, revision: &str) {
        let all: BTreeSet<String> = self.nodes.iter().cloned().collect();
        assert_eq!(self.members(&self.prod_tg).await, all, "production group");
        assert!(
            self.members(&self.canary_tg).await.is_empty(),
            "canary group"
        );
        assert_eq!(self.weights().await, (100, 0), "listener weights");
        for (node, rev) in self.revisions() {
            assert_eq!(rev, revision, "revision of {node}");
        }
    }

    /// Production has every node, the canary group none, weights 100/0, every node on
    /// `revision`, the lock free.
    pub async fn assert_safe_on(&self, revision: &str) {
        let all: BTreeSet<String> = self.nodes.iter().cloned().collect();
        assert_eq!(self.members(&self.prod_tg).await, all, "production group");
        assert!(
            self.members(&self.canary_tg).await.is_empty(),
            "canary group"
        );
        assert_eq!(self.weights().await, (100, 0), "listener weights");
        for (node, rev) in self.revisions() {
            assert_eq!(rev, revision, "revision of {node}");
        }
        assert!(!self.lock_held().await, "lock still held");
    }
}
