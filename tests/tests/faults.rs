//! Every command through a network that leaves requests unanswered
//! (`gatekeeper_e2e::fault::FaultProxy` in front of moto, `--aws-timeout 2`,
//! `AWS_MAX_ATTEMPTS=2`): with every request held it ends within its budget with an error
//! naming the timeout, having changed nothing; with a fraction held it ends within its budget,
//! done through retries or with a one-line error, having lost nothing; and a rerun without the
//! proxy completes. Each command runs twice so: with held requests never sent on
//! (`Fault::Unsent`), and with held requests performed and only their answer lost
//! (`Fault::AnswerLost`: a retry repeats what already took effect). End state is read from
//! moto: objects and their versions (redrive), the flag (maintenance), target groups, weights
//! and revisions (canary), the stack's status (stack deploy).
#![expect(
    clippy::print_stderr,
    reason = "the fault tests print what each command met: requests held, time taken"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use gatekeeper_e2e::fault::{output_within, Fault, FaultProxy, Timed};
use gatekeeper_e2e::fleet::Fleet;
use gatekeeper_e2e::{moto, repo_root, rt, unique, Moto};

/// Seconds one request attempt may take (`--aws-timeout`).
const AWS_TIMEOUT: &str = "2";
/// With every request held, a command ends after its first failing request's attempts
/// (2 × 2 s and the backoff between them), and at most a few more in a row (releasing what it
/// took, on a lock it could not read): 8 to 10 s here.
const ALL_HELD: Duration = Duration::from_secs(20);
/// The fraction of requests held in the runs that may succeed through retries.
const SOME_HELD: f64 = 0.2;

async fn sdk(moto: &Moto) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::for_tests())
        .load()
        .await
}

async fn s3(moto: &Moto) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk(moto).await)
            .force_path_style(true)
            .build(),
    )
}

/// `gatekeeper <args> --config <config>` through `proxy`, with a short request deadline.
fn through(proxy: &FaultProxy, mut cmd: Command) -> Command {
    proxy.apply(&mut cmd);
    cmd.args(["--aws-timeout", AWS_TIMEOUT]);
    cmd
}

fn gatekeeper(moto: &Moto, args: &[&str], config: &Path) -> Command {
    let mut cmd = moto.gatekeeper();
    cmd.args(args).arg("--config").arg(config);
    cmd
}

/// Exit 1 with one short line naming the timeout.
fn assert_timeout_error(what: &str, t: &Timed, proxy: &FaultProxy) {
    let line = assert_short_error(what, t, proxy);
    let lower = line.to_lowercase();
    assert!(
        lower.contains("no answer within the timeout")
            || lower.contains("timed out")
            || lower.contains("timeout"),
        "{what}: {line}"
    );
}

/// Exit 1 with one short `error:` line; returns it.
fn assert_short_error<'t>(what: &str, t: &'t Timed, proxy: &FaultProxy) -> &'t str {
    assert_eq!(
        t.code,
        Some(1),
        "{what}: {}\n{}\nheld: {:?}",
        t.stdout,
        t.stderr,
        proxy.held_requests()
    );
    let line = t
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{what}: no error line in\n{}", t.stderr));
    assert!(line.len() < 400, "{what}: a long error line: {line}");
    line
}

/// Runs `cmd` through `proxy` with [`SOME_HELD`] of the requests held as `fault` says: it must
/// end within `budget`, done (`done` codes) or with a one-line error, after at least one held
/// request.
fn some_held(
    what: &str,
    proxy: &FaultProxy,
    fault: Fault,
    cmd: Command,
    budget: Duration,
    done: &[i32],
) -> Timed {
    let what = &format!("{what} ({fault:?})");
    proxy.set_fraction(SOME_HELD);
    proxy.set_fault(fault);
    let (requests, held) = (proxy.requests(), proxy.held());
    let t = output_within(through(proxy, cmd), budget);
    let (requests, held) = (proxy.requests() - requests, proxy.held() - held);
    eprintln!(
        "{what}: exit {:?} after {:.1}s; {requests} requests, {held} held",
        t.code,
        t.elapsed.as_secs_f64(),
    );
    assert!(
        held > 0,
        "{what}: no request was held ({requests} requests)"
    );
    if !t.code.is_some_and(|c| done.contains(&c)) {
        // A lost answer, or what it led to (a lease that could not be renewed in time...).
        let line = assert_short_error(what, &t, proxy);
        eprintln!("{what}: {line}");
    }
    t
}

