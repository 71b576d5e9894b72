//! Canary and maintenance share one lock, through the binary, against moto: a canary run is
//! refused while maintenance holds the lock; `maintenance on` is refused while a canary awaits
//! approval, unless `--force`, which parks the canary where it is and hands the lock back on
//! `maintenance off`. Each step asserts the world in moto (weights, target-group members, each
//! node's revision, the flag, the lock object), not only exit codes.

use gatekeeper_e2e::fleet::{sdk, Fleet, HEALTHY};
use gatekeeper_e2e::{moto, output, rt};

/// A fleet whose configuration also has maintenance mode (its queue and buckets created).
async fn fleet_with_maintenance(moto: &gatekeeper_e2e::Moto) -> Fleet {
    let fleet = Fleet::new(moto, 3, "").await;
    let service = &fleet.service;
    let mut text = std::fs::read_to_string(&fleet.config).unwrap();
    text.push_str(&format!(
        "\n[[queues]]\nname = \"uploads\"\n\n[maintenance]\n\
         ingestion_bucket = \"{service}-ingestion\"\nparking_lot_bucket = \"{service}-parking\"\n\
         drain_timeout_seconds = 2\npoll_interval_seconds = 1\nflag_ttl_seconds = 1\n"
    ));
    std::fs::write(&fleet.config, text).unwrap();
    for b in ["ingestion", "parking"] {
        fleet
            .s3
            .create_bucket()
            .bucket(format!("{service}-{b}"))
            .send()
            .await
            .unwrap();
    }
    aws_sdk_sqs::Client::new(&sdk(moto).await)
        .create_queue()
        .queue_name(format!("{service}-{}-uploads", fleet.environment))
        .send()
        .await
        .unwrap();
    fleet
}

async fn flag_enabled(fleet: &Fleet) -> bool {
    let got = fleet
        .ssm
        .get_parameter()
        .name(format!(
            "/{}/{}/maintenance",
            fleet.service, fleet.environment
        ))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(got.parameter().unwrap().value().unwrap()).unwrap();
    v["enabled"] == true
}

/// The lock's (state, purpose, run, generation).
async fn lock(fleet: &Fleet) -> (String, String, String, u64) {
    let l = fleet.lock().await.expect("a lock object");
    (
        l["state"].as_str().unwrap().into(),
        l["purpose"].as_str().unwrap().into(),
        l["run_id"].as_str().unwrap().into(),
        l["generation"].as_u64().unwrap(),
    )
}

/// Every node in production on v1, weights 100/0, the canary group empty.
async fn untouched(fleet: &Fleet) {
    assert_eq!(fleet.weights().await, (100, 0));
    assert!(fleet.members(&fleet.canary_tg).await.is_empty());
    assert_eq!(
        fleet.members(&fleet.prod_tg).await,
        fleet.nodes.iter().cloned().collect()
    );
    assert!(
        fleet.revisions().values().all(|r| r == "v1"),
        "{:?}",
        fleet.revisions()
    );
}

#[test]
fn a_canary_run_is_refused_while_maintenance_holds_the_lock() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(fleet_with_maintenance(&moto));
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));

    let (code, out, err) = output(fleet.gatekeeper(&["maintenance", "on"]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(rt.block_on(flag_enabled(&fleet)));
    let held = rt.block_on(lock(&fleet));
    assert_eq!(
        (held.0.as_str(), held.1.as_str()),
        ("parked", "maintenance")
    );
    let runs = rt.block_on(fleet.runs());

    let (code, out, err) = output(fleet.gatekeeper(&["canary", "run", "--revision", "v2"]));
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        out.contains("refused: the deploy lock") && out.contains("maintenance"),
        "{out}{err}"
    );
    assert!(!err.contains("[canary 1/"), "no step was taken: {err}");
    // Nothing changed: the world, the lock (same run, same generation), no new journal.
    rt.block_on(untouched(&fleet));
    assert_eq!(rt.block_on(lock(&fleet)), held);
    assert_eq!(rt.block_on(fleet.runs()), runs);
    assert!(rt.block_on(flag_enabled(&fleet)));

    // Once maintenance is off, the same run goes through.
    let (code, out, err) = output(fleet.gatekeeper(&["maintenance", "off", "--no-redrive"]));
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) =
        output(fleet.gatekeeper(&["canary", "run", "--revision", "v2", "--auto-promote"]));
    assert_eq!(code, Some(0), "{out}{err}");
    rt.block_on(fleet.assert_safe_on("v2"));
}

#[test]
fn maintenance_on_during_a_canary_is_refused_unless_forced_and_the_canary_gets_the_lock_back() {
    let Some(moto) = moto() else { return };
    let rt = rt();
    let fleet = rt.block_on(fleet_with_maintenance(&moto));
    rt.block_on(fleet.put_metrics(HEALTHY.0, HEALTHY.1));

    let (code, out, err) = output(fleet.gatekeeper(&["canary", "run", "--revision", "v2"]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("awaiting-approval"), "{out}");
    let canary = rt.block_on(lock(&fleet));
    assert_eq!((canary.0.as_str(), canary.1.as_str()), ("parked", "canary"));
    let at_weight = |fleet: &Fleet| {
        assert_eq!(rt.block_on(fleet.weights()), (95, 5));
        assert_eq!(
            rt.block_on(fleet.members(&fleet.canary_tg)),
            [fleet.nodes[0].clone()].into()
        );
    };
    at_weight(&fleet);

    // Plain `on`: refused, naming the canary and the way past it; nothing changed.
    let (code, out, err) = output(fleet.gatekeeper(&["maintenance", "on"]));
    assert_eq!(code, Some(2), "{out}{err}");
    let said = format!("{out}{err}");
    assert!(
        said.contains(&canary.2) && said.contains("--force"),
        "{said}"
    );
    assert!(!rt.block_on(flag_enabled(&fleet)));
    assert_eq!(rt.block_on(lock(&fleet)), canary);
    at_weight(&fleet);

    // `--force`: says what it does to the canary, which stays where it is.
    let (code, out, err) = output(fleet.gatekeeper(&["maintenance", "on", "--force"]));
    assert_eq!(code, Some(0), "{out}{err}");
    let said = format!("{out}{err}");
    assert!(
        said.contains(&format!("took the lock from canary run {}", canary.2))
            && said.contains("gets the lock back when `maintenance off`"),
        "{said}"
    );
    assert!(rt.block_on(flag_enabled(&fleet)));
    let held = rt.block_on(lock(&fleet));
    assert_eq!(
        (held.0.as_str(), held.1.as_str()),
        ("parked", "maintenance")
    );
    assert!(held.3 > canary.3, "a newer generation fences the canary's");
    at_weight(&fleet);

    // While maintenance holds it, the canary cannot be promoted.
    let (code, out, err) = output(fleet.gatekeeper(&["promote", "--yes"]));
    assert_eq!(code, Some(2), "{out}{err}");
    at_weight(&fleet);

    // `off` hands the lock back to the canary run, still awaiting approval; promote ends it.
    let (code, out, err) = output(fleet.gatekeeper(&["maintenance", "off", "--no-redrive"]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(!rt.block_on(flag_enabled(&fleet)));
    let back = rt.block_on(lock(&fleet));
    assert_eq!(
        (back.0.as_str(), back.1.as_str(), back.2.as_str()),
        ("parked", "canary", canary.2.as_str())
    );
    at_weight(&fleet);
    let (code, out, err) = output(fleet.gatekeeper(&["promote", "--yes"]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&canary.2), "{out}");
    rt.block_on(fleet.assert_safe_on("v2"));
}
