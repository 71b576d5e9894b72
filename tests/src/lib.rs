//! Helpers for the end-to-end tests in `tests/`: where the binary is, and how to reach moto.

pub mod fault;
pub mod fleet;

/// For [`assert_cli_snapshot!`].
pub use insta;

use std::path::PathBuf;
use std::process::Command;

/// Path of the `gatekeeper` binary built by the same `cargo test` run.
///
/// `cargo test --workspace` builds every member's binaries before any test runs; the test
/// executables live in `target/<profile>/deps/`, the binary one level up.
pub fn gatekeeper_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("GATEKEEPER_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current test executable");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable sits in target/<profile>/deps");
    let bin = profile_dir.join(format!("gatekeeper{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the suite with `cargo test --workspace` (or `cargo build -p gatekeeper` first)",
        bin.display()
    );
    bin
}

/// A `Command` for the binary with no AWS credentials or endpoint leaking in from the caller.
pub fn gatekeeper() -> Command {
    let mut cmd = Command::new(gatekeeper_bin());
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "GITHUB_STEP_SUMMARY",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Runs `cmd` to the end: (exit code, stdout, stderr).
pub fn output(mut cmd: Command) -> (Option<i32>, String, String) {
    let out = cmd.output().expect("run gatekeeper");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What changes from one run to the next in the binary's output, and what stands for it in a
/// snapshot: temporary directories, ports, accounts in ARNs, run ids, RFC 3339 times.
pub const CLI_FILTERS: &[(&str, &str)] = &[
    (r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]"),
    (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
    (r"(arn:aws:[a-z0-9-]+:[a-z0-9-]*:)\d{12}:", "${1}[ACCOUNT]:"),
    (
        r"\b(canary|maintenance|pipeline)-\d{8}T\d{6}Z-\d+",
        "${1}-[RUN]",
    ),
    (
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})",
        "[TIME]",
    ),
];

/// A run's output as one snapshot text: the exit code, then standard output and standard
/// error, each under its own heading.
pub fn cli_text(code: Option<i32>, stdout: &str, stderr: &str) -> String {
    let code = code.map_or_else(|| "killed by a signal".to_string(), |c| c.to_string());
    format!("exit: {code}\n----- stdout -----\n{stdout}----- stderr -----\n{stderr}")
}

/// Snapshots a run of the binary (`(exit code, stdout, stderr)`, as [`output`] returns it)
/// with [`CLI_FILTERS`] applied: where the output is the contract, the whole of it is held.
#[macro_export]
macro_rules! assert_cli_snapshot {
    ($name:expr, $run:expr) => {{
        let (code, stdout, stderr) = &$run;
        $crate::insta::with_settings!({ filters => $crate::CLI_FILTERS.to_vec() }, {
            $crate::insta::assert_snapshot!($name, $crate::cli_text(*code, stdout, stderr));
        });
    }};
}

/// What a benchmark against moto starts from: its number of runs (`RUNS`, default 5), the moto
/// server, and a runtime. Without moto there is nothing to measure: it says how to start one
/// and exits 1.
pub fn bench_against_moto(name: &str) -> (usize, Moto, tokio::runtime::Runtime) {
    let runs = std::env::var("RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let Some(moto) = moto() else {
        #[expect(clippy::print_stderr, reason = "a benchmark's one line of usage")]
        {
            eprintln!("{name} needs moto: run bench/canary/run.sh");
        }
        #[expect(
            clippy::disallowed_methods,
            clippy::exit,
            reason = "a benchmark without moto has nothing to measure"
        )]
        std::process::exit(1);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    (runs, moto, rt)
}

/// Root of the repository (for `examples/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository root")
        .to_path_buf()
}

/// The moto server the test script started, or `None` when it is not there outside CI.
///
/// `scripts/test` exports `AWS_ENDPOINT_URL` (and `GATEKEEPER_TEST_MOTO`) after starting moto.
/// With `CI` set, a missing or unreachable moto fails the test instead of skipping it.
pub fn moto() -> Option<Moto> {
    let endpoint = std::env::var("GATEKEEPER_TEST_MOTO")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .ok()
        .filter(|e| e.starts_with("http://127.0.0.1:") || e.starts_with("http://localhost:"));
    let reachable = endpoint.as_deref().is_some_and(|e| {
        let addr = e.trim_start_matches("http://").trim_end_matches('/');
        addr.parse::<std::net::SocketAddr>()
            .ok()
            .or_else(|| {
                use std::net::ToSocketAddrs;
                addr.to_socket_addrs().ok().and_then(|mut a| a.next())
            })
            .is_some_and(|sa| {
                std::net::TcpStream::connect_timeout(&sa, std::time::Duration::from_secs(2)).is_ok()
            })
    });
    match (reachable, endpoint) {
        (true, Some(endpoint)) => Some(Moto { endpoint }),
        (_, endpoint) => {
            let why = match endpoint {
                Some(e) => format!("moto is not reachable at {e}"),
                None => "AWS_ENDPOINT_URL is not set to a loopback moto server".to_string(),
            };
            if std::env::var_os("CI").is_some() {
                panic!("{why}; in CI every moto test must run (use scripts/test)");
            }
            #[expect(clippy::print_stderr, reason = "a skipped test says why")]
            {
                eprintln!("skipping: {why} (run the suite with scripts/test)");
            }
            None
        }
    }
}

/// A running moto server.
#[derive(Debug, Clone)]
pub struct Moto {
    pub endpoint: String,
}

impl Moto {
    /// Environment for a child process talking to this moto, with throwaway credentials.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_MAX_ATTEMPTS", "2")
            .env("AWS_EC2_METADATA_DISABLED", "true");
    }

    /// `gatekeeper` pointed at this moto.
    pub fn gatekeeper(&self) -> Command {
        let mut cmd = gatekeeper();
        self.apply(&mut cmd);
        cmd
    }
}

/// A name unique to this test process and call, so tests sharing one moto never collide.
#[expect(
    clippy::disallowed_methods,
    reason = "the time only makes names unique"
)]
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}{:x}{n}",
        std::process::id() % 10000,
        nanos % 0xffff
    )
}

/// A tool from the test venv (cfn-lint, checkov): its path, or `None` outside CI when absent.
pub fn required_tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!("{name} is not on PATH; in CI every lint test must run (use scripts/test)");
        }
        #[expect(clippy::print_stderr, reason = "a skipped test says why")]
        {
            eprintln!("skipping: {name} is not on PATH (run the suite with scripts/test)");
        }
    }
    found
}

/// A runtime for a test that mixes blocking CLI runs with AWS calls of its own.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The run id a `canary run` reported: `canary <run-id> (...)`.
pub fn run_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("canary ")?.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run id in {stdout}"))
        .to_string()
}
