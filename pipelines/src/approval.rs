//! Who may approve a stage: IAM principal ARNs, or patterns of them.
//!
//! A pattern matches as IAM's `ArnLike` does: each of the six colon-separated parts of the
//! ARN is matched on its own, `*` for any run of characters and `?` for one, never across a
//! colon. Patterns are checked when the pipeline is loaded: the partition, the service (`iam`
//! or `sts`) and the account are literal, so that no pattern lets another AWS account approve.
//!
//! The principal is the caller as STS reports it. A role session
//! (`arn:aws:sts::111122223333:assumed-role/photos-release/alice`) also matches as its role
//! (`arn:aws:iam::111122223333:role/photos-release`): list the role to let any of its sessions
//! approve, or one session to let one person. STS names a role without its path.

use stacks::iam::glob;

pub(crate) const PARTITIONS: [&str; 3] = ["aws", "aws-cn", "aws-us-gov"];

pub(crate) fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `principal_arn` may approve a stage gated by `patterns` (none: nobody may).
pub fn approval_allowed(patterns: &[String], principal_arn: &str) -> bool {
    let role = role_of_session(principal_arn);
    patterns
        .iter()
        .any(|p| arn_like(p, principal_arn) || role.as_deref().is_some_and(|r| arn_like(p, r)))
}

/// Why `pattern` cannot gate an approval, if it cannot.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    let parts: Vec<&str> = pattern.splitn(6, ':').collect();
    let example = "arn:aws:iam::111122223333:role/photos-release";
    if parts.len() != 6 || parts[0] != "arn" {
        return Err(format!("{pattern:?} is not an ARN pattern ({example})"));
    }
    if !PARTITIONS.contains(&parts[1]) {
        return Err(format!(
            "{pattern:?}: the partition must be one of {} (no wildcard)",
            PARTITIONS.join(", ")
        ));
    }
    if parts[2] != "iam" && parts[2] != "sts" {
        return Err(format!(
            "{pattern:?}: a principal is an iam or sts ARN (no wildcard)"
        ));
    }
    if !parts[3].is_empty() {
        return Err(format!("{pattern:?}: IAM and STS ARNs have no region"));
    }
    if !is_account(parts[4]) {
        return Err(format!(
            "{pattern:?}: the account must be a literal 12-digit id, or any AWS account could approve"
        ));
    }
    if parts[5].is_empty() || parts[5] == "*" {
        return Err(format!(
            "{pattern:?}: name the principals (role/photos-release, assumed-role/photos-release/*)"
        ));
    }
    Ok(())
}

/// `arn:<p>:iam::<account>:role/<name>` for a role session `arn:<p>:sts::<account>:assumed-role/<name>/<session>`.
fn role_of_session(arn: &str) -> Option<String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[2] != "sts" {
        return None;
    }
    let (role, _session) = parts[5].strip_prefix("assumed-role/")?.split_once('/')?;
    Some(format!("arn:{}:iam::{}:role/{role}", parts[1], parts[4]))
}

/// IAM `ArnLike`: the six parts matched one by one.
fn arn_like(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| glob(p, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(patterns: &[&str], principal: &str) -> bool {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        approval_allowed(&patterns, principal)
    }

    const ALICE: &str = "arn:aws:sts::111122223333:assumed-role/photos-release/alice";

    #[test]
    fn an_exact_arn_allows_only_itself() {
        let user = "arn:aws:iam::111122223333:user/alice";
        assert!(allowed(&[user], user));
        assert!(!allowed(&[user], "arn:aws:iam::111122223333:user/alicia"));
        assert!(!allowed(&[user], "arn:aws:iam::111122223333:user/alice2"));
        assert!(!allowed(&[user], "arn:aws:iam::444455556666:user/alice"));
    }

    #[test]
    fn nobody_approves_without_patterns() {
        assert!(!allowed(&[], ALICE));
    }

    #[test]
    fn a_role_allows_its_sessions() {
        let role = "arn:aws:iam::111122223333:role/photos-release";
        assert!(allowed(&[role], ALICE));
        assert!(allowed(&[role], role));
        assert!(!allowed(
            &[role],
            "arn:aws:sts::111122223333:assumed-role/photos-release-bot/x"
        ));
        assert!(!allowed(
            &[role],
            "arn:aws:sts::444455556666:assumed-role/photos-release/alice"
        ));
    }

    #[test]
    fn a_session_pattern_allows_only_those_sessions() {
        let only_alice = "arn:aws:sts::111122223333:assumed-role/photos-release/alice";
        assert!(allowed(&[only_alice], ALICE));
        assert!(!allowed(
            &[only_alice],
            "arn:aws:sts::111122223333:assumed-role/photos-release/bob"
        ));
    }

    #[test]
    fn wildcards_match_within_one_part() {
        let any_release = "arn:aws:iam::111122223333:role/photos-release-*";
        assert!(allowed(
            &[any_release],
            "arn:aws:sts::111122223333:assumed-role/photos-release-eu/alice"
        ));
        assert!(!allowed(&[any_release], ALICE), "the '-' is literal");
        let one_char = "arn:aws:iam::111122223333:user/ops?";
        assert!(allowed(&[one_char], "arn:aws:iam::111122223333:user/ops1"));
        assert!(!allowed(
            &[one_char],
            "arn:aws:iam::111122223333:user/ops12"
        ));
        // `*` never crosses a colon: a wildcard account in a hand-made pattern stays one part.
        assert!(!allowed(
            &["arn:aws:iam::1111*:role/x"],
            "arn:aws:iam::111122223333:role/y:role/x"
        ));
    }

    #[test]
    fn patterns_must_pin_partition_service_and_account() {
        assert!(check_pattern("arn:aws:iam::111122223333:role/photos-release-*").is_ok());
        assert!(check_pattern("arn:aws:sts::111122223333:assumed-role/r/*").is_ok());
        for bad in [
            "*",
            "alice",
            "arn:aws:iam::*:role/admin",
            "arn:aws:iam::1111222233:role/admin",
            "arn:*:iam::111122223333:role/admin",
            "arn:aws:s3::111122223333:bucket",
            "arn:aws:iam:eu-west-1:111122223333:role/admin",
            "arn:aws:iam::111122223333:*",
            "arn:aws:iam::111122223333:",
        ] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
    }
}
