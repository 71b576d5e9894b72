//! Maintenance against moto: the flag round trip, draining, the journal's resume, the flag
//! TTL waited out on the way in and on the way out, and the lock (local state backend here;
//! `tests/tests/maintenance.rs` runs the binary with the state in S3).
//!
//! Needs a moto server (`scripts/test` starts one): `GATEKEEPER_TEST_MOTO` or
//! `AWS_ENDPOINT_URL` on loopback. Outside CI the tests skip without it; in CI they fail.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use maintenance::journal::Record;
use maintenance::redrive;
use maintenance::{self as maintenance, DrainOutcome, Event, Locking, OffOutcome, OnOutcome};
use maintenance_flag::MaintenanceFlag;
use state::lock::{self, Claim, LockState, Mode};
use state::{Holder, RunJournal, Scope};

mod common;
use common::{bucket, moto, put, unique, Moto};

/// The maintenance workflow's clients, on moto, with no ingestion bucket to look in.
fn clients(m: &Moto) -> maintenance::Clients<'_> {
    maintenance::Clients {
        ssm: &m.ssm,
        sqs: &m.sqs,
        s3: &m.s3,
        ingestion_bucket: None,
    }
}

fn config(service: &str, extra: &str) -> (stacks::config::Config, maintenance::MaintenanceConfig) {
    let text = format!(
        "service = \"{service}\"\nenvironment = \"test\"\n[[queues]]\nname = \"work\"\n[[queues]]\nname = \"slow\"\n{extra}"
    );
    let path = std::path::Path::new("gatekeeper.toml");
    (
        stacks::config::parse(path, &text).unwrap(),
        maintenance::config::parse(path, &text).unwrap(),
    )
}

/// The state of `svc-test` in a local directory.
fn locking(dir: &std::path::Path) -> Locking {
    let store = Arc::new(state::local::LocalStore::new(dir.join("state")));
    Locking {
        scope: Scope::new(store, "", "svc-test").unwrap(),
        lease: 30,
        force: false,
    }
}

async fn lock_of(l: &Locking) -> state::LockInfo {
    lock::read(&l.scope).await.unwrap().unwrap().0
}

async fn off(
    m: &Moto,
    target: &maintenance::Target,
    l: &Locking,
    who: &str,
) -> maintenance::Cleared {
    match maintenance::off(
        &m.ssm,
        target,
        l,
        who,
        Duration::ZERO,
        Duration::from_secs(5),
        &|_| {},
    )
    .await
    .unwrap()
    {
        OffOutcome::Cleared { cleared, .. } => cleared,
        other => panic!("{other:?}"),
    }
}

async fn queue(m: &Moto, name: &str) -> String {
    m.sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string()
}

async fn send(m: &Moto, url: &str, n: usize) {
    for i in 0..n {
        m.sqs
            .send_message()
            .queue_url(url)
            .message_body(format!("m{i}"))
            .send()
            .await
            .unwrap();
    }
}

/// Deletes one message every `every` until the queue is empty, like a worker.
fn worker(
    sqs: aws_sdk_sqs::Client,
    url: String,
    every: Duration,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut done = 0;
        loop {
            tokio::time::sleep(every).await;
            let got = sqs
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(1)
                .send()
                .await
                .unwrap();
            let Some(m) = got.messages().first() else {
                return done;
            };
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            done += 1;
        }
    })
}

#[tokio::test]
async fn flag_round_trip_reads_back_what_was_written() {
    let Some(m) = moto().await else { return };
    let name = format!("/{}/test/maintenance", unique("flag"));
    assert_eq!(maintenance::read_flag(&m.ssm, &name).await.unwrap(), None);
    let on = MaintenanceFlag {
        enabled: true,
        message: "back soon".into(),
        until: Some("2030-01-01T00:00:00Z".into()),
        who: Some("arn:aws:iam::123456789012:user/alice".into()),
        when: Some(maintenance::now_rfc3339()),
    };
    maintenance::write_flag(&m.ssm, &name, &on).await.unwrap();
    assert_eq!(
        maintenance::read_flag(&m.ssm, &name).await.unwrap(),
        Some(on)
    );
    let off = MaintenanceFlag::default();
    maintenance::write_flag(&m.ssm, &name, &off).await.unwrap();
    assert_eq!(
        maintenance::read_flag(&m.ssm, &name).await.unwrap(),
        Some(off)
    );

    m.ssm
        .put_parameter()
        .name(&name)
        .value("not json")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
    let e = maintenance::read_flag(&m.ssm, &name).await.unwrap_err();
    assert!(e.to_string().contains(&name), "{e}");
}

