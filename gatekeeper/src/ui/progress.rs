//! The one progress type, on standard error: on a terminal, a spinner and named bars that
//! redraw in place, with lines printed above them; otherwise (CI logs) plain lines only, so a
//! log reads top to bottom.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

pub struct Progress {
    /// Present on a terminal.
    multi: Option<MultiProgress>,
    spinner: Option<ProgressBar>,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
    /// Put before every line (`stack photos-prod-rails`), empty for none.
    prefix: String,
}

impl Progress {
    /// Lines, and bars on a terminal.
    pub fn lines() -> Self {
        Progress {
            multi: std::io::stderr().is_terminal().then(MultiProgress::new),
            spinner: None,
            bars: Mutex::new(BTreeMap::new()),
            prefix: String::new(),
        }
    }

    /// Lines prefixed with `prefix`, and on a terminal a spinner with its elapsed time.
    pub fn spinner(prefix: &str) -> Self {
        let mut progress = Progress::lines();
        progress.prefix = prefix.to_string();
        progress.spinner = progress.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(prefix.to_string());
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        progress
    }

    /// Whether bars are drawn: a caller with nothing to say outside a terminal (a wait's
    /// countdown) checks this first.
    pub fn is_terminal(&self) -> bool {
        self.multi.is_some()
    }

    /// A line that stays.
    pub fn line(&self, text: &str) {
        let text = if self.prefix.is_empty() {
            text.to_string()
        } else {
            format!("{}: {text}", self.prefix)
        };
        match &self.multi {
            Some(multi) => {
                // A terminal that went away takes the line with it; nothing to do about that.
                let _ = multi.println(text);
            }
            None => crate::ui::eprintln!("{text}"),
        }
    }

    /// The spinner's current message (only shown on a terminal).
    pub fn message(&self, text: &str) {
        if let Some(bar) = &self.spinner {
            bar.set_message(text.to_string());
        }
    }

    /// Draws the bar `name` at `position` of `length` with `message`, creating it on first use.
    /// Returns `false`, drawing nothing, outside a terminal: the caller prints a line instead.
    pub fn bar(&self, name: &str, position: u64, length: u64, message: String) -> bool {
        let Some(multi) = &self.multi else {
            return false;
        };
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        let bar = bars.entry(name.to_string()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(length.max(1)));
            bar.set_style(
                ProgressStyle::with_template("{prefix:>30} [{bar:30}] {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_prefix(name.to_string());
            bar
        });
        bar.set_length(length.max(1));
        bar.set_position(position.min(length.max(1)));
        bar.set_message(message);
        true
    }

    /// Clears the spinner and the bars; the lines stay.
    pub fn finish(&self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
        let bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        for bar in bars.values() {
            bar.finish_and_clear();
        }
    }
}
