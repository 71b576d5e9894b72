//! The bake's evidence through the binary, against moto: a canary run writes it into the run's
//! journal in the state layer; `canary report` renders it, `canary export` replays to the same
//! verdict in `gatekeeper judge`, `promote` shows it and needs `--yes` without a terminal,
//! `--reason` is recorded with the approver, `canary history` lists the run.

use gatekeeper_e2e::fleet::{Fleet, HEALTHY};
use gatekeeper_e2e::{gatekeeper, moto, output, rt, run_id};

#[test]
fn a_run_keeps_its_evidence_and_promote_shows_it_before_it_acts() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 3, ""));
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
    let (code, out, err) = output(fleet.gatekeeper(&["canary", "run", "--revision", "v2"]));
    assert_eq!(code, Some(0), "{out}{err}");
    let run = run_id(&out);
    let dir = fleet.dir.path();

    // The record, as JSON: the run, its looks, the pass.
    let (code, json, err) = output(fleet.gatekeeper(&["canary", "report", "--output", "json"]));
    assert_eq!(code, Some(0), "{err}");
    let record: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(record["run_id"], run.as_str());
    assert_eq!(record["revision"], "v2");
    assert_eq!(record["previous"], "v1");
    assert!(record["started_by"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws"));
    let looks = record["looks"].as_array().unwrap();
    assert!(!looks.is_empty());
    assert!(looks
        .iter()
        .all(|l| l["groups"]["canary"]["requests"].as_u64() > Some(0)));
    assert_eq!(record["verdict"]["outcome"], "pass", "{json}");

    // HTML: one self-contained file, the same bytes twice.
    let html = dir.join("report.html");
    let again = dir.join("again.html");
    for path in [&html, &again] {
        let (code, _, err) = output(fleet.gatekeeper(&[
            "canary",
            "report",
            "--run",
            &run,
            "--output",
            "html",
            "--out",
            path.to_str().unwrap(),
        ]));
        assert_eq!(code, Some(0), "{err}");
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(page, std::fs::read_to_string(&again).unwrap());
    assert!(page.contains("<svg") && page.contains(&run));
    for external in ["src=\"http", "href=\"http", "<script"] {
        assert!(!page.contains(external), "{external}");
    }

    // The export replays to the live verdict.
    let observations = dir.join("run.jsonl");
    let judge_toml = dir.join("judge.toml");
    let (code, _, err) = output(fleet.gatekeeper(&[
        "canary",
        "export",
        "--out",
        observations.to_str().unwrap(),
        "--judge-config",
        judge_toml.to_str().unwrap(),
    ]));
    assert_eq!(code, Some(0), "{err}");
    let mut judge = gatekeeper();
    judge.args(["judge", "--input"]).arg(&observations);
    judge.arg("--config").arg(&judge_toml);
    judge.args(["--output", "json"]);
    let (code, replay, err) = output(judge);
    assert_eq!(code, Some(0), "{replay}{err}");
    let replay: serde_json::Value = serde_json::from_str(&replay).unwrap();
    assert_eq!(replay["verdict"], record["verdict"]["outcome"], "{replay}");
    assert_eq!(
        replay["decided_at"], record["verdict"]["decided_at"],
        "{replay}"
    );

    // status: each node's group and revision, and the bake's evidence.
    let (code, status, err) = output(fleet.gatekeeper(&["canary", "status"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        status.contains(&format!(
            "node {}: canary (healthy), revision v2",
            fleet.nodes[0]
        )),
        "{status}"
    );
    for n in &fleet.nodes[1..] {
        assert!(
            status.contains(&format!("node {n}: prod (healthy), revision v1")),
            "{status}"
        );
    }
    assert!(
        status.contains("bake: look 1 of 1, verdict pass"),
        "{status}"
    );
    assert!(status.contains("error_rate: pass ratio"), "{status}");
    let (_, json, _) = output(fleet.gatekeeper(&["canary", "status", "--output", "json"]));
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["bake"]["verdict"], "pass");
    assert_eq!(json["nodes"].as_array().unwrap().len(), 3);

    // promote without a terminal and without --yes: shows the evidence, changes nothing.
    let lock = rt.block_on(fleet.lock()).unwrap();
    let records = rt.block_on(fleet.records(&run)).len();
    let (code, out, err) = output(fleet.gatekeeper(&["promote"]));
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        out.contains("canary bake of") && out.contains(": pass"),
        "{out}"
    );
    assert!(
        out.contains("metric ") && out.contains("error_rate"),
        "{out}"
    );
    assert!(
        out.contains("canary report") && out.contains("--yes"),
        "{out}"
    );
    assert!(out.contains("nothing was changed"), "{out}");
    assert_eq!(
        rt.block_on(fleet.lock()).unwrap(),
        lock,
        "the lock untouched"
    );
    assert_eq!(rt.block_on(fleet.records(&run)).len(), records);
    assert_eq!(rt.block_on(fleet.weights()), (95, 5));

    // With --yes and a reason: promoted, the approval recorded with who and why.
    let (code, out, err) = output(fleet.gatekeeper(&[
        "promote",
        "--yes",
        "--reason",
        "error rate within tolerance",
    ]));
    assert_eq!(code, Some(0), "{out}{err}");
    rt.block_on(fleet.assert_safe_on("v2"));
    let (_, json, _) = output(fleet.gatekeeper(&["canary", "report", "--output", "json"]));
    let record: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        record["approved_by"]["reason"],
        "error rate within tolerance"
    );
    assert!(record["approved_by"]["who"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws"));
    let (_, text, _) = output(fleet.gatekeeper(&["canary", "report", "--output", "markdown"]));
    assert!(text.contains("error rate within tolerance"), "{text}");

    // history: the run, its revisions, its outcome and approver.
    let (code, history, err) = output(fleet.gatekeeper(&["canary", "history", "--output", "json"]));
    assert_eq!(code, Some(0), "{err}");
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert_eq!(history[0]["run_id"], run.as_str());
    assert_eq!(history[0]["revision"], "v2");
    assert_eq!(history[0]["outcome"], "promoted", "{history}");
    assert!(history[0]["approved_by"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws"));
}

#[test]
fn report_of_a_run_that_does_not_exist_or_names_a_path_is_an_error() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 2, ""));
    let (code, _, err) = output(fleet.gatekeeper(&["canary", "report"]));
    assert_eq!(code, Some(1));
    assert!(err.contains("no canary run in s3://"), "{err}");
    let (code, _, err) = output(fleet.gatekeeper(&["canary", "report", "--run", "../lock"]));
    assert_eq!(code, Some(1));
    assert!(err.contains("--run \"../lock\": not a run id"), "{err}");
    let (code, _, err) = output(fleet.gatekeeper(&["canary", "export", "--run", "canary-nope"]));
    assert_eq!(code, Some(1));
    assert!(err.contains("no run canary-nope"), "{err}");
}

/// A topic and an SQS queue subscribed to it, in moto; the fleet's `[notify]` names the topic.
async fn subscribed(fleet: &Fleet) -> (aws_sdk_sqs::Client, String) {
    let sdk = gatekeeper_e2e::fleet::sdk(&fleet.moto).await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let topic = sns
        .create_topic()
        .name(format!("{}-deploys", fleet.service))
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    let queue = sqs
        .create_queue()
        .queue_name(format!("{}-notes", fleet.service))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(arn)
        .send()
        .await
        .unwrap();
    let mut text = std::fs::read_to_string(&fleet.config).unwrap();
    text.push_str(&format!("\n[notify]\nsns_topic_arn = \"{topic}\"\n"));
    std::fs::write(&fleet.config, text).unwrap();
    (sqs, queue)
}

/// Every message on the queue, in order: (change, subject, body).
async fn received(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
) -> Vec<(String, String, serde_json::Value)> {
    let mut got = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = out.messages();
        if messages.is_empty() {
            return got;
        }
        for m in messages {
            let envelope: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
            let body: serde_json::Value =
                serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
            got.push((
                body["change"].as_str().unwrap().to_string(),
                envelope["Subject"].as_str().unwrap_or_default().to_string(),
                body,
            ));
            sqs.delete_message()
                .queue_url(queue)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

fn changes(got: &[(String, String, serde_json::Value)]) -> Vec<&str> {
    got.iter().map(|(c, ..)| c.as_str()).collect()
}

#[test]
fn each_state_change_of_a_run_is_one_message_in_order() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(&moto, 3, ""));
    let (sqs, queue) = rt.block_on(subscribed(&fleet));
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));

    // A pass awaiting approval, then the approval.
    let (code, out, err) = output(fleet.gatekeeper(&["canary", "run", "--revision", "v2"]));
    assert_eq!(code, Some(0), "{out}{err}");
    let run = run_id(&out);
    let got = rt.block_on(received(&sqs, &queue));
    assert_eq!(
        changes(&got),
        ["started", "canary-live", "verdict", "awaiting-approval"],
        "{got:?}"
    );
    assert!(got.iter().all(|(_, _, b)| b["run_id"] == run.as_str()));
    assert_eq!(got[2].2["verdict"], "pass");
    let (_, subject, body) = &got[3];
    assert!(
        subject.contains("awaits approval") && subject.len() <= 100,
        "{subject}"
    );
    let commands = body["commands"].to_string();
    assert!(
        commands.contains("gatekeeper promote --config")
            && commands.contains("gatekeeper canary abort --config"),
        "{commands}"
    );
    let (code, out, err) = output(fleet.gatekeeper(&["promote", "--yes"]));
    assert_eq!(code, Some(0), "{out}{err}");
    let got = rt.block_on(received(&sqs, &queue));
    assert_eq!(changes(&got), ["promoted"], "{got:?}");
    rt.block_on(fleet.assert_safe_on("v2"));

    // A regression: rolled back, with the reason.
    rt.block_on(fleet.put_metrics((19_000.0, 19.0, 0.120), (1_000.0, 150.0, 0.121)));
    let (code, out, err) = output(fleet.gatekeeper(&["canary", "run", "--revision", "v3"]));
    assert_eq!(code, Some(2), "{out}{err}");
    let got = rt.block_on(received(&sqs, &queue));
    assert_eq!(
        changes(&got),
        [
            "started",
            "canary-live",
            "verdict",
            "rolling-back",
            "rolled-back"
        ],
        "{got:?}"
    );
    assert_eq!(got[2].2["verdict"], "fail");
    assert!(
        got[4].2["reason"].as_str().unwrap().contains("error_rate"),
        "{got:?}"
    );
    rt.block_on(fleet.assert_safe_on("v2"));
}

