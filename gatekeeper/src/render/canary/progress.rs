//! A run's progress on stderr (`ui::progress`): a line per step, a bar during the bake on a
//! terminal, a line per look otherwise.

use canary::executor::Progress;

use crate::ui::progress::Progress as Shown;

pub struct View {
    progress: Shown,
}

impl View {
    pub fn new() -> Self {
        View {
            progress: Shown::lines(),
        }
    }

    fn line(&self, text: String) {
        self.progress.line(&text);
    }

    pub fn show(&mut self, p: &Progress) {
        match p {
            Progress::Step {
                mode,
                index,
                total,
                action,
                dry_run,
            } => {
                let verb = if *dry_run { "would " } else { "" };
                self.line(format!(
                    "[{} {}/{}] {verb}{action}",
                    mode.as_str(),
                    index + 1,
                    total
                ));
            }
            Progress::Waiting {
                what,
                elapsed_s,
                deadline_s,
            } => {
                if self.progress.is_terminal() {
                    self.line(format!(
                        "  waiting for {what}: {elapsed_s}s of {deadline_s}s"
                    ));
                }
            }
            Progress::Waited { what, took_s } => {
                self.line(format!("  {what}: took {took_s}s"));
            }
            Progress::Bake {
                interval,
                of,
                baseline,
                canary,
                verdict,
            } => {
                let msg = format!(
                    "baseline {} req {} err, canary {} req {} err{}",
                    baseline.requests,
                    baseline.errors,
                    canary.requests,
                    canary.errors,
                    verdict
                        .map(|v| format!(": {}", v.as_str()))
                        .unwrap_or_default()
                );
                let drawn = *of > 1 && self.progress.bar("bake", *interval, *of, msg.clone());
                if !drawn {
                    self.line(format!("  bake {interval}/{of}: {msg}"));
                }
            }
            Progress::Approved { who } => self.line(format!("approved by {who}")),
            Progress::Failed { action, reason } => {
                self.line(format!("  failed: {action}: {reason}"))
            }
            Progress::RollingBack { reason } => self.line(format!("rolling back: {reason}")),
            Progress::Journaled { .. } => {}
        }
    }

    pub fn finish(&mut self) {
        self.progress.finish();
    }
}
