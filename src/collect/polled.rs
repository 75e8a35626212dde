//! The scheduler of polled sources: jobs per watched channel, jitter, concurrency, shutdown,
//! log-once error reporting and per-source health in `source_status`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::{ChannelInfo, Collector, Error, Poll, RunContext, RunReport, SourceError, Target};
use crate::clock::chrono_duration;
use crate::db::Db;
use crate::domain::Handle;

/// When each job runs (a `schedule` table of a source; durations like "15m", "7d").
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Schedule {
    /// Members of every channel.
    #[serde(with = "humantime_serde")]
    pub members_every: Duration,
    /// Posts younger than `fresh_for`.
    #[serde(with = "humantime_serde")]
    pub posts_fresh_every: Duration,
    /// Age until which a post counts as fresh.
    #[serde(with = "humantime_serde")]
    pub fresh_for: Duration,
    /// Posts up to `track_for` old.
    #[serde(with = "humantime_serde")]
    pub posts_daily_every: Duration,
    /// Age after which a post is no longer read.
    #[serde(with = "humantime_serde")]
    pub track_for: Duration,
    /// Each interval varies by up to this fraction either way (0.1 = ±10%).
    pub jitter: f64,
    /// Jobs of this source running at once.
    pub concurrency: usize,
    /// How often the watched channels are re-read (channels added meanwhile join).
    #[serde(with = "humantime_serde")]
    pub reload_every: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            members_every: Duration::from_secs(3600),
            posts_fresh_every: Duration::from_secs(15 * 60),
            fresh_for: Duration::from_secs(48 * 3600),
            posts_daily_every: Duration::from_secs(24 * 3600),
            track_for: Duration::from_secs(7 * 24 * 3600),
            jitter: 0.1,
            concurrency: 8,
            reload_every: Duration::from_secs(300),
        }
    }
}

impl Schedule {
    /// Checks every value; `section` names the table, e.g. `tgstat.schedule`.
    ///
    /// errors (as text): the first bad key, its value and the accepted range.
    pub fn check(&self, section: &str) -> Result<(), String> {
        if !(0.0..=0.9).contains(&self.jitter) {
            return Err(format!(
                "{section}.jitter = {} is out of range: expected a fraction from 0 to 0.9",
                self.jitter
            ));
        }
        if self.concurrency == 0 {
            return Err(format!("{section}.concurrency must be at least 1"));
        }
        for (key, d) in [
            ("members_every", self.members_every),
            ("posts_fresh_every", self.posts_fresh_every),
            ("posts_daily_every", self.posts_daily_every),
            ("reload_every", self.reload_every),
        ] {
            super::limits::check_duration(&format!("{section}.{key}"), d, true)?;
        }
        for (key, d) in [("fresh_for", self.fresh_for), ("track_for", self.track_for)] {
            super::limits::check_duration(&format!("{section}.{key}"), d, false)?;
        }
        Ok(())
    }
}

/// What a job reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Job {
    Members,
    /// Posts younger than `fresh_for`.
    PostsFresh,
    /// Posts younger than `track_for`.
    PostsTracked,
}

impl Job {
    fn as_str(self) -> &'static str {
        match self {
            Job::Members => "members",
            Job::PostsFresh => "posts_fresh",
            Job::PostsTracked => "posts_tracked",
        }
    }
}

/// Runs a [`Poll`] source as a [`Collector`].
#[derive(Debug)]
pub struct Polled<P: Poll> {
    inner: Arc<P>,
    schedule: Schedule,
    /// Kept across runs, so a restarted run still reports the last success.
    health: Shared,
}

impl<P: Poll> Polled<P> {
    /// Wraps a polled source with its schedule.
    pub fn new(inner: P, schedule: Schedule) -> Self {
        Self {
            inner: Arc::new(inner),
            schedule,
            health: Shared::default(),
        }
    }
}

