//! Moves every object of the parking-lot bucket back to the ingestion bucket, once.
//!
//! Each object is copied, the copy verified, then the source deleted:
//!
//! 1. Before a page of (at most a thousand) objects is copied, one `ListObjectsV2` of the
//!    destination key range the page spans tells which destinations exist already (there:
//!    step 4). A range that holds many other objects is listed only so far; the keys past
//!    that point are read with a `HEAD` each. S3 lists with read-after-write consistency.
//! 2. `CopyObject` with `If-None-Match: *` (above 5 GiB, `UploadPartCopy` parts completed
//!    with `If-None-Match: *`), asking S3 for a checksum of the source's own algorithm (CRC32
//!    when it has none). The condition makes S3 itself refuse to overwrite anything, also an
//!    object written after the listing; the listing keeps stores that ignore the condition
//!    on copies (moto) from overwriting what was there before.
//! 3. Verify the copy: the single-part ETag in `CopyObject`'s own answer equal to the
//!    source's; else `HEAD` the copy: same size, then the same checksum where both carry
//!    one, else the same single-part ETag, else the same CRC32 of both bodies (multipart and
//!    SSE-KMS ETags are not content hashes). Only a verified copy lets the source be deleted.
//! 4. An existing destination (or a refused copy): with the same content it is the copy of an
//!    earlier, interrupted run, so the source is deleted and the object counts as moved
//!    (`already_there`); a different object is a conflict, reported, both left alone.
//!
//! Verified sources are deleted a thousand at a time (`DeleteObjects`); the source's size
//! and ETag come from the listing, and its own `HEAD` is only asked when they cannot decide.
//! So a small object costs one request (its copy) and three per thousand. Objects whose
//! destination key another object of the run also claims (a dead batch's rewritten key) are
//! moved last, one at a time, each reading its destination first. `--dry-run` reads the
//! destinations the same way instead of copying.
//!
//! So the state lives in S3 itself: a run killed at any point is resumed by running again,
//! which moves only what is left and never duplicates or loses an object.
//!
//! ## Versions (the rails' parking lot keeps them)
//!
//! The parking lot is listed with `ListObjectVersions`: each current object is copied and
//! deleted as exactly the version listed. The delete removes that version, never "whatever is
//! current" (a delete by key would put a delete marker over an upload written since the
//! listing, and the bucket's noncurrent-version rule would later expire it unmoved). An
//! existing destination with the same content as the listed version (an earlier run's copy)
//! has that version deleted, and no other.
//!
//! A key with several versions was uploaded more than once while parked; as in the ingestion
//! bucket, the newest upload is the object. Its newest version is moved; the older versions
//! are superseded and never deleted: the key gets a delete marker, written with `If-Match`
//! the moved version's ETag, so every version (the moved one too) stays in the parking lot as
//! a noncurrent version, listed in the report (`superseded`), recoverable by version id until
//! the bucket's noncurrent-version rule expires them, as it does any overwritten upload.
//! Deleting the moved version instead would make the older one current again: counted by
//! `maintenance status`, and a false conflict for the next redrive. When the condition fails
//! (an upload written since the listing is current), exactly the moved version is deleted and
//! the newer upload stays current.
//!
//! After the deletes, one more listing finds what is current and was not left on purpose
//! (conflicts, refused keys, failures, folder markers): uploads written during the run. They
//! are reported (`arrived`) and the run is not [complete](Report::complete): run again.
//! A parking lot without versions has no version to name: its deletes are by key.
//!
//! Batch keys (`<batchId>/path/image.jpg`) whose batch is no longer alive are not re-ingested
//! into the dead batch: their destination key is rewritten (default: the path without the
//! batch) and reported. A key is a batch key only when its first segment starts with the
//! configured, non-empty `id_prefix`; without batch rules every object keeps its key.
//! Uploaders choose the paths inside a batch, so a rewritten key that would leave the batch's
//! own paths (a `.`, `..` or empty segment, or a first segment that is a batch id: see
//! [`BatchRules::unsafe_destination`]) is not moved: it is refused, reported for a person,
//! and the run is not complete.
//!
//! The parking lot is listed once, no sooner than [`Request::list_after`]: `maintenance off`
//! sets it to when every service has noticed the cleared flag (its cache TTL after the
//! write), so an upload parked by a service still answering from its cache is moved too.

pub mod dlq;

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, Delete, ObjectIdentifier};
use serde::Serialize;

use crate::config::{BatchesConfig, Liveness};

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("{operation} on {resource}: {message}")]
    Aws {
        operation: &'static str,
        resource: String,
        message: String,
    },
    #[error("batch {batch}: liveness check: {message}; nothing was moved")]
    Liveness { batch: String, message: String },
    #[error("cannot tell the source queue of {queue}: give --to <queue>, or --config with its [[queues]] entry")]
    NoSource { queue: String },
}

/// How batch keys are recognised, checked and rewritten.
#[derive(Debug, Clone)]
pub struct BatchRules {
    /// A key's first segment is a batch id when it starts with this. Empty: no key is a batch
    /// key (a folder is not a batch).
    pub id_prefix: String,
    pub liveness: LivenessCheck,
    /// Destination of a dead batch's object: `{batch}`, `{path}` and `{key}` are replaced.
    pub rewrite: String,
}

#[derive(Debug, Clone)]
pub enum LivenessCheck {
    /// Alive while this queue exists; `{batch}` is replaced by the id.
    Queue(String),
    /// Alive when this command exits 0, dead on exit 1; `{batch}` is replaced by the id. Past
    /// `timeout` it is stopped with its process group and the batch's keys stay where they are.
    Command {
        argv: Vec<String>,
        timeout: std::time::Duration,
    },
    /// Every batch is alive: keys are never rewritten.
    None,
}

impl BatchRules {
    /// No batch keys: every object keeps its key.
    pub fn none() -> Self {
        BatchRules {
            id_prefix: String::new(),
            liveness: LivenessCheck::None,
            rewrite: "{path}".into(),
        }
    }

    /// From `[maintenance.batches]` (`None`: no table, no batch keys); `prefix` is the
    /// service's `<service>-<environment>`.
    pub fn from_config(config: Option<&BatchesConfig>, prefix: &str) -> Self {
        let Some(config) = config else {
            return BatchRules::none();
        };
        let liveness = match config.liveness {
            Liveness::Queue => LivenessCheck::Queue(config.queue.replace("{prefix}", prefix)),
            Liveness::Command => LivenessCheck::Command {
                argv: config
                    .command
                    .as_ref()
                    .map(|c| c.get_ref().clone())
                    .unwrap_or_default(),
                timeout: std::time::Duration::from_secs(config.timeout_seconds),
            },
            Liveness::None => LivenessCheck::None,
        };
        BatchRules {
            id_prefix: config
                .id_prefix
                .as_ref()
                .map(|p| p.get_ref().clone())
                .unwrap_or_default(),
            liveness,
            rewrite: config.rewrite.get_ref().clone(),
        }
    }

