//! Who acts: a person or role, on a host, as a process that started at a known moment.

use serde::{Deserialize, Serialize};

/// The identity a lock holder records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The caller's ARN, or `user` when it cannot be asked.
    pub who: String,
    pub host: String,
    pub pid: u32,
    /// The process's start time (clock ticks since boot, from `/proc/<pid>/stat`): a pid
    /// reused by another process has another start time. 0 where it cannot be read.
    #[serde(default)]
    pub started: u64,
    /// The command that holds it: `canary run`, `promote`, `maintenance on`...
    #[serde(default)]
    pub command: String,
}

impl Holder {
    /// This process, acting for `who`.
    pub fn this_process(who: &str, command: &str) -> Self {
        let pid = std::process::id();
        Holder {
            who: who.to_string(),
            host: local_host(),
            pid,
            started: process_start(pid).unwrap_or(0),
            command: command.to_string(),
        }
    }

    /// Whether this is the very same process (not only the same pid).
    pub fn same_process(&self, other: &Holder) -> bool {
        self.host == other.host && self.pid == other.pid && self.started == other.started
    }

    /// Where `self` can be checked from `here`: alive, dead, or on another host.
    pub fn liveness(&self, here: &str) -> Liveness {
        if self.host != here {
            return Liveness::Unknown;
        }
        match process_start(self.pid) {
            Some(s) if self.started == 0 || s == self.started => Liveness::Alive,
            _ => Liveness::Dead,
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {} (pid {}", self.who, self.host, self.pid)?;
        if !self.command.is_empty() {
            write!(f, ", {}", self.command)?;
        }
        write!(f, ")")
    }
}

/// Whether a holder's process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Dead,
    /// On another host: only its lease can tell.
    Unknown,
}

/// This machine's name as holders record it: `HOSTNAME` when set (what CI runners and
/// containers set), else the kernel's node name.
pub fn local_host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A process's start time in clock ticks since boot, or `None` when it does not run.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')' comes field 3 (state); starttime is field 22.
    let state = fields.first()?;
    if *state == "Z" || *state == "X" {
        return None;
    }
    fields.get(22 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not() {
        let me = Holder::this_process("ci", "test");
        assert!(me.started > 0, "reads /proc/self/stat");
        assert_eq!(me.liveness(&me.host), Liveness::Alive);
        let reused = Holder {
            started: me.started + 1,
            ..me.clone()
        };
        assert_eq!(reused.liveness(&me.host), Liveness::Dead);
        let gone = Holder {
            pid: 4_194_304,
            ..me.clone()
        };
        assert_eq!(gone.liveness(&me.host), Liveness::Dead);
        assert_eq!(me.liveness("another-runner"), Liveness::Unknown);
        assert!(me.same_process(&me.clone()));
        assert!(!me.same_process(&reused));
    }
}