/// Health counters of one source run, flushed to `source_status`.
#[derive(Debug, Default)]
struct Health {
    last_success: Option<DateTime<Utc>>,
    last_error: Option<(DateTime<Utc>, String)>,
    ok: u64,
    failed: u64,
    samples: u64,
    /// (channel or 0 for source-wide, error kind) already logged at WARN.
    logged: HashSet<(i64, &'static str)>,
}

type Shared = Arc<Mutex<Health>>;

fn jittered(d: Duration, jitter: f64) -> Duration {
    // `Schedule::check` refuses NaN at load time; a NaN here still means no jitter, not a panic.
    let j = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 0.9)
    };
    if j == 0.0 {
        return d;
    }
    d.mul_f64(1.0 + rand::random_range(-j..j))
}

#[async_trait]
impl<P: Poll> Collector for Polled<P> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn resolve(&self, handle: &Handle) -> Result<ChannelInfo, SourceError> {
        self.inner.resolve(handle).await
    }

    fn last_success(&self) -> Option<DateTime<Utc>> {
        self.health.lock().expect("health lock").last_success
    }

    fn members_every(&self) -> Option<Duration> {
        Some(self.schedule.members_every)
    }

    async fn run(&self, ctx: RunContext) -> Result<RunReport, Error> {
        let jobs: &[Job] = match (self.inner.reads_posts(), ctx.once) {
            (false, _) => &[Job::Members],
            (true, true) => &[Job::Members, Job::PostsTracked],
            (true, false) => &[Job::Members, Job::PostsFresh, Job::PostsTracked],
        };
        let health = Arc::clone(&self.health);
        let clock = Arc::clone(&ctx.clock);
        let mut report = RunReport::default();
        let mut inflight: JoinSet<JobResult> = JoinSet::new();
        let mut heap: BinaryHeap<Reverse<(DateTime<Utc>, u64, usize, Job)>> = BinaryHeap::new();
        let mut targets: Vec<Target> = Vec::new();
        // Channel id → its index in `targets` (a re-added channel gets a new index, so jobs queued
        // before its removal are told apart and dropped).
        let mut known: HashMap<i64, usize> = HashMap::new();
        let mut seq = 0u64;
        let mut loaded = false;
        let mut reload_failing = false;
        let mut next_reload = clock.now();
        let mut next_status = clock.now() + STATUS_EVERY;
        let concurrency = self.schedule.concurrency.max(1);
        let result = loop {
            let now = clock.now();
            if !loaded || (!ctx.once && now >= next_reload) {
                match crate::catalog::targets(&ctx.db, ctx.shard).await {
                    Ok(current) => {
                        if reload_failing {
                            tracing::info!(source = self.name(), "watched channels read again");
                            reload_failing = false;
                        }
                        // New channels are collected at once; later rounds follow the
                        // schedule. Channels no longer watched leave `known`; their queued
                        // jobs are dropped when they come due.
                        let ids: HashSet<i64> =
                            current.iter().map(|t| t.channel_id.get()).collect();
                        known.retain(|id, _| ids.contains(id));
                        for t in current {
                            if known.contains_key(&t.channel_id.get()) {
                                continue;
                            }
                            known.insert(t.channel_id.get(), targets.len());
                            for &job in jobs {
                                heap.push(Reverse((now, seq, targets.len(), job)));
                                seq += 1;
                            }
                            targets.push(t);
                        }
                        loaded = true;
                        next_reload = now + chrono_duration(self.schedule.reload_every);
                    }
                    Err(e) if ctx.once => break Err(e.into()),
                    Err(e) => {
                        // The database is away: go on with the channels already known and
                        // try again soon. Nothing but shutdown ends the run.
                        if !reload_failing {
                            tracing::warn!(source = self.name(), error = %crate::error_chain(&e),
                                "cannot read the watched channels; collecting the known ones and retrying");
                            reload_failing = true;
                        }
                        next_reload =
                            now + chrono_duration(RELOAD_RETRY.min(self.schedule.reload_every));
                    }
                }
            }
            if now >= next_status {
                self.flush_status(&ctx.db, &health).await;
                next_status = now + chrono_duration(STATUS_EVERY);
            }
            if ctx.once && loaded && heap.is_empty() {
                break Ok(());
            }
            let Some(Reverse((due, _, idx, job))) = heap.peek().copied() else {
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => break Ok(()),
                    _ = clock.sleep_until(next_reload) => continue,
                }
            };
            let wake = due.min(next_reload).min(next_status);
            if inflight.len() >= concurrency {
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => break Ok(()),
                    done = inflight.join_next() => {
                        if let Err(e) = tally(&mut report, done) { break Err(e) }
                    }
                }
                continue;
            }
            if wake > clock.now() {
                tokio::select! {
                    _ = ctx.shutdown.cancelled() => break Ok(()),
                    _ = clock.sleep_until(wake) => {}
                    Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                        if let Err(e) = tally(&mut report, Some(done)) { break Err(e) }
                    }
                }
                continue;
            }
            heap.pop();
            if known.get(&targets[idx].channel_id.get()) != Some(&idx) {
                continue; // removed from the watched list since it was scheduled
            }
            if !ctx.once {
                let next =
                    due + chrono_duration(jittered(self.interval(job), self.schedule.jitter));
                heap.push(Reverse((next, seq, idx, job)));
                seq += 1;
            }
            let span = tracing::info_span!("job", source = self.name(), channel = %targets[idx], job = job.as_str());
            let fut = self.job(targets[idx].clone(), job, ctx.clone(), Arc::clone(&health));
            inflight.spawn(fut.instrument(span));
        };
        // Finish what is in flight: its samples were read and should land. A job still
        // waiting on its source after the grace is stopped (nothing of it was accepted).
        let drain = async {
            while let Some(done) = inflight.join_next().await {
                if let Err(e) = tally(&mut report, Some(done)) {
                    tracing::error!(source = self.name(), error = %e, "a job failed at shutdown");
                }
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
            tracing::warn!(
                source = self.name(),
                jobs = inflight.len(),
                "shutdown: jobs still waiting on the source were stopped"
            );
            inflight.abort_all();
        }
        self.flush_status(&ctx.db, &health).await;
        result.map(|()| report)
    }
}

