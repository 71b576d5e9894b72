//! The `[pipeline]` view of `gatekeeper.toml`: the stages one revision goes through, in the
//! order "the idle or less critical environment first", and the gates between them.
//!
//! ```toml
//! service = "photos"
//!
//! [pipeline]
//! name = "photos"                 # default: the service
//!
//! [pipeline.ci]                   # what `gatekeeper pipeline emit` needs to know
//! branch = "main"                 # the branch whose pushes start a run
//! runs_on = "ubuntu-24.04"        # GitHub runner label
//! image = "rust:1.94"             # GitLab job image
//! role_arn = "arn:aws:iam::111122223333:role/photos-deploy"   # assumed through OIDC
//! region = "eu-west-1"
//! install = "cargo install --locked --path gatekeeper"       # puts gatekeeper on PATH
//!
//! [[pipeline.stages]]
//! name = "staging"
//! config = "staging.toml"         # the environment's gatekeeper.toml, beside this file
//! kind = "stack"                  # stack | canary | promote | maintenance
//!
//! [[pipeline.stages]]
//! name = "prod-canary"
//! config = "prod.toml"
//! kind = "canary"
//! needs = ["staging"]
//! approval = ["arn:aws:iam::111122223333:role/photos-release-*"]
//! soak_seconds = 3600             # since the stages it needs finished
//! alarms_clean = true
//! ```
//!
//! The other views of the same text (stacks, canary, `[maintenance]`) accept `[pipeline]`
//! unread because this one owns it; this view reads `service` and `[pipeline]` only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use config::line_col;
use serde::Deserialize;
use toml::Spanned;

/// What a stage does with the pinned revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// synth, plan, stack deploy of the safety rails.
    Stack,
    /// check-config, then a canary run of one node.
    Canary,
    /// Promote the passed canary of the stage it needs to the whole fleet.
    Promote,
    /// Maintenance mode around the stage's work.
    Maintenance,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Stack => "stack",
            Kind::Canary => "canary",
            Kind::Promote => "promote",
            Kind::Maintenance => "maintenance",
        }
    }
}

#[derive(Debug, Deserialize)]
struct View {
    service: Spanned<String>,
    pipeline: Option<RawPipeline>,
    /// Where the pipeline's runs are journaled and locked (`[state]`, as for a canary).
    #[serde(default)]
    state: state::StateConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPipeline {
    name: Option<Spanned<String>>,
    #[serde(default)]
    ci: RawCi,
    #[serde(default)]
    stages: Vec<RawStage>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCi {
    branch: Option<Spanned<String>>,
    runs_on: Option<Spanned<String>>,
    image: Option<Spanned<String>>,
    role_arn: Option<Spanned<String>>,
    region: Option<Spanned<String>>,
    install: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    name: Spanned<String>,
    config: Spanned<String>,
    kind: Spanned<Kind>,
    #[serde(default)]
    needs: Vec<Spanned<String>>,
    #[serde(default)]
    approval: Vec<Spanned<String>>,
    soak_seconds: Option<Spanned<u64>>,
    #[serde(default)]
    alarms_clean: bool,
    role_arn: Option<Spanned<String>>,
}

/// A validated pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// The file the pipeline was read from.
    pub file: PathBuf,
    pub service: String,
    /// Names the run's lock and the CI concurrency group: `[A-Za-z0-9_-]{1,64}`.
    pub name: String,
    pub ci: Ci,
    /// In the file's order.
    pub stages: Vec<Stage>,
    /// `[state]` of the pipeline's file: where its runs live.
    pub state: state::StateConfig,
}

/// What the CI configuration needs beyond the stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ci {
    /// The branch whose pushes start a run.
    pub branch: String,
    /// GitHub runner label.
    pub runs_on: String,
    /// GitLab job image; the runner's default when absent.
    pub image: Option<String>,
    /// The IAM role every job assumes through OIDC; the runner's own credentials when absent.
    pub role_arn: Option<String>,
    pub region: Option<String>,
    /// A shell command that puts `gatekeeper` on PATH; none when the runner has it.
    pub install: Option<String>,
}

