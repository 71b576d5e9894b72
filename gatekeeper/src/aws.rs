//! The one place AWS configuration is loaded. Library crates receive clients, never config.

use std::sync::OnceLock;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;

/// The default deadline of one request attempt (`--aws-timeout`,
/// `GATEKEEPER_AWS_TIMEOUT_SECONDS`).
pub const DEFAULT_TIMEOUT_SECONDS: &str = "30";
/// The longest wait for a connection: a request that cannot even connect fails fast.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

static TIMEOUT: OnceLock<Duration> = OnceLock::new();

/// Sets the deadline of every request attempt, once, before the first client is built.
pub fn set_timeout(timeout: Duration) {
    let _ = TIMEOUT.set(timeout);
}

/// Connect, read and per-attempt deadlines of every request: an attempt that gets no answer
/// within `attempt` fails as a timeout (and is retried while attempts remain), so no command
/// waits on one request for ever.
pub fn timeouts(attempt: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(attempt.min(MAX_CONNECT_TIMEOUT))
        .read_timeout(attempt)
        .operation_attempt_timeout(attempt)
        .build()
}

/// Parses `--aws-timeout`: positive seconds, fractions allowed.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "{text:?} is not a number of seconds between 0 and 3600"
        )),
    }
}

/// Clients for every service the gate uses, built from one `SdkConfig`.
#[derive(Clone, Debug)]
#[allow(dead_code)] // each command uses the clients it needs
pub struct Clients {
    pub sdk: aws_config::SdkConfig,
    pub cloudformation: aws_sdk_cloudformation::Client,
    pub codedeploy: aws_sdk_codedeploy::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub sts: aws_sdk_sts::Client,
    pub sns: aws_sdk_sns::Client,
}

/// Loads the standard credential chain, region and `AWS_ENDPOINT_URL` (aws-config reads it),
/// with bounded retries: standard mode, at most `AWS_MAX_ATTEMPTS` (default 3) attempts with
/// exponential backoff, after which the caller stops safely; every attempt has the deadlines of
/// [`timeouts`].
pub async fn clients(region: Option<&str>) -> Clients {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    let max_attempts = std::env::var("AWS_MAX_ATTEMPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let sdk = loader
        .retry_config(RetryConfig::standard().with_max_attempts(max_attempts))
        .timeout_config(timeouts(*TIMEOUT.get_or_init(|| {
            parse_timeout(DEFAULT_TIMEOUT_SECONDS).expect("the default timeout parses")
        })))
        .load()
        .await;
    macro_rules! client {
        ($sdk_crate:ident) => {
            $sdk_crate::Client::from_conf(
                $sdk_crate::config::Builder::from(&sdk)
                    .interceptor(CountCalls)
                    .build(),
            )
        };
    }
    // Path-style addressing works with every endpoint, emulators and VPC endpoints included.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .interceptor(CountCalls)
            .build(),
    );
    Clients {
        cloudformation: client!(aws_sdk_cloudformation),
        codedeploy: client!(aws_sdk_codedeploy),
        elb: client!(aws_sdk_elasticloadbalancingv2),
        ssm: client!(aws_sdk_ssm),
        sqs: client!(aws_sdk_sqs),
        cloudwatch: client!(aws_sdk_cloudwatch),
        sts: client!(aws_sdk_sts),
        sns: client!(aws_sdk_sns),
        s3,
        sdk,
    }
}

/// Requests sent to AWS by this process, per `Service:Operation` (every attempt counts).
static CALLS: std::sync::Mutex<std::collections::BTreeMap<String, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

#[derive(Debug)]
struct CountCalls;

impl aws_smithy_runtime_api::client::interceptors::Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "CountCalls"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        use aws_smithy_runtime_api::client::orchestrator::Metadata;
        let key = cfg
            .load::<Metadata>()
            .map(|m| format!("{}:{}", m.service().replace(' ', ""), m.name()))
            .unwrap_or_else(|| "unknown".into());
        if let Ok(mut calls) = CALLS.lock() {
            *calls.entry(key).or_default() += 1;
        }
        Ok(())
    }
}

/// With `GATEKEEPER_AWS_CALLS` set, prints on stderr how many requests this process sent to
/// AWS, per operation: what a run costs in API calls (and throttling budget).
/// Reports once per process, whichever caller comes first (the CLI reports after every command).
pub fn report_calls() {
    static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if std::env::var_os("GATEKEEPER_AWS_CALLS").is_none()
        || REPORTED.swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        return;
    }
    let Ok(calls) = CALLS.lock() else { return };
    let total: u64 = calls.values().sum();
    let each: Vec<String> = calls.iter().map(|(k, n)| format!("{k}={n}")).collect();
    crate::ui::eprintln!("aws calls: {total} {}", each.join(" "));
}

/// A current-thread runtime for one command.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
