//! Per-source call discipline: token bucket (governor), per-call timeout, exponential backoff
//! with jitter and a deadline (backon), the source's own `retry_after` honoured, and a circuit
//! breaker.

use std::future::Future;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Deserialize;

use super::SourceError;

/// Call limits of one source (a section of the sources file; durations like "10s", "1m").
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Sustained request rate, requests per second (fractions allowed: 0.5 = one every 2 s).
    pub requests_per_second: f64,
    /// Requests allowed back to back before the rate applies.
    pub burst: u32,
    /// Longest wait for one response.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Longest time one request keeps retrying (including `retry_after` pauses); a pause
    /// that would end past it gives up at once.
    #[serde(with = "humantime_serde")]
    pub retry_deadline: Duration,
    /// First backoff pause; doubles on each retry, with jitter.
    #[serde(with = "humantime_serde")]
    pub backoff_min: Duration,
    /// Longest backoff pause.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// Consecutive failures (5xx, timeouts, connection errors, rejected token) that open the
    /// circuit.
    pub breaker_failures: u32,
    /// How long an open circuit refuses calls before one probe is let through.
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            requests_per_second: 10.0,
            burst: 1,
            timeout: Duration::from_secs(10),
            retry_deadline: Duration::from_secs(120),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(60),
        }
    }
}

/// The longest duration any limit may be set to: longer ones are surely a typo, and keeping them
/// bounded keeps every `Instant` sum in range.
pub(super) const MAX_SETTING: Duration = Duration::from_secs(366 * 24 * 3600);

/// Checks that a duration setting is at most [`MAX_SETTING`] (and, if `positive`, above zero).
///
/// errors (as text): the key and the value's bounds.
pub(super) fn check_duration(key: &str, d: Duration, positive: bool) -> Result<(), String> {
    if positive && d.is_zero() {
        return Err(format!("{key} must be longer than 0s"));
    }
    if d > MAX_SETTING {
        return Err(format!("{key} = {d:?} is too long: at most 366 days"));
    }
    Ok(())
}

impl LimitsConfig {
    /// Slowest accepted rate: one request per 24 h.
    pub const MIN_RATE: f64 = 1.0 / 86_400.0;
    /// Fastest accepted rate.
    pub const MAX_RATE: f64 = 1_000_000.0;

    /// Checks every value; `section` names the table, e.g. `botapi.limits`.
    ///
    /// errors (as text): the first bad key, its value and the accepted range.
    pub fn check(&self, section: &str) -> Result<(), String> {
        let rps = self.requests_per_second;
        if !(Self::MIN_RATE..=Self::MAX_RATE).contains(&rps) {
            return Err(format!(
                "{section}.requests_per_second = {rps} is out of range: expected a number from \
                 {:.6} (one request a day) to {}",
                Self::MIN_RATE,
                Self::MAX_RATE
            ));
        }
        if self.burst == 0 {
            return Err(format!("{section}.burst must be at least 1"));
        }
        if self.breaker_failures == 0 {
            return Err(format!("{section}.breaker_failures must be at least 1"));
        }
        for (key, d, positive) in [
            ("timeout", self.timeout, true),
            ("retry_deadline", self.retry_deadline, false),
            ("backoff_min", self.backoff_min, false),
            ("backoff_max", self.backoff_max, false),
            ("breaker_cooldown", self.breaker_cooldown, false),
        ] {
            check_duration(&format!("{section}.{key}"), d, positive)?;
        }
        Ok(())
    }
}

/// A circuit breaker: closed until `threshold` consecutive source failures, then open for
/// `cooldown`, then half-open (one probe; success closes it, failure opens it again).
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<BreakerState>,
}

