//! Criterion benchmarks of one alert evaluation (every channel rule, one DataFusion plan per
//! rule): the 426 real channels of subscriber_observations.parquet, and 10,000 synthetic
//! channels with 40 days of members and 10 posts each.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (or TGPULSE_BENCH_DATABASE_URL, whose database name is
//! used as a prefix) and ../shared/data. The first run fills the databases `tgpulse_bench`
//! (shared with query_paths) and `tgpulse_bench_alerts`; later runs reuse them.
//! Run: `cargo bench --profile dev --bench alerts`.

mod common;

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use tgpulse::alert::AlertConfig;
use tgpulse::alert::task::evaluate;
use tgpulse::db::Db;
use tgpulse::domain::ChannelId;
use tgpulse::query::Engine;

async fn count(db: &Db, sql: &str) -> i64 {
    db.pool
        .get()
        .await
        .unwrap()
        .query_one(sql, &[])
        .await
        .unwrap()
        .get(0)
}

/// The real channels, and the end of their last day.
async fn real() -> (Engine, Vec<ChannelId>, DateTime<Utc>) {
    let db = common::with_real_data().await;
    let c = db.pool.get().await.unwrap();
    let ids = c
        .query("SELECT channel_id FROM channels ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .filter_map(|r| ChannelId::new(r.get(0)).ok())
        .collect();
    let last: DateTime<Utc> = c
        .query_one(
            "SELECT max(bucket) + interval '1 day' FROM members_daily",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    (Engine::new(db), ids, last)
}

/// 10,000 synthetic channels: 40 daily member samples and 10 posts (two view samples each).
async fn synthetic() -> (Engine, Vec<ChannelId>, DateTime<Utc>) {
    let db = common::open(&common::bench_url("_alerts")).await;
    let c = db.pool.get().await.unwrap();
    if count(&db, "SELECT count(*) FROM channels").await == 0 {
        c.batch_execute(
            "INSERT INTO channels (channel_id, handle)
               SELECT g, 'synthetic_' || g FROM generate_series(1, 10000) g;
             INSERT INTO watched_channels (channel_id, handle)
               SELECT channel_id, handle FROM channels;
             INSERT INTO member_samples (channel_id, observed_at, members, source)
               SELECT g, '2026-01-01 12:00Z'::timestamptz + d * interval '1 day',
                      10000 + g + d * 50 + (g * d) % 37, 'bench'
               FROM generate_series(1, 10000) g, generate_series(0, 39) d;
             INSERT INTO post_samples (channel_id, post_id, published_at, observed_at, views, source)
               SELECT g, p, '2026-01-01 09:00Z'::timestamptz + p * interval '4 days',
                      '2026-01-01 09:00Z'::timestamptz + p * interval '4 days' + h * interval '1 hour',
                      (1000 + (g * p) % 300) * h / 25, 'bench'
               FROM generate_series(1, 10000) g, generate_series(0, 9) p, unnest(ARRAY[1, 25]) h;
             SELECT tgpulse_refresh_daily();",
        )
        .await
        .unwrap();
    }
    let ids = (1..=10_000)
        .filter_map(|i| ChannelId::new(i).ok())
        .collect();
    let at = DateTime::parse_from_rfc3339("2026-02-09T18:00:00Z")
        .unwrap()
        .to_utc();
    (Engine::new(db), ids, at)
}

type State = (Engine, Vec<ChannelId>, DateTime<Utc>);

fn alerts(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let real_state: OnceLock<State> = OnceLock::new();
    let synthetic_state: OnceLock<State> = OnceLock::new();
    let cfg = AlertConfig::default();
    let mut g = c.benchmark_group("alerts");
    g.sample_size(10);
    g.bench_function("evaluate_426_real_channels", |b| {
        let (engine, ids, at) = real_state.get_or_init(|| rt.block_on(real()));
        b.to_async(&rt).iter(|| evaluate(engine, &cfg, ids, *at));
    });
    g.bench_function("evaluate_10000_synthetic_channels", |b| {
        let (engine, ids, at) = synthetic_state.get_or_init(|| rt.block_on(synthetic()));
        b.to_async(&rt).iter(|| evaluate(engine, &cfg, ids, *at));
    });
    g.finish();
}

criterion_group!(benches, alerts);
criterion_main!(benches);