    /// The batch id and the path inside the batch, for a batch key: one whose first segment
    /// starts with the (non-empty) `id_prefix`.
    pub fn split<'k>(&self, key: &'k str) -> Option<(&'k str, &'k str)> {
        if matches!(self.liveness, LivenessCheck::None) || self.id_prefix.is_empty() {
            return None;
        }
        let (batch, path) = key.split_once('/')?;
        (!batch.is_empty() && !path.is_empty() && batch.starts_with(&self.id_prefix))
            .then_some((batch, path))
    }

    pub fn rewritten(&self, key: &str, batch: &str, path: &str) -> String {
        self.rewrite
            .replace("{batch}", batch)
            .replace("{path}", path)
            .replace("{key}", key)
    }

    /// Why a rewritten key may not be used, if it may not. Uploaders choose the paths inside
    /// a batch (a zip's entries), so a rewrite could otherwise put an object where the
    /// uploader has no business: into another batch (`batch-mine/batch-victim/x.jpg`, path
    /// `batch-victim/x.jpg`) or up the tree (`batch-mine/../../x.jpg`). Refused: a `.`, `..`
    /// or empty segment (a leading `/` is one), also once percent-decoded (`%2e%2e`, and
    /// `%2f` splitting a segment), as a consumer decoding keys would read it; a first segment
    /// that is a batch id (starts with `id_prefix`); more than S3's 1024 bytes.
    pub fn unsafe_destination(&self, destination: &str) -> Option<String> {
        if destination.len() > 1024 {
            return Some(format!(
                "the rewritten key is {} bytes long; S3 keys are at most 1024",
                destination.len()
            ));
        }
        let decoded = percent_encoding::percent_decode_str(destination).decode_utf8_lossy();
        for (form, text) in [("", destination), (" once percent-decoded", &decoded)] {
            if let Some(segment) = text
                .split('/')
                .find(|s| s.is_empty() || *s == "." || *s == "..")
            {
                let what = if segment.is_empty() {
                    "an empty segment".to_string()
                } else {
                    format!("a `{segment}` segment")
                };
                return Some(format!(
                    "the rewritten key {destination:?} has {what}{form}: it would leave the batch's paths"
                ));
            }
            let first = text.split('/').next().unwrap_or_default();
            if !self.id_prefix.is_empty() && first.starts_with(&self.id_prefix) {
                return Some(format!(
                    "the rewritten key {destination:?} starts with `{first}`{form}, a batch id \
                     (id_prefix `{}`): it would land in that batch",
                    self.id_prefix
                ));
            }
        }
        None
    }
}

/// What to move, and how.
#[derive(Debug, Clone)]
pub struct Request {
    pub parking_lot: String,
    pub ingestion: String,
    pub concurrency: usize,
    pub dry_run: bool,
    pub batches: BatchRules,
    /// Objects larger than this are copied in parts (S3 copies at most 5 GiB in one request).
    pub multipart_threshold: u64,
    pub part_size: u64,
    /// Verified sources deleted per `DeleteObjects` (at most 1000).
    pub delete_batch: usize,
    /// Objects whose destinations one `ListObjectsV2` page reads (at most 1000).
    pub page: usize,
    /// The parking lot is listed no sooner than this (a dry run does not wait): when every
    /// service has noticed that maintenance is off and stopped parking uploads.
    pub list_after: Option<tokio::time::Instant>,
}

impl Request {
    pub fn new(parking_lot: &str, ingestion: &str, batches: BatchRules) -> Self {
        Request {
            parking_lot: parking_lot.to_string(),
            ingestion: ingestion.to_string(),
            concurrency: 16,
            dry_run: false,
            batches,
            multipart_threshold: 5 * 1024 * 1024 * 1024,
            part_size: 512 * 1024 * 1024,
            delete_batch: 1000,
            page: 1000,
            list_after: None,
        }
    }
}

/// How one object ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Copied, verified, source deleted.
    Moved,
    /// The same object was already in the destination (an earlier run copied it); the source
    /// was deleted.
    AlreadyThere,
    /// `--dry-run`: would be moved.
    Planned,
    /// Left alone: a folder marker, or gone from the parking lot before it was read.
    Skipped { reason: String },
    /// A different object holds the destination key; both were left alone.
    Conflict { reason: String },
    /// The rewritten key would leave the dead batch's own paths (see
    /// [`BatchRules::unsafe_destination`]): not moved, left for a person.
    Refused { reason: String },
    /// Something failed; the source is still in the parking lot.
    Failed { error: String },
}

/// One object's fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectReport {
    pub key: String,
    pub destination: String,
    /// The dead batch the key was rewritten out of.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_batch: Option<String>,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The version of the source the verified copy was made from, when the parking lot keeps
    /// versions: the delete removes exactly that version, so an upload written to the same
    /// key since stays where it is.
    #[serde(skip)]
    pub source_version: Option<String>,
    /// Older versions of the key, superseded by the one moved: kept as noncurrent versions
    /// behind a delete marker (see the module docs), never deleted by the run.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub superseded: Vec<String>,
    /// The source is already dealt with (its delete marker is written): not deleted again.
    #[serde(skip)]
    pub source_done: bool,
}

/// Progress, reported from concurrent tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Waiting this long before listing the parking lot (see [`Request::list_after`]).
    WaitingForFlagReaders {
        left: std::time::Duration,
    },
    Listed {
        objects: usize,
        batches: usize,
    },
    Batch {
        id: String,
        alive: bool,
    },
    /// A copy is verified (made now, or, `already_there`, found from an earlier run) and the
    /// source is about to be deleted.
    Copied {
        key: String,
        destination: String,
        already_there: bool,
    },
    Finished(ObjectReport),
}

pub type Sink = Arc<dyn Fn(Event) + Send + Sync>;

/// The final report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub parking_lot: String,
    pub ingestion: String,
    pub total: usize,
    /// Moved (or, in a dry run, to be moved), `already_there` included.
    pub moved: usize,
    /// Of `moved`, those found already copied by an earlier run.
    pub already_there: usize,
    /// Of `moved`, those whose key was rewritten out of a dead batch.
    pub rewritten: usize,
    pub skipped: usize,
    pub conflicts: usize,
    /// Rewritten keys that would leave their batch's paths: left for a person.
    pub refused: usize,
    pub failures: usize,
    /// Older versions of moved keys kept noncurrent (see [`ObjectReport::superseded`]).
    pub superseded: usize,
    /// Objects current in the parking lot after the run that it did not leave there itself:
    /// uploads written during the run (also to a key it moved). The next run moves them.
    pub arrived: Vec<String>,
    pub dead_batches: Vec<String>,
    /// Every object that was rewritten, skipped, refused, in conflict or failed, or whose
    /// older versions were kept.
    pub notable: Vec<ObjectReport>,
}

impl Report {
    /// Everything the run found is in the ingestion bucket, or was left there by a failure
    /// (see `failures`): nothing waits for a person (a conflict, a refused key) or for a
    /// rerun (an upload written during the run).
    pub fn complete(&self) -> bool {
        self.conflicts == 0 && self.refused == 0 && self.arrived.is_empty()
    }

    fn add(&mut self, r: ObjectReport) {
        self.total += 1;
        self.superseded += r.superseded.len();
        let notable = !r.superseded.is_empty()
            || match &r.outcome {
                Outcome::Moved | Outcome::Planned => r.dead_batch.is_some(),
                Outcome::AlreadyThere => {
                    self.already_there += 1;
                    r.dead_batch.is_some()
                }
                Outcome::Skipped { .. } => {
                    self.skipped += 1;
                    true
                }
                Outcome::Conflict { .. } => {
                    self.conflicts += 1;
                    true
                }
                Outcome::Refused { .. } => {
                    self.refused += 1;
                    true
                }
                Outcome::Failed { .. } => {
                    self.failures += 1;
                    true
                }
            };
        if matches!(
            r.outcome,
            Outcome::Moved | Outcome::Planned | Outcome::AlreadyThere
        ) {
            self.moved += 1;
            if r.dead_batch.is_some() {
                self.rewritten += 1;
            }
        }
        if notable {
            self.notable.push(r);
        }
    }
}

