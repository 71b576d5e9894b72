//! How an AWS SDK error reads, and whether a wait may retry it.
//!
//! Every crate that talks to AWS formats its errors with [`message`] (the service's code and
//! message, or what went wrong on the way, in one short line: never the SDK's `Debug` dump) and
//! asks [`is_transient`] inside a wait that has a deadline. The caller names the operation and
//! the resource around the message.

use std::error::Error;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::retry::ErrorKind;

/// The longest text taken from an underlying error (a parser's complaint can quote a whole
/// response body).
const MAX_DETAIL: usize = 200;

/// One line for people: `Code: message` from the service, or what failed on the way
/// (`no answer within the timeout`, `connection failed: ...`, `unreadable response (HTTP 502)`).
pub fn message<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + Error + 'static,
{
    match e {
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            if s.raw().status().is_success() && s.err().code().is_none() {
                // A success status the SDK could not read as the operation's output.
                return format!("unreadable response (HTTP {status}): {}", innermost(e));
            }
            match (s.err().code(), s.err().message()) {
                (Some(code), Some(text)) => format!("{code}: {}", shorten(text)),
                (Some(code), None) => format!("{code} (HTTP {status})"),
                (None, Some(text)) => format!("HTTP {status}: {}", shorten(text)),
                (None, None) => format!("HTTP {status} without an error code"),
            }
        }
        SdkError::ResponseError(r) => format!(
            "unreadable response (HTTP {}): {}",
            r.raw().status().as_u16(),
            innermost(e)
        ),
        SdkError::TimeoutError(_) => "no answer within the timeout".to_string(),
        SdkError::DispatchFailure(d) if d.is_timeout() => {
            format!("no answer within the timeout ({})", innermost(e))
        }
        SdkError::DispatchFailure(d) if d.is_io() => {
            format!("connection failed: {}", innermost(e))
        }
        SdkError::DispatchFailure(_) => format!("request not sent: {}", innermost(e)),
        SdkError::ConstructionFailure(_) => format!("request not built: {}", innermost(e)),
        _ => shorten(&e.to_string()),
    }
}

/// Whether asking again may succeed: throttling (`Throttling`, `SlowDown`, HTTP 429), a server
/// error (5xx), a timeout, a connection that failed or a response that could not be read. A
/// wait with a deadline retries these until the deadline; any other error ends it.
pub fn is_transient<E>(e: &SdkError<E, HttpResponse>) -> bool
where
    E: ProvideErrorMetadata + Error + 'static,
{
    match e {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(d) => {
            d.is_timeout()
                || d.is_io()
                || matches!(
                    d.as_other(),
                    Some(ErrorKind::TransientError | ErrorKind::ThrottlingError)
                )
        }
        SdkError::ServiceError(s) => {
            let status = s.raw().status().as_u16();
            status == 429
                || status >= 500
                || (s.raw().status().is_success() && s.err().code().is_none())
                || s.err().code().is_some_and(|c| TRANSIENT_CODES.contains(&c))
        }
        _ => false,
    }
}

/// Error codes AWS services answer when the same request may succeed later (the SDK's own
/// throttling and transient lists, which `standard` retry mode also uses).
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
];

/// The deepest error in the chain: where the SDK's wrappers ("dispatch failure", "io error")
/// end and the cause ("Connection refused (os error 111)") begins.
fn innermost(e: &(dyn Error + 'static)) -> String {
    let mut last: &(dyn Error + 'static) = e;
    while let Some(next) = last.source() {
        last = next;
    }
    shorten(&last.to_string())
}

fn shorten(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    if line.chars().count() <= MAX_DETAIL {
        return line.to_string();
    }
    let cut: String = line.chars().take(MAX_DETAIL).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    type Sdk = SdkError<GetQueueUrlError, HttpResponse>;

    fn response(status: u16, body: &'static str) -> HttpResponse {
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
    }

    fn service(status: u16, code: Option<&str>, text: Option<&str>) -> Sdk {
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        if let Some(text) = text {
            meta = meta.message(text);
        }
        SdkError::service_error(
            GetQueueUrlError::generic(meta.build()),
            response(status, ""),
        )
    }

    #[derive(Debug)]
    struct Cause(&'static str);
    impl std::fmt::Display for Cause {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl Error for Cause {}

    #[test]
    fn a_service_error_reads_as_its_code_and_message() {
        let e = service(
            400,
            Some("AccessDenied"),
            Some("not allowed to GetQueueUrl"),
        );
        assert_eq!(message(&e), "AccessDenied: not allowed to GetQueueUrl");
        assert!(!is_transient(&e));
        let e = service(503, None, None);
        assert_eq!(message(&e), "HTTP 503 without an error code");
        assert!(is_transient(&e));
    }

    #[test]
    fn throttling_and_server_errors_are_transient() {
        for (status, code) in [
            (400, "Throttling"),
            (503, "SlowDown"),
            (400, "ThrottlingException"),
            (500, "InternalError"),
            (429, "TooManyRequests"),
        ] {
            let e = service(status, Some(code), Some("try later"));
            assert!(is_transient(&e), "{code} is transient");
            assert_eq!(message(&e), format!("{code}: try later"));
        }
        let e = service(400, Some("ValidationError"), Some("Stack s does not exist"));
        assert!(!is_transient(&e));
    }

    #[test]
    fn a_dispatch_failure_names_its_cause_not_the_wrappers() {
        let e: Sdk = SdkError::dispatch_failure(ConnectorError::io(Box::new(Cause(
            "Connection refused (os error 111)",
        ))));
        assert_eq!(
            message(&e),
            "connection failed: Connection refused (os error 111)"
        );
        assert!(is_transient(&e));
        let e: Sdk =
            SdkError::dispatch_failure(ConnectorError::user(Box::new(Cause("invalid endpoint"))));
        assert_eq!(message(&e), "request not sent: invalid endpoint");
        assert!(!is_transient(&e));
    }

    #[test]
    fn a_timeout_says_so() {
        let e: Sdk = SdkError::timeout_error(Box::new(Cause("timeout elapsed")));
        assert_eq!(message(&e), "no answer within the timeout");
        assert!(is_transient(&e));
        let e: Sdk = SdkError::dispatch_failure(ConnectorError::timeout(Box::new(Cause(
            "HTTP read timeout occurred after 2s",
        ))));
        assert_eq!(
            message(&e),
            "no answer within the timeout (HTTP read timeout occurred after 2s)"
        );
        assert!(is_transient(&e));
    }

    #[test]
    fn an_unparseable_response_is_one_short_line() {
        // What a proxy's HTML error page does to an XML protocol: the parser quotes the body.
        let body = format!("<html>{}</html>", "x".repeat(2000));
        let cause: Box<dyn Error + Send + Sync> =
            format!("failed to parse XML response: unexpected element {body}\nat line 1").into();
        let e: Sdk = SdkError::response_error(cause, response(502, "<html>"));
        let text = message(&e);
        assert!(
            text.starts_with("unreadable response (HTTP 502): failed to parse XML response"),
            "{text}"
        );
        assert!(text.len() < 260, "{} characters: {text}", text.len());
        assert!(!text.contains('\n'));
        assert!(is_transient(&e));
    }
}
