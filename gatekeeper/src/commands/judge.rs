//! `gatekeeper judge`: replay an exported stream of canary intervals through the judge, as
//! if live, to see what it would have decided and when.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use canary::judge::{self, JudgeConfig, Kind, Method, ReplayError, Report, Verdict};

use crate::commands::common::OutputOrMarkdown as Output;
use crate::ExitStatus;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Intervals to replay, JSON lines in t order: {"t": <seconds>, "group":
    /// "baseline"|"canary", "requests": <int>, "errors": <int>, "latency_ms": [<samples>]}
    /// (latency optional). Read a line at a time.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// How the judge weighs the evidence [default: sequential, or the config's].
    #[arg(long, value_enum)]
    pub method: Option<MethodArg>,
    /// Bound on the chance that a canary no worse than the baseline fails [default: 0.05, or
    /// the config's].
    #[arg(long)]
    pub alpha: Option<f64>,
    /// gatekeeper.toml whose `[canary.judge]` table configures the judge; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How to render the report.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

/// `--method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// Anytime-valid sequential tests, checked every interval.
    Sequential,
    /// Kayenta's fixed-horizon Mann-Whitney U test, judged at the end.
    MannWhitney,
}

impl From<MethodArg> for Method {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::Sequential => Method::Sequential,
            MethodArg::MannWhitney => Method::MannWhitney,
        }
    }
}

pub fn run(args: &Args, out: &mut dyn Write) -> anyhow::Result<ExitStatus> {
    let adjust = |config: &mut JudgeConfig| {
        if let Some(method) = args.method {
            config.method = method.into();
        }
        if let Some(alpha) = args.alpha {
            config.alpha = alpha;
        }
    };
    let config = match &args.config {
        Some(path) => canary::config::judge_view(&::config::Document::read(path)?, adjust)?,
        None => {
            let mut config = JudgeConfig::default();
            adjust(&mut config);
            config.validate()?;
            config
        }
    };

    // Read a line at a time: the judge holds one interval, whatever the input's size.
    let input = std::fs::File::open(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let report = judge::replay(&config, std::io::BufReader::new(input)).map_err(|e| match e {
        ReplayError::Line(e) => {
            anyhow::anyhow!("{}:{}: {}", args.input.display(), e.line, e.message)
        }
        other => anyhow::anyhow!("{}: {other}", args.input.display()),
    })?;

    match args.output {
        Output::Text => write!(out, "{report}")?,
        Output::Json => writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?,
        Output::Markdown => write!(out, "{}", markdown(&report))?,
    }
    Ok(match report.verdict {
        Some(Verdict::Pass) => ExitStatus::Success,
        _ => ExitStatus::Changes,
    })
}

fn markdown(report: &Report) -> String {
    let verdict = report.verdict.map_or("undecided", Verdict::as_str);
    let at = report
        .decided_at
        .map(|t| format!(" at t={t}"))
        .unwrap_or_default();
    let by = report
        .decided_by
        .as_ref()
        .map(|m| format!(", decided by `{m}`"))
        .unwrap_or_default();
    let mut s = format!(
        "### Canary judge: **{verdict}**{at}{by}\n\n{}\n\n| metric | status | canary | baseline | estimate | bounds | tolerated | why |\n|---|---|---|---|---|---|---|---|\n",
        report.reason
    );
    for m in &report.metrics {
        let value = |v: Option<f64>| match (m.kind, v) {
            (_, None) => "-".to_string(),
            (Kind::Count, Some(v)) => format!("{:.3}%", v * 100.0),
            (Kind::Continuous, Some(v)) => format!("{v:.1} ms"),
        };
        let ratio = |v: Option<f64>| v.map_or("-".to_string(), |r| format!("{r:.2}x"));
        let bounds = m.interval.map_or("-".to_string(), |b| {
            format!("{} .. {}", ratio(b.lower), ratio(b.upper))
        });
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            m.name,
            m.status.as_str(),
            value(m.canary_value),
            value(m.baseline_value),
            ratio(m.estimate),
            bounds,
            ratio(Some(m.threshold)),
            m.reason.replace('|', "\\|")
        ));
    }
    s
}