/// How often health counters are written to `source_status`.
const STATUS_EVERY: Duration = Duration::from_secs(30);
/// Longest wait for writing them.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// After shutdown, how long jobs in flight may take to finish, and a finished job may wait for
/// room in the queue before its samples are dropped (they were never accepted, so nothing
/// accepted is lost).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Pause before reading the watched channels again after a failed read.
const RELOAD_RETRY: Duration = Duration::from_secs(5);

/// A finished job: (succeeded, samples accepted), or the writer is gone.
type JobResult = Result<(bool, u64), Error>;

fn tally(
    report: &mut RunReport,
    done: Option<Result<JobResult, tokio::task::JoinError>>,
) -> Result<(), Error> {
    match done {
        None => Ok(()),
        Some(Ok(Ok((ok, sent)))) => {
            if ok {
                report.jobs_ok += 1;
            } else {
                report.jobs_failed += 1;
            }
            report.samples_sent += sent;
            Ok(())
        }
        Some(Ok(Err(e))) => Err(e),
        Some(Err(join)) => {
            tracing::error!(error = %join, "a collection job panicked");
            report.jobs_failed += 1;
            Ok(())
        }
    }
}

impl<P: Poll> Polled<P> {
    fn interval(&self, job: Job) -> Duration {
        match job {
            Job::Members => self.schedule.members_every,
            Job::PostsFresh => self.schedule.posts_fresh_every,
            Job::PostsTracked => self.schedule.posts_daily_every,
        }
    }

