//! Rules for the names in `gatekeeper.toml`, checked before anything is built, so a bad name
//! is reported with its line instead of failing a deploy half-way.

use std::collections::BTreeMap;
use std::ops::Range;

use toml::Spanned;

use crate::config::Config;
use crate::rails::logical_id;

/// A rule broken by a value of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub key: String,
    pub span: Range<usize>,
    pub message: String,
}

fn fail<T>(key: impl Into<String>, at: &Spanned<T>, message: impl Into<String>) -> Violation {
    Violation {
        key: key.into(),
        span: at.span(),
        message: message.into(),
    }
}

/// `photos`, `prod`: lower-case letters, digits and hyphens, starting with a letter, at most 24
/// characters (they end up inside bucket names, which are short).
pub fn short_name(value: &str) -> Result<(), String> {
    let ok = (1..=24).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_lowercase())
        && !value.ends_with('-')
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{value}` must be 1 to 24 lower-case letters, digits or hyphens, starting with a letter and not ending with a hyphen"
        ))
    }
}

/// S3 bucket naming rules (general purpose buckets).
pub fn bucket_name(value: &str) -> Result<(), String> {
    let err = |why: &str| Err(format!("`{value}` is not a valid S3 bucket name: {why}"));
    if !(3..=63).contains(&value.len()) {
        return err("it must be 3 to 63 characters long");
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
    {
        return err("only lower-case letters, digits, dots and hyphens are allowed");
    }
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !value.starts_with(alnum) || !value.ends_with(alnum) {
        return err("it must begin and end with a letter or digit");
    }
    if value.contains("..") || value.contains(".-") || value.contains("-.") {
        return err("dots may not be adjacent to each other or to hyphens");
    }
    if value.split('.').count() == 4 && value.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return err("it must not look like an IP address");
    }
    for prefix in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if value.starts_with(prefix) {
            return err(&format!("it must not start with `{prefix}`"));
        }
    }
    for suffix in ["-s3alias", "--ol-s3", "--x-s3", "--table-s3", ".mrap"] {
        if value.ends_with(suffix) {
            return err(&format!("it must not end with `{suffix}`"));
        }
    }
    Ok(())
}

/// SSM parameter names: a path of at most 15 levels and 1011 characters, of letters, digits
/// and `_.-/`, not under `/aws` or `/ssm`.
pub fn parameter_name(value: &str) -> Result<(), String> {
    let err = |why: &str| {
        Err(format!(
            "`{value}` is not a valid SSM parameter name: {why}"
        ))
    };
    if !value.starts_with('/') {
        return err("a hierarchical name must start with `/`");
    }
    if value.len() > 1011 {
        return err("it is longer than 1011 characters");
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
    {
        return err("only letters, digits and `_.-/` are allowed");
    }
    if value.ends_with('/') || value.contains("//") {
        return err("it must not end with `/` or contain an empty level");
    }
    if value.matches('/').count() > 15 {
        return err("it has more than 15 levels");
    }
    let first = value[1..]
        .split('/')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if first.starts_with("aws") || first.starts_with("ssm") {
        return err("names under `/aws` and `/ssm` are reserved");
    }
    Ok(())
}

/// SQS queue names: 1 to 80 letters, digits, hyphens and underscores (`.fifo` suffix aside).
pub fn queue_name(value: &str) -> Result<(), String> {
    let base = value.strip_suffix(".fifo").unwrap_or(value);
    if value.is_empty() || value.len() > 80 {
        return Err(format!(
            "queue name `{value}` is {} characters; SQS allows 1 to 80",
            value.len()
        ));
    }
    if !base
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "queue name `{value}` may only hold letters, digits, hyphens and underscores"
        ));
    }
    Ok(())
}

fn stack_name(value: &str) -> Result<(), String> {
    let ok = (1..=128).contains(&value.len())
        && value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{value}` is not a valid stack name: 1 to 128 letters, digits and hyphens, starting with a letter"
        ))
    }
}