/// One stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub name: String,
    /// The environment's `gatekeeper.toml`, as written (relative to the pipeline's file).
    pub config: PathBuf,
    pub kind: Kind,
    pub needs: Vec<String>,
    pub gates: Gates,
    /// `environment` of the stage's configuration (`staging`, `prod`).
    pub environment: String,
    /// `region` of the stage's configuration, else the pipeline's.
    pub region: Option<String>,
    /// The role the stage's CI job assumes, when it is not the pipeline's.
    pub role_arn: Option<String>,
}

/// What must hold before a stage starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gates {
    /// IAM principal ARNs or patterns allowed to approve the stage; none: no approval.
    pub approval: Vec<String>,
    /// Minimum time since the stages it needs finished.
    pub soak_seconds: Option<u64>,
    /// No alarm of the service in ALARM before the stage starts.
    pub alarms_clean: bool,
}

impl Pipeline {
    /// The directory stage configurations are relative to.
    pub fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new(""))
    }

    /// A stage's configuration as a path from the working directory.
    pub fn stage_config_path(&self, stage: &Stage) -> PathBuf {
        self.dir().join(&stage.config)
    }

    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The stages in an order where each comes after every stage it needs; among stages
    /// free to go, the file's order.
    pub fn ordered(&self) -> Vec<&Stage> {
        let mut done: BTreeSet<&str> = BTreeSet::new();
        let mut order = Vec::with_capacity(self.stages.len());
        while order.len() < self.stages.len() {
            let next = self
                .stages
                .iter()
                .find(|s| {
                    !done.contains(s.name.as_str())
                        && s.needs.iter().all(|n| done.contains(n.as_str()))
                })
                .expect("validated: no cycles");
            done.insert(&next.name);
            order.push(next);
        }
        order
    }

    /// The role a stage's CI job assumes, if any.
    pub fn role_for<'a>(&'a self, stage: &'a Stage) -> Option<&'a str> {
        stage.role_arn.as_deref().or(self.ci.role_arn.as_deref())
    }
}

/// A pipeline configuration the user has to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {}{message}", file.display(), key.as_deref().map(|k| format!("{k}: ")).unwrap_or_default())]
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        /// Dotted path of the key at fault (`pipeline.stages[1].needs`).
        key: Option<String>,
        message: String,
    },
}

/// Reads `path` and validates its pipeline view (stage configurations included).
pub fn load(path: &Path) -> Result<Pipeline, ConfigError> {
    let document = config::Document::read(path).map_err(|e| match e {
        config::ReadError::Read { file, source } => ConfigError::Read { file, source },
        config::ReadError::Invalid(e) => e.into(),
    })?;
    view(&document)
}

impl From<config::Error> for ConfigError {
    fn from(e: config::Error) -> ConfigError {
        ConfigError::Invalid {
            file: e.file,
            line: e.line,
            column: e.column,
            key: e.key,
            message: e.message,
        }
    }
}

/// Parses the pipeline view of `text`, read from `file`; stage configurations are read from
/// beside `file`.
pub fn parse(file: &Path, text: &str) -> Result<Pipeline, ConfigError> {
    view(&config::Document::parse(file, text)?)
}