/// Clients the redrive uses, borrowed from the caller.
#[derive(Debug, Clone)]
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub sqs: aws_sdk_sqs::Client,
}

/// Moves (or, dry, plans to move) every object of the parking lot. Failures of single
/// objects are in the report; an error means nothing more could be done safely.
pub async fn run(clients: &Clients, request: &Request, sink: Sink) -> Result<Report, RedriveError> {
    if let Some(after) = request.list_after.filter(|_| !request.dry_run) {
        let left = after.saturating_duration_since(tokio::time::Instant::now());
        if !left.is_zero() {
            sink(Event::WaitingForFlagReaders { left });
            tokio::time::sleep_until(after).await;
        }
    }
    let objects = list(&clients.s3, &request.parking_lot).await?;
    let mut alive: BTreeMap<String, bool> = BTreeMap::new();
    for Parked { key, .. } in &objects {
        if let Some((batch, _)) = request.batches.split(key) {
            alive.entry(batch.to_string()).or_insert(true);
        }
    }
    sink(Event::Listed {
        objects: objects.len(),
        batches: alive.len(),
    });
    for (batch, state) in alive.iter_mut() {
        *state = is_alive(&clients.sqs, &request.batches.liveness, batch).await?;
        sink(Event::Batch {
            id: batch.clone(),
            alive: *state,
        });
    }

    let mut report = Report {
        dry_run: request.dry_run,
        parking_lot: request.parking_lot.clone(),
        ingestion: request.ingestion.clone(),
        dead_batches: alive
            .iter()
            .filter(|(_, a)| !**a)
            .map(|(b, _)| b.clone())
            .collect(),
        ..Report::default()
    };
    let shared = Arc::new(request.clone());
    let mut tasks = tokio::task::JoinSet::new();
    // Verified sources wait here to be deleted a thousand at a time. A crash before their
    // delete leaves them to the next run, which finds their copies and deletes them.
    let mut pending = Vec::new();
    let (first, later) = plan(request, &alive, objects);
    for page in first.chunks(request.page.clamp(1, 1000)) {
        // Listed right before the page is copied, so the answer is as fresh as it can be.
        let known = destinations(&clients.s3, request, page).await;
        for (item, dest) in page.iter().zip(known) {
            while tasks.len() >= request.concurrency.max(1) {
                if let Some(done) = tasks.join_next().await {
                    settle(&mut report, &sink, &mut pending, done);
                }
            }
            if pending.len() >= request.delete_batch.clamp(1, 1000) {
                for r in delete_sources(
                    &clients.s3,
                    &request.parking_lot,
                    &mut pending,
                    request.delete_batch,
                )
                .await
                {
                    finish(&mut report, &sink, r);
                }
            }
            tasks.spawn(one(
                clients.s3.clone(),
                shared.clone(),
                item.clone(),
                dest,
                sink.clone(),
            ));
        }
    }
    while let Some(done) = tasks.join_next().await {
        settle(&mut report, &sink, &mut pending, done);
    }
    // Every first claimant of a key is done: the others read what it left there.
    for item in later {
        let done = tokio::spawn(one(
            clients.s3.clone(),
            shared.clone(),
            item,
            Dest::Unknown,
            sink.clone(),
        ))
        .await;
        settle(&mut report, &sink, &mut pending, done);
    }
    for r in delete_sources(
        &clients.s3,
        &request.parking_lot,
        &mut pending,
        request.delete_batch,
    )
    .await
    {
        finish(&mut report, &sink, r);
    }
    report.notable.sort_by(|a, b| a.key.cmp(&b.key));
    if !request.dry_run {
        // What is current now and was not left on purpose was written during the run.
        let left: std::collections::HashSet<&str> = report
            .notable
            .iter()
            .filter(|r| left_in_place(r))
            .map(|r| r.key.as_str())
            .collect();
        let current = current_keys(&clients.s3, &request.parking_lot).await?;
        report.arrived = current
            .into_iter()
            .filter(|k| !left.contains(k.as_str()))
            .collect();
    }
    Ok(report)
}

/// Whether the run left this object in the parking lot itself (everything else it found
/// it moved).
fn left_in_place(r: &ObjectReport) -> bool {
    match &r.outcome {
        Outcome::Conflict { .. } | Outcome::Refused { .. } | Outcome::Failed { .. } => true,
        Outcome::Skipped { .. } => r.key.ends_with('/'),
        Outcome::Moved | Outcome::AlreadyThere | Outcome::Planned => false,
    }
}

/// One object to move.
#[derive(Debug, Clone)]
struct Item {
    key: String,
    listed: Head,
    /// The key's noncurrent versions (see [`Parked::older`]).
    older: Vec<String>,
    destination: String,
    dead_batch: Option<String>,
    /// Why the rewritten destination may not be used (not moved).
    refused: Option<String>,
}

/// Each object with its destination, in listing order; objects whose destination key an
/// earlier one already claims come second (moved after all the others, one at a time).
fn plan(
    request: &Request,
    alive: &BTreeMap<String, bool>,
    objects: Vec<Parked>,
) -> (Vec<Item>, Vec<Item>) {
    let mut claimed = std::collections::HashSet::with_capacity(objects.len());
    let (mut first, mut later) = (Vec::with_capacity(objects.len()), Vec::new());
    for Parked { key, head, older } in objects {
        let (destination, dead_batch) = match request.batches.split(&key) {
            Some((batch, path)) if !alive[batch] => (
                request.batches.rewritten(&key, batch, path),
                Some(batch.to_string()),
            ),
            _ => (key.clone(), None),
        };
        let refused = dead_batch
            .as_ref()
            .filter(|_| !key.ends_with('/'))
            .and_then(|_| request.batches.unsafe_destination(&destination));
        let item = Item {
            key,
            listed: head,
            older,
            destination,
            dead_batch,
            refused,
        };
        if item.refused.is_some() {
            // Claims nothing: it goes nowhere.
            first.push(item);
        } else if claimed.insert(item.destination.clone()) {
            first.push(item);
        } else {
            later.push(item);
        }
    }
    (first, later)
}

/// Moves one object and says how it ended.
async fn one(
    s3: aws_sdk_s3::Client,
    request: Arc<Request>,
    item: Item,
    dest: Dest,
    sink: Sink,
) -> ObjectReport {
    let (outcome, source_version) = if item.key.ends_with('/') {
        let skipped = Outcome::Skipped {
            reason: "folder marker".into(),
        };
        (skipped, None)
    } else if let Some(reason) = &item.refused {
        (
            Outcome::Refused {
                reason: reason.clone(),
            },
            None,
        )
    } else {
        move_one(&s3, &request, &item, dest, &sink)
            .await
            .unwrap_or_else(|error| (Outcome::Failed { error }, None))
    };
    let mut report = ObjectReport {
        key: item.key,
        destination: item.destination,
        dead_batch: item.dead_batch,
        outcome,
        source_version,
        superseded: Vec::new(),
        source_done: false,
    };
    let verified = matches!(report.outcome, Outcome::Moved | Outcome::AlreadyThere);
    if !item.older.is_empty() && (verified || report.outcome == Outcome::Planned) {
        report.superseded = item.older;
        if verified && !request.dry_run {
            // Deleting the moved version would make the newest of these current again.
            let hidden = hide(
                &s3,
                &request.parking_lot,
                &report.key,
                &item.listed.etag,
                report.source_version.as_deref(),
            )
            .await;
            match hidden {
                Ok(()) => report.source_done = true,
                Err(error) => report.outcome = Outcome::Failed { error },
            }
        }
    }
    report
}