#[tokio::test]
async fn drain_waits_for_a_queue_that_empties_and_times_out_on_one_that_does_not() {
    let Some(m) = moto().await else { return };
    let service = unique("drain");
    let (stack, mconfig) = config(&service, "");
    let target = maintenance::target(&stack, &mconfig, &m.sqs).await.unwrap();
    assert_eq!(
        target.queues,
        [
            format!("{service}-test-work"),
            format!("{service}-test-slow")
        ]
    );
    let work = queue(&m, &target.queues[0]).await;
    let slow = queue(&m, &target.queues[1]).await;
    send(&m, &work, 4).await;
    send(&m, &slow, 2).await;

    // `work` empties over time; `slow` is emptied by its worker too, so both drain.
    let w1 = worker(m.sqs.clone(), work.clone(), Duration::from_millis(300));
    let w2 = worker(m.sqs.clone(), slow.clone(), Duration::from_millis(500));
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let on_event = move |e: Event| seen.lock().unwrap().push(e);
    let outcome = maintenance::queues::drain(
        &m.sqs,
        &target.queues,
        Duration::from_secs(30),
        Duration::from_millis(200),
        &on_event,
    )
    .await
    .unwrap();
    let DrainOutcome::Drained { waited } = outcome else {
        panic!("expected drained, got {outcome:?}")
    };
    assert!(waited >= Duration::from_millis(900), "waited {waited:?}");
    assert_eq!(w1.await.unwrap(), 4);
    assert_eq!(w2.await.unwrap(), 2);
    let events = std::mem::take(&mut *events.lock().unwrap());
    let first = match &events[0] {
        Event::Depths { depths, .. } => depths.iter().map(|d| d.total()).sum::<u64>(),
        e => panic!("{e:?}"),
    };
    assert!(first > 0, "the first look saw messages");

    // Nobody works `slow` now: the drain gives up at the timeout and names it.
    send(&m, &slow, 3).await;
    let started = std::time::Instant::now();
    let outcome = maintenance::queues::drain(
        &m.sqs,
        &target.queues,
        Duration::from_millis(1500),
        Duration::from_millis(300),
        &|_| {},
    )
    .await
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "no hang");
    match outcome {
        DrainOutcome::TimedOut { waited, remaining } => {
            assert!(waited >= Duration::from_millis(1500));
            assert_eq!(remaining.len(), 1);
            assert_eq!(remaining[0].queue, target.queues[1]);
            assert_eq!(remaining[0].visible, 3);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

#[tokio::test]
async fn on_runs_hooks_once_across_a_resume_and_off_clears_the_flag() {
    let Some(m) = moto().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("backups");
    let service = unique("on");
    let hooks = format!(
        "[maintenance]\ndrain_timeout_seconds = 2\npoll_interval_seconds = 1\n\
         [[maintenance.hooks]]\nname = \"backup\"\ncommand = [\"sh\", \"-c\", \"echo x >> {0}\"]\n\
         [[maintenance.hooks]]\nname = \"fails\"\ncommand = [\"sh\", \"-c\", \"test -e {0}.ok\"]\n",
        marker.display()
    );
    let (stack, mconfig) = config(&service, &hooks);
    let target = maintenance::target(&stack, &mconfig, &m.sqs).await.unwrap();
    for q in &target.queues {
        queue(&m, q).await;
    }
    let clients = clients(&m);
    let request = maintenance::OnRequest {
        message: "db upgrade".into(),
        until: None,
        who: "arn:aws:iam::123456789012:user/alice".into(),
        drain_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(100),
        flag_ttl: Duration::ZERO,
    };
    let state = locking(dir.path());

    // The second hook fails: the run stops there, the flag stays on, the first hook is done.
    let e = maintenance::on(&clients, &target, &mconfig, &state, &request, &|_| {})
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("hook fails: exited with"), "{e}");
    let held = lock_of(&state).await;
    assert_eq!(
        (held.state, held.purpose.as_str()),
        (LockState::Parked, "maintenance")
    );
    let flag = maintenance::read_flag(&m.ssm, &target.flag_parameter)
        .await
        .unwrap()
        .unwrap();
    assert!(flag.enabled);
    assert_eq!(flag.message, "db upgrade");
    assert_eq!(
        flag.who.as_deref(),
        Some("arn:aws:iam::123456789012:user/alice")
    );

    // Fixed and rerun: the run resumes; the backup is not taken twice; the flag keeps `when`.
    std::fs::write(format!("{}.ok", marker.display()), "").unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let outcome = maintenance::on(&clients, &target, &mconfig, &state, &request, &move |e| {
        seen.lock().unwrap().push(e)
    })
    .await
    .unwrap();
    let OnOutcome::Done {
        flag: again, run, ..
    } = outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(again.when, flag.when);
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "x\n");
    let events = std::mem::take(&mut *events.lock().unwrap());
    assert!(
        matches!(&events[0], Event::Resumed { done, .. } if done.contains(&"hook:backup".to_string()))
    );
    assert!(events.contains(&Event::HookSkipped {
        name: "backup".into()
    }));

    // Done: maintenance stays in the lock, parked, and a canary is refused until `off`.
    let held = lock_of(&state).await;
    assert_eq!(
        (held.state, held.run_id.as_str()),
        (LockState::Parked, run.as_str())
    );
    let canary = Claim {
        run_id: "canary-1".into(),
        purpose: "canary".into(),
        holder: Holder::this_process("ci", "canary run"),
        ttl: 30,
    };
    let e = lock::acquire(&state.scope, &canary, Mode::Fresh, lock::wall_now())
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("maintenance run {run} is in flight")),
        "{e}"
    );
    // Another `on` does not run the hooks again.
    let again = maintenance::on(&clients, &target, &mconfig, &state, &request, &|_| {})
        .await
        .unwrap();
    assert_eq!(again, OnOutcome::AlreadyOn { run: run.clone() });
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "x\n");

    let off = off(&m, &target, &state, "arn:aws:iam::123456789012:user/bob")
        .await
        .flag;
    let freed = lock_of(&state).await;
    assert_eq!(freed.state, LockState::Free);
    let records = state::journal::read::<Record>(&state.scope, &run)
        .await
        .unwrap();
    assert_eq!(
        records.last().unwrap().record,
        Record::Off {
            who: "arn:aws:iam::123456789012:user/bob".into()
        }
    );
    let stored = maintenance::read_flag(&m.ssm, &target.flag_parameter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, off);
    assert!(!stored.enabled);
    assert_eq!(
        stored.who.as_deref(),
        Some("arn:aws:iam::123456789012:user/bob")
    );
}

