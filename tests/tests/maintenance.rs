//! `gatekeeper maintenance on|off|status` against moto, through the binary, with the state
//! layer (the lock and the run journals) in S3.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gatekeeper_e2e::{gatekeeper, moto, unique, Moto};

struct Service {
    dir: tempfile::TempDir,
    config: PathBuf,
    name: String,
}

fn service(extra: &str) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("m");
    let text = format!(
        "service = \"{name}\"\nenvironment = \"prod\"\nregion = \"us-east-1\"\n\
         [[queues]]\nname = \"uploads\"\n\
         [maintenance]\ningestion_bucket = \"{name}-ingestion\"\nparking_lot_bucket = \"{name}-parking\"\n\
         drain_timeout_seconds = 2\npoll_interval_seconds = 1\nflag_ttl_seconds = 1\n{extra}\n\
         [state]\nurl = \"s3://{name}-state/gatekeeper\"\nlease_seconds = 3\n"
    );
    // `{DIR}` in a hook: the service's directory (hooks run wherever the runner stands).
    let text = text.replace("{DIR}", &dir.path().display().to_string());
    let config = dir.path().join("gatekeeper.toml");
    std::fs::write(&config, text).unwrap();
    Service { dir, config, name }
}

async fn sdk(moto: &Moto) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ssm::config::Credentials::for_tests())
        .load()
        .await
}

fn run(moto: &Moto, args: &[&str], s: &Service) -> (i32, String, String) {
    let out = command(moto, args, s).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn command(moto: &Moto, args: &[&str], s: &Service) -> Command {
    let mut cmd = moto.gatekeeper();
    cmd.args(args).arg("--config").arg(&s.config);
    cmd
}

async fn setup(moto: &Moto, s: &Service) -> (aws_sdk_s3::Client, String) {
    let sdk = sdk(moto).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    for b in ["ingestion", "parking", "state"] {
        s3.create_bucket()
            .bucket(format!("{}-{b}", s.name))
            .send()
            .await
            .unwrap();
    }
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = sqs
        .create_queue()
        .queue_name(format!("{}-prod-uploads", s.name))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    (s3, url)
}

fn flag_of(status_json: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(status_json).unwrap();
    v["flag"].clone()
}

#[tokio::test(flavor = "current_thread")]
async fn on_off_round_trip_sets_and_clears_the_flag_and_redrives() {
    let Some(moto) = moto() else { return };
    let s = service("");
    let (s3, _) = setup(&moto, &s).await;
    s3.put_object()
        .bucket(format!("{}-parking", s.name))
        .key("parked.jpg")
        .body(b"uploaded during maintenance".to_vec().into())
        .send()
        .await
        .unwrap();

    let (code, out, _) = run(&moto, &["maintenance", "status", "--output", "json"], &s);
    assert_eq!(code, 0, "never set = off");
    assert_eq!(flag_of(&out), serde_json::Value::Null);

    let (code, out, err) = run(&moto, &["maintenance", "on", "--dry-run"], &s);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("dry run: nothing was changed"), "{out}");
    let (_, out, _) = run(&moto, &["maintenance", "status", "--output", "json"], &s);
    assert_eq!(
        flag_of(&out),
        serde_json::Value::Null,
        "dry run set nothing"
    );

    let (code, out, err) = run(
        &moto,
        &[
            "maintenance",
            "on",
            "--message",
            "DB upgrade",
            "--until",
            "2030-01-01T00:00:00Z",
        ],
        &s,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("queues drained"), "{out}");

    let (code, out, _) = run(&moto, &["maintenance", "status", "--output", "json"], &s);
    assert_eq!(code, 2, "on = exit 2");
    let flag = flag_of(&out);
    assert_eq!(flag["enabled"], true);
    assert_eq!(flag["message"], "DB upgrade");
    assert_eq!(flag["until"], "2030-01-01T00:00:00Z");
    assert!(
        flag["who"].as_str().unwrap().starts_with("arn:aws:"),
        "{flag}"
    );
    assert!(flag["when"].as_str().unwrap().ends_with('Z'), "{flag}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["parking_lot_objects"], 1);

    let (code, out, err) = run(&moto, &["maintenance", "off"], &s);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("maintenance is off"), "{out}");
    assert!(out.contains("moved 1 (0 already there)"), "{out}");

    let (code, out, _) = run(&moto, &["maintenance", "status", "--output", "json"], &s);
    assert_eq!(code, 0);
    assert_eq!(flag_of(&out)["enabled"], false);
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["parking_lot_objects"], 0);
    let moved = s3
        .get_object()
        .bucket(format!("{}-ingestion", s.name))
        .key("parked.jpg")
        .send()
        .await
        .unwrap();
    let body = moved.body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..], b"uploaded during maintenance");

    // The run's journal is in S3, one object per record; the lock is free again.
    let lock = lock_of(&s3, &s).await;
    assert_eq!(
        (lock["state"].as_str(), lock["purpose"].as_str()),
        (Some("free"), Some("maintenance"))
    );
    let steps = steps_of(&s3, &s, lock["run_id"].as_str().unwrap()).await;
    assert_eq!(
        steps,
        ["started", "preflight", "flag-on", "drained", "done", "off"]
    );
}

