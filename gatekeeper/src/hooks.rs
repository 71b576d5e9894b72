//! Crash points for the end-to-end tests, compiled only with the `test-hooks` feature (which
//! `scripts/test` enables): the process aborts, or kills itself, at a named point so that a
//! test can resume the run from another process. Without the feature, every release build,
//! each point is a no-op and the environment is never read (`tests/tidy.rs` holds this).
//!
//! - `GATEKEEPER_CRASH_AFTER=<point>`: abort once the point is reached. Points are
//!   `<action>` (`deploy`, `set-weight`: after its `completed` record), `began:<action>`,
//!   `<mode>:<index>` (`canary:4`) for a canary run, and `pipeline:<n>` (after record `n` of
//!   a pipeline run).
//! - `GATEKEEPER_TEST_KILL_AFTER_COPIES=<n>`: SIGKILL once `n` copies of a redrive are
//!   verified, before their sources are deleted.

/// The crash point asked for, if any.
#[cfg(feature = "test-hooks")]
pub fn crash_point() -> Option<String> {
    std::env::var("GATEKEEPER_CRASH_AFTER").ok()
}

/// The crash point asked for: never, without the `test-hooks` feature.
#[cfg(not(feature = "test-hooks"))]
pub fn crash_point() -> Option<String> {
    None
}

/// After how many verified copies a redrive kills itself, if asked.
#[cfg(feature = "test-hooks")]
fn kill_after_copies() -> Option<usize> {
    std::env::var("GATEKEEPER_TEST_KILL_AFTER_COPIES")
        .ok()
        .and_then(|v| v.parse().ok())
}

/// After how many verified copies a redrive kills itself: never, without the feature.
#[cfg(not(feature = "test-hooks"))]
fn kill_after_copies() -> Option<usize> {
    None
}

/// Aborts the process at crash point `point`, saying so on stderr.
pub fn crash(point: &str) -> ! {
    crate::ui::eprintln!("crash point {point}: aborting");
    std::process::abort()
}

/// What runs after each verified copy of a redrive: counts them, and at the count
/// `GATEKEEPER_TEST_KILL_AFTER_COPIES` names dies as `kill -9` would (no cleanup at all).
pub fn after_each_copy() -> impl Fn() + Send + Sync + 'static {
    let kill_after = kill_after_copies();
    let copies = std::sync::atomic::AtomicUsize::new(0);
    move || {
        let n = copies.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if kill_after.is_some_and(|k| n >= k) {
            let pid = std::process::id().to_string();
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .status();
            std::process::abort()
        }
    }
}
