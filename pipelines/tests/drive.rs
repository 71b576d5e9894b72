//! A pipeline run driven end to end through a local state store, the program's side faked: the
//! clock, the alarms, the canary's last run and the stage commands are the test's.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::sync::Arc;

use pipelines::drive::{AbortReport, Driver, Host, HostError, StageReport};
use pipelines::run::{CanaryRun, Record, RunView, StageState};
use pipelines::{Kind, Pin, Pipeline};
use state::{Envelope, Scope};

const APPROVER: &str = "arn:aws:iam::123456789012:role/rm";

#[derive(Default)]
struct FakeHost {
    now: Cell<u64>,
    firing: RefCell<Vec<String>>,
    canary: RefCell<Option<CanaryRun>>,
    /// The exit code each command returns.
    code: Cell<i32>,
    ran: RefCell<Vec<Vec<String>>>,
    /// Commands fail to start (the runner dies mid-stage).
    broken: Cell<bool>,
    journaled: RefCell<Vec<u64>>,
}

#[async_trait::async_trait(?Send)]
impl Host for FakeHost {
    fn now(&self) -> u64 {
        self.now.get()
    }
    fn journaled(&self, seq: u64) {
        self.journaled.borrow_mut().push(seq);
    }
    async fn alarms_firing(&self, _prefix: &str) -> Result<Vec<String>, HostError> {
        Ok(self.firing.borrow().clone())
    }
    async fn canary_run(&self, _config: &Path) -> Result<Option<CanaryRun>, HostError> {
        Ok(self.canary.borrow().clone())
    }
    async fn run(&self, argv: &[String]) -> Result<(i32, String), HostError> {
        if self.broken.get() {
            return Err("the runner died".into());
        }
        self.ran.borrow_mut().push(argv.to_vec());
        Ok((self.code.get(), format!("ran {}\n", argv[0])))
    }
}

/// staging (stack, alarms clean) → canary (needs staging, approval, 600 s soak).
fn pipeline(dir: &Path) -> Pipeline {
    for (file, env) in [("staging.toml", "staging"), ("prod.toml", "prod")] {
        let text = format!("service = \"photos\"\nenvironment = \"{env}\"\n");
        std::fs::write(dir.join(file), text).unwrap();
    }
    let text = format!(
        "service = \"photos\"\n\
         [[pipeline.stages]]\nname = \"staging\"\nconfig = \"staging.toml\"\nkind = \"stack\"\n\
         alarms_clean = true\n\
         [[pipeline.stages]]\nname = \"canary\"\nconfig = \"prod.toml\"\nkind = \"canary\"\n\
         needs = [\"staging\"]\napproval = [\"{APPROVER}\"]\nsoak_seconds = 600\n"
    );
    let file = dir.join("pipeline.toml");
    std::fs::write(&file, text).unwrap();
    pipelines::load(&file).unwrap()
}

fn scope(dir: &Path) -> Scope {
    let store = Arc::new(state::local::LocalStore::new(dir.join("state")));
    Scope::new(store, "", "photos-pipeline-main").unwrap()
}

async fn records(scope: &Scope, run: &str) -> Vec<Record> {
    let read: Vec<Envelope<Record>> = state::journal::read(scope, run).await.unwrap();
    read.into_iter().map(|e| e.record).collect()
}