#[derive(Debug, Default)]
struct BreakerState {
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::default(),
        }
    }

    /// Lets a call through, or refuses it while the circuit is open.
    ///
    /// errors: `SourceError::CircuitOpen` with the time left.
    pub fn check(&self) -> Result<(), SourceError> {
        let mut s = self.state.lock().expect("breaker lock");
        match s.open_until {
            None => Ok(()),
            Some(until) => {
                let now = Instant::now();
                if now < until {
                    Err(SourceError::CircuitOpen(until - now))
                } else if s.probing {
                    Err(SourceError::CircuitOpen(Duration::ZERO))
                } else {
                    s.probing = true;
                    Ok(())
                }
            }
        }
    }

    /// Records a call's outcome. Any answer from the source (even "unknown channel") closes
    /// the circuit; only [`SourceError::is_source_failure`] errors count against it.
    pub fn record<T>(&self, outcome: &Result<T, SourceError>) {
        let mut s = self.state.lock().expect("breaker lock");
        match outcome {
            Err(e) if e.is_source_failure() => {
                s.failures += 1;
                if s.probing || s.failures >= self.threshold {
                    s.open_until = Instant::now().checked_add(self.cooldown);
                    s.probing = false;
                }
            }
            Err(SourceError::CircuitOpen(_)) => {}
            _ => *s = BreakerState::default(),
        }
    }

    /// Whether calls are currently refused.
    pub fn is_open(&self) -> bool {
        let s = self.state.lock().expect("breaker lock");
        s.open_until.is_some_and(|u| Instant::now() < u)
    }
}

/// Token bucket, timeout, retries and breaker of one source. Shared by all its tasks.
#[derive(Debug)]
pub struct Limits {
    source: String,
    cfg: LimitsConfig,
    bucket: DefaultDirectRateLimiter,
    breaker: Breaker,
}

impl Limits {
    /// Limits for `source` from its configuration.
    pub fn new(source: &str, cfg: &LimitsConfig) -> Self {
        // `check` refuses out-of-range rates at load time; clamp anyway so no value panics.
        let rate = if cfg.requests_per_second.is_finite() {
            cfg.requests_per_second
                .clamp(LimitsConfig::MIN_RATE, LimitsConfig::MAX_RATE)
        } else {
            1.0
        };
        let period = Duration::from_secs_f64(1.0 / rate).max(Duration::from_micros(1));
        let quota = Quota::with_period(period)
            .expect("a positive period")
            .allow_burst(NonZeroU32::new(cfg.burst.max(1)).expect("at least 1"));
        Self {
            source: source.to_owned(),
            cfg: cfg.clone(),
            bucket: RateLimiter::direct(quota),
            breaker: Breaker::new(cfg.breaker_failures, cfg.breaker_cooldown),
        }
    }

