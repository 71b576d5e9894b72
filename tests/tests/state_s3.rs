//! The fenced lock and the run journal against S3 conditional writes in moto.

#![expect(
    clippy::print_stderr,
    reason = "the tally of trials goes to the test log"
)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gatekeeper_e2e::{fleet, moto, unique};
use state::lock::{self, Claim, Mode};
use state::s3::S3Store;
use state::{journal, Etag, Holder, RunJournal, Scope, StateError, Store};

/// A store that waits between a taker's read and its write, so racing takers both read the
/// same expired lock before either writes: the window the old SSM lock lost.
struct Slow {
    inner: S3Store,
    delay: Duration,
}

#[async_trait]
impl Store for Slow {
    async fn get(&self, key: &str) -> state::Result<Option<(Vec<u8>, Etag)>> {
        self.inner.get(key).await
    }
    async fn put_new(&self, key: &str, body: &[u8]) -> state::Result<Option<Etag>> {
        tokio::time::sleep(self.delay).await;
        self.inner.put_new(key, body).await
    }
    async fn put_if(&self, key: &str, body: &[u8], etag: &Etag) -> state::Result<Option<Etag>> {
        tokio::time::sleep(self.delay).await;
        self.inner.put_if(key, body, etag).await
    }
    async fn list(&self, prefix: &str) -> state::Result<Vec<String>> {
        self.inner.list(prefix).await
    }
    fn describe(&self, key: &str) -> String {
        self.inner.describe(key)
    }
}

fn claim(run: &str, pid: u32) -> Claim {
    Claim {
        run_id: run.into(),
        purpose: "canary".into(),
        holder: Holder {
            who: "ci".into(),
            host: format!("runner-{pid}"),
            pid,
            started: 1,
            command: "canary run".into(),
        },
        ttl: 10,
    }
}

async fn bucket(moto: &gatekeeper_e2e::Moto) -> (aws_sdk_s3::Client, String) {
    let s3 = fleet::s3(moto).await;
    let bucket = unique("state");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    (s3, bucket)
}

#[tokio::test]
async fn two_takers_of_an_expired_lock_one_winner_in_every_trial() {
    let Some(moto) = moto() else { return };
    let (s3, bucket) = bucket(&moto).await;
    let trials: u64 = std::env::var("STATE_RACE_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1_000);
    let mut wins = [0u64; 2];
    for trial in 0..trials {
        // Each trial the lock is free: both takers read it, wait, then write.
        let now = 1_000 + trial;
        let racers = (0..2u32).map(|i| {
            let store = Slow {
                inner: S3Store {
                    client: s3.clone(),
                    bucket: bucket.clone(),
                },
                // 0-3 ms, different for each taker and trial.
                delay: Duration::from_micros(((trial * 7 + i as u64 * 13) % 4) * 1_000),
            };
            let scope = Scope::new(Arc::new(store), "gatekeeper", "photos-prod").unwrap();
            tokio::spawn(async move {
                lock::acquire(
                    &scope,
                    &claim(&format!("t{trial}-{i}"), i),
                    Mode::Fresh,
                    now,
                )
                .await
            })
        });
        let results: Vec<_> = futures_join(racers).await;
        let winners: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_ok())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(winners.len(), 1, "trial {trial}: {results:?}");
        wins[winners[0]] += 1;
        for r in &results {
            if let Err(e) = r {
                assert!(matches!(e, StateError::Held(_)), "trial {trial}: {e}");
            }
        }
        // The lock in moto is the winner's, with the trial's generation.
        let scope = Scope::new(
            Arc::new(S3Store {
                client: s3.clone(),
                bucket: bucket.clone(),
            }),
            "gatekeeper",
            "photos-prod",
        )
        .unwrap();
        let (info, _) = lock::read(&scope).await.unwrap().unwrap();
        assert_eq!(
            info.run_id,
            format!("t{trial}-{}", winners[0]),
            "trial {trial}"
        );
        assert_eq!(info.generation, trial + 1, "trial {trial}");
        let lease = results.into_iter().find_map(Result::ok).unwrap();
        lock::release(&scope, &lease, now).await.unwrap();
    }
    eprintln!(
        "{trials} trials: taker 0 won {}, taker 1 won {}",
        wins[0], wins[1]
    );
}

async fn futures_join<T: Send + 'static>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn journal_records_are_create_only_and_fenced_in_s3() {
    let Some(moto) = moto() else { return };
    let (s3, bucket) = bucket(&moto).await;
    let store = Arc::new(S3Store {
        client: s3.clone(),
        bucket: bucket.clone(),
    });
    let scope = Scope::new(store, "gatekeeper", "photos-prod").unwrap();
    let mut old = RunJournal::create(&scope, "r1", 1).unwrap();
    old.append(1, &"start").await.unwrap();
    let mut new = RunJournal::continue_at(&scope, "r1", 1, 2).unwrap();
    new.append(2, &"took-over").await.unwrap();
    let err = old.append(3, &"late").await.unwrap_err();
    assert!(
        matches!(
            err,
            StateError::Fenced {
                ours: 1,
                theirs: 2,
                ..
            }
        ),
        "{err}"
    );
    let records: Vec<journal::Envelope<String>> = journal::read(&scope, "r1").await.unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1].record, "took-over");
    assert_eq!(scope.runs().await.unwrap(), ["r1"]);
    // What is in moto: exactly the two records and their keys.
    let keys: Vec<String> = s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    assert_eq!(
        keys,
        [
            "gatekeeper/photos-prod/runs/r1/00000000.json",
            "gatekeeper/photos-prod/runs/r1/00000001.json"
        ]
    );
}

#[tokio::test]
async fn a_foreign_lock_object_in_s3_is_refused_and_left_alone() {
    let Some(moto) = moto() else { return };
    let (s3, bucket) = bucket(&moto).await;
    let key = "gatekeeper/photos-prod/lock.json";
    s3.put_object()
        .bucket(&bucket)
        .key(key)
        .body(b"{\"format\":\"gatekeeper.lock/3\"}".to_vec().into())
        .send()
        .await
        .unwrap();
    let scope = Scope::new(
        Arc::new(S3Store {
            client: s3.clone(),
            bucket: bucket.clone(),
        }),
        "gatekeeper",
        "photos-prod",
    )
    .unwrap();
    let err = lock::acquire(&scope, &claim("r1", 1), Mode::Fresh, 1)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("s3://{bucket}/{key}")) && text.contains("newer"),
        "{text}"
    );
    let body = s3
        .get_object()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(&body[..], b"{\"format\":\"gatekeeper.lock/3\"}");
}
