//! CI annotations of a check-config report: GitHub workflow commands
//! (`::error file=…,line=…,col=…,title=…::message`) that put each finding on its line in the
//! pull request's diff.

use compat::{Level, Location, Report};

/// The annotation format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Annotations {
    /// GitHub Actions workflow commands, on stdout after the report.
    Github,
}

/// One annotation line per finding, violation and expired ignore that has a location in a
/// file of the checkout (`git:` and `ssm:` sources have none).
pub fn github(report: &Report) -> String {
    let mut out = String::new();
    for v in &report.invalid {
        push(
            &mut out,
            "error",
            &v.location,
            "invalid",
            &format!("{}: {}", v.path, v.message),
        );
    }
    for e in &report.expired_ignores {
        push(
            &mut out,
            "error",
            &e.location,
            "expired ignore",
            &format!(
                "ignore of {} at {} expired on {}: renew or remove it",
                e.rule.id(),
                e.path,
                e.expires
            ),
        );
    }
    for f in &report.findings {
        let Some(location) = f.new.as_ref().or(f.old.as_ref()) else {
            continue;
        };
        let level = match f.level {
            Level::Error => "error",
            Level::Warn => "warning",
        };
        let breaks: Vec<&str> = f.breaks.iter().map(|d| d.name()).collect();
        push(
            &mut out,
            level,
            location,
            f.rule.id(),
            &format!("{}: {} [breaks: {}]", f.path, f.message, breaks.join(", ")),
        );
    }
    out
}

fn push(out: &mut String, level: &str, at: &Location, title: &str, message: &str) {
    let file: &str = &at.file;
    if at.line == 0 || file.starts_with("git:") || file.starts_with("ssm:") {
        return;
    }
    out.push_str(&format!(
        "::{level} file={},line={},col={},title={}::{}\n",
        property(file),
        at.line,
        at.column,
        property(title),
        data(message)
    ));
}

/// A workflow command's message: `%`, CR and LF escaped.
fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow command's property value: as data, and `:` and `,` too.
fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_follow_the_workflow_command_rules() {
        assert_eq!(data("50% a\r\nb"), "50%25 a%0D%0Ab");
        assert_eq!(property("a:b,c%"), "a%3Ab%2Cc%25");
    }
}