#[tokio::test]
async fn preflight_reports_non_empty_batch_queues_and_refuses_when_asked() {
    let Some(m) = moto().await else { return };
    let service = unique("pre");
    let extra = format!(
        "[maintenance.in_flight]\nqueue_prefix = \"{service}-test-batch-\"\nrefuse = true\n"
    );
    let (stack, mconfig) = config(&service, &extra);
    let target = maintenance::target(&stack, &mconfig, &m.sqs).await.unwrap();
    for q in &target.queues {
        queue(&m, q).await;
    }
    let busy = queue(&m, &format!("{service}-test-batch-42")).await;
    queue(&m, &format!("{service}-test-batch-43")).await;
    send(&m, &busy, 2).await;
    let clients = clients(&m);
    let dir = tempfile::tempdir().unwrap();
    let state = locking(dir.path());
    let request = maintenance::OnRequest {
        message: String::new(),
        until: None,
        who: "me".into(),
        drain_timeout: Duration::from_secs(1),
        poll_interval: Duration::from_millis(100),
        flag_ttl: Duration::ZERO,
    };
    let outcome = maintenance::on(&clients, &target, &mconfig, &state, &request, &|_| {})
        .await
        .unwrap();
    assert_eq!(
        lock_of(&state).await.state,
        LockState::Free,
        "a refusal lets go"
    );
    let OnOutcome::Refused { in_flight } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(in_flight.len(), 1);
    assert_eq!(in_flight[0].name, format!("{service}-test-batch-42"));
    assert_eq!(in_flight[0].detail, "2 visible, 0 in flight, 0 delayed");
    assert_eq!(
        maintenance::read_flag(&m.ssm, &target.flag_parameter)
            .await
            .unwrap(),
        None,
        "refused before the flag"
    );
}

/// Events with the moment each was seen.
type Timed = Arc<Mutex<Vec<(std::time::Instant, Event)>>>;