/// Ends a moved key that has older versions, losing none of them: a delete marker written
/// only while the current version is still the one moved (`If-Match` its ETag), so every
/// version of the key becomes noncurrent and none is deleted. A newer upload (the condition
/// fails) stays current: then exactly the moved version is deleted, under it.
async fn hide(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    etag: &str,
    version: Option<&str>,
) -> Result<(), String> {
    let target = format!("s3://{bucket}/{key}");
    let marked = s3
        .delete_object()
        .bucket(bucket)
        .key(key)
        .if_match(format!("\"{etag}\""))
        .send()
        .await;
    let e = match marked {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let status = e.raw_response().map(|r| r.status().as_u16());
    let code = e
        .as_service_error()
        .and_then(aws_sdk_s3::error::ProvideErrorMetadata::code)
        .unwrap_or("");
    if status == Some(404) || code == "NoSuchKey" {
        // Nothing is current any more (another run ended it): nothing to hide.
        return Ok(());
    }
    if !(status == Some(412) || code == "PreconditionFailed") {
        return Err(format!(
            "DeleteObject {target} (If-Match the moved version): {}; the copy is verified, run again",
            aws_errors::message(&e)
        ));
    }
    let Some(version) = version else {
        return Err(format!(
            "{target} was overwritten since it was copied, and its version is unknown; the copy is verified, run again"
        ));
    };
    s3.delete_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "DeleteObject {target} version {version}: {}; the copy is verified, run again",
                aws_errors::message(&e)
            )
        })
}

/// What is known of a destination key before the copy.
#[derive(Debug, Clone)]
enum Dest {
    /// The listing has no such key.
    Absent,
    /// The listing has it, with this size and ETag.
    Present(Head),
    /// Not listed: `HEAD` it.
    Unknown,
}

/// The destinations of a page, in its order, from one `ListObjectsV2` per key range: the
/// keys that stay what they were form one range (they are sorted, as the page is), each
/// dead batch's rewritten keys another. A listing that fails leaves its keys `Unknown`.
async fn destinations(s3: &aws_sdk_s3::Client, request: &Request, page: &[Item]) -> Vec<Dest> {
    let mut ranges: BTreeMap<Option<&str>, Vec<&str>> = BTreeMap::new();
    for item in page
        .iter()
        .filter(|i| !i.key.ends_with('/') && i.refused.is_none())
    {
        ranges
            .entry(item.dead_batch.as_deref())
            .or_default()
            .push(&item.destination);
    }
    let mut listed = Vec::with_capacity(ranges.len());
    for keys in ranges.values_mut() {
        keys.sort_unstable();
        keys.dedup();
        let range = list_range(s3, &request.ingestion, keys, request.page).await;
        listed.push(range.unwrap_or_else(|_| Range {
            found: BTreeMap::new(),
            through: Some(String::new()),
        }));
    }
    let ranges: BTreeMap<Option<&str>, Range> = ranges.into_keys().zip(listed).collect();
    page.iter()
        .map(|item| match ranges.get(&item.dead_batch.as_deref()) {
            Some(range) => range.dest(&item.destination),
            None => Dest::Unknown,
        })
        .collect()
}

/// What one listing of a key range found.
#[derive(Debug)]
struct Range {
    /// The asked keys that exist, with their listed size and ETag.
    found: BTreeMap<String, Head>,
    /// `Some(k)`: listed only up to `k` (the range holds many other objects); keys after it
    /// are unknown. `None`: the whole range was listed.
    through: Option<String>,
}

impl Range {
    fn dest(&self, key: &str) -> Dest {
        match (self.found.get(key), &self.through) {
            (Some(head), _) => Dest::Present(head.clone()),
            (None, Some(through)) if key > through.as_str() => Dest::Unknown,
            (None, _) => Dest::Absent,
        }
    }
}

/// Lists the keys from `keys[0]` to its last (sorted, distinct) and keeps those asked for:
/// one request per `page` objects in the range (at most 1000), and at most one more page
/// than the asked keys fill (a range crowded with other objects costs a `HEAD` per key left
/// instead).
async fn list_range(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    keys: &[&str],
    page: usize,
) -> Result<Range, String> {
    let (Some(first), Some(last)) = (keys.first(), keys.last()) else {
        return Ok(Range {
            found: BTreeMap::new(),
            through: None,
        });
    };
    // Every key between the two starts with their common prefix; `start_after` the first
    // key shortened by one character lists the first key too.
    let prefix = common_prefix(first, last);
    let mut start = first.chars();
    start.next_back();
    let page = page.clamp(1, 1000);
    let budget = keys.len().div_ceil(page) + 1;
    let mut found = BTreeMap::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        let mut list = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(page as i32);
        list = match token.take() {
            Some(t) => list.continuation_token(t),
            None => list.start_after(start.as_str()),
        };
        let out = list.send().await.map_err(|e| {
            format!(
                "ListObjectsV2 s3://{bucket}/{prefix}: {}",
                aws_errors::message(&e)
            )
        })?;
        let mut seen = "";
        for o in out.contents() {
            let Some(key) = o.key() else { continue };
            seen = key;
            if keys.binary_search(&key).is_ok() {
                found.insert(key.to_string(), listed_head(o));
            }
        }
        if seen >= *last || !out.is_truncated().unwrap_or(false) {
            return Ok(Range {
                found,
                through: None,
            });
        }
        match out.next_continuation_token() {
            Some(t) if pages < budget => token = Some(t.to_string()),
            _ => {
                return Ok(Range {
                    found,
                    through: Some(seen.to_string()),
                })
            }
        }
    }
}

/// The longest common prefix of two keys, on a character boundary.
fn common_prefix<'k>(a: &'k str, b: &str) -> &'k str {
    let n = a
        .char_indices()
        .zip(b.chars())
        .find(|((_, x), y)| x != y)
        .map(|((i, _), _)| i)
        .unwrap_or_else(|| a.len().min(b.len()));
    &a[..n]
}

/// A finished task: reported now, or once its source is deleted.
fn settle(
    report: &mut Report,
    sink: &Sink,
    pending: &mut Vec<ObjectReport>,
    done: Result<ObjectReport, tokio::task::JoinError>,
) {
    match done {
        Ok(r)
            if !report.dry_run
                && !r.source_done
                && matches!(r.outcome, Outcome::Moved | Outcome::AlreadyThere) =>
        {
            pending.push(r)
        }
        Ok(r) => finish(report, sink, r),
        Err(e) => finish(
            report,
            sink,
            ObjectReport {
                key: String::new(),
                destination: String::new(),
                dead_batch: None,
                source_version: None,
                superseded: Vec::new(),
                source_done: false,
                outcome: Outcome::Failed {
                    error: format!("task failed: {e}"),
                },
            },
        ),
    }
}

fn finish(report: &mut Report, sink: &Sink, r: ObjectReport) {
    sink(Event::Finished(r.clone()));
    report.add(r);
}

