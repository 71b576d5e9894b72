//! The lock and journal rules on the local backend (the S3 backend runs the same rules
//! against moto in `tests/tests/state_s3.rs`).

use std::sync::Arc;

use state::local::LocalStore;
use state::lock::{self, Claim, LockState, Mode};
use state::{journal, Holder, RunJournal, Scope, StateError};

fn scope(dir: &std::path::Path) -> Scope {
    Scope::new(Arc::new(LocalStore::new(dir)), "gatekeeper", "photos-prod").unwrap()
}

fn claim(run: &str, pid: u32) -> Claim {
    Claim {
        run_id: run.into(),
        purpose: "canary".into(),
        holder: Holder {
            who: "ci".into(),
            host: "runner-a".into(),
            pid,
            started: 7,
            command: "canary run".into(),
        },
        ttl: 60,
    }
}

#[tokio::test]
async fn generations_grow_across_take_release_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let s = scope(dir.path());
    let a = lock::acquire(&s, &claim("r1", 1), Mode::Fresh, 100)
        .await
        .unwrap();
    assert_eq!(a.generation(), 1);
    // Held: a second fresh run is refused and names the holder.
    let err = lock::acquire(&s, &claim("r2", 2), Mode::Fresh, 110)
        .await
        .unwrap_err();
    let StateError::Held(r) = &err else {
        panic!("{err}")
    };
    assert!(r.reason.contains("run r1"), "{}", r.reason);
    lock::release(&s, &a, 120).await.unwrap();
    let (info, _) = lock::read(&s).await.unwrap().unwrap();
    assert_eq!((info.state, info.generation), (LockState::Free, 1));
    let b = lock::acquire(&s, &claim("r2", 2), Mode::Fresh, 130)
        .await
        .unwrap();
    assert_eq!(b.generation(), 2);
    // Expired: its holder stopped mid-run, so the run is parked: a new run is refused, and
    // continuing that run takes it over with a larger generation, fencing the old holder.
    let err = lock::acquire(&s, &claim("r3", 3), Mode::Fresh, 130 + 61)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("canary run r2 is in flight"),
        "{err}"
    );
    let c = lock::acquire(
        &s,
        &claim("r2", 3),
        Mode::Continue { force: false },
        130 + 61,
    )
    .await
    .unwrap();
    assert_eq!(c.generation(), 3);
    let mut stale = b.clone();
    let err = lock::renew(&s, &mut stale, 200).await.unwrap_err();
    assert!(
        matches!(
            err,
            StateError::Fenced {
                ours: 2,
                theirs: 3,
                ..
            }
        ),
        "{err}"
    );
    let err = lock::release(&s, &b, 200).await.unwrap_err();
    assert!(matches!(err, StateError::Fenced { .. }), "{err}");
    let (info, _) = lock::read(&s).await.unwrap().unwrap();
    assert_eq!((info.state, info.run_id.as_str()), (LockState::Held, "r2"));
}

#[tokio::test]
async fn continuing_a_run_needs_its_holder_dead_or_silent() {
    let dir = tempfile::tempdir().unwrap();
    let s = scope(dir.path());
    let mut held = claim("r1", std::process::id());
    held.holder = Holder::this_process("ci", "promote");
    lock::acquire(&s, &held, Mode::Fresh, 100).await.unwrap();
    // The same run from another process on this host: its holder (this test) is alive.
    let mut other = held.clone();
    other.holder.pid = 4_194_304;
    let err = lock::acquire(&s, &other, Mode::Continue { force: true }, 101)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("still being driven"), "{err}");
    // From another host: refused while renewed, even with --force ...
    let mut remote = held.clone();
    remote.holder.host = "runner-b".into();
    let err = lock::acquire(&s, &remote, Mode::Continue { force: true }, 110)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--force is refused"), "{err}");
    // ... and once it stopped renewing, only with --force before it expires.
    let err = lock::acquire(&s, &remote, Mode::Continue { force: false }, 145)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--force"), "{err}");
    let taken = lock::acquire(&s, &remote, Mode::Continue { force: true }, 145)
        .await
        .unwrap();
    assert_eq!(taken.generation(), 2);
    // Another run never continues it.
    let err = lock::acquire(&s, &claim("r9", 9), Mode::Continue { force: true }, 146)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("run r1"), "{err}");
}