/// The lock object in S3.
async fn lock_of(s3: &aws_sdk_s3::Client, s: &Service) -> serde_json::Value {
    let got = s3
        .get_object()
        .bucket(format!("{}-state", s.name))
        .key(format!("gatekeeper/{}-prod/lock.json", s.name))
        .send()
        .await
        .unwrap();
    serde_json::from_slice(&got.body.collect().await.unwrap().into_bytes()).unwrap()
}

/// The steps of a run, from its records in S3.
async fn steps_of(s3: &aws_sdk_s3::Client, s: &Service, run: &str) -> Vec<String> {
    let bucket = format!("{}-state", s.name);
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(format!("gatekeeper/{}-prod/runs/{run}/", s.name))
        .send()
        .await
        .unwrap();
    let mut steps = Vec::new();
    for o in listed.contents() {
        let got = s3
            .get_object()
            .bucket(&bucket)
            .key(o.key().unwrap())
            .send()
            .await
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&got.body.collect().await.unwrap().into_bytes()).unwrap();
        steps.push(v["record"]["step"].as_str().unwrap().to_string());
    }
    steps
}

/// A hook appending a line to `<name>.ran` in the service's directory; `then` runs after.
fn hook(name: &str, then: &str) -> String {
    format!(
        "[[maintenance.hooks]]\nname = \"{name}\"\ncommand = [\"sh\", \"-c\", \"cd {{DIR}}; echo x >> {name}.ran; {then}\"]\n"
    )
}