/// Runs `cmd` through `proxy` with every request held, none sent on: it must end within
/// [`ALL_HELD`] with an error naming the timeout.
fn all_held(what: &str, proxy: &FaultProxy, cmd: Command) {
    proxy.set_fraction(1.0);
    proxy.set_fault(Fault::Unsent);
    let t = output_within(through(proxy, cmd), ALL_HELD);
    eprintln!(
        "{what}: exit {:?} after {:.1}s",
        t.code,
        t.elapsed.as_secs_f64()
    );
    assert_timeout_error(what, &t, proxy);
}

/// Every version of every key of a versioned bucket, oldest first: key → [(bytes, current)],
/// and the keys with a delete marker.
async fn versions(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> (BTreeMap<String, Vec<(Vec<u8>, bool)>>, Vec<String>) {
    let out = s3
        .list_object_versions()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert!(!out.is_truncated().unwrap_or(false), "one page is enough");
    let mut keys: BTreeMap<String, Vec<(Vec<u8>, bool)>> = BTreeMap::new();
    for v in out.versions().iter().rev() {
        let (key, id) = (v.key().unwrap(), v.version_id().unwrap());
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .version_id(id)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes()
            .to_vec();
        keys.entry(key.to_string())
            .or_default()
            .push((body, v.is_latest().unwrap_or(false)));
    }
    let markers = out
        .delete_markers()
        .iter()
        .map(|m| m.key().unwrap().to_string())
        .collect();
    (keys, markers)
}

#[test]
fn redrive_through_unanswered_requests_ends_in_time_and_a_rerun_moves_everything_once() {
    redrive_through(Fault::Unsent, true);
}

#[test]
fn redrive_through_lost_answers_ends_in_time_and_a_rerun_loses_nothing() {
    redrive_through(Fault::AnswerLost, false);
}

#[test]
#[ignore = "moto ignores If-None-Match on CopyObject (a known gap): S3 answers the SDK's retry \
            of a copy whose answer was lost with 412, which redrive reads as `the destination \
            exists` and verifies (maintenance/src/redrive/mod.rs, Copied::Refused); moto makes a \
            second, identical version instead"]
fn redrive_through_lost_answers_copies_each_object_once() {
    redrive_through(Fault::AnswerLost, true);
}

/// 12 uploads parked in a versioned bucket, redriven through `fault`: each lands in ingestion
/// with its bytes (`once`: as one version), and nothing is left parked.
fn redrive_through(fault: Fault, once: bool) {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let s3 = rt.block_on(s3(&moto));
    let name = unique("fr");
    let (parking, ingestion) = (format!("{name}-parking"), format!("{name}-ingestion"));
    let mut parked = BTreeMap::new();
    rt.block_on(async {
        for b in [&parking, &ingestion] {
            s3.create_bucket().bucket(b).send().await.unwrap();
            s3.put_bucket_versioning()
                .bucket(b)
                .versioning_configuration(
                    aws_sdk_s3::types::VersioningConfiguration::builder()
                        .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                        .build(),
                )
                .send()
                .await
                .unwrap();
        }
        for i in 0..12 {
            let (key, body) = (format!("up/{i}.jpg"), format!("upload {i}").into_bytes());
            s3.put_object()
                .bucket(&parking)
                .key(&key)
                .body(body.clone().into())
                .send()
                .await
                .unwrap();
            parked.insert(key, vec![(body, true)]);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatekeeper.toml");
    std::fs::write(
        &config,
        format!(
            "service = \"{name}\"\nenvironment = \"prod\"\n[maintenance]\n\
             ingestion_bucket = \"{ingestion}\"\nparking_lot_bucket = \"{parking}\"\n"
        ),
    )
    .unwrap();
    let redrive = || gatekeeper(&moto, &["redrive", "--concurrency", "4"], &config);

    let proxy = FaultProxy::start(&moto.endpoint, 1.0);
    all_held("redrive, every request unanswered", &proxy, redrive());
    assert_eq!(
        rt.block_on(versions(&s3, &parking)),
        (parked.clone(), vec![])
    );
    assert!(rt.block_on(versions(&s3, &ingestion)).0.is_empty());

    some_held(
        "redrive, some requests unanswered",
        &proxy,
        fault,
        redrive(),
        Duration::from_secs(90),
        &[0],
    );
    drop(proxy);

    let out = redrive().output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every upload is in ingestion, current, with its bytes, no version with other bytes (and,
    // `once`, as one version); nothing is left parked, not even a delete marker or a noncurrent
    // version.
    let (landed, markers) = rt.block_on(versions(&s3, &ingestion));
    assert!(markers.is_empty(), "{markers:?}");
    if once {
        assert_eq!(landed, parked);
    } else {
        assert_eq!(
            landed.keys().collect::<Vec<_>>(),
            parked.keys().collect::<Vec<_>>()
        );
        for (key, versions) in &landed {
            let bytes = &parked[key][0].0;
            assert!(versions
                .last()
                .is_some_and(|(b, current)| b == bytes && *current));
            assert!(
                versions.iter().all(|(b, _)| b == bytes),
                "{key}: {versions:?}"
            );
            if versions.len() > 1 {
                eprintln!("{key}: {} identical versions in ingestion", versions.len());
            }
        }
    }
    assert_eq!(
        rt.block_on(versions(&s3, &parking)),
        (BTreeMap::new(), vec![])
    );
}

/// A service for `maintenance on|off`: buckets, the uploads queue, the state bucket.
fn maintenance_service(
    rt: &tokio::runtime::Runtime,
    moto: &Moto,
) -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("fm");
    let text = format!(
        "service = \"{name}\"\nenvironment = \"prod\"\nregion = \"us-east-1\"\n\
         [[queues]]\nname = \"uploads\"\n\
         [maintenance]\ningestion_bucket = \"{name}-ingestion\"\nparking_lot_bucket = \"{name}-parking\"\n\
         drain_timeout_seconds = 2\npoll_interval_seconds = 1\nflag_ttl_seconds = 1\n\
         [state]\nurl = \"s3://{name}-state/gatekeeper\"\n"
    );
    let config = dir.path().join("gatekeeper.toml");
    std::fs::write(&config, text).unwrap();
    rt.block_on(async {
        let sdk = sdk(moto).await;
        let s3 = s3(moto).await;
        for b in ["ingestion", "parking", "state"] {
            s3.create_bucket()
                .bucket(format!("{name}-{b}"))
                .send()
                .await
                .unwrap();
        }
        aws_sdk_sqs::Client::new(&sdk)
            .create_queue()
            .queue_name(format!("{name}-prod-uploads"))
            .send()
            .await
            .unwrap();
    });
    (dir, config, name)
}

/// The flag as stored in SSM (`None`: never written).
async fn flag(moto: &Moto, name: &str) -> Option<serde_json::Value> {
    let ssm = aws_sdk_ssm::Client::new(&sdk(moto).await);
    match ssm
        .get_parameter()
        .name(format!("/{name}/prod/maintenance"))
        .send()
        .await
    {
        Ok(out) => Some(serde_json::from_str(out.parameter().unwrap().value().unwrap()).unwrap()),
        Err(e) if format!("{e:?}").contains("ParameterNotFound") => None,
        Err(e) => panic!("GetParameter: {e:?}"),
    }
}

#[test]
fn maintenance_on_and_off_through_unanswered_requests_end_in_time_and_a_rerun_completes() {
    maintenance_through(Fault::Unsent);
}

#[test]
fn maintenance_on_and_off_through_lost_answers_end_in_time_and_a_rerun_completes() {
    maintenance_through(Fault::AnswerLost);
}

/// `maintenance on`, then an upload parked, then `maintenance off`, each through `fault`: the
/// flag ends on with its message, then off, and the parked upload is back in ingestion.
fn maintenance_through(fault: Fault) {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let (_dir, config, name) = maintenance_service(&rt, &moto);
    let on = || {
        gatekeeper(
            &moto,
            &[
                "maintenance",
                "on",
                "--message",
                "upgrade",
                "--until",
                "2030-01-01T00:00:00Z",
            ],
            &config,
        )
    };
    let off = || gatekeeper(&moto, &["maintenance", "off"], &config);

    let proxy = FaultProxy::start(&moto.endpoint, 1.0);
    all_held("maintenance on, every request unanswered", &proxy, on());
    assert_eq!(rt.block_on(flag(&moto, &name)), None, "nothing written");

    some_held(
        "maintenance on, some requests unanswered",
        &proxy,
        fault,
        on(),
        Duration::from_secs(90),
        &[0],
    );

    let out = on().output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let on_flag = rt
        .block_on(flag(&moto, &name))
        .expect("the flag is written");
    assert_eq!(on_flag["enabled"], true, "{on_flag}");
    assert_eq!(on_flag["message"], "upgrade", "{on_flag}");
    assert_eq!(on_flag["until"], "2030-01-01T00:00:00Z", "{on_flag}");

    // An upload parked during maintenance must come back with `off`.
    let s3 = rt.block_on(s3(&moto));
    rt.block_on(
        s3.put_object()
            .bucket(format!("{name}-parking"))
            .key("parked.jpg")
            .body(b"parked during maintenance".to_vec().into())
            .send(),
    )
    .unwrap();

    all_held("maintenance off, every request unanswered", &proxy, off());
    assert_eq!(rt.block_on(flag(&moto, &name)), Some(on_flag), "still on");

    some_held(
        "maintenance off, some requests unanswered",
        &proxy,
        fault,
        off(),
        Duration::from_secs(90),
        &[0],
    );
    drop(proxy);

    let out = off().output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let off_flag = rt.block_on(flag(&moto, &name)).unwrap();
    assert_eq!(off_flag["enabled"], false, "{off_flag}");
    let (landed, parked) = rt.block_on(async {
        let list = |b: String| {
            let s3 = s3.clone();
            async move {
                s3.list_objects_v2()
                    .bucket(b)
                    .send()
                    .await
                    .unwrap()
                    .contents()
                    .iter()
                    .map(|o| o.key().unwrap().to_string())
                    .collect::<Vec<_>>()
            }
        };
        (
            list(format!("{name}-ingestion")).await,
            list(format!("{name}-parking")).await,
        )
    });
    assert_eq!(landed, ["parked.jpg"]);
    assert!(parked.is_empty(), "{parked:?}");
}

const HEALTHY: ((f64, f64, f64), (f64, f64, f64)) =
    ((19_000.0, 19.0, 0.120), (1_000.0, 1.0, 0.121));

#[test]
fn canary_run_through_unanswered_requests_ends_in_time_and_leaves_a_safe_fleet() {
    canary_through(Fault::Unsent);
}

#[test]
fn canary_run_through_lost_answers_ends_in_time_and_leaves_a_safe_fleet() {
    canary_through(Fault::AnswerLost);
}

/// `canary run --auto-promote` through `fault`, finished by `canary resume` when it stopped on
/// an error: every node in production on one revision, weights 100/0, the lock free; the next
/// run promotes.
fn canary_through(fault: Fault) {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 3, ""));
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
    let run = || fleet.gatekeeper(&["canary", "run", "--revision", "v2", "--auto-promote"]);

    let proxy = FaultProxy::start(&moto.endpoint, 1.0);
    all_held("canary run, every request unanswered", &proxy, run());
    rt.block_on(fleet.assert_safe_on("v1"));
    assert!(rt.block_on(fleet.runs()).is_empty(), "nothing journaled");

    let t = some_held(
        "canary run, some requests unanswered",
        &proxy,
        fault,
        run(),
        Duration::from_secs(180),
        &[0, 2],
    );
    drop(proxy);

    // Promoted (0) or rolled back (2): done. An error (1) leaves the run in flight (or ended
    // before it changed anything), and `canary resume` finishes it.
    if t.code == Some(1) {
        let out = fleet.gatekeeper(&["canary", "resume"]).output().unwrap();
        assert!(
            matches!(out.status.code(), Some(0 | 2)),
            "resume: {:?}\n{}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every node in production on one revision (v2 when promoted, v1 otherwise), the canary
    // group empty, weights 100/0, the lock free.
    let revisions: std::collections::BTreeSet<String> = fleet.revisions().into_values().collect();
    assert_eq!(revisions.len(), 1, "{revisions:?}");
    let revision = revisions.into_iter().next().unwrap();
    if t.code == Some(0) {
        assert_eq!(revision, "v2");
    }
    rt.block_on(fleet.assert_safe_on(&revision));
    // And the next run goes through (on fresh metrics: the bake reads the last minutes).
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
    let out = fleet
        .gatekeeper(&["canary", "run", "--revision", "v3", "--auto-promote"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    rt.block_on(fleet.assert_safe_on("v3"));
}

#[test]
fn stack_deploy_through_unanswered_requests_ends_in_time_and_a_rerun_completes() {
    stack_deploy_through(Fault::Unsent);
}

#[test]
fn stack_deploy_through_lost_answers_ends_in_time_and_a_rerun_completes() {
    stack_deploy_through(Fault::AnswerLost);
}

/// `stack deploy` through `fault`, then again without: the stack is created.
fn stack_deploy_through(fault: Fault) {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let service = unique("fd");
    let text = std::fs::read_to_string(repo_root().join("examples/photos/prod.toml")).unwrap();
    let text = text
        .replace("service = \"photos\"", &format!("service = \"{service}\""))
        .replace("region = \"eu-west-1\"", "region = \"us-east-1\"");
    let config = dir.path().join("gatekeeper.toml");
    std::fs::write(&config, text).unwrap();
    let stack = format!("{service}-prod-rails");
    let deploy = || gatekeeper(&moto, &["stack", "deploy", "--poll", "1"], &config);
    let status = || {
        rt.block_on(async {
            let cfn = aws_sdk_cloudformation::Client::new(&sdk(&moto).await);
            match cfn.describe_stacks().stack_name(&stack).send().await {
                Ok(out) => out.stacks()[0]
                    .stack_status()
                    .map(|s| s.as_str().to_string()),
                Err(e) if format!("{e:?}").contains("does not exist") => None,
                Err(e) => panic!("DescribeStacks: {e:?}"),
            }
        })
    };

    let proxy = FaultProxy::start(&moto.endpoint, 1.0);
    all_held("stack deploy, every request unanswered", &proxy, deploy());
    assert_eq!(status(), None, "no stack was created");

    some_held(
        "stack deploy, some requests unanswered",
        &proxy,
        fault,
        deploy(),
        Duration::from_secs(120),
        &[0],
    );
    drop(proxy);

    let out = deploy().output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(status().as_deref(), Some("CREATE_COMPLETE"));
}