/// A bake of 60 looks judged on 4 metrics (1 s apart, so the test takes a minute): the HTML
/// report is self-contained, under 500 KB, the same bytes twice, and its verdict is the one
/// `gatekeeper judge` reaches on the run's export.
#[test]
fn a_sixty_look_bake_on_four_metrics_reports_and_replays() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(Fleet::new(
        &moto,
        2,
        "bake_seconds = 60\ninterval_seconds = 1",
    ));
    let text = std::fs::read_to_string(&fleet.config).unwrap();
    let four = format!(
        "{}{}",
        gatekeeper_e2e::fleet::JUDGE,
        "\n[[canary.judge.metrics]]\nname = \"server_errors\"\nkind = \"count\"\ntolerance = 0.5\n\
         min_samples = 100\n\n[[canary.judge.metrics]]\nname = \"latency_strict\"\n\
         kind = \"continuous\"\ntolerance = 0.2\nmin_samples = 1\n"
    );
    let text = text
        .replace("alpha = 0.05\n", "alpha = 0.05\npass_early = false\n")
        .replace(gatekeeper_e2e::fleet::JUDGE, &four);
    std::fs::write(&fleet.config, text).unwrap();
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));
    let (code, out, err) = output(fleet.gatekeeper(&["canary", "run", "--revision", "v2"]));
    assert_eq!(code, Some(0), "{out}{err}");

    let (_, json, _) = output(fleet.gatekeeper(&["canary", "report", "--output", "json"]));
    let record: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(record["looks"].as_array().unwrap().len(), 60);
    assert_eq!(record["judge"]["metrics"].as_array().unwrap().len(), 4);
    assert_eq!(record["judge"]["pass_early"], false);
    let html = fleet.dir.path().join("report.html");
    let mut pages = Vec::new();
    for _ in 0..2 {
        let (code, _, err) = output(fleet.gatekeeper(&[
            "canary",
            "report",
            "--output",
            "html",
            "--out",
            html.to_str().unwrap(),
        ]));
        assert_eq!(code, Some(0), "{err}");
        pages.push(std::fs::read(&html).unwrap());
    }
    assert_eq!(pages[0], pages[1], "byte-identical");
    assert!(pages[0].len() < 500 * 1024, "{} bytes", pages[0].len());
    let page = String::from_utf8(pages.remove(0)).unwrap();
    for external in ["src=\"http", "href=\"http", "<script", "url(http"] {
        assert!(!page.contains(external), "{external}");
    }

    let observations = fleet.dir.path().join("run.jsonl");
    let judge_toml = fleet.dir.path().join("judge.toml");
    let (code, _, err) = output(fleet.gatekeeper(&[
        "canary",
        "export",
        "--out",
        observations.to_str().unwrap(),
        "--judge-config",
        judge_toml.to_str().unwrap(),
    ]));
    assert_eq!(code, Some(0), "{err}");
    let mut judge = gatekeeper();
    judge
        .args(["judge", "--output", "json", "--input"])
        .arg(&observations);
    judge.arg("--config").arg(&judge_toml);
    let (_, replay, err) = output(judge);
    let replay: serde_json::Value =
        serde_json::from_str(&replay).unwrap_or_else(|_| panic!("{err}"));
    assert_eq!(replay["verdict"], record["verdict"]["outcome"], "{replay}");
    assert_eq!(
        replay["decided_at"], record["verdict"]["decided_at"],
        "{replay}"
    );
}