/// The pipeline view of a parsed document, validated; stage configurations are read from
/// beside its file.
pub fn view(document: &config::Document) -> Result<Pipeline, ConfigError> {
    let (file, text) = (document.file(), document.text());
    let view: View = document.view()?;
    let invalid = |key: String, span: Option<std::ops::Range<usize>>, message: String| {
        let (line, column) = line_col(text, span.map_or(0, |s| s.start));
        ConfigError::Invalid {
            file: file.to_path_buf(),
            line,
            column,
            key: Some(key),
            message,
        }
    };
    let Some(raw) = view.pipeline else {
        return Err(invalid(
            "pipeline".into(),
            None,
            "missing table: add a [pipeline] section with [[pipeline.stages]]".into(),
        ));
    };
    let service = view.service.get_ref().clone();
    let name = match &raw.name {
        Some(n) => {
            safe_name(n.get_ref())
                .map_err(|m| invalid("pipeline.name".into(), Some(n.span()), m))?;
            n.get_ref().clone()
        }
        None => {
            safe_name(&service).map_err(|m| {
                invalid(
                    "service".into(),
                    Some(view.service.span()),
                    format!("{m}; or set pipeline.name"),
                )
            })?;
            service.clone()
        }
    };
    let ci = ci(&raw.ci).map_err(|(key, span, m)| invalid(key, Some(span), m))?;
    if raw.stages.is_empty() {
        return Err(invalid(
            "pipeline.stages".into(),
            document.key_span("pipeline"),
            "no stages: add at least one [[pipeline.stages]]".into(),
        ));
    }

    // Names first: every later check refers to them.
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, s) in raw.stages.iter().enumerate() {
        let key = format!("pipeline.stages[{i}].name");
        safe_name(s.name.get_ref()).map_err(|m| invalid(key.clone(), Some(s.name.span()), m))?;
        if let Some(first) = index.insert(s.name.get_ref(), i) {
            return Err(invalid(
                key,
                Some(s.name.span()),
                format!(
                    "stage {:?} is already defined by pipeline.stages[{first}]",
                    s.name.get_ref()
                ),
            ));
        }
    }
    for (i, s) in raw.stages.iter().enumerate() {
        let key = format!("pipeline.stages[{i}].needs");
        let mut seen = BTreeSet::new();
        for n in &s.needs {
            if n.get_ref() == s.name.get_ref() {
                return Err(invalid(
                    key,
                    Some(n.span()),
                    "a stage cannot need itself".into(),
                ));
            }
            if !index.contains_key(n.get_ref().as_str()) {
                return Err(invalid(
                    key,
                    Some(n.span()),
                    format!(
                        "unknown stage {:?}; the stages are {}",
                        n.get_ref(),
                        list(index.keys().copied())
                    ),
                ));
            }
            if !seen.insert(n.get_ref()) {
                return Err(invalid(
                    key,
                    Some(n.span()),
                    format!("stage {:?} is named twice", n.get_ref()),
                ));
            }
        }
    }
    if let Some((i, cycle)) = find_cycle(&raw.stages, &index) {
        let s = &raw.stages[i];
        let closing = s
            .needs
            .iter()
            .find(|n| n.get_ref() == &cycle[1])
            .map(|n| n.span());
        return Err(invalid(
            format!("pipeline.stages[{i}].needs"),
            closing,
            format!("cycle: {}", cycle.join(" needs ")),
        ));
    }

    let dir = file.parent().unwrap_or(Path::new(""));
    let mut stages = Vec::with_capacity(raw.stages.len());
    for (i, s) in raw.stages.iter().enumerate() {
        let key = |field: &str| format!("pipeline.stages[{i}].{field}");
        let config = PathBuf::from(s.config.get_ref());
        let path = dir.join(&config);
        if config.is_absolute() {
            return Err(invalid(
                key("config"),
                Some(s.config.span()),
                "write the path relative to this file, so that every runner finds it".into(),
            ));
        }
        let loaded = match stacks::config::load(&path) {
            Ok(l) => l,
            Err(stacks::config::LoadError::Read { source, .. }) => {
                return Err(invalid(
                    key("config"),
                    Some(s.config.span()),
                    format!("{}: cannot read: {source}", path.display()),
                ))
            }
            Err(stacks::config::LoadError::Invalid(e)) => {
                return Err(invalid(
                    key("config"),
                    Some(s.config.span()),
                    format!("not a valid gatekeeper.toml: {e}"),
                ))
            }
        };
        let stage_service = loaded.config.service.get_ref();
        if *stage_service != service {
            return Err(invalid(
                key("config"),
                Some(s.config.span()),
                format!(
                    "{} configures service {stage_service:?}, this pipeline service {service:?}",
                    path.display()
                ),
            ));
        }
        if *s.kind.get_ref() == Kind::Promote {
            let promotes = s.needs.iter().any(|n| {
                let other = &raw.stages[index[n.get_ref().as_str()]];
                *other.kind.get_ref() == Kind::Canary
                    && other.config.get_ref() == s.config.get_ref()
            });
            if !promotes {
                return Err(invalid(
                    key("needs"),
                    Some(s.kind.span()),
                    format!(
                        "a promote stage promotes a passed canary: it needs a canary stage on \
                         the same config ({})",
                        s.config.get_ref()
                    ),
                ));
            }
        }
        for (j, pattern) in s.approval.iter().enumerate() {
            crate::approval::check_pattern(pattern.get_ref()).map_err(|m| {
                invalid(format!("{}[{j}]", key("approval")), Some(pattern.span()), m)
            })?;
        }
        if let Some(soak) = &s.soak_seconds {
            if s.needs.is_empty() {
                return Err(invalid(
                    key("soak_seconds"),
                    Some(soak.span()),
                    "a soak waits after the stages a stage needs, and this one needs none".into(),
                ));
            }
        }
        if let Some(role) = &s.role_arn {
            role_arn(role.get_ref()).map_err(|m| invalid(key("role_arn"), Some(role.span()), m))?;
        }
        stages.push(Stage {
            name: s.name.get_ref().clone(),
            config,
            kind: *s.kind.get_ref(),
            needs: s.needs.iter().map(|n| n.get_ref().clone()).collect(),
            gates: Gates {
                approval: s.approval.iter().map(|p| p.get_ref().clone()).collect(),
                soak_seconds: s.soak_seconds.as_ref().map(|s| *s.get_ref()),
                alarms_clean: s.alarms_clean,
            },
            environment: loaded.config.environment.get_ref().clone(),
            region: loaded.config.region.clone().or_else(|| ci.region.clone()),
            role_arn: s.role_arn.as_ref().map(|r| r.get_ref().clone()),
        });
    }
    if ci.role_arn.is_some() || stages.iter().any(|s| s.role_arn.is_some()) {
        if let Some(s) = stages.iter().find(|s| s.region.is_none()) {
            let i = index[s.name.as_str()];
            return Err(invalid(
                "pipeline.ci.region".into(),
                Some(raw.stages[i].name.span()),
                format!(
                    "stage {:?} assumes a role but knows no region: set pipeline.ci.region or \
                     region in {}",
                    s.name,
                    s.config.display()
                ),
            ));
        }
    }
    view.state
        .validate()
        .map_err(|(key, message)| invalid(format!("state.{key}"), None, message))?;
    Ok(Pipeline {
        file: file.to_path_buf(),
        service,
        name,
        ci,
        stages,
        state: view.state,
    })
}