#[tokio::test]
async fn a_holder_whose_process_died_on_this_host_is_taken_over_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let s = scope(dir.path());
    let mut dead = claim("r1", 4_194_304);
    dead.holder.host = state::holder::local_host();
    lock::acquire(&s, &dead, Mode::Fresh, 100).await.unwrap();
    let mut me = claim("r1", 0);
    me.holder = Holder::this_process("ci", "canary resume");
    let lease = lock::acquire(&s, &me, Mode::Continue { force: false }, 101)
        .await
        .unwrap();
    assert_eq!(lease.generation(), 2);
}

#[tokio::test]
async fn a_fenced_writer_cannot_append_and_replay_refuses_going_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = scope(dir.path());
    let mut old = RunJournal::create(&s, "r1", 1).unwrap();
    old.append(1, &"start").await.unwrap();
    old.append(2, &"step").await.unwrap();
    // A taker with generation 2 continues the run after the last record it read.
    let mut new = RunJournal::continue_at(&s, "r1", 2, 2).unwrap();
    new.append(3, &"took-over").await.unwrap();
    // The old writer's next record collides with the taker's: fenced, nothing written.
    let err = old.append(4, &"late").await.unwrap_err();
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
    let records: Vec<journal::Envelope<String>> = journal::read(&s, "r1").await.unwrap();
    let got: Vec<_> = records
        .iter()
        .map(|e| (e.seq, e.generation, e.record.as_str()))
        .collect();
    assert_eq!(got, [(0, 1, "start"), (1, 1, "step"), (2, 2, "took-over")]);
    // A record from an older generation after a newer one is refused by name.
    let dir2 = tempfile::tempdir().unwrap();
    let s2 = scope(dir2.path());
    RunJournal::create(&s2, "r1", 5)
        .unwrap()
        .append(1, &"a")
        .await
        .unwrap();
    RunJournal::continue_at(&s2, "r1", 1, 4)
        .unwrap()
        .append(2, &"b")
        .await
        .unwrap();
    let err = journal::read::<String>(&s2, "r1").await.unwrap_err();
    assert!(err.to_string().contains("00000001.json"), "{err}");
    assert!(
        err.to_string()
            .contains("generation 4 after a record of generation 5"),
        "{err}"
    );
}

#[tokio::test]
async fn objects_that_are_not_ours_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let s = scope(dir.path());
    let lock_path = dir.path().join("gatekeeper/photos-prod/lock.json");
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    for (body, says) in [
        (&b"not json"[..], "not a gatekeeper lock"),
        (br#"{"holder":"someone"}"#, "not a gatekeeper lock"),
        (
            br#"{"format":"gatekeeper.lock/2"}"#,
            "newer than this gatekeeper reads",
        ),
    ] {
        std::fs::write(&lock_path, body).unwrap();
        let err = lock::acquire(&s, &claim("r1", 1), Mode::Fresh, 1)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("lock.json") && text.contains(says), "{text}");
        // Nothing was changed.
        assert_eq!(std::fs::read(&lock_path).unwrap(), body);
    }
    let run = dir.path().join("gatekeeper/photos-prod/runs/r1");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("00000000.json"),
        br#"{"format":"gatekeeper.record/9"}"#,
    )
    .unwrap();
    let err = journal::read::<String>(&s, "r1").await.unwrap_err();
    assert!(
        err.to_string().contains("00000000.json") && err.to_string().contains("newer"),
        "{err}"
    );
    std::fs::write(run.join("00000000.json"), b"{}").unwrap();
    std::fs::write(run.join("notes.txt"), b"x").unwrap();
    let err = journal::read::<String>(&s, "r1").await.unwrap_err();
    assert!(
        err.to_string().contains("not a gatekeeper journal record"),
        "{err}"
    );
}