fn email(value: &str) -> Result<(), String> {
    match value.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && domain.contains('.')
                && !value.contains(char::is_whitespace) =>
        {
            Ok(())
        }
        _ => Err(format!("`{value}` is not an e-mail address")),
    }
}

fn arn_suffix(value: &str, kind: &str) -> Result<(), String> {
    let parts: Vec<&str> = value.split('/').collect();
    let ok = match kind {
        "load_balancer" => parts.len() == 3 && matches!(parts[0], "app" | "net" | "gwy"),
        _ => parts.len() == 3 && parts[0] == "targetgroup",
    };
    if ok && parts.iter().all(|p| !p.is_empty()) {
        Ok(())
    } else {
        let shape = if kind == "load_balancer" {
            "app/<name>/<id>"
        } else {
            "targetgroup/<name>/<id>"
        };
        Err(format!(
            "`{value}` is not an ARN suffix of the form `{shape}` (the CloudWatch dimension value)"
        ))
    }
}

fn statistic(value: &str) -> Result<(), String> {
    let simple = ["Average", "Sum", "Minimum", "Maximum", "SampleCount"];
    let percentile = value
        .strip_prefix('p')
        .and_then(|p| p.parse::<f64>().ok())
        .is_some_and(|p| (0.0..=100.0).contains(&p));
    if simple.contains(&value) || percentile {
        Ok(())
    } else {
        Err(format!(
            "`{value}` is not a statistic: use Average, Sum, Minimum, Maximum, SampleCount or a percentile like p99"
        ))
    }
}

