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

/// `20261204T101500Z` for seconds since the epoch: the stamp in run ids.
pub fn utc_stamp(secs: u64) -> String {
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::utc_stamp;

    #[test]
    fn stamps_are_utc_to_the_second() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1_796_379_300), "20261204T101500Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
    }
}
