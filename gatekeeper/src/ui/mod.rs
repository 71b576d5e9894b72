//! The terminal: whether to colour, the styles every text report uses, the one writer to
//! standard error, and the one progress type (`progress`).
//!
//! `--color auto` (the default) colours a stream that is a terminal, unless `NO_COLOR` is set
//! to a non-empty value; `CLICOLOR_FORCE` (non-empty) colours a pipe too, and `CLICOLOR=0` turns
//! colour off. `--color always` and `--color never` win over all of these. The rules are
//! anstream's, the same clap applies to its own help and errors.

pub mod progress;

use std::fmt;
use std::io::Write;

use anstream::ColorChoice;
use anstyle::{AnsiColor, Style};

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorWhen {
    /// Colour a terminal, honouring `NO_COLOR`, `CLICOLOR` and `CLICOLOR_FORCE`.
    #[default]
    Auto,
    /// Always colour, even a pipe.
    Always,
    /// Never colour.
    Never,
}

/// Sets the choice for the whole process; called once, before anything is written.
pub fn init(when: ColorWhen) {
    ColorChoice::write_global(match when {
        ColorWhen::Auto => ColorChoice::Auto,
        ColorWhen::Always => ColorChoice::AlwaysAnsi,
        ColorWhen::Never => ColorChoice::Never,
    });
}

/// Whether reports written to standard output carry colour.
pub fn stdout_color() -> bool {
    anstream::AutoStream::choice(&std::io::stdout()) != ColorChoice::Never
}

/// Whether lines written to standard error carry colour.
pub fn stderr_color() -> bool {
    anstream::AutoStream::choice(&std::io::stderr()) != ColorChoice::Never
}

/// A failure, a conflict, an error.
pub const BAD: Style = AnsiColor::Red.on_default().bold();
/// Something to look at: a skip, a note.
pub const WARN: Style = AnsiColor::Yellow.on_default();
/// A heading.
pub const BOLD: Style = Style::new().bold();

/// `text` in `style` when `color`, else `text` as it is.
pub fn paint(style: Style, text: impl fmt::Display, color: bool) -> String {
    if color {
        format!("{style}{text}{style:#}")
    } else {
        text.to_string()
    }
}

/// Writes one line to standard error; styles in it are dropped unless standard error is
/// coloured. A failed write (a closed pipe) is ignored: there is nowhere left to say it.
pub fn line(args: fmt::Arguments<'_>) {
    let mut err = anstream::stderr().lock();
    let _ = writeln!(err, "{args}");
}

/// `error: <message>` on standard error, every cause of the chain on the same line.
pub fn error(err: &anyhow::Error) {
    let color = stderr_color();
    line(format_args!("{} {err:#}", paint(BAD, "error:", color)));
}

/// `ui::eprintln!(...)`: a line on standard error through [`line`].
macro_rules! eprintln {
    ($($arg:tt)*) => {
        $crate::ui::line(format_args!($($arg)*))
    };
}
pub(crate) use eprintln;
