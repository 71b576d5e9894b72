//! The names derived from `gatekeeper.toml`, made in one place.
//!
//! The rails stack creates these resources, the canary preflight and `maintenance` read them,
//! `iam-policy` grants access to them: each asks here, so a custom `[flag] parameter` or a
//! FIFO queue is named the same way by all of them (`tests/tests/flag_name.rs`).

/// The names of one service in one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Names<'a> {
    pub service: &'a str,
    pub environment: &'a str,
}

impl<'a> Names<'a> {
    pub fn new(service: &'a str, environment: &'a str) -> Names<'a> {
        Names {
            service,
            environment,
        }
    }

    /// `<service>-<environment>`: the prefix of every name the rails create.
    pub fn prefix(&self) -> String {
        format!("{}-{}", self.service, self.environment)
    }

    /// The rails stack: `[stack] name`, else `<service>-<environment>-rails`.
    pub fn stack(&self, custom: Option<&str>) -> String {
        custom.map_or_else(|| format!("{}-rails", self.prefix()), str::to_string)
    }

    /// The maintenance flag's SSM parameter: `[flag] parameter`, else
    /// `/<service>/<environment>/maintenance`.
    pub fn flag_parameter(&self, custom: Option<&str>) -> String {
        custom.map_or_else(
            || format!("/{}/{}/maintenance", self.service, self.environment),
            str::to_string,
        )
    }

    /// A work queue: `<prefix>-<name>`, with `.fifo` for a FIFO queue.
    pub fn queue(&self, name: &str, fifo: bool) -> String {
        fifo_suffix(format!("{}-{name}", self.prefix()), fifo)
    }

    /// A work queue's dead-letter queue: `<prefix>-<name>-dlq`, with `.fifo` for a FIFO queue.
    pub fn dead_letter_queue(&self, name: &str, fifo: bool) -> String {
        fifo_suffix(format!("{}-{name}-dlq", self.prefix()), fifo)
    }

    /// The prefix every alarm of the service starts with: how the gate finds them.
    pub fn alarm_prefix(&self) -> String {
        format!("{}-", self.prefix())
    }
}

fn fifo_suffix(base: String, fifo: bool) -> String {
    if fifo {
        format!("{base}.fifo")
    } else {
        base
    }
}

#[cfg(test)]
mod tests {
    use super::Names;

    #[test]
    fn names_follow_the_service_and_environment() {
        let n = Names::new("photos", "prod");
        assert_eq!(n.prefix(), "photos-prod");
        assert_eq!(n.stack(None), "photos-prod-rails");
        assert_eq!(n.stack(Some("rails")), "rails");
        assert_eq!(n.flag_parameter(None), "/photos/prod/maintenance");
        assert_eq!(n.flag_parameter(Some("/ops/flag")), "/ops/flag");
        assert_eq!(n.queue("ingest", false), "photos-prod-ingest");
        assert_eq!(n.queue("ingest", true), "photos-prod-ingest.fifo");
        assert_eq!(
            n.dead_letter_queue("ingest", false),
            "photos-prod-ingest-dlq"
        );
        assert_eq!(
            n.dead_letter_queue("ingest", true),
            "photos-prod-ingest-dlq.fifo"
        );
        assert_eq!(n.alarm_prefix(), "photos-prod-");
    }
}
