//! A run's progress on stderr: a line per step, a bar during the bake on a terminal.

use std::io::IsTerminal;

use canary::executor::Progress;

pub struct View {
    bar: Option<indicatif::ProgressBar>,
    terminal: bool,
}

impl View {
    pub fn new() -> Self {
        View {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(b) => b.println(text),
            None => crate::ui::eprintln!("{text}"),
        }
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
                if self.terminal {
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
                if self.terminal && self.bar.is_none() && *of > 1 {
                    let bar = indicatif::ProgressBar::new(*of);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "  bake [{bar:30}] {pos}/{len} {msg}",
                        )
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    self.bar = Some(bar);
                }
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
                match &self.bar {
                    Some(b) => {
                        b.set_position(*interval);
                        b.set_message(msg);
                    }
                    None => crate::ui::eprintln!("  bake {interval}/{of}: {msg}"),
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
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
