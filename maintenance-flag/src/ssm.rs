//! The SSM side (feature `ssm`): one uncached read with the contract's rule, and the TTL-cached
//! reader services share between requests.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::MaintenanceFlag;

/// Why a read failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// SSM could not be asked (network, permissions, throttling).
    #[error("GetParameter {parameter}: {message}")]
    Ssm { parameter: String, message: String },
    /// The parameter does not hold a flag document.
    #[error("SSM parameter {parameter} is not a maintenance flag: {message}")]
    Invalid { parameter: String, message: String },
}

/// Reads the flag with a TTL cache; cheap to share (`Arc<FlagReader>`) between handlers.
#[derive(Debug)]
pub struct FlagReader {
    ssm: aws_sdk_ssm::Client,
    parameter: String,
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    known: Option<MaintenanceFlag>,
    checked: Option<Instant>,
    last_error: Option<ReadError>,
}

impl FlagReader {
    pub fn new(ssm: aws_sdk_ssm::Client, parameter: impl Into<String>, ttl: Duration) -> Self {
        FlagReader {
            ssm,
            parameter: parameter.into(),
            ttl,
            state: Mutex::new(State::default()),
        }
    }

    pub fn parameter(&self) -> &str {
        &self.parameter
    }

    /// The flag: cached for the TTL; the last known value when a read fails; off before
    /// any read succeeded.
    pub async fn get(&self) -> MaintenanceFlag {
        match self.try_get().await {
            Ok(flag) => flag,
            Err((known, _)) => known.unwrap_or_default(),
        }
    }

    /// Like [`get`](Self::get), but a failed read is an error carrying the last known value.
    pub async fn try_get(&self) -> Result<MaintenanceFlag, (Option<MaintenanceFlag>, ReadError)> {
        // One caller refreshes while the others wait for its answer.
        let mut state = self.state.lock().await;
        let fresh = state.checked.is_some_and(|t| t.elapsed() < self.ttl);
        if !fresh {
            state.checked = Some(Instant::now());
            match read(&self.ssm, &self.parameter).await {
                Ok(flag) => {
                    state.known = Some(flag);
                    state.last_error = None;
                }
                Err(e) => state.last_error = Some(e),
            }
        }
        match (&state.last_error, &state.known) {
            (None, Some(flag)) => Ok(flag.clone()),
            (None, None) => Ok(MaintenanceFlag::default()),
            (Some(e), known) => Err((known.clone(), e.clone())),
        }
    }
}

/// One uncached read with the contract's rule: a missing parameter is off.
pub async fn read(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
) -> Result<MaintenanceFlag, ReadError> {
    Ok(read_stored(ssm, parameter).await?.unwrap_or_default())
}

/// One uncached read that also tells whether the parameter exists: `None` when it does not
/// (maintenance was never turned on, which the contract counts as off). An empty or unreadable
/// value is [`ReadError::Invalid`], never off.
pub async fn read_stored(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
) -> Result<Option<MaintenanceFlag>, ReadError> {
    let stored = match ssm.get_parameter().name(parameter).send().await {
        Ok(out) => Some(
            out.parameter()
                .and_then(|p| p.value())
                .unwrap_or_default()
                .to_string(),
        ),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_parameter_not_found()) =>
        {
            None
        }
        Err(e) => {
            return Err(ReadError::Ssm {
                parameter: parameter.to_string(),
                message: aws_errors::message(&e),
            })
        }
    };
    let Some(value) = stored else {
        return Ok(None);
    };
    MaintenanceFlag::from_json(&value)
        .map(Some)
        .map_err(|e| ReadError::Invalid {
            parameter: parameter.to_string(),
            message: e.to_string(),
        })
}