async fn lock_state(scope: &Scope) -> String {
    let (info, _) = state::lock::read(scope).await.unwrap().unwrap();
    serde_json::to_value(&info).unwrap()["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_run_goes_through_its_gates_and_frees_the_lock_when_done() {
    let dir = tempfile::tempdir().unwrap();
    let (p, scope) = (pipeline(dir.path()), scope(dir.path()));
    let host = FakeHost::default();
    host.now.set(state::lock::wall_now());
    let who = |who: &str| Driver {
        pipeline: &p,
        scope: &scope,
        who: who.into(),
        host: &host,
    };
    let (ci, rm) = (who("ci"), who(APPROVER));
    let run = "pipeline-20260101T000000Z-1";
    ci.start(run, Pin::compute(&p, "v2").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lock_state(&scope).await, "parked");

    host.firing.borrow_mut().push("photos-staging-5xx".into());
    let refused = ci.stage(run, Some("staging")).await.unwrap();
    assert_eq!(
        refused,
        StageReport::Refused(
            "stage staging needs its alarms clean, and photos-staging-5xx in ALARM".into()
        )
    );
    assert_eq!(
        records(&scope, run).await.len(),
        1,
        "a refusal records nothing"
    );
    host.firing.borrow_mut().clear();

    // resume: the first stage not done.
    let StageReport::Ran { stage, code, .. } = ci.stage(run, None).await.unwrap() else {
        panic!("staging did not run");
    };
    assert_eq!((stage.as_str(), code), ("staging", 0));
    let staging = dir.path().join("staging.toml").display().to_string();
    assert_eq!(
        host.ran.borrow()[0],
        ["stack", "deploy", "--config", &staging]
    );

    let why = ci
        .approve(run, p.stage("canary").unwrap(), "go")
        .await
        .unwrap();
    assert!(why.unwrap_err().contains("ci may not approve stage canary"));
    let needs = ci.stage(run, Some("canary")).await.unwrap();
    assert!(matches!(&needs, StageReport::Refused(w) if w.contains("needs an approval")));
    rm.approve(run, p.stage("canary").unwrap(), "go")
        .await
        .unwrap()
        .unwrap();
    let soak = ci.stage(run, Some("canary")).await.unwrap();
    assert!(matches!(&soak, StageReport::Refused(w) if w.contains("soaks 600s")));

    host.now.set(host.now.get() + 700);
    let ran = ci.stage(run, None).await.unwrap();
    assert!(matches!(
        ran,
        StageReport::Ran {
            kind: Kind::Canary,
            code: 0,
            ..
        }
    ));
    assert_eq!(host.ran.borrow()[1][..2], ["canary", "run"]);
    assert_eq!(ci.stage(run, None).await.unwrap(), StageReport::Finished);
    assert_eq!(lock_state(&scope).await, "free");

    let all = records(&scope, run).await;
    let view = RunView::replay(&p, &all).unwrap().unwrap();
    assert!(view.finished());
    assert_eq!(view.approvals["canary"].reason.as_deref(), Some("go"));
    assert_eq!(
        *host.journaled.borrow(),
        (0..all.len() as u64).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_stage_rerun_after_its_runner_died_continues_without_running_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (p, scope) = (pipeline(dir.path()), scope(dir.path()));
    let host = FakeHost::default();
    host.now.set(state::lock::wall_now());
    let ci = Driver {
        pipeline: &p,
        scope: &scope,
        who: "ci".into(),
        host: &host,
    };
    let run = "pipeline-20260101T000000Z-2";
    ci.start(run, Pin::compute(&p, "v2").unwrap())
        .await
        .unwrap()
        .unwrap();
    ci.stage(run, Some("staging")).await.unwrap();
    let approver = Driver {
        who: APPROVER.into(),
        ..ci
    };
    let canary = p.stage("canary").unwrap();
    approver.approve(run, canary, "go").await.unwrap().unwrap();
    // The canary of v2 already waits for approval: the stage says so instead of running.
    *host.canary.borrow_mut() = Some(CanaryRun {
        id: "canary-1".into(),
        revision: "v2".into(),
        awaiting_approval: true,
        promoted: false,
    });
    host.now.set(host.now.get() + 700);
    let report = approver.stage(run, Some("canary")).await.unwrap();
    let StageReport::Ran { stdout, code, .. } = report else {
        panic!("{report:?}");
    };
    assert_eq!(
        (stdout.as_str(), code),
        ("canary canary-1 of v2 already awaits approval\n", 0)
    );
    assert_eq!(host.ran.borrow().len(), 1, "only staging ran a command");
}

#[tokio::test]
async fn a_failed_stage_ends_the_run_and_abort_rolls_back_started_canaries() {
    let dir = tempfile::tempdir().unwrap();
    let (p, scope) = (pipeline(dir.path()), scope(dir.path()));
    let host = FakeHost::default();
    host.now.set(state::lock::wall_now());
    let ci = Driver {
        pipeline: &p,
        scope: &scope,
        who: "ci".into(),
        host: &host,
    };
    let run = "pipeline-20260101T000000Z-3";
    ci.start(run, Pin::compute(&p, "v2").unwrap())
        .await
        .unwrap()
        .unwrap();
    host.code.set(1);
    let StageReport::Ran { code: 1, .. } = ci.stage(run, Some("staging")).await.unwrap() else {
        panic!("staging did not fail");
    };
    let all = records(&scope, run).await;
    assert!(matches!(
        all.last(),
        Some(Record::StageFailed { reason, .. })
            if reason.starts_with("`gatekeeper stack deploy --config ") && reason.ends_with("` exited 1")
    ));
    assert_eq!(lock_state(&scope).await, "free", "a failed run is over");
    assert_eq!(ci.abort(run).await.unwrap(), AbortReport::AlreadyOver);

    // A second run whose canary started: abort rolls it back, records who, frees the lock.
    let run = "pipeline-20260101T000000Z-4";
    ci.start(run, Pin::compute(&p, "v2").unwrap())
        .await
        .unwrap()
        .unwrap();
    host.code.set(0);
    ci.stage(run, Some("staging")).await.unwrap();
    let rm = Driver {
        who: APPROVER.into(),
        ..ci
    };
    rm.approve(run, p.stage("canary").unwrap(), "go")
        .await
        .unwrap()
        .unwrap();
    host.now.set(host.now.get() + 700);
    host.broken.set(true);
    let died = rm.stage(run, Some("canary")).await.unwrap_err();
    assert_eq!(died.to_string(), "the runner died");
    host.broken.set(false);
    host.code.set(2);
    let report = rm.abort(run).await.unwrap();
    // `canary abort` exiting 2 (nothing to roll back) is no failure of the abort.
    assert_eq!(
        report,
        AbortReport::Aborted {
            stdout: "ran canary\n".into(),
            code: 0
        }
    );
    assert_eq!(host.ran.borrow().last().unwrap()[..2], ["canary", "abort"]);
    let view = RunView::replay(&p, &records(&scope, run).await)
        .unwrap()
        .unwrap();
    assert_eq!(view.aborted.map(|(_, by)| by).as_deref(), Some(APPROVER));
    assert!(matches!(view.stages["canary"], StageState::Running { .. }));
    assert_eq!(lock_state(&scope).await, "free");
}