fn lines(s: &Service, name: &str) -> usize {
    std::fs::read_to_string(s.dir.path().join(format!("{name}.ran")))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// `gatekeeper` started in `cwd`, in a process group of its own (hooks included), as host
/// `host`.
fn spawn(moto: &Moto, args: &[&str], s: &Service, cwd: &Path, host: &str) -> Child {
    let mut cmd = command(moto, args, s);
    cmd.current_dir(cwd)
        .env("HOSTNAME", host)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.spawn().unwrap()
}

fn finish(child: Child) -> (i32, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn wait_for(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A service with three hooks, the second one slow, with its queue and buckets.
async fn three_hooks(moto: &Moto, slow: &str) -> (Service, aws_sdk_s3::Client) {
    let hooks = format!(
        "{}{}{}",
        hook("backup", "true"),
        hook("slow", slow),
        hook("migrate", "true")
    );
    let s = service(&hooks);
    let (s3, _) = setup(moto, &s).await;
    (s, s3)
}

#[tokio::test(flavor = "current_thread")]
async fn two_ons_at_once_run_every_hook_once() {
    let Some(moto) = moto() else { return };
    let (s, s3) = three_hooks(&moto, "sleep 1").await;
    let cwd = s.dir.path().to_path_buf();
    let a = spawn(&moto, &["maintenance", "on"], &s, &cwd, "runner-a");
    let b = spawn(&moto, &["maintenance", "on"], &s, &cwd, "runner-b");
    let mut results = [finish(a), finish(b)];
    results.sort();
    let [(won, won_out), (lost, lost_out)] = results;
    assert_eq!((won, lost), (0, 2), "{won_out}\n---\n{lost_out}");
    assert!(won_out.contains("hooks done"), "{won_out}");
    assert!(
        lost_out.contains("refused:") && lost_out.contains("nothing was changed"),
        "{lost_out}"
    );
    for h in ["backup", "slow", "migrate"] {
        assert_eq!(lines(&s, h), 1, "hook {h}");
    }
    // Maintenance is on and keeps the lock, parked, until `off`.
    let lock = lock_of(&s3, &s).await;
    assert_eq!(
        (lock["state"].as_str(), lock["purpose"].as_str()),
        (Some("parked"), Some("maintenance"))
    );
    assert_eq!(lock["generation"], 1, "the refused one never took it");
    let (_, out, _) = run(&moto, &["maintenance", "status", "--output", "json"], &s);
    assert_eq!(flag_of(&out)["enabled"], true);
}

#[tokio::test(flavor = "current_thread")]
async fn off_during_a_hook_lets_it_finish_and_no_hook_runs_after_the_flag_is_off() {
    let Some(moto) = moto() else { return };
    let (s, s3) = three_hooks(&moto, "sleep 2; echo done >> slow.ran").await;
    let cwd = s.dir.path().to_path_buf();
    let on = spawn(&moto, &["maintenance", "on"], &s, &cwd, "runner-a");
    wait_for("the slow hook", Duration::from_secs(30), || {
        lines(&s, "slow") == 1
    });
    let (code, out, err) = run(&moto, &["maintenance", "off", "--no-redrive"], &s);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("asked to stop before its next hook"), "{err}");
    // `off` cleared the flag only once the running hook had finished.
    assert_eq!(
        lines(&s, "slow"),
        2,
        "the slow hook finished before `off` returned"
    );
    let (on_code, on_out) = finish(on);
    assert_eq!(on_code, 2, "{on_out}");
    assert!(
        on_out.contains("ended by `maintenance off`") && on_out.contains("not run: migrate"),
        "{on_out}"
    );
    assert_eq!(lines(&s, "migrate"), 0, "no hook after the flag is off");
    assert_eq!(lines(&s, "backup"), 1);
    let (_, status, _) = run(&moto, &["maintenance", "status", "--output", "json"], &s);
    assert_eq!(flag_of(&status)["enabled"], false);
    let lock = lock_of(&s3, &s).await;
    assert_eq!(lock["state"], "free");
    let steps = steps_of(&s3, &s, lock["run_id"].as_str().unwrap()).await;
    assert_eq!(steps.last().map(String::as_str), Some("off"), "{steps:?}");
    assert!(!steps.iter().any(|s| s == "done"), "{steps:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn off_during_the_flag_wait_ends_on_before_any_hook() {
    let Some(moto) = moto() else { return };
    let (s, s3) = three_hooks(&moto, "true").await;
    // Services cache the flag for 20 s: `on` waits that long before its first hook.
    let text = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(
        &s.config,
        text.replace("flag_ttl_seconds = 1", "flag_ttl_seconds = 20"),
    )
    .unwrap();
    let cwd = s.dir.path().to_path_buf();
    let on = spawn(&moto, &["maintenance", "on"], &s, &cwd, "runner-a");
    wait_for("the flag", Duration::from_secs(30), || {
        let (_, out, _) = run(&moto, &["maintenance", "status", "--output", "json"], &s);
        flag_of(&out)["enabled"] == true
    });
    let (code, out, err) = run(&moto, &["maintenance", "off", "--no-redrive"], &s);
    assert_eq!(code, 0, "{out}{err}");
    let (on_code, on_out) = finish(on);
    assert_eq!(on_code, 2, "{on_out}");
    assert!(on_out.contains("ended by `maintenance off`"), "{on_out}");
    for h in ["backup", "slow", "migrate"] {
        assert_eq!(lines(&s, h), 0, "hook {h} ran");
    }
    let (_, status, _) = run(&moto, &["maintenance", "status", "--output", "json"], &s);
    assert_eq!(flag_of(&status)["enabled"], false);
    assert_eq!(lock_of(&s3, &s).await["state"], "free");
}

#[tokio::test(flavor = "current_thread")]
async fn a_run_killed_on_one_runner_is_resumed_from_another() {
    let Some(moto) = moto() else { return };
    // The slow hook hangs on the first runner; the second finds `go` and goes on.
    let (s, s3) = three_hooks(&moto, "test -e go || sleep 60").await;
    let first = tempfile::tempdir().unwrap();
    let on = spawn(&moto, &["maintenance", "on"], &s, first.path(), "runner-a");
    wait_for("the slow hook", Duration::from_secs(30), || {
        lines(&s, "slow") == 1
    });
    // kill -9 of the runner: gatekeeper and the hook it is running, its whole process group.
    let group = rustix::process::Pid::from_raw(on.id() as i32).unwrap();
    rustix::process::kill_process_group(group, rustix::process::Signal::KILL).unwrap();
    let (code, _) = finish(on);
    assert_eq!(code, -1, "killed");
    drop(first);
    let lock = lock_of(&s3, &s).await;
    let run_id = lock["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        (lock["state"].as_str(), lock["holder"]["host"].as_str()),
        (Some("held"), Some("runner-a"))
    );

    // Another runner, another directory, another host name: only the state in S3.
    let second = tempfile::tempdir().unwrap();
    std::fs::write(s.dir.path().join("go"), "").unwrap();
    // The lease (3 s) runs out; then a plain `on` continues the run.
    std::thread::sleep(Duration::from_secs(4));
    let (code, out) = finish(spawn(
        &moto,
        &["maintenance", "on"],
        &s,
        second.path(),
        "runner-b",
    ));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("resuming run {run_id}")), "{out}");
    assert!(
        out.contains("hook backup: already done in this run, skipped"),
        "{out}"
    );
    assert_eq!(lines(&s, "backup"), 1, "not run twice");
    assert_eq!(lines(&s, "slow"), 2, "cut short, run again");
    assert_eq!(lines(&s, "migrate"), 1);
    let lock = lock_of(&s3, &s).await;
    assert_eq!(lock["run_id"].as_str(), Some(run_id.as_str()));
    assert_eq!(
        (lock["state"].as_str(), lock["generation"].as_u64()),
        (Some("parked"), Some(2))
    );
    assert_eq!(lock["holder"]["host"], "runner-b");
    let steps = steps_of(&s3, &s, &run_id).await;
    assert_eq!(steps.last().map(String::as_str), Some("done"), "{steps:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn on_ends_with_a_report_and_exit_2_when_a_queue_does_not_drain() {
    let Some(moto) = moto() else { return };
    let s = service("[[maintenance.hooks]]\nname = \"never\"\ncommand = [\"false\"]\n");
    let (_, url) = setup(&moto, &s).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk(&moto).await);
    sqs.send_message()
        .queue_url(&url)
        .message_body("stuck")
        .send()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (code, out, err) = run(&moto, &["maintenance", "on"], &s);
    assert_eq!(code, 2, "{out}{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(
        out.contains("queues not drained after 2s; hooks not run"),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}-prod-uploads: 1 visible, 0 in flight", s.name)),
        "{out}"
    );
}

#[test]
fn configuration_errors_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("g.toml");
    std::fs::write(
        &config,
        "service = \"x\"\nenvironment = \"prod\"\n[maintenance]\nconcurrency = 0\n",
    )
    .unwrap();
    let out = gatekeeper()
        .args(["maintenance", "status", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}:4:15: maintenance.concurrency: must be at least 1",
        config.display()
    );
    assert!(err.contains(&want), "{err}");
}
