//! The view curve: a fake source serves posts whose views follow a known curve, sampled by
//! the polled collector's real schedule (every 15 min while fresh, daily after) on a manual
//! clock; reach at 12/24/48 h equals the interpolation worked out here between the schedule's
//! sample times around each mark.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tgpulse::clock::{ManualClock, SharedClock};
use tgpulse::collect::{
    ChannelInfo, Collector, Poll, Polled, RunContext, Schedule, Shard, SourceError, Target,
};
use tgpulse::domain::{ChannelRef, Days, Handle};
use tgpulse::ingest::{self, CommitPolicy, PostSample, Record};
use tgpulse::query::{self, Engine};
use tokio_util::sync::CancellationToken;

use super::collect::{ingest_cfg, watch_channel};
use crate::common::TestDb;

const CHANNEL: i64 = 5005;
/// Post 1 is read for as long as the schedule tracks it; post 2 is gone after 20 h.
const GONE_AFTER_H: f64 = 20.0;

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
        .unwrap()
        .to_utc()
}

/// Both posts are published 7 minutes after the clock starts, off the 15-minute grid.
fn published() -> DateTime<Utc> {
    start() + chrono::Duration::minutes(7)
}

/// The known curve: views after `h` hours.
fn curve(h: f64) -> i64 {
    (20_000.0 * (1.0 - (-h / 9.0).exp())).floor() as i64
}

fn hours(d: chrono::Duration) -> f64 {
    d.num_seconds() as f64 / 3600.0
}

/// A polled source serving the two posts at the manual clock's time; counts its fresh-post
/// reads so the test can step the clock in lockstep.
#[derive(Debug, Clone)]
struct Curve {
    clock: SharedClock,
    fresh_reads: Arc<AtomicU32>,
}

#[async_trait]
impl Poll for Curve {
    fn name(&self) -> &str {
        "curve"
    }

    fn reads_posts(&self) -> bool {
        true
    }

    async fn resolve(&self, _: &Handle) -> Result<ChannelInfo, SourceError> {
        Err(SourceError::Unsupported("test source"))
    }

    async fn members(&self, _: &Target) -> Result<Vec<Record>, SourceError> {
        Ok(vec![])
    }

    async fn posts(&self, t: &Target, since: DateTime<Utc>) -> Result<Vec<Record>, SourceError> {
        let now = self.clock.now();
        // The fresh job asks for the last 48 h, the tracking job for the last 7 days.
        if now - since == chrono::Duration::hours(48) {
            self.fresh_reads.fetch_add(1, Ordering::SeqCst);
        }
        let age = hours(now - published());
        let mut out = Vec::new();
        if now < published() || published() < since {
            return Ok(out);
        }
        for post_id in [1, 2] {
            if post_id == 2 && age >= GONE_AFTER_H {
                continue;
            }
            out.push(Record::Post(PostSample {
                channel_id: t.channel_id,
                post_id,
                published_at: published(),
                observed_at: now,
                views: Some(curve(age)),
                forwards: None,
                replies: None,
                reactions: None,
            }));
        }
        Ok(out)
    }
}

async fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < limit, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Last tick of the test's clock: 72 h 30 min, past the tracking job's run at 72 h.
const TICKS: u32 = 290;

/// When the schedule reads a post, worked out by hand: the fresh job every 15 minutes from
/// the clock's start while the post is at most 48 h old, and the tracking job every 24 h
/// (it reads posts up to 7 days old), as long as the source serves the post.
fn sample_times(served_until_h: f64) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    for tick in 0..=TICKS {
        let t = start() + chrono::Duration::minutes(15 * i64::from(tick));
        let age = hours(t - published());
        let fresh = (0.0..=48.0).contains(&age);
        let tracked = tick % 96 == 0 && age >= 0.0;
        if (fresh || tracked) && age < served_until_h {
            out.push(t);
        }
    }
    out
}

