//! The process exit status, in one place.

/// The exit statuses, as `--help` and the manual page show them.
pub const HELP: &str = "\
Exit status:
  0  success: no changes, compatible, canary passed (also when the reader of the output closed it)
  1  error: bad input, configuration or AWS failure; nothing was changed that the error did not name
  2  changes present, gate refused, verdict fail or inconclusive";

/// What the process tells its caller. Documented in the README and in `--help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: success, no changes, compatible, canary passed.
    Success,
    /// 1: an error; nothing was changed that the error did not name.
    Error,
    /// 2: changes present, gate refused, verdict fail or inconclusive.
    Changes,
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        match status {
            ExitStatus::Success => std::process::ExitCode::from(0),
            ExitStatus::Error => std::process::ExitCode::from(1),
            ExitStatus::Changes => std::process::ExitCode::from(2),
        }
    }
}