fn timed(events: &Timed) -> impl Fn(Event) + Send + Sync {
    let events = events.clone();
    move |e| events.lock().unwrap().push((std::time::Instant::now(), e))
}

fn when(events: &Timed, f: impl Fn(&Event) -> bool) -> Option<std::time::Instant> {
    events
        .lock()
        .unwrap()
        .iter()
        .find(|(_, e)| f(e))
        .map(|(t, _)| *t)
}

#[tokio::test]
async fn on_runs_no_hook_before_the_flag_ttl_even_when_the_queues_are_already_empty() {
    let Some(m) = moto().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let service = unique("ttl");
    let (stack, mconfig) = config(
        &service,
        "[maintenance]\nflag_ttl_seconds = 1\n\
         [[maintenance.hooks]]\nname = \"backup\"\ncommand = [\"true\"]\n",
    );
    assert_eq!(mconfig.flag_ttl(), Duration::from_secs(1));
    let target = maintenance::target(&stack, &mconfig, &m.sqs).await.unwrap();
    for q in &target.queues {
        queue(&m, q).await;
    }
    let clients = clients(&m);
    let request = maintenance::OnRequest {
        message: "db upgrade".into(),
        until: None,
        who: "me".into(),
        drain_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(100),
        flag_ttl: mconfig.flag_ttl(),
    };
    let events: Timed = Arc::default();
    let state = locking(&dir.path().join("j"));
    let outcome = maintenance::on(
        &clients,
        &target,
        &mconfig,
        &state,
        &request,
        &timed(&events),
    )
    .await
    .unwrap();
    assert!(matches!(outcome, OnOutcome::Done { .. }), "{outcome:?}");
    let written = when(&events, |e| matches!(e, Event::FlagWritten(_))).unwrap();
    let hook = when(&events, |e| matches!(e, Event::HookStarted { .. })).unwrap();
    assert!(
        hook - written >= Duration::from_secs(1),
        "the hook started {:?} after the flag write, before the TTL",
        hook - written
    );
    let all = events.lock().unwrap();
    assert!(all.iter().any(|(_, e)| matches!(
        e,
        Event::WaitingForFlagReaders { left } if *left > Duration::from_millis(800)
    )));
    // The queues read empty from the first look, and were looked at again after the TTL.
    let looks = all
        .iter()
        .filter(|(t, e)| {
            matches!(e, Event::Depths { .. }) && *t >= written + Duration::from_secs(1)
        })
        .count();
    assert!(looks >= 2, "{all:?}");
}

#[tokio::test]
async fn a_resumed_on_waits_only_what_is_left_of_the_flag_ttl() {
    let Some(m) = moto().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("backups");
    let service = unique("res");
    let (stack, mconfig) = config(
        &service,
        &format!(
            "[maintenance]\nflag_ttl_seconds = 30\n\
             [[maintenance.hooks]]\nname = \"backup\"\ncommand = [\"sh\", \"-c\", \"echo x >> {}\"]\n",
            marker.display()
        ),
    );
    let target = maintenance::target(&stack, &mconfig, &m.sqs).await.unwrap();
    for q in &target.queues {
        queue(&m, q).await;
    }
    let clients = clients(&m);
    // An earlier run set the flag ten minutes ago and was interrupted before the hooks.
    let flag = MaintenanceFlag {
        enabled: true,
        message: "db upgrade".into(),
        until: None,
        who: Some("me".into()),
        when: Some("2026-01-01T00:00:00Z".into()),
    };
    maintenance::write_flag(&m.ssm, &target.flag_parameter, &flag)
        .await
        .unwrap();
    let ten_minutes_ago = lock::wall_now() - 600;
    // Its holder (another runner) stopped: the lease ran out, the run is in flight.
    let state = locking(dir.path());
    let claim = Claim {
        run_id: "maintenance-20260101T000000Z-1".into(),
        purpose: "maintenance".into(),
        holder: Holder {
            who: "me".into(),
            host: "runner-gone".into(),
            pid: 1,
            started: 1,
            command: "maintenance on".into(),
        },
        ttl: 30,
    };
    let lease = lock::acquire(&state.scope, &claim, Mode::Fresh, ten_minutes_ago)
        .await
        .unwrap();
    let mut journal = RunJournal::create(&state.scope, &claim.run_id, lease.generation()).unwrap();
    for r in [
        Record::Started {
            who: "me".into(),
            message: "db upgrade".into(),
            until: None,
            preempted: None,
        },
        Record::Preflight,
        Record::FlagOn,
    ] {
        journal.append(ten_minutes_ago, &r).await.unwrap();
    }
    let request = maintenance::OnRequest {
        message: "db upgrade".into(),
        until: None,
        who: "me".into(),
        drain_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(100),
        flag_ttl: mconfig.flag_ttl(),
    };
    let events: Timed = Arc::default();
    let started = std::time::Instant::now();
    let outcome = maintenance::on(
        &clients,
        &target,
        &mconfig,
        &state,
        &request,
        &timed(&events),
    )
    .await
    .unwrap();
    let OnOutcome::Done { flag: kept, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(kept, flag, "the resumed run keeps its flag");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the 30 s TTL had passed long ago: {:?}",
        started.elapsed()
    );
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "x\n");
    assert!(!events
        .lock()
        .unwrap()
        .iter()
        .any(|(_, e)| matches!(e, Event::WaitingForFlagReaders { .. })));
}

