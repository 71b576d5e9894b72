//! What a command does to a run, decided from the journal, the lock and the fleet: the
//! resume decision table, the refusals, the plan of a repair, the node a run canaries, and the
//! run's result as reported. Pure; the flows that act on these decisions (`start`, `resume`,
//! `abort`, `promote`, their dry runs) are in `flow` (feature `aws`).

use serde::Serialize;

use crate::journal::RunState;
use crate::machine::{Machine, Mode, Next, Outcome, Plan};

#[cfg(feature = "aws")]
pub mod flow;

/// The command acting on a run another process started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Resume,
    Abort,
    Promote,
}

impl Action {
    /// The command as lock holders and `took` records name it.
    pub fn command(self) -> &'static str {
        match self {
            Action::Resume => "canary resume",
            Action::Abort => "canary abort",
            Action::Promote => "promote",
        }
    }
}

/// What a command does to a run in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Roll the run back, for this reason.
    Abort(&'static str),
    /// Approve it (as the caller) and promote.
    Approve,
    /// Leave it parked: it passed its canary and awaits `promote` or `abort`.
    AwaitApproval,
    /// Drive it on from where it stands (a promotion or a rollback finishes).
    Continue,
}

pub const ABORTED: &str = "aborted by `gatekeeper canary abort`";
pub const RESUMED_BEFORE_AUTO_PROMOTE: &str =
    "resumed after an interruption before the automatic promotion: rolling back";
pub const RESUMED: &str = "resumed after an interruption: rolling back";

/// The resume decision table: what `action` does to a run in flight in `mode` whose next step
/// is `next`. A canary interrupted before its promotion never goes on unattended: it rolls
/// back, unless it awaits a person's approval.
pub fn decide(action: Action, mode: Mode, next: &Next, auto_promote: bool) -> Decision {
    match (action, mode, next) {
        (Action::Promote, _, _) => Decision::Approve,
        (Action::Abort, _, _) => Decision::Abort(ABORTED),
        (Action::Resume, Mode::Canary, Next::AwaitApproval) if auto_promote => {
            Decision::Abort(RESUMED_BEFORE_AUTO_PROMOTE)
        }
        (Action::Resume, Mode::Canary, Next::AwaitApproval) => Decision::AwaitApproval,
        (Action::Resume, Mode::Canary, _) => Decision::Abort(RESUMED),
        (Action::Resume, _, _) => Decision::Continue,
    }
}

/// What a command does to a run the journal says is over, given what the fleet shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// The fleet agrees: nothing to do. `close`: the run stopped before anything changed and
    /// has no `finish` record yet; one is written.
    Done { close: bool },
    /// A node is left in the canary group or the weight is not 0: a repair run puts it back.
    Repair,
}

/// Whether the journal says `run` is over (finished, or nothing left in flight).
pub fn is_over(run: &RunState) -> bool {
    run.finished.is_some() || !run.machine.in_flight()
}

/// The fleet of an ended run: clean when the canary group is empty at weight 0.
pub fn over(run: &RunState, canary_group_empty: bool, weight: u8) -> Over {
    if canary_group_empty && weight == 0 {
        Over::Done {
            close: run.finished.is_none(),
        }
    } else {
        Over::Repair
    }
}

/// The outcome of an ended run, as its journal or its machine records it.
pub fn outcome_of(run: &RunState) -> Option<&Outcome> {
    run.finished
        .as_ref()
        .map(|f| &f.1)
        .or(run.machine.outcome())
}

pub fn outcome_text(o: Option<&Outcome>) -> String {
    match o {
        Some(Outcome::Promoted) => "promoted".into(),
        Some(Outcome::RolledBack { reason }) => format!("rolled back ({reason})"),
        Some(Outcome::Refused { reason }) => format!("refused ({reason})"),
        None => "unfinished".into(),
    }
}

pub fn describe(next: &Next) -> String {
    match next {
        Next::Do { action, .. } => format!("next: {action}"),
        Next::AwaitApproval => "awaiting approval".into(),
        Next::Halted { reason } => format!("halted: {reason}"),
        Next::Finished(o) => outcome_text(Some(o)),
    }
}

/// Where a run stands: its recorded outcome, else its next step.
pub fn state_text(run: &RunState) -> String {
    match &run.finished {
        Some((_, o)) => outcome_text(Some(o)),
        None => describe(&run.machine.next()),
    }
}

/// Why `promote` refuses `run`, or `None` when it awaits approval.
pub fn promote_refusal(run: &RunState) -> Option<String> {
    if run.finished.is_none() && run.machine.next() == Next::AwaitApproval {
        return None;
    }
    Some(format!(
        "run {} is not awaiting approval ({}): only a passed canary can be promoted",
        run.machine.plan().run_id,
        state_text(run)
    ))
}