type Problem = (String, std::ops::Range<usize>, String);

fn ci(raw: &RawCi) -> Result<Ci, Problem> {
    let text =
        |field: &str, v: &Option<Spanned<String>>, check: fn(&str) -> Result<(), String>| match v {
            Some(s) => check(s.get_ref())
                .map(|()| Some(s.get_ref().clone()))
                .map_err(|m| (format!("pipeline.ci.{field}"), s.span(), m)),
            None => Ok(None),
        };
    Ok(Ci {
        branch: text("branch", &raw.branch, branch)?.unwrap_or_else(|| "main".into()),
        runs_on: text("runs_on", &raw.runs_on, label)?.unwrap_or_else(|| "ubuntu-24.04".into()),
        image: text("image", &raw.image, label)?,
        role_arn: text("role_arn", &raw.role_arn, role_arn)?,
        region: text("region", &raw.region, region)?,
        install: text("install", &raw.install, install)?,
    })
}

/// `[A-Za-z0-9_-]{1,64}`: stage and pipeline names become CI job names, lock keys and file
/// names.
pub fn safe_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("{name:?}: a name has 1 to 64 characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(format!(
            "{name:?}: {c:?} is not allowed; use letters, digits, '-' and '_'"
        ));
    }
    Ok(())
}

/// A git branch name simple enough to write into a CI rule unquoted.
fn branch(b: &str) -> Result<(), String> {
    let ok = !b.is_empty()
        && !b.starts_with(['-', '/', '.'])
        && !b.contains("..")
        && b.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{b:?}: use letters, digits and '-', '_', '.', '/' in a branch name"
        ))
    }
}

