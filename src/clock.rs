//! The injected clock: every schedule (collectors, the daily refresher, the bot's button
//! expiry, the schedulers to come) asks a [`Clock`] for the time and sleeps through it, so
//! tests drive time with a [`ManualClock`] instead of sleeping.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// Wall-clock time and sleeping until an instant.
#[async_trait]
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant (UTC).
    fn now(&self) -> DateTime<Utc>;

    /// Returns once [`Clock::now`] is at or past `t` (at once if it already is).
    async fn sleep_until(&self, t: DateTime<Utc>);

    /// Sleeps for `d` from now.
    async fn sleep(&self, d: Duration) {
        self.sleep_until(self.now() + chrono_duration(d)).await;
    }
}

/// A clock shared by the tasks of one service.
pub type SharedClock = Arc<dyn Clock>;

/// `d` as a chrono duration, saturating at chrono's maximum.
pub fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The system clock: `Utc::now()`, and tokio's timer for sleeping.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// The system clock as a [`SharedClock`].
    pub fn shared() -> SharedClock {
        Arc::new(Self)
    }
}

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        // Wall-clock jumps (NTP) are absorbed by re-checking after each sleep.
        loop {
            let left = t - Utc::now();
            let Ok(d) = left.to_std() else { return };
            if d.is_zero() {
                return;
            }
            tokio::time::sleep(d).await;
        }
    }
}

/// A clock that moves only when told to (tests). Sleepers wake as soon as an
/// [`advance`](ManualClock::advance) or [`set`](ManualClock::set) reaches their instant.
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: DateTime<Utc>) -> Arc<Self> {
        Arc::new(Self {
            now: watch::Sender::new(start),
        })
    }

    /// Moves the clock forward by `d`, waking every sleeper whose instant is reached.
    pub fn advance(&self, d: Duration) {
        self.now.send_modify(|t| *t += chrono_duration(d));
    }

    /// Sets the clock to `t` (never backwards: an earlier `t` is ignored).
    pub fn set(&self, t: DateTime<Utc>) {
        self.now.send_modify(|now| *now = (*now).max(t));
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        let mut rx = self.now.subscribe();
        // The sender lives as long as `self`, so `changed` only fails if the clock is gone.
        while *rx.borrow_and_update() < t {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_sleeper_wakes_when_the_clock_reaches_its_instant() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let clock = ManualClock::new(start);
        let c = Arc::clone(&clock);
        let sleeper = tokio::spawn(async move { c.sleep(Duration::from_secs(3600)).await });
        tokio::task::yield_now().await;
        clock.advance(Duration::from_secs(1800));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "woke after half the time");
        clock.advance(Duration::from_secs(1800));
        sleeper.await.unwrap();
        assert_eq!(clock.now(), start + chrono::Duration::hours(1));
        clock.set(start);
        assert_eq!(
            clock.now(),
            start + chrono::Duration::hours(1),
            "set never goes back"
        );
    }
}