/// Why a new run may not start over `last`, the newest run: it is not finished.
pub fn unfinished_refusal(last: &RunState) -> Option<String> {
    if last.finished.is_some() || !last.machine.in_flight() {
        return None;
    }
    let p = last.machine.plan();
    Some(format!(
        "run {} ({} → {}) by {} is not finished ({}): `gatekeeper canary resume`, \
         `gatekeeper promote` or `gatekeeper canary abort` it first",
        p.run_id,
        p.previous,
        p.revision,
        last.holder,
        describe(&last.machine.next()),
    ))
}

/// The plan of a repair: the ended run's, rolled back under a run id of its own.
pub fn repair_plan(ended: &Plan, run_id: String) -> Plan {
    Plan {
        run_id,
        repair: true,
        auto_promote: false,
        ..ended.clone()
    }
}

/// The node a run canaries: the one asked for, else the configured one, else the first; it
/// must be one of `nodes`, and a canary needs at least two. `Err` says why not.
pub fn choose_node(
    nodes: &[String],
    asked: Option<&str>,
    configured: Option<&str>,
    prod_name: &str,
) -> Result<String, String> {
    if nodes.len() < 2 {
        return Err(format!(
            "{prod_name}: the production group has {} node(s): a canary needs at least two",
            nodes.len()
        ));
    }
    let node = asked.or(configured).unwrap_or(&nodes[0]).to_string();
    if !nodes.contains(&node) {
        return Err(format!(
            "canary node {node} is not in the fleet ({})",
            nodes.join(", ")
        ));
    }
    Ok(node)
}

/// The result of driving a run, for text and JSON.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub revision: String,
    pub previous: String,
    pub canary_node: String,
    pub state: &'static str,
    pub detail: String,
    pub approved_by: Option<String>,
}

impl RunReport {
    pub fn new(m: &Machine, next: &Next) -> Self {
        let p = m.plan();
        let (state, detail) = match next {
            Next::AwaitApproval => (
                "awaiting-approval",
                "the canary passed: `gatekeeper promote` promotes it, `gatekeeper canary abort` rolls it back".to_string(),
            ),
            Next::Finished(Outcome::Promoted) => ("promoted", "every node runs the revision; weights 100/0".into()),
            Next::Finished(Outcome::RolledBack { reason }) => ("rolled-back", reason.clone()),
            Next::Finished(Outcome::Refused { reason }) => ("refused", reason.clone()),
            Next::Halted { reason } => (
                "halted",
                format!("{reason}: fix it, then `gatekeeper canary resume`"),
            ),
            Next::Do { action, .. } => ("stopped", format!("before {action}")),
        };
        RunReport {
            run_id: p.run_id.clone(),
            revision: p.revision.clone(),
            previous: p.previous.clone(),
            canary_node: p.canary_node.clone(),
            state,
            detail,
            approved_by: m.approved_by().map(str::to_string),
        }
    }

    /// A dry run reports what it checked and planned, never an outcome it did not reach.
    /// `fresh`: the run began with its preflight.
    pub fn dry_run(mut self, next: &Next, fresh: bool) -> Self {
        let planned = "every action above was planned and none was performed";
        let detail = match next {
            Next::Finished(Outcome::Promoted) if fresh => {
                Some(format!("dry run: the preflight checks passed; {planned}"))
            }
            Next::Finished(Outcome::Promoted) => Some(format!("dry run: {planned}")),
            Next::Finished(Outcome::RolledBack { reason }) => Some(format!(
                "dry run: {planned}; it would roll back because: {reason}"
            )),
            _ => None,
        };
        if let Some(detail) = detail {
            self.state = "dry-run";
            self.detail = detail;
        }
        self
    }
}

