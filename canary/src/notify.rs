//! Notifications of a run's state changes (`[notify] sns_topic_arn`): one message per change,
//! in the order the run went through them: started, canary live, verdict, awaiting approval
//! (with the exact `promote` and `abort` commands), promoted, rolled back (with the reason),
//! failed. A short subject and a JSON body, so a person reads the subject and a program the
//! body.
//!
//! Pure: [`Change::from_progress`] and [`Change::from_next`] say which progress is a change,
//! [`message`] builds it; the CLI publishes it through an SNS client, never blocking the run
//! (a notification that cannot be sent is reported, not retried forever).

use serde::{Deserialize, Serialize};

use crate::executor::Progress;
use crate::judge::Verdict;
use crate::machine::{Action, Mode, Next, Outcome};

/// `[notify]` of `gatekeeper.toml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// The SNS topic every state change of a run is published to.
    pub sns_topic_arn: Option<String>,
}

impl NotifyConfig {
    /// A topic ARN is `arn:<partition>:sns:<region>:<account>:<name>`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(arn) = &self.sns_topic_arn {
            let parts: Vec<&str> = arn.split(':').collect();
            let ok = parts.len() == 6
                && parts[0] == "arn"
                && parts[2] == "sns"
                && parts[5]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !parts[5].is_empty();
            if !ok {
                return Err((
                    "sns_topic_arn",
                    format!(
                        "{arn:?} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A state change of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Started,
    /// The canary node takes traffic at the canary weight.
    CanaryLive,
    Verdict {
        verdict: Verdict,
    },
    AwaitingApproval,
    Promoted,
    RollingBack {
        reason: String,
    },
    RolledBack {
        reason: String,
    },
    Failed {
        reason: String,
    },
}

impl Change {
    /// The change a progress report marks, if any: the bake's first step (the weight is set),
    /// a verdict, the start of a rollback.
    pub fn from_progress(p: &Progress) -> Option<Change> {
        match p {
            Progress::Step {
                mode: Mode::Canary,
                action: Action::Bake,
                dry_run: false,
                ..
            } => Some(Change::CanaryLive),
            Progress::Bake {
                verdict: Some(verdict),
                ..
            } => Some(Change::Verdict { verdict: *verdict }),
            Progress::RollingBack { reason } => Some(Change::RollingBack {
                reason: reason.clone(),
            }),
            _ => None,
        }
    }

    /// Where the run stands when the process lets go of it.
    pub fn from_next(next: &Next) -> Option<Change> {
        match next {
            Next::AwaitApproval => Some(Change::AwaitingApproval),
            Next::Finished(Outcome::Promoted) => Some(Change::Promoted),
            Next::Finished(Outcome::RolledBack { reason }) => Some(Change::RolledBack {
                reason: reason.clone(),
            }),
            Next::Finished(Outcome::Refused { reason }) => Some(Change::Failed {
                reason: reason.clone(),
            }),
            Next::Halted { reason } => Some(Change::Failed {
                reason: reason.clone(),
            }),
            Next::Do { .. } => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Change::Started => "started",
            Change::CanaryLive => "canary-live",
            Change::Verdict { .. } => "verdict",
            Change::AwaitingApproval => "awaiting-approval",
            Change::Promoted => "promoted",
            Change::RollingBack { .. } => "rolling-back",
            Change::RolledBack { .. } => "rolled-back",
            Change::Failed { .. } => "failed",
        }
    }
}

/// What every message says of the run.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub service: String,
    pub environment: String,
    pub run_id: String,
    pub revision: String,
    pub previous: String,
    /// The configuration file, for the commands a person is asked to run.
    pub config: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// At most 100 characters (SNS's limit), no newline.
    pub subject: String,
    /// JSON: `{"change", "service", "environment", "run_id", "revision", "previous", ...}`.
    pub body: String,
}

#[derive(Serialize)]
struct Body<'a> {
    change: &'static str,
    service: &'a str,
    environment: &'a str,
    run_id: &'a str,
    revision: &'a str,
    previous: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    /// What a person may run next.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    commands: Vec<String>,
}

/// The message for `change` of the run.
pub fn message(change: &Change, run: &RunContext) -> Message {
    let what = match change {
        Change::Started => format!("canary of {} started", run.revision),
        Change::CanaryLive => format!("canary of {} takes traffic", run.revision),
        Change::Verdict { verdict } => {
            format!(
                "canary of {}: judge says {}",
                run.revision,
                verdict.as_str()
            )
        }
        Change::AwaitingApproval => format!("canary of {} awaits approval", run.revision),
        Change::Promoted => format!("{} promoted to the whole fleet", run.revision),
        Change::RollingBack { .. } => format!("canary of {}: rolling back", run.revision),
        Change::RolledBack { .. } => format!("rolled back to {}", run.previous),
        Change::Failed { .. } => format!("canary of {} failed", run.revision),
    };
    let mut subject = format!("gatekeeper {}/{}: {what}", run.service, run.environment)
        .replace(['\n', '\r'], " ");
    if subject.len() > 100 {
        let mut cut = 97;
        while !subject.is_char_boundary(cut) {
            cut -= 1;
        }
        subject.truncate(cut);
        subject.push_str("...");
    }
    let reason = match change {
        Change::RollingBack { reason }
        | Change::RolledBack { reason }
        | Change::Failed { reason } => Some(reason.as_str()),
        _ => None,
    };
    let commands = match change {
        Change::AwaitingApproval => vec![
            format!(
                "gatekeeper canary report --config {} --run {} --output html --out report.html",
                run.config, run.run_id
            ),
            format!(
                "gatekeeper promote --config {} --reason '<why>'",
                run.config
            ),
            format!("gatekeeper canary abort --config {}", run.config),
        ],
        Change::Failed { .. } => vec![format!("gatekeeper canary status --config {}", run.config)],
        _ => Vec::new(),
    };
    let body = Body {
        change: change.name(),
        service: &run.service,
        environment: &run.environment,
        run_id: &run.run_id,
        revision: &run.revision,
        previous: &run.previous,
        verdict: match change {
            Change::Verdict { verdict } => Some(verdict.as_str()),
            _ => None,
        },
        reason,
        commands,
    };
    Message {
        subject,
        body: serde_json::to_string(&body).expect("a notification serialises"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> RunContext {
        RunContext {
            service: "photos".into(),
            environment: "prod".into(),
            run_id: "canary-20261204T101500Z-42".into(),
            revision: "v2".into(),
            previous: "v1".into(),
            config: "gatekeeper.toml".into(),
        }
    }

    #[test]
    fn awaiting_approval_names_the_exact_commands() {
        let m = message(&Change::AwaitingApproval, &run());
        assert_eq!(
            m.subject,
            "gatekeeper photos/prod: canary of v2 awaits approval"
        );
        let body: serde_json::Value = serde_json::from_str(&m.body).unwrap();
        assert_eq!(body["change"], "awaiting-approval");
        assert_eq!(body["run_id"], "canary-20261204T101500Z-42");
        let commands: Vec<&str> = body["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        assert!(commands.contains(&"gatekeeper canary abort --config gatekeeper.toml"));
        assert!(commands
            .iter()
            .any(|c| c.starts_with("gatekeeper promote --config gatekeeper.toml")));
    }

    #[test]
    fn a_subject_is_one_line_of_at_most_100_characters() {
        let mut r = run();
        r.revision = format!("v2\n{}", "é".repeat(200));
        let m = message(&Change::Started, &r);
        assert!(
            m.subject.len() <= 100 && !m.subject.contains('\n'),
            "{}",
            m.subject
        );
        let body: serde_json::Value = serde_json::from_str(&m.body).unwrap();
        assert_eq!(body["revision"], r.revision.as_str());
    }

    #[test]
    fn a_topic_arn_is_checked() {
        let ok = NotifyConfig {
            sns_topic_arn: Some("arn:aws:sns:us-east-1:123456789012:photos-deploys".into()),
        };
        assert!(ok.validate().is_ok());
        for bad in [
            "photos",
            "arn:aws:sqs:us-east-1:1:q",
            "arn:aws:sns:us-east-1:1:a;b",
        ] {
            let c = NotifyConfig {
                sns_topic_arn: Some(bad.into()),
            };
            assert!(c.validate().is_err(), "{bad}");
        }
    }
}