    /// One job: read, then hand the records to the pipeline. `Ok((false, 0))` when the source
    /// failed (logged once per channel and error kind); `Err` only if the writer is gone.
    fn job(
        &self,
        target: Target,
        job: Job,
        ctx: RunContext,
        health: Shared,
    ) -> impl Future<Output = JobResult> + Send + 'static {
        let inner = Arc::clone(&self.inner);
        let (fresh_for, track_for) = (self.schedule.fresh_for, self.schedule.track_for);
        async move {
            let clock = Arc::clone(&ctx.clock);
            let since = |age: Duration| clock.now() - chrono_duration(age);
            let read = match job {
                Job::Members => inner.members(&target).await,
                Job::PostsFresh => inner.posts(&target, since(fresh_for)).await,
                Job::PostsTracked => inner.posts(&target, since(track_for)).await,
            };
            let records = match read {
                Ok(r) => r,
                Err(e) => {
                    note_failure(&health, inner.name(), &target, job, &e, clock.now());
                    return Ok((false, 0));
                }
            };
            let samples = records.iter().filter(|r| r.is_sample()).count() as u64;
            let send = ctx.sender.send(records);
            tokio::pin!(send);
            // A send may wait on a full queue (database away); shutdown bounds the wait.
            let sent = tokio::select! {
                r = &mut send => Ok(r),
                _ = ctx.shutdown.cancelled() => tokio::time::timeout(SHUTDOWN_GRACE, &mut send).await,
            };
            match sent {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(Error::WriterStopped),
                Err(_) => {
                    tracing::warn!(source = inner.name(), channel = %target, samples,
                        "shutdown: the queue stayed full; samples read but not accepted were dropped");
                    return Ok((false, 0));
                }
            }
            let now = clock.now();
            metrics::counter!("tgpulse_samples_accepted_total", "source" => inner.name().to_owned())
                .increment(samples);
            metrics::gauge!("tgpulse_source_last_success_timestamp_seconds", "source" => inner.name().to_owned())
                .set(now.timestamp() as f64);
            let mut h = health.lock().expect("health lock");
            h.last_success = Some(now);
            h.ok += 1;
            h.samples += samples;
            let id = target.channel_id.get();
            h.logged.retain(|(c, _)| *c != id && *c != 0);
            Ok((true, samples))
        }
    }

    /// Writes the health counters to `source_status`, giving up after [`STATUS_TIMEOUT`]
    /// (a database that does not answer must not hold the schedule or shutdown up).
    async fn flush_status(&self, db: &Db, health: &Shared) {
        if tokio::time::timeout(STATUS_TIMEOUT, self.write_status(db, health))
            .await
            .is_err()
        {
            tracing::debug!(
                source = self.name(),
                "source status not recorded: no answer"
            );
        }
    }

    async fn write_status(&self, db: &Db, health: &Shared) {
        let (ok, failed, samples, last_success, last_error) = {
            let mut h = health.lock().expect("health lock");
            let v = (
                h.ok as i64,
                h.failed as i64,
                h.samples as i64,
                h.last_success,
                h.last_error.clone(),
            );
            (h.ok, h.failed, h.samples) = (0, 0, 0);
            v
        };
        let (err_at, err_text) = last_error.unzip();
        if let Err(e) = crate::catalog::record_status(
            db,
            self.name(),
            last_success,
            err_at,
            err_text.as_deref(),
            [ok, failed, samples],
        )
        .await
        {
            tracing::debug!(source = self.name(), error = %e, "could not record source status");
        }
    }
}

/// Logs a failed job: the first time per (channel, kind) at WARN with source and channel,
/// then at DEBUG. Source-wide failures (outage, breaker, quota, token) are keyed by source.
fn note_failure(
    health: &Shared,
    source: &str,
    target: &Target,
    job: Job,
    e: &SourceError,
    now: DateTime<Utc>,
) {
    let source_wide = matches!(
        e,
        SourceError::Unavailable(_)
            | SourceError::Timeout(_)
            | SourceError::CircuitOpen(_)
            | SourceError::QuotaExhausted(_)
            | SourceError::Unauthorized(_)
            | SourceError::RateLimited(_)
    );
    let key = (
        if source_wide {
            0
        } else {
            target.channel_id.get()
        },
        e.kind(),
    );
    let mut h = health.lock().expect("health lock");
    h.failed += 1;
    h.last_error = Some((now, format!("{target}: {e}")));
    if h.logged.insert(key) {
        if source_wide {
            tracing::warn!(source, error = %e, "source failing; jobs are skipped until it recovers");
        } else {
            tracing::warn!(source, channel = %target, job = job.as_str(), error = %e,
                "skipping this channel (logged once); the others go on");
        }
    } else {
        tracing::debug!(source, channel = %target, job = job.as_str(), error = %e, "job failed");
    }
}