/// A runner label or image name: no spaces, no expressions.
fn label(l: &str) -> Result<(), String> {
    let ok = !l.is_empty()
        && l.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':' | '@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{l:?}: use letters, digits and '-', '_', '.', '/', ':', '@'"
        ))
    }
}

fn region(r: &str) -> Result<(), String> {
    let ok = !r.is_empty()
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!("{r:?} is not an AWS region (eu-west-1)"))
    }
}

/// An IAM role ARN, literally: no wildcards, nothing a CI platform would expand.
fn role_arn(arn: &str) -> Result<(), String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && crate::approval::PARTITIONS.contains(&parts[1])
        && parts[2] == "iam"
        && parts[3].is_empty()
        && crate::approval::is_account(parts[4])
        && parts[5].starts_with("role/")
        && parts[5].len() > "role/".len()
        && parts[5].chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '+' | '=' | ',' | '.' | '@' | '_' | '-' | '/')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{arn:?} is not an IAM role ARN (arn:aws:iam::111122223333:role/photos-deploy)"
        ))
    }
}

/// The install command runs as written: it may not hold a CI expression.
fn install(cmd: &str) -> Result<(), String> {
    if cmd.trim().is_empty() {
        return Err("an empty command: leave install out when the runner has gatekeeper".into());
    }
    if cmd.contains("${{") || cmd.contains("$[[") {
        return Err(
            "a CI expression in a shell command is a template injection: pass values through \
             the environment"
                .into(),
        );
    }
    Ok(())
}

