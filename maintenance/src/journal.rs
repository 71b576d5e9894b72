//! The local journal of maintenance runs: one JSON object a line, appended and synced as each
//! step completes, so an interrupted `maintenance on` resumes where it stopped.
//!
//! ```json
//! {"run":"2026-11-22T12:58:03Z","step":"preflight","at":"2026-11-22T12:58:03Z"}
//! ```
//!
//! A run ends with the step `done`, `refused` or `off`; a run without one is unfinished.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{now_rfc3339, MaintenanceError};

const ENDS: [&str; 3] = ["done", "refused", "off"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub run: String,
    pub step: String,
    pub at: String,
}

#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    records: Vec<Record>,
    run: Option<String>,
}

impl Journal {
    /// The journal of a service and environment under `dir`.
    pub fn path_in(dir: &Path, service: &str, environment: &str) -> PathBuf {
        dir.join(format!("maintenance-{service}-{environment}.jsonl"))
    }

    /// Opens (or prepares to create) a journal; unreadable lines are an error naming the line.
    pub fn open(path: &Path) -> Result<Self, MaintenanceError> {
        let fail = |message: String| MaintenanceError::Journal {
            path: path.display().to_string(),
            message,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(fail(e.to_string())),
        };
        let mut records = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            // A line cut short by a crash can only be the last one: it did not complete.
            match serde_json::from_str::<Record>(line) {
                Ok(r) => records.push(r),
                Err(_) if i + 1 == text.lines().count() => {}
                Err(e) => return Err(fail(format!("line {}: {e}", i + 1))),
            }
        }
        Ok(Journal {
            path: path.to_path_buf(),
            records,
            run: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The unfinished run, if the last one did not end: its id and completed steps.
    pub fn unfinished(&self) -> Option<(String, Vec<String>)> {
        let last = self.records.last()?;
        if ENDS.contains(&last.step.as_str()) {
            return None;
        }
        let steps = self
            .records
            .iter()
            .filter(|r| r.run == last.run)
            .map(|r| r.step.clone())
            .collect();
        Some((last.run.clone(), steps))
    }

    /// Continues the unfinished run (returned with its steps) or starts a new one (`None`).
    pub fn resume_or_start(&mut self) -> Result<Option<(String, Vec<String>)>, MaintenanceError> {
        match self.unfinished() {
            Some((run, steps)) => {
                self.run = Some(run.clone());
                Ok(Some((run, steps)))
            }
            None => {
                self.run = Some(now_rfc3339());
                Ok(None)
            }
        }
    }

    fn current(&mut self) -> String {
        if self.run.is_none() {
            self.run = Some(
                self.unfinished()
                    .map(|(run, _)| run)
                    .unwrap_or_else(now_rfc3339),
            );
        }
        self.run.clone().unwrap_or_default()
    }

    /// Whether the current run already completed `step`.
    pub fn done(&self, step: &str) -> bool {
        let Some(run) = &self.run else { return false };
        self.records.iter().any(|r| &r.run == run && r.step == step)
    }

    /// When the current run last completed `step` (the record's `at`, RFC 3339).
    pub fn completed_at(&self, step: &str) -> Option<&str> {
        let run = self.run.as_ref()?;
        self.records
            .iter()
            .rev()
            .find(|r| &r.run == run && r.step == step)
            .map(|r| r.at.as_str())
    }

    /// Appends a completed step and syncs it to disk; a step already done is not appended.
    pub fn record(&mut self, step: &str) -> Result<(), MaintenanceError> {
        if self.done(step) {
            return Ok(());
        }
        self.append(step)
    }

    /// Appends `step` even when the run already completed it (it was done again, and when
    /// matters: see [`completed_at`](Self::completed_at)).
    pub fn record_again(&mut self, step: &str) -> Result<(), MaintenanceError> {
        self.append(step)
    }

    fn append(&mut self, step: &str) -> Result<(), MaintenanceError> {
        let record = Record {
            run: self.current(),
            step: step.to_string(),
            at: now_rfc3339(),
        };
        let fail = |e: std::io::Error| MaintenanceError::Journal {
            path: self.path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(fail)?;
        let line = serde_json::to_string(&record).unwrap_or_default();
        writeln!(file, "{line}").map_err(fail)?;
        file.sync_all().map_err(fail)?;
        self.records.push(record);
        Ok(())
    }

    /// Ends the current run with `done`, `refused` or `off`.
    pub fn end(&mut self, step: &str) -> Result<(), MaintenanceError> {
        debug_assert!(ENDS.contains(&step));
        self.record(step)?;
        self.run = None;
        Ok(())
    }

    /// The steps of the current run, in order.
    pub fn steps(&self) -> BTreeSet<String> {
        let Some(run) = &self.run else {
            return BTreeSet::new();
        };
        self.records
            .iter()
            .filter(|r| &r.run == run)
            .map(|r| r.step.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfinished_run_resumes_with_its_steps() {
        let dir = tempfile::tempdir().unwrap();
        let path = Journal::path_in(dir.path(), "photos", "prod");
        let mut j = Journal::open(&path).unwrap();
        assert_eq!(j.resume_or_start().unwrap(), None);
        j.record("preflight").unwrap();
        j.record("hook:backup").unwrap();
        drop(j);

        let mut j = Journal::open(&path).unwrap();
        let (_, steps) = j.resume_or_start().unwrap().expect("unfinished run");
        assert_eq!(steps, vec!["preflight", "hook:backup"]);
        assert!(j.done("hook:backup"));
        assert!(!j.done("drained"));
        j.end("done").unwrap();

        let mut j = Journal::open(&path).unwrap();
        assert!(j.unfinished().is_none());
        assert_eq!(j.resume_or_start().unwrap(), None);
        assert!(!j.done("hook:backup"), "a new run starts clean");
    }

    #[test]
    fn a_step_done_again_is_dated_by_its_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(
            &path,
            "{\"run\":\"r\",\"step\":\"flag-on\",\"at\":\"2020-01-01T00:00:00Z\"}\n",
        )
        .unwrap();
        let mut j = Journal::open(&path).unwrap();
        j.resume_or_start().unwrap();
        assert_eq!(j.completed_at("flag-on"), Some("2020-01-01T00:00:00Z"));
        assert_eq!(j.completed_at("drained"), None);
        j.record("flag-on").unwrap();
        assert_eq!(j.records().len(), 1, "record keeps the first");
        j.record_again("flag-on").unwrap();
        let again = Journal::open(&path).unwrap();
        assert_eq!(again.records().len(), 2);
        assert_ne!(j.completed_at("flag-on"), Some("2020-01-01T00:00:00Z"));
    }

    #[test]
    fn torn_last_line_is_ignored_but_others_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(
            &path,
            "{\"run\":\"r\",\"step\":\"preflight\",\"at\":\"t\"}\n{\"run\":\"r\",\"st",
        )
        .unwrap();
        let j = Journal::open(&path).unwrap();
        assert_eq!(j.records().len(), 1);
        std::fs::write(
            &path,
            "garbage\n{\"run\":\"r\",\"step\":\"x\",\"at\":\"t\"}\n",
        )
        .unwrap();
        let e = Journal::open(&path).unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
    }
}