#[tokio::test]
async fn off_redrives_an_upload_parked_after_the_flag_was_cleared() {
    let Some(m) = moto().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let service = unique("off");
    let (stack, mconfig) = config(&service, "[maintenance]\nflag_ttl_seconds = 1\n");
    let target = maintenance::target(&stack, &mconfig, &m.sqs).await.unwrap();
    let (parking, ingestion) = (format!("{service}-parking"), format!("{service}-ingestion"));
    bucket(&m, &parking).await;
    bucket(&m, &ingestion).await;
    put(&m, &parking, "before.jpg", b"before.jpg".to_vec()).await;
    let on = MaintenanceFlag {
        enabled: true,
        ..MaintenanceFlag::default()
    };
    maintenance::write_flag(&m.ssm, &target.flag_parameter, &on)
        .await
        .unwrap();
    let state = locking(dir.path());
    let cleared = match maintenance::off(
        &m.ssm,
        &target,
        &state,
        "me",
        mconfig.flag_ttl(),
        Duration::from_secs(5),
        &|_| {},
    )
    .await
    .unwrap()
    {
        OffOutcome::Cleared { cleared, .. } => cleared,
        other => panic!("{other:?}"),
    };
    let cleared_at = std::time::Instant::now();
    assert!(!cleared.flag.enabled);

    // A service still answering from its cached flag parks one more upload.
    let late = tokio::spawn({
        let (m, parking) = (m.clone(), parking.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            put(&m, &parking, "late.jpg", b"late.jpg".to_vec()).await;
        }
    });
    let clients = redrive::Clients {
        s3: m.s3.clone(),
        sqs: m.sqs.clone(),
    };
    let rules = redrive::BatchRules::from_config(mconfig.batches(), &stack.prefix());
    let mut request = redrive::Request::new(&parking, &ingestion, rules);

    // A dry run does not wait.
    request.dry_run = true;
    request.list_after = Some(tokio::time::Instant::now() + Duration::from_secs(60));
    let dry = redrive::run(&clients, &request, Arc::new(|_| {}))
        .await
        .unwrap();
    assert!(cleared_at.elapsed() < Duration::from_millis(900), "no wait");
    assert!(dry.dry_run);

    request.dry_run = false;
    request.list_after = Some(cleared.noticed_by);
    let waited = Arc::new(Mutex::new(None));
    let seen = waited.clone();
    let report = redrive::run(
        &clients,
        &request,
        Arc::new(move |e| {
            if let redrive::Event::WaitingForFlagReaders { left } = e {
                *seen.lock().unwrap() = Some(left);
            }
        }),
    )
    .await
    .unwrap();
    late.await.unwrap();
    assert!(cleared_at.elapsed() >= Duration::from_millis(900));
    assert!(waited.lock().unwrap().is_some(), "the wait is reported");
    assert_eq!(
        (report.total, report.moved, report.failures),
        (2, 2, 0),
        "{report:#?}"
    );
    let listed =
        m.s3.list_objects_v2()
            .bucket(&ingestion)
            .send()
            .await
            .unwrap();
    let mut keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    keys.sort();
    assert_eq!(keys, ["before.jpg", "late.jpg"]);
    let left =
        m.s3.list_objects_v2()
            .bucket(&parking)
            .send()
            .await
            .unwrap();
    assert!(left.contents().is_empty(), "nothing left behind");
}

