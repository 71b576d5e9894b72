//! kill -9 at every step boundary of a canary run, then `gatekeeper canary resume` from
//! another runner (another working directory with no local state, another `HOSTNAME`): the
//! fleet always ends safe — every node in production on one revision, the canary group empty,
//! weights 100/0, the lock free — using only the state in S3. The binary aborts itself
//! through its test hook `GATEKEEPER_CRASH_AFTER` right after journaling the named step.

use gatekeeper_e2e::fleet::Fleet;
use gatekeeper_e2e::moto;

fn crash_then_resume(crash_after: &str, healthy: bool, expect: &str) {
    let Some(moto) = moto() else { return };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A short lease: the crashed runner's lease runs out while the test waits.
    let fleet = rt.block_on(Fleet::new(&moto, 3, "lease_seconds = 3"));
    let canary_errors = if healthy { 1.0 } else { 150.0 };
    rt.block_on(fleet.put_metrics((19_000.0, 19.0, 0.12), (1_000.0, canary_errors, 0.12)));
    let out = fleet
        .gatekeeper(&["canary", "run", "--revision", "v2", "--auto-promote"])
        .env("GATEKEEPER_CRASH_AFTER", crash_after)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("aborting"),
        "{crash_after}: the run did not crash: {stderr}"
    );
    // Another runner: no local directory of the crashed one, another host name. It cannot
    // check the crashed process, so it waits for the lease to run out, as it is told to.
    let elsewhere = tempfile::tempdir().unwrap();
    let resume = || {
        let mut cmd = fleet.gatekeeper(&["canary", "resume"]);
        cmd.current_dir(elsewhere.path())
            .env("HOSTNAME", "runner-b");
        cmd.output().unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let out = loop {
        let out = resume();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.code() == Some(2) && stdout.contains("on a host this one cannot check") {
            assert!(
                std::time::Instant::now() < deadline,
                "{crash_after}: the lease never ran out: {stdout}"
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
            continue;
        }
        break out;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(2),
        "{crash_after}: resume failed: {stdout}\n{stderr}"
    );
    rt.block_on(fleet.assert_safe_on(expect));
    assert!(!elsewhere.path().join(".gatekeeper").exists());
    // Resuming again has nothing left to do.
    let out = resume();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("is over"));
}

macro_rules! crash_tests {
    ($($name:ident: $point:expr, $healthy:expr => $expect:expr;)*) => {
        $(
            #[test]
            fn $name() {
                crash_then_resume($point, $healthy, $expect);
            }
        )*
    };
}

crash_tests! {
    after_preflight: "canary:0", true => "v1";
    after_lock: "canary:1", true => "v1";
    after_depool: "canary:2", true => "v1";
    after_drain: "canary:3", true => "v1";
    during_deploy: "began:deploy", true => "v1";
    after_deploy: "canary:4", true => "v1";
    after_canary_repool: "canary:5", true => "v1";
    after_canary_healthy: "canary:6", true => "v1";
    after_smoke: "canary:7", true => "v1";
    after_weight: "canary:8", true => "v1";
    after_bake_passed: "canary:9", true => "v1";
    after_wave_depool: "promote:0", true => "v2";
    after_wave_drain: "promote:1", true => "v2";
    during_wave_deploy: "began:promote:2", true => "v2";
    after_wave_deploy: "promote:2", true => "v2";
    after_wave_repool: "promote:3", true => "v2";
    after_wave_healthy: "promote:4", true => "v2";
    after_canary_return: "promote:5", true => "v2";
    after_canary_return_healthy: "promote:6", true => "v2";
    after_weights_reset: "promote:7", true => "v2";
    after_canary_group_emptied: "promote:8", true => "v2";
    after_rollback_weight: "rollback:0", false => "v1";
    after_rollback_canary_out: "rollback:1", false => "v1";
    during_rollback_redeploy: "began:rollback:2", false => "v1";
    after_rollback_redeploy: "rollback:2", false => "v1";
    after_rollback_repool: "rollback:3", false => "v1";
}