/// What a command that acts on a run ends with.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Refused: nothing was changed or written (exit 2).
    Refused(String),
    /// Nothing to drive; this says why (exit 0).
    Said(String),
    /// The run was driven to its next resting point.
    Driven { report: RunReport, next: Next },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{Action as Step, Event};

    fn plan() -> Plan {
        Plan::example("canary-1")
    }

    fn run(finished: Option<Outcome>) -> RunState {
        RunState {
            holder: "me".into(),
            started_at: 0,
            machine: Machine::new(plan()),
            finished: finished.map(|o| (1, o)),
            records: vec![],
        }
    }

    /// A canary past its preflight and lock: in flight.
    fn locked() -> RunState {
        let mut r = run(None);
        for _ in 0..2 {
            if let Next::Do { index, action } = r.machine.next() {
                let mode = Mode::Canary;
                r.machine.on(&Event::Began {
                    mode,
                    index,
                    action,
                });
                r.machine.on(&Event::Completed { mode, index });
            }
        }
        assert!(r.machine.in_flight());
        r
    }

    fn doing() -> Next {
        Next::Do {
            index: 3,
            action: Step::Deploy {
                nodes: vec!["a".into()],
                revision: "v2".into(),
            },
        }
    }

    #[test]
    fn abort_rolls_back_whatever_the_run_does() {
        for (mode, next) in [
            (Mode::Canary, doing()),
            (Mode::Canary, Next::AwaitApproval),
            (Mode::Promote, doing()),
        ] {
            assert_eq!(
                decide(Action::Abort, mode, &next, true),
                Decision::Abort(ABORTED)
            );
        }
    }

    #[test]
    fn promote_approves() {
        assert_eq!(
            decide(Action::Promote, Mode::Canary, &Next::AwaitApproval, false),
            Decision::Approve
        );
    }

    #[test]
    fn resume_of_a_passed_canary_leaves_it_awaiting_approval() {
        assert_eq!(
            decide(Action::Resume, Mode::Canary, &Next::AwaitApproval, false),
            Decision::AwaitApproval
        );
    }

    #[test]
    fn resume_before_an_automatic_promotion_rolls_back() {
        assert_eq!(
            decide(Action::Resume, Mode::Canary, &Next::AwaitApproval, true),
            Decision::Abort(RESUMED_BEFORE_AUTO_PROMOTE)
        );
    }

    #[test]
    fn resume_of_an_interrupted_canary_rolls_back() {
        assert_eq!(
            decide(Action::Resume, Mode::Canary, &doing(), false),
            Decision::Abort(RESUMED)
        );
    }

    #[test]
    fn resume_of_a_promotion_or_a_rollback_finishes_it() {
        for mode in [Mode::Promote, Mode::Rollback] {
            assert_eq!(
                decide(Action::Resume, mode, &doing(), false),
                Decision::Continue
            );
        }
    }

    #[test]
    fn an_ended_run_is_repaired_unless_the_fleet_is_clean() {
        let ended = run(Some(Outcome::Promoted));
        assert!(is_over(&ended));
        assert_eq!(over(&ended, true, 0), Over::Done { close: false });
        assert_eq!(over(&ended, false, 0), Over::Repair);
        assert_eq!(over(&ended, true, 5), Over::Repair);
        // Over in its machine but with no finish record: closed when the fleet is clean.
        assert_eq!(over(&run(None), true, 0), Over::Done { close: true });
    }

    #[test]
    fn promote_refuses_a_run_not_awaiting_approval() {
        assert!(!is_over(&locked()));
        let why = promote_refusal(&locked()).unwrap();
        assert!(
            why.starts_with("run canary-1 is not awaiting approval (next: "),
            "{why}"
        );
        let why = promote_refusal(&run(Some(Outcome::Promoted))).unwrap();
        assert_eq!(
            why,
            "run canary-1 is not awaiting approval (promoted): only a passed canary can be promoted"
        );
    }

    #[test]
    fn a_new_run_refuses_one_in_flight() {
        assert_eq!(
            unfinished_refusal(&run(None)),
            None,
            "not locked: nothing changed"
        );
        let why = unfinished_refusal(&locked()).unwrap();
        assert!(why.starts_with("run canary-1 (v1 → v2) by me is not finished (next: "));
        assert_eq!(unfinished_refusal(&run(Some(Outcome::Promoted))), None);
    }

    #[test]
    fn the_canary_node_is_asked_then_configured_then_first() {
        let nodes = vec!["a".to_string(), "b".to_string()];
        assert_eq!(choose_node(&nodes, None, None, "tg").unwrap(), "a");
        assert_eq!(choose_node(&nodes, None, Some("b"), "tg").unwrap(), "b");
        assert_eq!(
            choose_node(&nodes, Some("a"), Some("b"), "tg").unwrap(),
            "a"
        );
        assert_eq!(
            choose_node(&nodes, Some("c"), None, "tg").unwrap_err(),
            "canary node c is not in the fleet (a, b)"
        );
        assert_eq!(
            choose_node(&nodes[..1], None, None, "tg").unwrap_err(),
            "tg: the production group has 1 node(s): a canary needs at least two"
        );
    }

    #[test]
    fn a_repair_rolls_back_under_its_own_id() {
        let p = repair_plan(
            &Plan {
                auto_promote: true,
                ..plan()
            },
            "r".into(),
        );
        assert!(p.repair && !p.auto_promote);
        assert_eq!((p.run_id.as_str(), p.revision.as_str()), ("r", "v2"));
    }

    #[test]
    fn a_dry_run_reports_no_outcome_it_did_not_reach() {
        let m = Machine::new(plan());
        let next = Next::Finished(Outcome::Promoted);
        let r = RunReport::new(&m, &next).dry_run(&next, true);
        assert_eq!(r.state, "dry-run");
        assert!(r.detail.contains("preflight checks passed"));
        let halted = Next::Halted { reason: "x".into() };
        assert_eq!(
            RunReport::new(&m, &halted).dry_run(&halted, true).state,
            "halted"
        );
    }
}