/// Every rule over a parsed configuration; the first violation wins.
pub fn config(c: &Config) -> Result<(), Violation> {
    let check = |key: &str, at: &Spanned<String>, rule: fn(&str) -> Result<(), String>| {
        rule(at.get_ref()).map_err(|m| fail(key, at, m))
    };
    check("service", &c.service, short_name)?;
    check("environment", &c.environment, short_name)?;
    if let Some(name) = &c.stack.name {
        check("stack.name", name, stack_name)?;
    }
    if let Some(p) = &c.flag.parameter {
        check("flag.parameter", p, parameter_name)?;
    } else {
        parameter_name(&c.flag_parameter()).map_err(|m| fail("service", &c.service, m))?;
    }
    for (key, name) in [
        ("buckets.ingestion", &c.buckets.ingestion),
        ("buckets.parking_lot", &c.buckets.parking_lot),
    ] {
        match name {
            Some(n) => check(key, n, bucket_name)?,
            // The default name adds `-<12-digit account>-<region of up to 14>` to the prefix.
            None => {
                let longest = format!("{}-parking-123456789012-ap-southeast-4", c.prefix());
                bucket_name(&longest).map_err(|m| {
                    fail(
                        "service",
                        &c.service,
                        format!("the default bucket name would be invalid ({m}); set `{key}`"),
                    )
                })?;
            }
        }
    }
    if let (Some(a), Some(b)) = (&c.buckets.ingestion, &c.buckets.parking_lot) {
        if a.get_ref() == b.get_ref() {
            return Err(fail(
                "buckets.parking_lot",
                b,
                "the parking lot must be a different bucket from the ingestion bucket",
            ));
        }
    }
    let days = &c.buckets.noncurrent_version_days;
    if *days.get_ref() == 0 {
        return Err(fail(
            "buckets.noncurrent_version_days",
            days,
            "must be at least 1 day",
        ));
    }

    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    for (i, q) in c.queues.iter().enumerate() {
        let key = format!("queues[{i}].name");
        check(&key, &q.name, short_name)?;
        for full in [c.queue_name(q), c.dlq_name(q)] {
            queue_name(&full).map_err(|m| fail(&key, &q.name, m))?;
        }
        let id = logical_id("Queue", q.name.get_ref());
        if let Some(other) = seen.insert(id, q.name.get_ref().clone()) {
            return Err(fail(
                &key,
                &q.name,
                format!(
                    "queue `{}` is declared twice (as `{other}`)",
                    q.name.get_ref()
                ),
            ));
        }
        for (field, v) in [
            ("max_receive_count", &q.max_receive_count),
            ("visibility_timeout_seconds", &q.visibility_timeout_seconds),
        ] {
            let (lo, hi) = if field == "max_receive_count" {
                (1, 1000)
            } else {
                (0, 43_200)
            };
            if !(lo..=hi).contains(v.get_ref()) {
                return Err(fail(
                    format!("queues[{i}].{field}"),
                    v,
                    format!("{} is out of range {lo}..={hi}", v.get_ref()),
                ));
            }
        }
    }

    for (i, e) in c.alarms.emails.iter().enumerate() {
        check(&format!("alarms.emails[{i}]"), e, email)?;
    }
    let mut alarm_names = BTreeMap::new();
    for (i, tg) in c.target_groups.iter().enumerate() {
        check(&format!("target_groups[{i}].name"), &tg.name, short_name)?;
        arn_suffix(tg.load_balancer.get_ref(), "load_balancer").map_err(|m| {
            fail(
                format!("target_groups[{i}].load_balancer"),
                &tg.load_balancer,
                m,
            )
        })?;
        arn_suffix(tg.target_group.get_ref(), "target_group").map_err(|m| {
            fail(
                format!("target_groups[{i}].target_group"),
                &tg.target_group,
                m,
            )
        })?;
        if alarm_names
            .insert(format!("tg-{}", tg.name.get_ref()), ())
            .is_some()
        {
            return Err(fail(
                format!("target_groups[{i}].name"),
                &tg.name,
                "target group declared twice",
            ));
        }
    }
    for (i, a) in c.alarms.custom.iter().enumerate() {
        check(&format!("alarms.custom[{i}].name"), &a.name, short_name)?;
        check(
            &format!("alarms.custom[{i}].statistic"),
            &a.statistic,
            statistic,
        )?;
        let threshold = *a.threshold.get_ref();
        if !threshold.is_finite() {
            return Err(fail(
                format!("alarms.custom[{i}].threshold"),
                &a.threshold,
                format!("{threshold} is not a number CloudWatch can compare with: give a finite threshold"),
            ));
        }
        if alarm_names.insert(a.name.get_ref().clone(), ()).is_some() {
            return Err(fail(
                format!("alarms.custom[{i}].name"),
                &a.name,
                "alarm declared twice",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        assert!(bucket_name("photos-prod-ingestion").is_ok());
        assert!(bucket_name("a.b-c").is_ok());
        for bad in [
            "ab",
            "Photos",
            "under_score",
            "-start",
            "end-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "xn--abc",
            "bucket-s3alias",
            &"a".repeat(64),
        ] {
            assert!(bucket_name(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn parameter_names() {
        assert!(parameter_name("/photos/prod/maintenance").is_ok());
        for bad in [
            "photos/prod",
            "/photos/prod/",
            "/a//b",
            "/aws/x",
            "/SSM/x",
            "/has space",
            "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p",
        ] {
            assert!(parameter_name(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn queue_names() {
        assert!(queue_name("photos-prod-ingest").is_ok());
        assert!(queue_name("photos-prod-ingest.fifo").is_ok());
        assert!(queue_name(&"q".repeat(81)).is_err());
        assert!(queue_name("has.dot").is_err());
    }

    #[test]
    fn short_names() {
        assert!(short_name("photos").is_ok());
        assert!(short_name("p2-x").is_ok());
        for bad in [
            "",
            "Photos",
            "2photos",
            "photos-",
            "pho_tos",
            "a-very-long-service-name-x",
        ] {
            assert!(short_name(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn statistics() {
        assert!(statistic("p99").is_ok());
        assert!(statistic("p99.9").is_ok());
        assert!(statistic("Average").is_ok());
        assert!(statistic("avg").is_err());
        assert!(statistic("p101").is_err());
    }
}
