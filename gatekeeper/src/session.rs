//! What the canary commands (`canary …`, `promote`) share: the [`Session`] opened from a
//! configuration with the clients `aws` builds, the hooks a run reports through (progress
//! and notices on stderr, signals, the crash-test hook), and the exit status of a reply.
//!
//! Crash points (`hooks`, test builds only): `<action>` (e.g. `deploy`, `set-weight`) or
//! `<mode>:<index>` (e.g. `canary:4`) aborts the process right after that action's
//! `completed` record is journaled; prefix `began:` to abort after its `began` record
//! instead. Crash tests use them to kill the gate between any two steps.

use std::io::Write;
use std::sync::Arc;

use canary::executor::Progress;
use canary::machine::{Next, Outcome};
use canary::run::flow::{Hooks, Observer};
use canary::run::Reply;
use canary::session::Session;

use crate::commands::common::Output;
use crate::render::canary::progress::View;
use crate::ExitStatus;

/// The canary session `config` describes: its clients, lock and journals.
pub async fn open(config: &std::path::Path) -> anyhow::Result<Session> {
    let config = canary::config::load(config)?;
    let c = crate::aws::clients(config.region.as_deref()).await;
    let scope = crate::store::scope(&config.state, &config.prefix(), &c.s3)?;
    let clients = canary::session::Clients {
        elb: c.elb,
        cloudwatch: c.cloudwatch,
        codedeploy: c.codedeploy,
        s3: c.s3,
        ssm: c.ssm,
        sts: c.sts,
        sns: c.sns,
    };
    Ok(Session::new(config, clients, scope))
}

/// The progress view, with the crash-test hook.
pub struct Shown {
    view: View,
    crash: Option<String>,
}

impl Observer for Shown {
    fn progress(&mut self, p: &Progress) {
        self.view.show(p);
        let (
            Some(hook),
            Progress::Journaled {
                mode,
                index,
                action,
                phase,
            },
        ) = (&self.crash, p)
        else {
            return;
        };
        let (want_phase, what) = match hook.strip_prefix("began:") {
            Some(rest) => ("began", rest),
            None => ("completed", hook.as_str()),
        };
        if *phase == want_phase
            && (what == action.name() || what == format!("{}:{index}", mode.as_str()))
        {
            crate::hooks::crash(hook);
        }
    }

    fn finished(&mut self) {
        self.view.finish();
    }
}

/// The observer of a run: progress on stderr.
pub fn shown() -> Shown {
    Shown {
        view: View::new(),
        crash: crate::hooks::crash_point(),
    }
}

/// Hooks reporting on stderr. First SIGINT/SIGTERM: stop at the next safe point and roll
/// back. Second: stop now.
pub fn hooks(observer: &mut Shown) -> Hooks<'_> {
    Hooks {
        observer,
        notice: Arc::new(|line: &str| crate::ui::eprintln!("{line}")),
        on_signal: Arc::new(|second| {
            if second {
                crate::ui::eprintln!(
                    "canary: second signal: stopping now; run `gatekeeper canary resume`"
                );
                #[expect(
                    clippy::exit,
                    clippy::disallowed_methods,
                    reason = "a second signal stops at once, as it says"
                )]
                std::process::exit(130);
            }
            crate::ui::eprintln!(
                "canary: signal received: rolling back at the next safe point (again to stop now)"
            );
        }),
    }
}

/// Renders `reply` and says how the command exits: refused 2; nothing to do 0; a run
/// awaiting approval, promoted or dry-run 0, rolled back or refused 2, halted or stopped 1.
pub fn finish(reply: &Reply, output: Output, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    crate::render::canary::reply(reply, output, out)?;
    Ok(match reply {
        Reply::Refused(_) => ExitStatus::Changes,
        Reply::Said(_) => ExitStatus::Success,
        Reply::Driven { report, .. } if report.state == "dry-run" => ExitStatus::Success,
        Reply::Driven { next, .. } => match next {
            Next::AwaitApproval | Next::Finished(Outcome::Promoted) => ExitStatus::Success,
            Next::Finished(_) => ExitStatus::Changes,
            Next::Halted { .. } | Next::Do { .. } => ExitStatus::Error,
        },
    })
}