/// Reach at `h` hours worked out by hand: the views interpolated linearly between the
/// curve's values at the sample times around the mark; `None` without a sample on each side.
fn by_hand(h: f64, served_until_h: f64) -> Option<f64> {
    let mark = published() + chrono::Duration::seconds((h * 3600.0) as i64);
    let times = sample_times(served_until_h);
    let t0 = times.iter().rev().find(|t| **t <= mark)?;
    let t1 = times.iter().find(|t| **t >= mark)?;
    let (v0, v1) = (
        curve(hours(*t0 - published())) as f64,
        curve(hours(*t1 - published())) as f64,
    );
    if t1 == t0 {
        return Some(v1);
    }
    Some(v0 + (v1 - v0) * (mark - *t0).num_seconds() as f64 / (*t1 - *t0).num_seconds() as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reach_at_12_24_48_h_is_the_interpolation_between_the_scheduled_samples() {
    let t = TestDb::plain().await;
    watch_channel(&t, CHANNEL, "curvy").await;
    let clock = ManualClock::new(start());
    let shared: SharedClock = clock.clone();
    let source = Curve {
        clock: Arc::clone(&shared),
        fresh_reads: Arc::new(AtomicU32::new(0)),
    };
    let polled = Polled::new(
        source.clone(),
        Schedule {
            members_every: Duration::from_secs(30 * 24 * 3600),
            posts_fresh_every: Duration::from_secs(15 * 60),
            fresh_for: Duration::from_secs(48 * 3600),
            posts_daily_every: Duration::from_secs(24 * 3600),
            track_for: Duration::from_secs(7 * 24 * 3600),
            jitter: 0.0,
            ..Schedule::default()
        },
    );
    let (sender, writer) = ingest::start(&t.db, CommitPolicy::PerBatch, &ingest_cfg(), "curve");
    let stop = CancellationToken::new();
    let ctx = RunContext {
        db: t.db.clone(),
        sender,
        shard: Shard::default(),
        once: false,
        shutdown: stop.clone(),
        clock: shared,
    };
    let run = tokio::spawn(async move { polled.run(ctx).await });
    // 72.5 h of 15-minute ticks: the 48 h mark falls between the last fresh read (48 h) and
    // the tracking job's next read (72 h).
    for tick in 0..=TICKS {
        clock.set(start() + chrono::Duration::minutes(15 * i64::from(tick)));
        until(
            &format!("tick {tick} is read"),
            Duration::from_secs(20),
            || source.fresh_reads.load(Ordering::SeqCst) > tick,
        )
        .await;
    }
    stop.cancel();
    run.await.unwrap().unwrap();
    let stored = writer.finish().await.unwrap();
    assert_eq!(
        stored.post_samples_inserted as usize,
        sample_times(f64::INFINITY).len() + sample_times(GONE_AFTER_H).len(),
        "{stored:?}"
    );

    let e = Engine::new(t.db.clone());
    let ctx = e.session().await.unwrap();
    let rows = ctx
        .sql(&format!(
            "SELECT post_id, reach_12h, reach_24h, reach_48h FROM post_reach_hours
             WHERE channel_id = {CHANNEL} ORDER BY post_id"
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let b = &rows[0];
    assert_eq!(b.num_rows(), 2);
    let col = |i: usize| {
        let a = b
            .column(i)
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .unwrap();
        (0..2)
            .map(|r| arrow::array::Array::is_valid(a, r).then(|| a.value(r)))
            .collect::<Vec<_>>()
    };
    let close = |got: Option<f64>, want: Option<f64>, what: &str| match (got, want) {
        (Some(g), Some(w)) => assert!((g - w).abs() < 1e-6, "{what}: {g} vs {w} by hand"),
        (g, w) => assert_eq!(g, w, "{what}"),
    };
    let (r12, r24, r48) = (col(1), col(2), col(3));
    for (i, served) in [(0, f64::INFINITY), (1, GONE_AFTER_H)] {
        close(
            r12[i],
            by_hand(12.0, served),
            &format!("post {} at 12 h", i + 1),
        );
        close(
            r24[i],
            by_hand(24.0, served),
            &format!("post {} at 24 h", i + 1),
        );
        close(
            r48[i],
            by_hand(48.0, served),
            &format!("post {} at 48 h", i + 1),
        );
    }
    assert!(r12[1].is_some(), "post 2 was sampled past 12 h");
    assert_eq!(
        (r24[1], r48[1]),
        (None, None),
        "post 2 was gone at 20 h: n/a, not 0"
    );
    // The sample times really straddle the marks (the interpolation is not a sample's value).
    assert_ne!(r12[0], Some(curve(12.0) as f64));

    // stats: 12 h over both posts, 24 and 48 h over post 1 only.
    let ch = query::resolve(
        &t.db,
        &ChannelRef::Id(tgpulse::domain::ChannelId::new(CHANNEL).unwrap()),
    )
    .await
    .unwrap();
    let w = tgpulse::domain::DayWindow::ending(
        published().date_naive(),
        Days::new(7).unwrap(),
        chrono_tz::Tz::UTC,
    );
    let m = query::post_metrics(&e, &ch, w).await.unwrap();
    let mean12 =
        (by_hand(12.0, f64::INFINITY).unwrap() + by_hand(12.0, GONE_AFTER_H).unwrap()) / 2.0;
    assert_eq!(m.reach[0].posts, 2);
    close(m.reach[0].avg, Some(mean12), "average reach at 12 h");
    assert_eq!((m.reach[1].posts, m.reach[2].posts), (1, 1));
}