/// A current object of the parking lot.
#[derive(Debug, Clone)]
struct Parked {
    key: String,
    /// Its size, ETag and version as listed.
    head: Head,
    /// The key's noncurrent versions, newest first: uploads to the same key that the current
    /// one superseded (and any left noncurrent by earlier runs).
    older: Vec<String>,
}

/// Every current object of the bucket (`ListObjectVersions`: a key whose newest entry is a
/// delete marker has none), with the size, ETag and version the listing gives, and the
/// key's noncurrent versions.
async fn list(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Vec<Parked>, RedriveError> {
    let mut keys: BTreeMap<String, (Option<Head>, Vec<String>)> = BTreeMap::new();
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .set_key_marker(key_marker.take())
            .set_version_id_marker(version_marker.take())
            .send()
            .await
            .map_err(|e| RedriveError::Aws {
                operation: "ListObjectVersions",
                resource: format!("s3://{bucket}"),
                message: aws_errors::message(&e),
            })?;
        for v in page.versions() {
            let Some(key) = v.key() else { continue };
            let entry = keys.entry(key.to_string()).or_default();
            let version = v.version_id().filter(|id| *id != "null");
            if v.is_latest().unwrap_or(false) {
                entry.0 = Some(Head {
                    size: v.size().unwrap_or(-1),
                    etag: v.e_tag().unwrap_or_default().trim_matches('"').to_string(),
                    version: version.map(str::to_string),
                    ..Head::default()
                });
            } else if let Some(id) = version {
                entry.1.push(id.to_string());
            }
        }
        if !page.is_truncated().unwrap_or(false) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        version_marker = page.next_version_id_marker().map(str::to_string);
        if key_marker.is_none() {
            break;
        }
    }
    Ok(keys
        .into_iter()
        .filter_map(|(key, (head, older))| head.map(|head| Parked { key, head, older }))
        .collect())
}

/// The keys of the bucket's current objects.
async fn current_keys(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<Vec<String>, RedriveError> {
    let mut keys = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| RedriveError::Aws {
            operation: "ListObjectsV2",
            resource: format!("s3://{bucket}"),
            message: aws_errors::message(&e),
        })?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key())
                .map(str::to_string),
        );
    }
    Ok(keys)
}

/// The size and ETag a listing gives of an object.
fn listed_head(o: &aws_sdk_s3::types::Object) -> Head {
    Head {
        size: o.size().unwrap_or(-1),
        etag: o.e_tag().unwrap_or_default().trim_matches('"').to_string(),
        ..Head::default()
    }
}

async fn is_alive(
    sqs: &aws_sdk_sqs::Client,
    check: &LivenessCheck,
    batch: &str,
) -> Result<bool, RedriveError> {
    let fail = |message: String| RedriveError::Liveness {
        batch: batch.to_string(),
        message,
    };
    match check {
        LivenessCheck::None => Ok(true),
        LivenessCheck::Queue(pattern) => {
            let name = pattern.replace("{batch}", batch);
            match sqs.get_queue_url().queue_name(&name).send().await {
                Ok(_) => Ok(true),
                Err(e) => {
                    let text = aws_errors::message(&e);
                    if text.contains("NonExistentQueue") || text.contains("does not exist") {
                        Ok(false)
                    } else {
                        Err(fail(format!("GetQueueUrl {name}: {text}")))
                    }
                }
            }
        }
        LivenessCheck::Command { argv, timeout } => {
            let argv: Vec<String> = argv.iter().map(|a| a.replace("{batch}", batch)).collect();
            let step = command_step::Step::new(&argv, &[], *timeout);
            let out = command_step::run(&step)
                .await
                .map_err(|e| fail(format!("{e} ([maintenance.batches] timeout_seconds)")))?;
            match out.status.code() {
                Some(0) => Ok(true),
                Some(1) => Ok(false),
                _ => Err(fail(format!(
                    "{} ended with {}; expected exit 0 (alive) or 1 (dead): {}",
                    argv.join(" "),
                    out.status,
                    out.stderr_tail(3)
                ))),
            }
        }
    }
}

/// What `HEAD` tells about an object.
#[derive(Debug, Clone, Default)]
struct Head {
    size: i64,
    etag: String,
    checksums: Vec<(&'static str, String)>,
    content_type: Option<String>,
    metadata: Option<std::collections::HashMap<String, String>>,
    /// From `HEAD` (checksums, content type and metadata known), not from a listing.
    full: bool,
    /// The version `HEAD` saw, when the bucket keeps versions.
    version: Option<String>,
}

/// `HEAD` of an object: of exactly `version`, when given.
async fn head(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Result<Option<Head>, String> {
    match s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_string))
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
    {
        Ok(h) => {
            let mut checksums = Vec::new();
            for (name, value) in [
                ("CRC32", h.checksum_crc32()),
                ("CRC32C", h.checksum_crc32_c()),
                ("CRC64NVME", h.checksum_crc64_nvme()),
                ("SHA1", h.checksum_sha1()),
                ("SHA256", h.checksum_sha256()),
            ] {
                // Composite checksums (`...-3`) of a multipart upload describe parts, not content.
                if let Some(v) = value.filter(|v| !v.contains('-')) {
                    checksums.push((name, v.to_string()));
                }
            }
            Ok(Some(Head {
                size: h.content_length().unwrap_or(-1),
                etag: h.e_tag().unwrap_or_default().trim_matches('"').to_string(),
                checksums,
                content_type: h.content_type().map(str::to_string),
                metadata: h.metadata().cloned(),
                full: true,
                version: h.version_id().map(str::to_string),
            }))
        }
        Err(e) => {
            if e.as_service_error().is_some_and(|s| s.is_not_found())
                || e.raw_response().is_some_and(|r| r.status().as_u16() == 404)
            {
                Ok(None)
            } else {
                Err(format!(
                    "HeadObject s3://{bucket}/{key}: {}",
                    aws_errors::message(&e)
                ))
            }
        }
    }
}

/// What the metadata of two objects of the same size tells: `Some(same)` when they carry a
/// comparable checksum or single-part ETags that match; `None` when only the bodies can tell.
fn fingerprints(src: &Head, dst: &Head) -> Option<bool> {
    for (name, value) in &src.checksums {
        if let Some((_, other)) = dst.checksums.iter().find(|(n, _)| n == name) {
            return Some(value == other);
        }
    }
    (!src.etag.contains('-') && !dst.etag.contains('-') && src.etag == dst.etag).then_some(true)
}

/// Whether two objects hold the same bytes; `Err` when it cannot be told.
async fn same(
    s3: &aws_sdk_s3::Client,
    (src_bucket, src_key, src): (&str, &str, &Head),
    (dst_bucket, dst_key, dst): (&str, &str, &Head),
) -> Result<bool, String> {
    if src.size != dst.size {
        return Ok(false);
    }
    if let Some(same) = fingerprints(src, dst) {
        return Ok(same);
    }
    if !src.full || !dst.full {
        // Listings know no checksums: ask the objects themselves before reading bodies.
        let src_head;
        let src = if src.full {
            src
        } else {
            src_head = head(s3, src_bucket, src_key, src.version.as_deref())
                .await?
                .ok_or_else(|| format!("s3://{src_bucket}/{src_key} vanished while being moved"))?;
            &src_head
        };
        let dst_head;
        let dst = if dst.full {
            dst
        } else {
            dst_head = head(s3, dst_bucket, dst_key, None).await?.ok_or_else(|| {
                format!("s3://{dst_bucket}/{dst_key} vanished while being compared")
            })?;
            &dst_head
        };
        if src.size != dst.size {
            return Ok(false);
        }
        if let Some(same) = fingerprints(src, dst) {
            return Ok(same);
        }
    }
    // No comparable fingerprint (multipart ETags, SSE-KMS): compare the bodies.
    let a = crc32_of(s3, src_bucket, src_key, src.version.as_deref()).await?;
    let b = crc32_of(s3, dst_bucket, dst_key, dst.version.as_deref()).await?;
    Ok(a == b)
}