#[tokio::test]
async fn names_that_would_leave_the_scope_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::new(dir.path()));
    assert!(Scope::new(store.clone(), "gatekeeper", "../../tmp/x").is_err());
    assert!(Scope::new(store.clone(), "gate/../keeper", "a").is_err());
    let s = Scope::new(store, "", "photos-prod").unwrap();
    assert!(RunJournal::create(&s, "../x", 1).is_err());
    assert!(RunJournal::create(&s, "a;b", 1).is_err());
}

/// Many takers of one free lock, each in its own thread: exactly one wins every round.
#[test]
fn one_winner_among_racing_takers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    for round in 0..50u64 {
        let now = 1_000 + round;
        let barrier = std::sync::Barrier::new(8);
        let winners: usize = std::thread::scope(|t| {
            let handles: Vec<_> = (0..8u32)
                .map(|i| {
                    let path = path.clone();
                    let barrier = &barrier;
                    t.spawn(move || {
                        let rt = tokio::runtime::Builder::new_current_thread()
                            .build()
                            .unwrap();
                        rt.block_on(async {
                            let s = scope(&path);
                            let c = claim(&format!("r{round}-{i}"), i);
                            let got = lock::acquire(&s, &c, Mode::Fresh, now).await;
                            // Everyone has tried before the winner frees it for the next round.
                            barrier.wait();
                            match got {
                                Ok(lease) => {
                                    lock::release(&s, &lease, now).await.unwrap();
                                    1
                                }
                                Err(_) => 0,
                            }
                        })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(winners, 1, "round {round}");
    }
}

#[tokio::test]
async fn a_parked_run_refuses_new_runs_and_a_preempting_holder_hands_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = scope(dir.path());
    let canary = lock::acquire(&s, &claim("c1", 1), Mode::Fresh, 100)
        .await
        .unwrap();
    lock::park(&s, &canary, 110).await.unwrap();
    let (info, _) = lock::read(&s).await.unwrap().unwrap();
    assert_eq!(
        (info.state, info.run_id.as_str()),
        (LockState::Parked, "c1")
    );
    // Another canary run: refused, naming the commands that finish the parked one.
    let err = lock::acquire(&s, &claim("c2", 2), Mode::Fresh, 120)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("gatekeeper promote"), "{err}");
    // Maintenance without --force: refused; with it (Preempt): taken, and handed back.
    let mut m = claim("m1", 3);
    m.purpose = "maintenance".into();
    assert!(lock::acquire(&s, &m, Mode::Fresh, 120).await.is_err());
    let maint = lock::acquire(&s, &m, Mode::Preempt, 120).await.unwrap();
    assert_eq!(maint.info.preempted.as_ref().unwrap().run_id, "c1");
    // A preempting holder never takes a live lock.
    assert!(lock::acquire(&s, &claim("c3", 4), Mode::Preempt, 121)
        .await
        .is_err());
    lock::release(&s, &maint, 130).await.unwrap();
    let (info, _) = lock::read(&s).await.unwrap().unwrap();
    assert_eq!(
        (
            info.state,
            info.run_id.as_str(),
            info.purpose.as_str(),
            info.generation
        ),
        (LockState::Parked, "c1", "canary", 2)
    );
    // The parked run continues (promote), and its release frees the lock.
    let promote = lock::acquire(&s, &claim("c1", 5), Mode::Continue { force: false }, 140)
        .await
        .unwrap();
    assert_eq!(promote.generation(), 3);
    lock::release(&s, &promote, 150).await.unwrap();
    let (info, _) = lock::read(&s).await.unwrap().unwrap();
    assert_eq!(info.state, LockState::Free);
}