/// One cycle among the stages' `needs`, as the stage that closes it and the names along it
/// (first name repeated at the end).
fn find_cycle(stages: &[RawStage], index: &BTreeMap<&str, usize>) -> Option<(usize, Vec<String>)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        i: usize,
        stages: &[RawStage],
        index: &BTreeMap<&str, usize>,
        marks: &mut [Mark],
        path: &mut Vec<usize>,
    ) -> Option<(usize, Vec<String>)> {
        marks[i] = Mark::Open;
        path.push(i);
        for n in &stages[i].needs {
            let j = index[n.get_ref().as_str()];
            match marks[j] {
                Mark::Open => {
                    let from = path
                        .iter()
                        .position(|&p| p == j)
                        .expect("open is on the path");
                    let mut names: Vec<String> = path[from..]
                        .iter()
                        .map(|&p| stages[p].name.get_ref().clone())
                        .collect();
                    names.push(stages[j].name.get_ref().clone());
                    // Reported at the stage on the cycle that comes first in the file.
                    let first = (0..names.len() - 1)
                        .min_by_key(|&k| index[names[k].as_str()])
                        .expect("a cycle has a stage");
                    let mut rotated: Vec<String> = names[first..names.len() - 1].to_vec();
                    rotated.extend_from_slice(&names[..first]);
                    rotated.push(rotated[0].clone());
                    return Some((index[rotated[0].as_str()], rotated));
                }
                Mark::New => {
                    if let Some(c) = visit(j, stages, index, marks, path) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        path.pop();
        marks[i] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; stages.len()];
    for i in 0..stages.len() {
        if marks[i] == Mark::New {
            if let Some(c) = visit(i, stages, index, &mut marks, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory with the photos environments and a pipeline file written into it.
    struct Fixture {
        dir: tempfile::TempDir,
    }

    const STAGING: &str = "service = \"photos\"\nenvironment = \"staging\"\n";
    const PROD: &str = "service = \"photos\"\nenvironment = \"prod\"\nregion = \"eu-west-1\"\n";

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("staging.toml"), STAGING).unwrap();
            std::fs::write(dir.path().join("prod.toml"), PROD).unwrap();
            Fixture { dir }
        }

        fn parse(&self, text: &str) -> Result<Pipeline, ConfigError> {
            parse(&self.dir.path().join("pipeline.toml"), text)
        }

        /// `(line, column, key, message)` of an error.
        fn error(&self, text: &str) -> (usize, usize, String, String) {
            match self.parse(text).unwrap_err() {
                ConfigError::Invalid {
                    line,
                    column,
                    key,
                    message,
                    ..
                } => (line, column, key.unwrap_or_default(), message),
                other => panic!("{other}"),
            }
        }
    }

    const THREE: &str = r#"service = "photos"

[pipeline]

[[pipeline.stages]]
name = "staging"
config = "staging.toml"
kind = "stack"

[[pipeline.stages]]
name = "prod-canary"
config = "prod.toml"
kind = "canary"
needs = ["staging"]
approval = ["arn:aws:iam::111122223333:role/photos-release-*"]
soak_seconds = 3600
alarms_clean = true

[[pipeline.stages]]
name = "promote"
config = "prod.toml"
kind = "promote"
needs = ["prod-canary"]
"#;

    #[test]
    fn three_stages_are_read_with_their_gates_and_environments() {
        let f = Fixture::new();
        let p = f.parse(THREE).unwrap();
        assert_eq!(p.name, "photos");
        assert_eq!(p.ci.branch, "main");
        let names: Vec<_> = p.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["staging", "prod-canary", "promote"]);
        let canary = p.stage("prod-canary").unwrap();
        assert_eq!(canary.kind, Kind::Canary);
        assert_eq!(canary.needs, ["staging"]);
        assert_eq!(canary.environment, "prod");
        assert_eq!(canary.region.as_deref(), Some("eu-west-1"));
        assert_eq!(
            canary.gates,
            Gates {
                approval: vec!["arn:aws:iam::111122223333:role/photos-release-*".into()],
                soak_seconds: Some(3600),
                alarms_clean: true,
            }
        );
        assert_eq!(p.stage("staging").unwrap().gates, Gates::default());
        assert_eq!(p.stage_config_path(canary), f.dir.path().join("prod.toml"));
    }

    #[test]
    fn the_stacks_view_accepts_the_pipeline_table_this_view_owns() {
        let f = Fixture::new();
        // [pipeline] inside an environment's own file: both views read the same text.
        let text = format!(
            "{PROD}\n{}",
            THREE.trim_start_matches("service = \"photos\"\n")
        );
        stacks::config::parse(Path::new("prod.toml"), &text).expect("stacks ignores [pipeline]");
        f.parse(&text).expect("this view reads it");
        // A typo the stacks view lets through is this view's to refuse.
        let typo = text.replace("alarms_clean", "alarm_clean");
        stacks::config::parse(Path::new("prod.toml"), &typo).expect("stacks does not read it");
        let (line, _, key, message) = f.error(&typo);
        assert_eq!(key, "pipeline.stages[1].alarm_clean");
        assert!(
            message.starts_with("unknown field `alarm_clean`"),
            "{message}"
        );
        assert_eq!(
            line,
            typo.lines()
                .position(|l| l.starts_with("alarm_clean"))
                .unwrap()
                + 1
        );
    }

    #[test]
    fn the_order_puts_each_stage_after_what_it_needs() {
        let f = Fixture::new();
        let text = r#"service = "photos"
[pipeline]
[[pipeline.stages]]
name = "promote"
config = "prod.toml"
kind = "promote"
needs = ["canary"]
[[pipeline.stages]]
name = "canary"
config = "prod.toml"
kind = "canary"
needs = ["staging"]
[[pipeline.stages]]
name = "staging"
config = "staging.toml"
kind = "stack"
[[pipeline.stages]]
name = "docs"
config = "staging.toml"
kind = "stack"
"#;
        let p = f.parse(text).unwrap();
        let order: Vec<_> = p.ordered().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(order, ["staging", "canary", "promote", "docs"]);
    }

    #[test]
    fn an_unknown_key_is_located_with_its_stage_index() {
        let f = Fixture::new();
        let text = THREE.replace("kind = \"promote\"", "kind = \"promote\"\ngate = true");
        let (line, column, key, message) = f.error(&text);
        assert_eq!(key, "pipeline.stages[2].gate");
        assert_eq!((line, column), (23, 1));
        assert!(message.starts_with("unknown field `gate`"), "{message}");
        let text = THREE.replace("[pipeline]\n", "[pipeline]\nstages_order = 1\n");
        assert_eq!(f.error(&text).2, "pipeline.stages_order");
    }

    #[test]
    fn a_missing_field_and_a_bad_kind_are_located() {
        let f = Fixture::new();
        let text = THREE.replace("kind = \"canary\"\n", "");
        let (line, _, key, _) = f.error(&text);
        assert_eq!((line, key.as_str()), (10, "pipeline.stages[1].kind"));
        let text = THREE.replace("kind = \"canary\"", "kind = \"blue-green\"");
        let (line, _, key, message) = f.error(&text);
        assert_eq!((line, key.as_str()), (13, "pipeline.stages[1].kind"));
        assert!(message.contains("blue-green"), "{message}");
    }

    #[test]
    fn needs_must_name_a_known_stage_once_and_not_itself() {
        let f = Fixture::new();
        let (line, column, key, message) =
            f.error(&THREE.replace("needs = [\"staging\"]", "needs = [\"stagign\"]"));
        assert_eq!(key, "pipeline.stages[1].needs");
        assert_eq!((line, column), (14, 10));
        assert_eq!(
            message,
            "unknown stage \"stagign\"; the stages are \"prod-canary\", \"promote\", \"staging\""
        );
        let (_, _, _, message) =
            f.error(&THREE.replace("needs = [\"staging\"]", "needs = [\"prod-canary\"]"));
        assert_eq!(message, "a stage cannot need itself");
        let (_, _, _, message) = f.error(&THREE.replace(
            "needs = [\"staging\"]",
            "needs = [\"staging\", \"staging\"]",
        ));
        assert_eq!(message, "stage \"staging\" is named twice");
    }

    #[test]
    fn a_cycle_is_refused_and_named() {
        let f = Fixture::new();
        let text = THREE.replace(
            "kind = \"stack\"\n",
            "kind = \"stack\"\nneeds = [\"promote\"]\n",
        );
        let (line, column, key, message) = f.error(&text);
        assert_eq!(key, "pipeline.stages[0].needs");
        assert_eq!((line, column), (9, 10));
        assert_eq!(
            message,
            "cycle: staging needs promote needs prod-canary needs staging"
        );
    }

    #[test]
    fn names_are_safe_and_unique() {
        let f = Fixture::new();
        let (line, column, key, message) =
            f.error(&THREE.replace("name = \"promote\"", "name = \"prod canary\""));
        assert_eq!(key, "pipeline.stages[2].name");
        assert_eq!((line, column), (20, 8));
        assert!(message.contains("' ' is not allowed"), "{message}");
        let long = "a".repeat(65);
        let (_, _, key, message) =
            f.error(&THREE.replace("name = \"promote\"", &format!("name = \"{long}\"")));
        assert_eq!(key, "pipeline.stages[2].name");
        assert!(message.contains("1 to 64"), "{message}");
        assert!(
            f.parse(&THREE.replace("name = \"promote\"", &format!("name = \"{}\"", &long[1..])))
                .is_ok(),
            "64 is fine"
        );
        let (_, _, key, message) =
            f.error(&THREE.replace("name = \"promote\"", "name = \"staging\""));
        assert_eq!(key, "pipeline.stages[2].name");
        assert_eq!(
            message,
            "stage \"staging\" is already defined by pipeline.stages[0]"
        );
    }

    #[test]
    fn a_stage_config_must_exist_be_valid_and_be_of_this_service() {
        let f = Fixture::new();
        let (line, column, key, message) =
            f.error(&THREE.replace("config = \"staging.toml\"", "config = \"stagin.toml\""));
        assert_eq!(key, "pipeline.stages[0].config");
        assert_eq!((line, column), (7, 10));
        assert!(message.contains("stagin.toml: cannot read"), "{message}");
        std::fs::write(
            f.dir.path().join("staging.toml"),
            "service = \"videos\"\nenvironment = \"staging\"\n",
        )
        .unwrap();
        let (_, _, key, message) = f.error(THREE);
        assert_eq!(key, "pipeline.stages[0].config");
        assert!(
            message.ends_with("configures service \"videos\", this pipeline service \"photos\""),
            "{message}"
        );
        std::fs::write(f.dir.path().join("staging.toml"), "service = \"photos\"\n").unwrap();
        let (_, _, _, message) = f.error(THREE);
        assert!(
            message.starts_with("not a valid gatekeeper.toml: "),
            "{message}"
        );
        assert!(message.contains("environment"), "{message}");
    }

    #[test]
    fn a_promote_stage_needs_the_canary_it_promotes() {
        let f = Fixture::new();
        let (_, _, key, message) =
            f.error(&THREE.replace("needs = [\"prod-canary\"]", "needs = [\"staging\"]"));
        assert_eq!(key, "pipeline.stages[2].needs");
        assert!(
            message.starts_with("a promote stage promotes a passed canary"),
            "{message}"
        );
    }

    #[test]
    fn gates_are_checked() {
        let f = Fixture::new();
        let (line, column, key, message) = f.error(&THREE.replace(
            "role/photos-release-*",
            "role/photos-release-*\", \"arn:aws:iam::*:role/admin",
        ));
        assert_eq!(key, "pipeline.stages[1].approval[1]");
        assert_eq!((line, column), (15, 64));
        assert!(message.contains("account"), "{message}");
        let (_, _, key, message) = f.error(&THREE.replace(
            "kind = \"stack\"\n",
            "kind = \"stack\"\nsoak_seconds = 60\n",
        ));
        assert_eq!(key, "pipeline.stages[0].soak_seconds");
        assert!(message.contains("needs none"), "{message}");
        let (_, _, key, _) = f.error(&THREE.replace("soak_seconds = 3600", "soak_seconds = -1"));
        assert_eq!(key, "pipeline.stages[1].soak_seconds");
    }

    #[test]
    fn ci_settings_are_checked() {
        let f = Fixture::new();
        let with_ci = |ci: &str| THREE.replace("[pipeline]\n", &format!("[pipeline.ci]\n{ci}\n"));
        let (_, _, key, message) = f.error(&with_ci("install = \"echo ${{ github.head_ref }}\""));
        assert_eq!(key, "pipeline.ci.install");
        assert!(message.contains("template injection"), "{message}");
        let (_, _, key, _) = f.error(&with_ci("branch = \"main; rm -rf /\""));
        assert_eq!(key, "pipeline.ci.branch");
        let (_, _, key, _) = f.error(&with_ci("role_arn = \"arn:aws:iam::111122223333:user/x\""));
        assert_eq!(key, "pipeline.ci.role_arn");
        // A role without a region for staging (whose config has none).
        let (_, _, key, message) = f.error(&with_ci(
            "role_arn = \"arn:aws:iam::111122223333:role/deploy\"",
        ));
        assert_eq!(key, "pipeline.ci.region");
        assert!(message.contains("\"staging\""), "{message}");
        let p = f
            .parse(&with_ci(
                "role_arn = \"arn:aws:iam::111122223333:role/deploy\"\nregion = \"us-east-1\"",
            ))
            .unwrap();
        assert_eq!(
            p.stage("staging").unwrap().region.as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            p.stage("promote").unwrap().region.as_deref(),
            Some("eu-west-1")
        );
    }

    #[test]
    fn a_file_without_stages_is_refused() {
        let f = Fixture::new();
        let (line, _, key, message) = f.error("service = \"photos\"\n");
        assert_eq!((line, key.as_str()), (1, "pipeline"));
        assert!(message.contains("[pipeline]"), "{message}");
        let (line, _, key, _) = f.error("service = \"photos\"\n[pipeline]\nname = \"p\"\n");
        assert_eq!((line, key.as_str()), (2, "pipeline.stages"));
    }

    #[test]
    fn the_error_reads_file_line_column_key_message() {
        let f = Fixture::new();
        let err = f
            .parse(&THREE.replace("needs = [\"staging\"]", "needs = [\"nope\"]"))
            .unwrap_err()
            .to_string();
        let file = f.dir.path().join("pipeline.toml");
        assert!(
            err.starts_with(&format!(
                "{}:14:10: pipeline.stages[1].needs: unknown stage \"nope\"",
                file.display()
            )),
            "{err}"
        );
    }
}
