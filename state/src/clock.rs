//! The one clock: every time the gate decides on (leases, bake windows, waits) comes from a
//! [`Clock`], so tests run a 30-minute bake or an expired lease in microseconds with
//! [`ManualClock`]. Only [`SystemClock`] reads the wall clock (`clippy.toml` disallows
//! `SystemTime::now` everywhere else but at a few `#[expect]`ed places that stamp names and
//! texts for people).

use std::time::Duration;

use async_trait::async_trait;

/// Time, injected.
#[async_trait]
pub trait Clock: Send + Sync {
    /// Seconds since the epoch.
    fn now(&self) -> u64;
    async fn sleep(&self, d: Duration);
}

/// The wall clock and tokio timers.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "the system clock, the one the Clock trait stands for"
    )]
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await
    }
}

/// A clock that only moves when slept on: tests bake for hours in microseconds.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: std::sync::atomic::AtomicU64,
}

impl ManualClock {
    pub fn at(now: u64) -> Self {
        ManualClock { now: now.into() }
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.now.load(std::sync::atomic::Ordering::SeqCst)
    }
    async fn sleep(&self, d: Duration) {
        self.now
            .fetch_add(d.as_secs(), std::sync::atomic::Ordering::SeqCst);
    }
}