    /// The breaker, for health reporting.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Runs one request under the limits: waits for a token, applies the timeout, retries
    /// retryable failures with exponential backoff and jitter (a source's `retry_after` replaces
    /// the computed pause) until the deadline, and feeds the breaker.
    ///
    /// errors: the last `SourceError` when it is not retryable or the deadline is reached;
    /// `SourceError::CircuitOpen` while the breaker refuses calls.
    pub async fn call<T, F, Fut>(&self, what: &str, mut request: F) -> Result<T, SourceError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, SourceError>>,
    {
        // Saturating: a deadline past the end of `Instant` is as good as none.
        let deadline = Instant::now().checked_add(self.cfg.retry_deadline);
        let timeout = self.cfg.timeout;
        let attempt = || {
            let fut = request();
            async move {
                self.breaker.check()?;
                self.bucket.until_ready().await;
                let outcome = match tokio::time::timeout(timeout, fut).await {
                    Ok(r) => r,
                    Err(_) => Err(SourceError::Timeout(timeout)),
                };
                self.breaker.record(&outcome);
                let source = self.source.clone();
                let result = match &outcome {
                    Ok(_) => "ok",
                    Err(SourceError::RateLimited(_)) => "rate_limited",
                    Err(SourceError::Timeout(_)) => "timeout",
                    Err(_) => "error",
                };
                metrics::counter!("tgpulse_source_requests_total", "source" => source.clone(), "outcome" => result)
                    .increment(1);
                metrics::gauge!("tgpulse_source_breaker_open", "source" => source)
                    .set(if self.breaker.is_open() { 1.0 } else { 0.0 });
                outcome
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.cfg.backoff_min)
            .with_max_delay(self.cfg.backoff_max)
            .without_max_times();
        attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(SourceError::is_retryable)
            .adjust(|e, pause| {
                let pause = pause?;
                // The source's own pause wins, plus a little jitter so parallel tasks spread.
                // Any `retry_after` an upstream sends (up to u64 seconds) must not overflow: a
                // pause that ends past the deadline, or past what `Instant` holds, gives up.
                let pause = match e.retry_after() {
                    Some(d) => d.checked_add(pause.mul_f64(rand::random_range(0.0..0.1)))?,
                    None => pause,
                };
                let ends = Instant::now().checked_add(pause)?;
                deadline.is_none_or(|d| ends <= d).then_some(pause)
            })
            .notify(|e, pause| {
                tracing::debug!(source = %self.source, what, error = %e, pause_ms = pause.as_millis() as u64, "retrying");
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_after_threshold_and_probes_once_after_cooldown() {
        let b = Breaker::new(2, Duration::from_millis(30));
        let fail: Result<(), _> = Err(SourceError::Unavailable("502".into()));
        b.check().unwrap();
        b.record(&fail);
        b.check().unwrap();
        b.record(&fail);
        assert!(matches!(b.check(), Err(SourceError::CircuitOpen(_))));
        std::thread::sleep(Duration::from_millis(40));
        b.check().unwrap(); // the probe
        assert!(b.check().is_err(), "only one probe while half-open");
        b.record(&fail);
        assert!(b.is_open(), "a failed probe opens the circuit again");
        std::thread::sleep(Duration::from_millis(40));
        b.check().unwrap();
        b.record::<()>(&Err(SourceError::NotFound("@x".into())));
        assert!(b.check().is_ok(), "any answer closes it");
    }

    #[tokio::test]
    async fn a_huge_retry_after_gives_up_instead_of_overflowing() {
        let limits = Limits::new("t", &LimitsConfig::default());
        let mut calls = 0;
        let outcome: Result<(), _> = limits
            .call("x", || {
                calls += 1;
                async { Err(SourceError::RateLimited(Duration::from_secs(u64::MAX))) }
            })
            .await;
        assert_eq!(
            outcome,
            Err(SourceError::RateLimited(Duration::from_secs(u64::MAX)))
        );
        assert_eq!(calls, 1, "a pause past the deadline is not waited for");
    }

    #[test]
    fn out_of_range_settings_are_refused_with_their_key() {
        let mut c = LimitsConfig {
            requests_per_second: 1e-300,
            ..LimitsConfig::default()
        };
        let e = c.check("botapi.limits").unwrap_err();
        assert!(e.contains("botapi.limits.requests_per_second = "), "{e}");
        c.requests_per_second = f64::NAN;
        assert!(c.check("x").is_err());
        c.requests_per_second = 0.5;
        c.check("x").unwrap();
        c.timeout = Duration::from_secs(u64::MAX);
        let e = c.check("tgstat.limits").unwrap_err();
        assert!(e.starts_with("tgstat.limits.timeout = "), "{e}");
        // Even an unchecked value builds limits without a panic.
        Limits::new(
            "t",
            &LimitsConfig {
                requests_per_second: 1e-300,
                ..LimitsConfig::default()
            },
        );
    }

    #[test]
    fn channel_errors_do_not_open_the_breaker() {
        let b = Breaker::new(1, Duration::from_secs(60));
        b.record::<()>(&Err(SourceError::Malformed("x".into())));
        b.record::<()>(&Err(SourceError::RateLimited(Duration::from_secs(1))));
        assert!(b.check().is_ok());
    }
}
