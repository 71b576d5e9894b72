//! A run's journal: one object per record, `<scope>/runs/<run>/<seq:08>.json`.
//!
//! A record is written with `If-None-Match: *`: two writers can never both write record N.
//! A writer that finds its slot taken reads the record there; a newer generation means the
//! lock was taken over and this writer is fenced ([`StateError::Fenced`]). A torn write is
//! simply an absent object. Reading a run checks every envelope and names the object that
//! breaks a rule; what a record means is the domain's to check.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{safe_segment, Result, Scope, StateError};

pub const FORMAT: &str = "gatekeeper.record/1";
const FORMAT_FAMILY: &str = "gatekeeper.record/";

/// One record and what every record carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub format: String,
    pub run: String,
    pub seq: u64,
    /// The lock generation of the writer.
    pub generation: u64,
    /// Seconds since the epoch.
    pub at: u64,
    pub record: T,
}

/// Appends records to one run as the holder of one lock generation.
#[derive(Clone)]
pub struct RunJournal {
    scope: Scope,
    run: String,
    next: u64,
    generation: u64,
}

impl RunJournal {
    /// A run that has no records yet.
    pub fn create(scope: &Scope, run: &str, generation: u64) -> Result<Self> {
        check_run(scope, run)?;
        Ok(RunJournal {
            scope: scope.clone(),
            run: run.to_string(),
            next: 0,
            generation,
        })
    }

    /// Continues a run after its last record (`next` is the number of records read).
    pub fn continue_at(scope: &Scope, run: &str, next: u64, generation: u64) -> Result<Self> {
        let mut j = RunJournal::create(scope, run, generation)?;
        j.next = next;
        Ok(j)
    }

    pub fn run(&self) -> &str {
        &self.run
    }
    pub fn generation(&self) -> u64 {
        self.generation
    }
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Where the run's records are.
    pub fn location(&self) -> String {
        self.scope
            .store
            .describe(&run_prefix(&self.scope, &self.run))
    }

    /// Writes the next record. Durable when it returns.
    pub async fn append<T: Serialize>(&mut self, at: u64, record: &T) -> Result<u64> {
        let seq = self.next;
        let env = Envelope {
            format: FORMAT.to_string(),
            run: self.run.clone(),
            seq,
            generation: self.generation,
            at,
            record,
        };
        let body = serde_json::to_vec(&env).expect("records serialize");
        let key = record_key(&self.scope, &self.run, seq);
        if self.scope.store.put_new(&key, &body).await?.is_some() {
            self.next += 1;
            return Ok(seq);
        }
        // The slot is taken: by this very write (its answer was lost and the retry found the
        // object there), by a newer holder (fenced), or by a writer of our own generation (a
        // second process that believes it holds the same lease).
        let existing = self.scope.store.get(&key).await?;
        if existing.as_ref().is_some_and(|(b, _)| *b == body) {
            self.next += 1;
            return Ok(seq);
        }
        let theirs = match existing {
            Some((b, _)) => serde_json::from_slice::<Envelope<serde_json::Value>>(&b)
                .map(|e| e.generation)
                .unwrap_or(u64::MAX),
            None => 0,
        };
        if theirs > self.generation {
            Err(StateError::Fenced {
                key: self.scope.store.describe(&key),
                ours: self.generation,
                theirs,
            })
        } else {
            Err(StateError::Conflict {
                key: self.scope.store.describe(&key),
                message: format!(
                    "record {seq} of run {} was written by another writer of generation \
                     {theirs}: stopped without acting further",
                    self.run
                ),
            })
        }
    }
}

fn run_prefix(scope: &Scope, run: &str) -> String {
    scope.key(&format!("runs/{run}/"))
}

fn record_key(scope: &Scope, run: &str, seq: u64) -> String {
    scope.key(&format!("runs/{run}/{seq:08}.json"))
}

fn check_run(scope: &Scope, run: &str) -> Result<()> {
    if safe_segment(run) {
        Ok(())
    } else {
        Err(StateError::Foreign {
            key: scope.store.describe(&scope.key("runs/")),
            message: format!("{run:?} is not a run id"),
        })
    }
}

/// Every record of `run`, in order, each envelope checked: the format is known, the run and
/// sequence match the object's key, the sequence has no gap, generations never go back.
pub async fn read<T: DeserializeOwned>(scope: &Scope, run: &str) -> Result<Vec<Envelope<T>>> {
    check_run(scope, run)?;
    let prefix = run_prefix(scope, run);
    let keys = scope.store.list(&prefix).await?;
    // Fetch concurrently: a run has tens of records and each is one request.
    let mut set = tokio::task::JoinSet::new();
    for (i, key) in keys.iter().enumerate() {
        let store = scope.store.clone();
        let key = key.clone();
        set.spawn(async move { (i, store.get(&key).await) });
    }
    let mut bodies: Vec<Option<Vec<u8>>> = vec![None; keys.len()];
    while let Some(joined) = set.join_next().await {
        let (i, got) = joined.map_err(|e| StateError::Backend {
            key: scope.store.describe(&prefix),
            message: format!("reading the run: {e}"),
        })?;
        bodies[i] = got?.map(|(b, _)| b);
    }
    let mut out = Vec::with_capacity(keys.len());
    let mut generation = 0;
    for (i, (key, body)) in keys.iter().zip(bodies).enumerate() {
        let shown = scope.store.describe(key);
        let illegal = |message: String| StateError::Illegal {
            key: shown.clone(),
            message,
        };
        let name = key.strip_prefix(&prefix).unwrap_or(key);
        let seq = name
            .strip_suffix(".json")
            .filter(|n| n.len() == 8)
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| StateError::Foreign {
                key: shown.clone(),
                message: "not a record of this journal (records are <seq:08>.json)".into(),
            })?;
        if seq != i as u64 {
            return Err(illegal(format!(
                "record {seq} follows record {} : records {i}..{seq} are missing",
                i as i64 - 1
            )));
        }
        let Some(body) = body else {
            return Err(illegal("listed but gone when read".into()));
        };
        let env = parse::<T>(&shown, &body)?;
        if env.run != run || env.seq != seq {
            return Err(illegal(format!(
                "says it is record {} of run {}, but is stored as record {seq} of run {run}",
                env.seq, env.run
            )));
        }
        if env.generation < generation {
            return Err(illegal(format!(
                "written by lock generation {} after a record of generation {generation}: a \
                 fenced writer's record",
                env.generation
            )));
        }
        generation = env.generation;
        out.push(env);
    }
    Ok(out)
}

/// Parses one record object.
pub fn parse<T: DeserializeOwned>(key: &str, body: &[u8]) -> Result<Envelope<T>> {
    let value = crate::check_format(key, body, (FORMAT, FORMAT_FAMILY), "journal record", "")?;
    serde_json::from_value(value).map_err(|e| StateError::Illegal {
        key: key.to_string(),
        message: format!("not a record this gatekeeper knows: {e}"),
    })
}
