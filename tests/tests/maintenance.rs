//! `gatekeeper maintenance on|off|status` against moto, through the binary.

use std::path::PathBuf;

use gatekeeper_e2e::{gatekeeper, moto, unique, Moto};

struct Service {
    _dir: tempfile::TempDir,
    config: PathBuf,
    journal: PathBuf,
    name: String,
}

fn service(extra: &str) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let name = unique("m");
    let text = format!(
        "service = \"{name}\"\nenvironment = \"prod\"\nregion = \"us-east-1\"\n\
         [[queues]]\nname = \"uploads\"\n\
         [maintenance]\ningestion_bucket = \"{name}-ingestion\"\nparking_lot_bucket = \"{name}-parking\"\n\
         drain_timeout_seconds = 2\npoll_interval_seconds = 1\nflag_ttl_seconds = 1\n{extra}"
    );
    let config = dir.path().join("gatekeeper.toml");
    std::fs::write(&config, text).unwrap();
    let journal = dir.path().join("journal");
    Service {
        _dir: dir,
        config,
        journal,
        name,
    }
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
    let mut cmd = moto.gatekeeper();
    cmd.args(args).arg("--config").arg(&s.config);
    if args[1] != "status" {
        cmd.arg("--journal-dir").arg(&s.journal);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn setup(moto: &Moto, s: &Service) -> (aws_sdk_s3::Client, String) {
    let sdk = sdk(moto).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    for b in ["ingestion", "parking"] {
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

    let journal =
        std::fs::read_to_string(s.journal.join(format!("maintenance-{}-prod.jsonl", s.name)))
            .unwrap();
    let steps: Vec<String> = journal
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(steps, ["preflight", "flag-on", "drained", "done", "off"]);
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