async fn crc32_of(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Result<(u64, u32), String> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_string))
        .send()
        .await
        .map_err(|e| format!("GetObject s3://{bucket}/{key}: {}", aws_errors::message(&e)))?;
    let mut body = out.body;
    let mut hasher = crc32fast::Hasher::new();
    let mut n = 0u64;
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| format!("GetObject s3://{bucket}/{key}: {e}"))?
    {
        n += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok((n, hasher.finalize()))
}

/// `bucket/key` for `x-amz-copy-source`, the key percent-encoded.
/// A copy source naming one version of the object, when it is known.
fn versioned_source(bucket: &str, key: &str, version: Option<&str>) -> String {
    let source = copy_source(bucket, key);
    match version {
        Some(v) => format!(
            "{source}?versionId={}",
            copy_source("", v).trim_start_matches('/')
        ),
        None => source,
    }
}

fn copy_source(bucket: &str, key: &str) -> String {
    let mut s = format!("{bucket}/");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// Copies and verifies one object. `Moved` and `AlreadyThere` leave the source for the
/// caller to delete (in batches); every other outcome leaves it alone.
async fn move_one(
    s3: &aws_sdk_s3::Client,
    request: &Request,
    item: &Item,
    dest: Dest,
    sink: &Sink,
) -> Result<(Outcome, Option<String>), String> {
    let (src_bucket, dst_bucket) = (request.parking_lot.as_str(), request.ingestion.as_str());
    let (key, destination) = (item.key.as_str(), item.destination.as_str());
    let gone = || Outcome::Skipped {
        reason: "no longer in the parking lot".into(),
    };
    let multipart = item.listed.size as u64 > request.multipart_threshold;
    // Parts copies carry the content type and metadata over by hand: read them.
    let head_src;
    let src = if multipart {
        match head(s3, src_bucket, key, item.listed.version.as_deref()).await? {
            Some(h) => {
                head_src = h;
                &head_src
            }
            None => return Ok((gone(), None)),
        }
    } else {
        &item.listed
    };
    // What was there before, and still copy with `If-None-Match: *`: some S3-compatible
    // stores and emulators ignore the condition on copies, and S3 honours it against races.
    let before = match dest {
        Dest::Absent => None,
        Dest::Present(head) => Some(head),
        Dest::Unknown => head(s3, dst_bucket, destination, None).await?,
    };
    let existing = match before {
        Some(dst) => Some(dst),
        None if request.dry_run => None,
        None => match copy_verified(s3, request, item, src, multipart).await? {
            Copied::Moved { source_version } => {
                sink(Event::Copied {
                    key: key.to_string(),
                    destination: destination.to_string(),
                    already_there: false,
                });
                return Ok((Outcome::Moved, source_version));
            }
            Copied::Ended(outcome) => return Ok((outcome, None)),
            Copied::Refused => head(s3, dst_bucket, destination, None).await?,
        },
    };
    let outcome = match existing {
        None if request.dry_run => Ok(Outcome::Planned),
        None => Ok(Outcome::Failed {
            error: format!(
                "s3://{dst_bucket}/{destination} refused the copy as existing, then was gone; source kept, run again"
            ),
        }),
        Some(dst) => {
            if same(s3, (src_bucket, key, src), (dst_bucket, destination, &dst)).await? {
                if !request.dry_run {
                    sink(Event::Copied {
                        key: key.to_string(),
                        destination: destination.to_string(),
                        already_there: true,
                    });
                }
                Ok(Outcome::AlreadyThere)
            } else {
                Ok(Outcome::Conflict {
                    reason: format!(
                        "s3://{dst_bucket}/{destination} holds a different object ({} bytes, source {} bytes)",
                        dst.size, src.size
                    ),
                })
            }
        }
    };
    // What was compared here is exactly the listed version (when the parking lot keeps
    // versions): its delete removes that version, and an upload written to the key since the
    // listing stays current.
    outcome.map(|o| (o, src.version.clone()))
}

/// How a conditional copy ended.
enum Copied {
    /// Copied and verified, from this version of the source (when the bucket keeps versions).
    Moved { source_version: Option<String> },
    /// Given up: the source is kept.
    Ended(Outcome),
    /// The destination exists after all (`412`).
    Refused,
}

/// Copies with `If-None-Match: *` (a `409`, a concurrent conditional write, is retried) and
/// verifies the copy.
async fn copy_verified(
    s3: &aws_sdk_s3::Client,
    request: &Request,
    item: &Item,
    src: &Head,
    multipart: bool,
) -> Result<Copied, String> {
    let (src_bucket, dst_bucket) = (request.parking_lot.as_str(), request.ingestion.as_str());
    let (key, destination) = (item.key.as_str(), item.destination.as_str());
    let mut attempts = 0;
    let (etag, source_version) = loop {
        attempts += 1;
        let copied = if multipart {
            copy_multipart(s3, request, key, destination, src).await
        } else {
            copy_whole(s3, request, key, destination, src).await
        };
        match copied {
            Ok(copied) => break copied,
            Err(CopyError::Exists) => return Ok(Copied::Refused),
            Err(CopyError::Busy) if attempts < 3 => continue,
            Err(CopyError::Busy) => {
                return Ok(Copied::Ended(Outcome::Failed {
                    error: format!(
                    "s3://{dst_bucket}/{destination} is being written by someone else; source kept"
                ),
                }))
            }
            Err(CopyError::SourceGone) => {
                return Ok(Copied::Ended(Outcome::Skipped {
                    reason: "no longer in the parking lot".into(),
                }))
            }
            Err(CopyError::Other(error)) => return Ok(Copied::Ended(Outcome::Failed { error })),
        }
    };
    // The copy's own answer verifies it when its ETag is a single-part one equal to the
    // source's. That is the comparison a `HEAD` of the copy would make, on the same value:
    // - the ETag of `CopyObject`'s answer is the ETag of the object S3 has just written at
    //   that key (the SDK turns a `200` whose body is an error into an error, so an answer
    //   with a result means the copy is complete and durable), and S3 reads after writes
    //   consistently, so a `HEAD` now would show the same ETag unless someone else wrote the
    //   key since, which a `HEAD` cannot rule out for the moment after it either;
    // - a single-part ETag (no `-N`) of an unencrypted or SSE-S3 object is the MD5 of its
    //   bytes, so equal ETags mean equal bytes, and so the same size; SSE-KMS and SSE-C
    //   ETags are not content hashes, and a copy's differs from its source's, so they go on
    //   to the `HEAD` below, as do multipart copies (their ETag describes parts).
    let src_etag = src.etag.as_str();
    let verified_by_answer = etag.as_deref().is_some_and(|e| {
        let e = e.trim_matches('"');
        !src_etag.is_empty() && !src_etag.contains('-') && e == src_etag
    });
    if !verified_by_answer {
        let copy = head(s3, dst_bucket, destination, None)
            .await?
            .ok_or("the copy is not visible in the destination; source kept")?;
        if !same(s3, (src_bucket, key, src), (dst_bucket, destination, &copy)).await? {
            return Ok(Copied::Ended(Outcome::Failed {
                error: format!(
                    "the copy at s3://{dst_bucket}/{destination} does not match the source; source kept"
                ),
            }));
        }
    }
    Ok(Copied::Moved { source_version })
}

/// Why a conditional copy did not happen.
enum CopyError {
    /// `412`: the destination key exists.
    Exists,
    /// `409`: another conditional write to the key is in progress.
    Busy,
    /// The source is gone (moved by someone else since the listing).
    SourceGone,
    Other(String),
}

fn copy_error<E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static>(
    operation: &str,
    target: &str,
    e: aws_sdk_s3::error::SdkError<E>,
) -> CopyError {
    let code = e.as_service_error().and_then(|s| s.code()).unwrap_or("");
    let status = e.raw_response().map(|r| r.status().as_u16());
    if code == "PreconditionFailed" || status == Some(412) {
        CopyError::Exists
    } else if code == "ConditionalRequestConflict" || status == Some(409) {
        CopyError::Busy
    } else if code == "NoSuchKey" || code == "NoSuchVersion" {
        CopyError::SourceGone
    } else {
        CopyError::Other(format!(
            "{operation} to {target}: {}",
            aws_errors::message(&e)
        ))
    }
}

/// The algorithm of the source's own checksum, so the copy carries a comparable one.
fn checksum_for(src: &Head) -> ChecksumAlgorithm {
    src.checksums
        .first()
        .map(|(name, _)| ChecksumAlgorithm::from(*name))
        .unwrap_or(ChecksumAlgorithm::Crc32)
}

/// Copies in one request; the copy's ETag, as S3 answers it, and the version of the source it
/// copied (when the bucket keeps versions).
async fn copy_whole(
    s3: &aws_sdk_s3::Client,
    request: &Request,
    key: &str,
    destination: &str,
    src: &Head,
) -> Result<(Option<String>, Option<String>), CopyError> {
    s3.copy_object()
        .copy_source(versioned_source(
            &request.parking_lot,
            key,
            src.version.as_deref(),
        ))
        .bucket(&request.ingestion)
        .key(destination)
        .if_none_match("*")
        .checksum_algorithm(checksum_for(src))
        .send()
        .await
        .map(|out| {
            let version = out.copy_source_version_id.or_else(|| src.version.clone());
            (out.copy_object_result.and_then(|r| r.e_tag), version)
        })
        .map_err(|e| {
            copy_error(
                "CopyObject",
                &format!("s3://{}/{destination}", request.ingestion),
                e,
            )
        })
}

/// Deletes verified sources, a thousand per `DeleteObjects`, and settles their reports: a
/// source that could not be deleted is a failure (its copy is verified; a rerun deletes it).
async fn delete_sources(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    pending: &mut Vec<ObjectReport>,
    batch: usize,
) -> Vec<ObjectReport> {
    let mut settled = Vec::with_capacity(pending.len());
    for chunk in std::mem::take(pending).chunks(batch.clamp(1, 1000)) {
        let ids: Vec<ObjectIdentifier> = chunk
            .iter()
            .filter_map(|r| {
                ObjectIdentifier::builder()
                    .key(&r.key)
                    .set_version_id(r.source_version.clone())
                    .build()
                    .ok()
            })
            .collect();
        let result = match Delete::builder().set_objects(Some(ids)).quiet(true).build() {
            Ok(delete) => s3
                .delete_objects()
                .bucket(bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| aws_errors::message(&e)),
            Err(e) => Err(e.to_string()),
        };
        let failed: BTreeMap<String, String> = match &result {
            Ok(out) => out
                .errors()
                .iter()
                .map(|e| {
                    (
                        e.key().unwrap_or_default().to_string(),
                        format!(
                            "{}: {}",
                            e.code().unwrap_or("?"),
                            e.message().unwrap_or_default()
                        ),
                    )
                })
                .collect(),
            Err(_) => BTreeMap::new(),
        };
        for mut r in chunk.iter().cloned() {
            let error = match &result {
                Err(e) => Some(e.clone()),
                Ok(_) => failed.get(&r.key).cloned(),
            };
            if let Some(e) = error {
                r.outcome = Outcome::Failed {
                    error: format!(
                        "DeleteObjects s3://{bucket}/{}: {e}; the copy is verified, run again to delete the source",
                        r.key
                    ),
                };
            }
            settled.push(r);
        }
    }
    settled
}

/// Copies in parts, completed with `If-None-Match: *`; the copy's (multipart) ETag and the
/// source version every part was copied from: the one `src` was read at, when the bucket
/// keeps versions, so that an overwrite during the copy cannot mix two uploads.
async fn copy_multipart(
    s3: &aws_sdk_s3::Client,
    request: &Request,
    key: &str,
    destination: &str,
    src: &Head,
) -> Result<(Option<String>, Option<String>), CopyError> {
    let dst_bucket = request.ingestion.as_str();
    let target = format!("s3://{dst_bucket}/{destination}");
    let fail = |op: &str, e: String| CopyError::Other(format!("{op} {target}: {e}"));
    let created = s3
        .create_multipart_upload()
        .bucket(dst_bucket)
        .key(destination)
        .set_content_type(src.content_type.clone())
        .set_metadata(src.metadata.clone())
        .send()
        .await
        .map_err(|e| fail("CreateMultipartUpload", aws_errors::message(&e)))?;
    let upload_id = created.upload_id().unwrap_or_default().to_string();
    let result = async {
        let size = src.size as u64;
        let part = request.part_size.max(5 * 1024 * 1024);
        let mut parts = Vec::new();
        let mut start = 0u64;
        let mut number = 1;
        while start < size {
            let end = (start + part).min(size) - 1;
            let out = s3
                .upload_part_copy()
                .bucket(dst_bucket)
                .key(destination)
                .upload_id(&upload_id)
                .part_number(number)
                .copy_source(versioned_source(
                    &request.parking_lot,
                    key,
                    src.version.as_deref(),
                ))
                .copy_source_range(format!("bytes={start}-{end}"))
                .send()
                .await
                .map_err(|e| fail("UploadPartCopy", aws_errors::message(&e)))?;
            parts.push(
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(
                        out.copy_part_result()
                            .and_then(|r| r.e_tag())
                            .map(str::to_string),
                    )
                    .build(),
            );
            start = end + 1;
            number += 1;
        }
        s3.complete_multipart_upload()
            .bucket(dst_bucket)
            .key(destination)
            .upload_id(&upload_id)
            .if_none_match("*")
            .multipart_upload(
                aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map(|out| (out.e_tag, src.version.clone()))
            .map_err(|e| copy_error("CompleteMultipartUpload", &target, e))
    }
    .await;
    if result.is_err() {
        let _ = s3
            .abort_multipart_upload()
            .bucket(dst_bucket)
            .key(destination)
            .upload_id(&upload_id)
            .send()
            .await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(liveness: LivenessCheck) -> BatchRules {
        BatchRules {
            id_prefix: "b-".into(),
            liveness,
            rewrite: "orphans/{batch}/{path}".into(),
        }
    }

    #[test]
    fn batch_keys_split_on_the_first_segment_with_the_prefix() {
        let r = rules(LivenessCheck::Queue("q-{batch}".into()));
        assert_eq!(r.split("b-1/a/x.jpg"), Some(("b-1", "a/x.jpg")));
        assert_eq!(r.split("plain.jpg"), None);
        assert_eq!(r.split("other/x.jpg"), None);
        assert_eq!(r.split("b-1/"), None);
        assert_eq!(
            r.rewritten("b-1/a/x.jpg", "b-1", "a/x.jpg"),
            "orphans/b-1/a/x.jpg"
        );
        assert_eq!(rules(LivenessCheck::None).split("b-1/a/x.jpg"), None);
        let any_folder = BatchRules {
            id_prefix: String::new(),
            ..rules(LivenessCheck::Queue("q-{batch}".into()))
        };
        assert_eq!(
            any_folder.split("folder/x.jpg"),
            None,
            "a folder is no batch"
        );
        assert_eq!(BatchRules::none().split("b-1/a/x.jpg"), None);
        assert_eq!(
            BatchRules::from_config(None, "photos-prod").split("b-1/x.jpg"),
            None
        );
    }

    #[test]
    fn a_rewritten_key_that_would_leave_its_batch_is_refused() {
        let r = BatchRules {
            id_prefix: "batch-".into(),
            liveness: LivenessCheck::Queue("q-{batch}".into()),
            rewrite: "{path}".into(),
        };
        let refused = |key: &str| {
            let (batch, path) = r.split(key).unwrap();
            r.unsafe_destination(&r.rewritten(key, batch, path))
        };
        for key in [
            "batch-mine/batch-victim/evil.jpg",
            "batch-mine/../../escape.jpg",
            "batch-mine/a/./b.jpg",
            "batch-mine//abs.jpg",
            "batch-mine/a//b.jpg",
            "batch-mine/%2e%2e/%2E%2e/x.jpg",
            "batch-mine/a%2f..%2fb.jpg",
            "batch-mine/%62atch-victim/x.jpg",
        ] {
            assert!(refused(key).is_some(), "{key} was not refused");
        }
        for key in [
            "batch-mine/a;rm -rf.jpg",
            "batch-mine/a/b..c.jpg",
            "batch-mine/...jpg",
            "batch-mine/%zz.jpg",
            "batch-mine/sub/batch-x.jpg",
        ] {
            assert_eq!(refused(key), None, "{key}");
        }
        let nested = BatchRules {
            rewrite: "orphans/{batch}/{path}".into(),
            ..r.clone()
        };
        assert_eq!(
            nested.unsafe_destination("orphans/batch-mine/batch-victim/x.jpg"),
            None,
            "a batch id further down is just a folder name"
        );
        // A 1021-byte key is a valid S3 key; rewritten under `orphans/batch-mine/` it is not.
        let long = format!("{}.jpg", "x".repeat(1006));
        let key = format!("batch-mine/{long}");
        assert_eq!(key.len(), 1021);
        let rewritten = nested.rewritten(&key, "batch-mine", &long);
        assert!(nested
            .unsafe_destination(&rewritten)
            .unwrap()
            .contains("1029 bytes long; S3 keys are at most 1024"));
    }

    #[test]
    fn a_key_range_has_the_common_prefix_of_its_ends() {
        assert_eq!(
            common_prefix("batch-0001/a.jpg", "batch-0019/z.jpg"),
            "batch-00"
        );
        assert_eq!(
            common_prefix("uploads/1.jpg", "uploads/1.jpg"),
            "uploads/1.jpg"
        );
        assert_eq!(common_prefix("a/", "a/b"), "a/");
        assert_eq!(common_prefix("\u{fc}x", "\u{fd}x"), "");
        assert_eq!(common_prefix("p/\u{fc}1", "p/\u{fc}2"), "p/\u{fc}");
    }

    #[test]
    fn keys_past_what_a_listing_reached_are_unknown() {
        let head = Head {
            size: 3,
            etag: "e".into(),
            ..Head::default()
        };
        let range = Range {
            found: [("k/b".to_string(), head)].into_iter().collect(),
            through: Some("k/c".into()),
        };
        assert!(matches!(range.dest("k/a"), Dest::Absent));
        assert!(matches!(range.dest("k/b"), Dest::Present(h) if h.size == 3));
        assert!(matches!(range.dest("k/c"), Dest::Absent));
        assert!(matches!(range.dest("k/d"), Dest::Unknown));
        let whole = Range {
            found: BTreeMap::new(),
            through: None,
        };
        assert!(matches!(whole.dest("k/z"), Dest::Absent));
    }

    #[test]
    fn copy_source_encodes_the_key() {
        assert_eq!(copy_source("bk", "a b/ü+x.jpg"), "bk/a%20b/%C3%BC%2Bx.jpg");
    }

    #[test]
    fn report_counts_each_outcome_once() {
        let mut r = Report::default();
        let o = |key: &str, dead: Option<&str>, outcome| ObjectReport {
            key: key.into(),
            destination: key.into(),
            dead_batch: dead.map(str::to_string),
            source_version: None,
            superseded: Vec::new(),
            source_done: false,
            outcome,
        };
        r.add(o("a", None, Outcome::Moved));
        r.add(o("b", Some("b-1"), Outcome::Moved));
        r.add(o("c", None, Outcome::AlreadyThere));
        r.add(o("d", None, Outcome::Conflict { reason: "x".into() }));
        r.add(o("e", None, Outcome::Failed { error: "x".into() }));
        r.add(o("f/", None, Outcome::Skipped { reason: "x".into() }));
        assert_eq!(
            (r.total, r.moved, r.already_there, r.rewritten),
            (6, 3, 1, 1)
        );
        assert_eq!((r.skipped, r.conflicts, r.failures), (1, 1, 1));
        let notable: Vec<&str> = r.notable.iter().map(|n| n.key.as_str()).collect();
        assert_eq!(notable, ["b", "d", "e", "f/"]);
    }

    #[tokio::test]
    async fn a_liveness_command_past_its_timeout_is_stopped_and_moves_nothing() {
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::Config::builder()
                .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
                .region(aws_sdk_sqs::config::Region::new("us-east-1"))
                .build(),
        );
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("child.pid");
        let script = format!("sleep 1000 & echo $! > {}; wait", pid_file.display());
        let check = LivenessCheck::Command {
            argv: vec!["sh".into(), "-c".into(), script],
            timeout: std::time::Duration::from_secs(1),
        };
        let started = std::time::Instant::now();
        let err = is_alive(&sqs, &check, "b-1").await.unwrap_err().to_string();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(8),
            "{err}"
        );
        assert!(err.starts_with("batch b-1: liveness check: "), "{err}");
        assert!(err.contains("still running after 1s"), "{err}");
        assert!(
            err.contains("[maintenance.batches] timeout_seconds"),
            "{err}"
        );
        assert!(err.ends_with("nothing was moved"), "{err}");
        // The command's child went with it.
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        // Gone, or a zombie nobody reaped yet (the `sh` that started it was stopped too).
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()));
        let alive = stat.is_ok_and(|s| !s.contains(") Z "));
        assert!(!alive, "sleep {} outlived its liveness check", pid.trim());

        let alive = LivenessCheck::Command {
            argv: vec!["sh".into(), "-c".into(), "test {batch} = b-1".into()],
            timeout: std::time::Duration::from_secs(5),
        };
        assert!(is_alive(&sqs, &alive, "b-1").await.unwrap());
        assert!(!is_alive(&sqs, &alive, "b-2").await.unwrap());
    }
}