/// The `maintenance on` request of the preflight and drain tests; `flag_ttl` from the config.
fn on_request(mconfig: &maintenance::MaintenanceConfig) -> maintenance::OnRequest {
    maintenance::OnRequest {
        message: "db upgrade".into(),
        until: None,
        who: "me".into(),
        drain_timeout: mconfig.drain_timeout(),
        poll_interval: Duration::from_millis(200),
        flag_ttl: mconfig.flag_ttl(),
    }
}

fn objects(name: &str, detail: &str) -> maintenance::preflight::InFlight {
    maintenance::preflight::InFlight {
        source: "objects".into(),
        name: name.into(),
        detail: detail.into(),
    }
}

#[tokio::test]
async fn preflight_reports_batches_with_objects_in_the_ingestion_bucket() {
    let Some(m) = moto().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let service = unique("obj");
    let in_flight = |refuse: bool| {
        format!(
            "[maintenance]\nflag_ttl_seconds = 0\ndrain_timeout_seconds = 5\n\
             [maintenance.in_flight]\nobjects_prefix = \"batches/\"\nrefuse = {refuse}\n"
        )
    };
    let (stack, refusing) = config(&service, &in_flight(true));
    let target = maintenance::target(&stack, &refusing, &m.sqs)
        .await
        .unwrap();
    for q in &target.queues {
        queue(&m, q).await;
    }
    let ingestion = format!("{service}-ingestion");
    bucket(&m, &ingestion).await;
    for key in [
        "batches/batch-1/a.jpg",
        "batches/batch-1/deep/b.jpg",
        "batches/batch-2/c.jpg",
        // Not under a batch folder, or not under the prefix: not in flight.
        "batches/loose.jpg",
        "batches/batch-4/",
        "batches/batch-1/",
        "uploads/batch-3/d.jpg",
    ] {
        put(&m, &ingestion, key, key.as_bytes().to_vec()).await;
    }
    let expected = vec![
        objects(
            "batches/batch-1/",
            &format!("2 objects in s3://{ingestion}"),
        ),
        objects(
            "batches/batch-2/",
            &format!("1 objects in s3://{ingestion}"),
        ),
    ];
    let mut clients = clients(&m);

    // Without the bucket's name the prefix cannot be looked at: an error, before the flag.
    let state = locking(&dir.path().join("none"));
    let e = maintenance::on(
        &clients,
        &target,
        &refusing,
        &state,
        &on_request(&refusing),
        &|_| {},
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("objects_prefix needs the ingestion bucket"),
        "{e}"
    );

    // refuse = true: reported, and nothing written.
    clients.ingestion_bucket = Some(&ingestion);
    let state = locking(&dir.path().join("refused"));
    let outcome = maintenance::on(
        &clients,
        &target,
        &refusing,
        &state,
        &on_request(&refusing),
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        outcome,
        OnOutcome::Refused {
            in_flight: expected.clone()
        }
    );
    assert_eq!(
        maintenance::read_flag(&m.ssm, &target.flag_parameter)
            .await
            .unwrap(),
        None,
        "refused before the flag"
    );
    assert_eq!(
        lock_of(&state).await.state,
        LockState::Free,
        "a refusal ends the run"
    );

    // refuse = false: the same report, and maintenance goes on.
    let (_, going_on) = config(&service, &in_flight(false));
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let state = locking(&dir.path().join("on"));
    let outcome = maintenance::on(
        &clients,
        &target,
        &going_on,
        &state,
        &on_request(&going_on),
        &move |e| seen.lock().unwrap().push(e),
    )
    .await
    .unwrap();
    let OnOutcome::Done { in_flight, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(in_flight, expected);
    assert!(events
        .lock()
        .unwrap()
        .contains(&Event::InFlight(expected.clone())));
    assert!(
        maintenance::read_flag(&m.ssm, &target.flag_parameter)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
}

#[tokio::test]
async fn preflight_reports_what_the_in_flight_command_prints() {
    let Some(m) = moto().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("in-flight.sh");
    let service = unique("cmd");
    let (stack, mconfig) = config(
        &service,
        &format!(
            "[maintenance]\nflag_ttl_seconds = 0\ndrain_timeout_seconds = 5\n\
             [maintenance.in_flight]\ncommand = [\"sh\", \"{}\", \"--json\"]\nrefuse = true\n",
            script.display()
        ),
    );
    let target = maintenance::target(&stack, &mconfig, &m.sqs).await.unwrap();
    for q in &target.queues {
        queue(&m, q).await;
    }
    let clients = clients(&m);
    let flag = || maintenance::read_flag(&m.ssm, &target.flag_parameter);
    let on = |script_text: &str, journal: &str| {
        std::fs::write(&script, script_text).unwrap();
        let state = locking(&dir.path().join(journal));
        let (clients, target, mconfig) = (&clients, &target, &mconfig);
        async move {
            maintenance::on(
                clients,
                target,
                mconfig,
                &state,
                &on_request(mconfig),
                &|_| {},
            )
            .await
        }
    };
    let command = |name: &str, detail: &str| maintenance::preflight::InFlight {
        source: "command".into(),
        name: name.into(),
        detail: detail.into(),
    };

    // Strings, objects with `id` or `name` and a `detail`, anything else shown as JSON; the
    // arguments reach the command.
    let outcome = on(
        r#"test "$1" = --json || exit 9
echo '["job-7", {"id": "job-8", "detail": "resizing 40 photos"}, {"name": "job-9"}, 42]'
"#,
        "refused.jsonl",
    )
    .await
    .unwrap();
    assert_eq!(
        outcome,
        OnOutcome::Refused {
            in_flight: vec![
                command("job-7", ""),
                command("job-8", "resizing 40 photos"),
                command("job-9", ""),
                command("42", ""),
            ]
        }
    );
    assert_eq!(flag().await.unwrap(), None, "refused before the flag");

    // A command that fails, or prints something else than a JSON array, stops the run before
    // the flag, naming the command.
    let shown = format!("sh {} --json", script.display());
    for (text, says) in [
        ("echo 'queue db down' >&2; exit 3\n", "queue db down"),
        ("echo 'job-7 job-8'\n", "stdout is not JSON"),
        ("echo '{\"jobs\": []}'\n", "stdout must be a JSON array"),
    ] {
        let e = on(text, "error.jsonl").await.unwrap_err();
        let e = e.to_string();
        assert!(
            e.starts_with(&format!("in-flight command {shown}: ")) && e.contains(says),
            "{e}"
        );
        assert_eq!(
            flag().await.unwrap(),
            None,
            "{text}: stopped before the flag"
        );
    }

    // Nothing in flight: refuse has nothing to refuse.
    let outcome = on("echo '[]'\n", "on.jsonl").await.unwrap();
    assert!(
        matches!(&outcome, OnOutcome::Done { in_flight, .. } if in_flight.is_empty()),
        "{outcome:?}"
    );
    assert!(flag().await.unwrap().unwrap().enabled);
}

#[tokio::test]
async fn a_message_received_but_not_deleted_keeps_the_drain_waiting_until_its_timeout() {
    let Some(m) = moto().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("backups");
    let service = unique("inf");
    let (stack, mconfig) = config(
        &service,
        &format!(
            "[maintenance]\nflag_ttl_seconds = 0\ndrain_timeout_seconds = 2\n\
             [[maintenance.hooks]]\nname = \"backup\"\ncommand = [\"sh\", \"-c\", \"echo x >> {}\"]\n",
            marker.display()
        ),
    );
    let target = maintenance::target(&stack, &mconfig, &m.sqs).await.unwrap();
    let work = queue(&m, &target.queues[0]).await;
    queue(&m, &target.queues[1]).await;
    send(&m, &work, 1).await;
    // A worker took the message and is still on it (or died holding it): hidden for ten
    // minutes, not deleted.
    let got = m
        .sqs
        .receive_message()
        .queue_url(&work)
        .visibility_timeout(600)
        .send()
        .await
        .unwrap();
    assert_eq!(got.messages().len(), 1);
    let clients = clients(&m);
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let state = locking(&dir.path().join("j"));
    let started = std::time::Instant::now();
    let outcome = maintenance::on(
        &clients,
        &target,
        &mconfig,
        &state,
        &on_request(&mconfig),
        &move |e| seen.lock().unwrap().push(e),
    )
    .await
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(15), "no hang");
    let in_flight_only = maintenance::Depth {
        queue: target.queues[0].clone(),
        visible: 0,
        in_flight: 1,
        delayed: 0,
    };
    match &outcome {
        OnOutcome::NotDrained {
            flag,
            waited,
            remaining,
            ..
        } => {
            assert!(flag.enabled);
            assert!(*waited >= Duration::from_secs(2), "{waited:?}");
            assert_eq!(remaining, &vec![in_flight_only.clone()]);
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    // Looked at again and again, the message in flight each time.
    let looks: Vec<Vec<maintenance::Depth>> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            Event::Depths { depths, .. } => Some(depths.clone()),
            _ => None,
        })
        .collect();
    assert!(looks.len() >= 3, "{looks:?}");
    assert!(
        looks.iter().all(|l| l.contains(&in_flight_only)),
        "{looks:?}"
    );
    assert!(!marker.exists(), "no hook ran");
    assert!(
        maintenance::read_flag(&m.ssm, &target.flag_parameter)
            .await
            .unwrap()
            .unwrap()
            .enabled,
        "the flag stays on"
    );
    let OnOutcome::NotDrained { run, .. } = &outcome else {
        unreachable!()
    };
    let held = lock_of(&state).await;
    assert_eq!(
        (held.state, &held.run_id),
        (LockState::Parked, run),
        "left to resume"
    );
    let done = maintenance::progress(&state.scope, run).await.unwrap();
    assert!(!done.drained, "{done:?}");
}

#[tokio::test]
async fn on_force_takes_the_lock_from_a_canary_awaiting_approval_and_off_hands_it_back() {
    let Some(m) = moto().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let service = unique("pre");
    let (stack, mconfig) = config(&service, "[maintenance]\nflag_ttl_seconds = 0\n");
    let target = maintenance::target(&stack, &mconfig, &m.sqs).await.unwrap();
    for q in &target.queues {
        queue(&m, q).await;
    }
    let clients = clients(&m);
    let mut state = locking(dir.path());
    // A canary awaiting approval: parked in the lock.
    let canary = Claim {
        run_id: "canary-20261204T100000Z-7".into(),
        purpose: "canary".into(),
        holder: Holder::this_process("ci", "canary run"),
        ttl: 30,
    };
    let lease = lock::acquire(&state.scope, &canary, Mode::Fresh, lock::wall_now())
        .await
        .unwrap();
    lock::park(&state.scope, &lease, lock::wall_now())
        .await
        .unwrap();

    // Without --force: refused, nothing changed.
    let outcome = maintenance::on(
        &clients,
        &target,
        &mconfig,
        &state,
        &on_request(&mconfig),
        &|_| {},
    )
    .await
    .unwrap();
    let OnOutcome::Held { reason } = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        reason.contains(&format!("canary run {} is in flight", canary.run_id)),
        "{reason}"
    );
    assert_eq!(
        maintenance::read_flag(&m.ssm, &target.flag_parameter)
            .await
            .unwrap(),
        None
    );
    let before = lock_of(&state).await;
    assert_eq!(
        (before.run_id.as_str(), before.generation),
        (canary.run_id.as_str(), 1)
    );

    // With it: taken, said so, and the canary is handed back, parked, by `off`.
    state.force = true;
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let outcome = maintenance::on(
        &clients,
        &target,
        &mconfig,
        &state,
        &on_request(&mconfig),
        &move |e| seen.lock().unwrap().push(e),
    )
    .await
    .unwrap();
    assert!(matches!(outcome, OnOutcome::Done { .. }), "{outcome:?}");
    assert!(events.lock().unwrap().contains(&Event::Preempted {
        run: canary.run_id.clone(),
        purpose: "canary".into()
    }));
    let held = lock_of(&state).await;
    assert_eq!(
        (held.state, held.purpose.as_str()),
        (LockState::Parked, "maintenance")
    );
    state.force = false;
    let cleared = maintenance::off(
        &m.ssm,
        &target,
        &state,
        "me",
        Duration::ZERO,
        Duration::from_secs(5),
        &|_| {},
    )
    .await
    .unwrap();
    let OffOutcome::Cleared { handed_back, .. } = cleared else {
        panic!("{cleared:?}")
    };
    assert_eq!(handed_back.as_deref(), Some(canary.run_id.as_str()));
    let back = lock_of(&state).await;
    assert_eq!(
        (back.state, back.run_id.as_str(), back.purpose.as_str()),
        (LockState::Parked, canary.run_id.as_str(), "canary")
    );
    assert!(
        !maintenance::read_flag(&m.ssm, &target.flag_parameter)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
}
