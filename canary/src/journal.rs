//! The write-ahead journal: one JSON line per record, appended and synced before the
//! executor moves on. A run is the records from its `start` on; replaying its events through
//! [`crate::machine::Machine::replay`] rebuilds where it stood.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::machine::{Event, Machine, Outcome, Plan};
use crate::provider::{ProviderError, Result};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "kebab-case")]
pub enum Record {
    Start {
        at: u64,
        holder: String,
        plan: Plan,
    },
    Event {
        at: u64,
        #[serde(flatten)]
        event: Event,
    },
    Finish {
        at: u64,
        #[serde(flatten)]
        outcome: Outcome,
    },
}

/// Where records go. Appends are durable when they return.
#[async_trait]
pub trait Journal: Send {
    async fn append(&mut self, record: &Record) -> Result<()>;
}

/// The local file journal (`.gatekeeper/journal/<service>-<env>.jsonl` by default).
#[derive(Debug)]
pub struct FileJournal {
    path: PathBuf,
}

impl FileJournal {
    pub fn new(path: &Path) -> Self {
        FileJournal {
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl Journal for FileJournal {
    async fn append(&mut self, record: &Record) -> Result<()> {
        let fail =
            |e: std::io::Error| ProviderError::new(format!("journal {}: {e}", self.path.display()));
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let mut line = serde_json::to_string(record).expect("records serialize");
        line.push('\n');
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(fail)?;
        f.write_all(line.as_bytes()).map_err(fail)?;
        f.sync_data().map_err(fail)?;
        Ok(())
    }
}

/// Every journal in turn: the local file and the copy next to the lock.
pub struct Tee(pub Vec<Box<dyn Journal>>);

#[async_trait]
impl Journal for Tee {
    async fn append(&mut self, record: &Record) -> Result<()> {
        for j in &mut self.0 {
            j.append(record).await?;
        }
        Ok(())
    }
}

/// Records kept in memory (tests, `--dry-run`).
#[derive(Debug, Default)]
pub struct MemoryJournal(pub Vec<Record>);

#[async_trait]
impl Journal for MemoryJournal {
    async fn append(&mut self, record: &Record) -> Result<()> {
        self.0.push(record.clone());
        Ok(())
    }
}

/// A journal line that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: not a journal record: {message}")]
pub struct JournalError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Parses journal text; a torn last line (a crash mid-write) is ignored.
pub fn parse(file: &str, text: &str) -> std::result::Result<Vec<Record>, JournalError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(r) => out.push(r),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => {}
            Err(e) => {
                return Err(JournalError {
                    file: file.to_string(),
                    line: i + 1,
                    message: e.to_string(),
                })
            }
        }
    }
    Ok(out)
}

/// The last run in a journal, rebuilt.
#[derive(Debug, Clone)]
pub struct RunState {
    pub holder: String,
    pub started_at: u64,
    pub machine: Machine,
    pub finished: Option<(u64, Outcome)>,
    pub records: Vec<Record>,
}

/// The last run of `records`, or `None` when the journal holds none.
pub fn last_run(records: &[Record]) -> Option<RunState> {
    let start = records
        .iter()
        .rposition(|r| matches!(r, Record::Start { .. }))?;
    let run = &records[start..];
    let Record::Start { at, holder, plan } = &run[0] else {
        unreachable!()
    };
    let events: Vec<Event> = run
        .iter()
        .filter_map(|r| match r {
            Record::Event { event, .. } => Some(event.clone()),
            _ => None,
        })
        .collect();
    let finished = run.iter().find_map(|r| match r {
        Record::Finish { at, outcome } => Some((*at, outcome.clone())),
        _ => None,
    });
    Some(RunState {
        holder: holder.clone(),
        started_at: *at,
        machine: Machine::replay(plan.clone(), &events),
        finished,
        records: run.to_vec(),
    })
}

/// Reads a local journal; a missing file is an empty journal.
pub fn read_file(path: &Path) -> std::result::Result<Vec<Record>, JournalError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&path.display().to_string(), &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(JournalError {
            file: path.display().to_string(),
            line: 0,
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{Action, Mode};

    fn plan() -> Plan {
        Plan {
            run_id: "r".into(),
            revision: "v2".into(),
            previous: "v1".into(),
            canary_node: "a".into(),
            nodes: vec!["a".into(), "b".into()],
            canary_weight: 5,
            wave_size: 1,
            auto_promote: false,
        }
    }

    #[tokio::test]
    async fn file_round_trip_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j/photos-prod.jsonl");
        let mut j = FileJournal::new(&path);
        j.append(&Record::Start {
            at: 1,
            holder: "me".into(),
            plan: plan(),
        })
        .await
        .unwrap();
        j.append(&Record::Event {
            at: 2,
            event: Event::Began {
                mode: Mode::Canary,
                index: 0,
                action: Action::Preflight,
            },
        })
        .await
        .unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#"{"record":"event","at":2,"event":"began","mode":"canary","index":0,"action":{"action":"preflight"}}"#), "{text}");
        text.push_str(r#"{"record":"eve"#);
        let records = parse("j", &text).unwrap();
        assert_eq!(records.len(), 2);
        let run = last_run(&records).unwrap();
        assert_eq!(run.holder, "me");
        assert!(run.finished.is_none());
        // a bad line in the middle is an error with its line number
        let err = parse("j", &format!("x\n{text}\n")).unwrap_err();
        assert_eq!(err.line, 1);
    }
}
