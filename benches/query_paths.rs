//! Criterion benchmarks of the query paths on the real data: stats of one channel and
//! comparisons of five and ten, through DataFusion over PostgreSQL; and the post analytics (top posts,
//! the heatmap, the mentions, stats with the post metrics) of the posts file's largest
//! channel.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (or TGPULSE_BENCH_DATABASE_URL) and ../shared/data.
//! The first run imports subscriber_observations.parquet (618,930 rows) into the database
//! `tgpulse_bench` and posts_meta.parquet (2.74M posts) into `tgpulse_bench_posts`; later
//! runs reuse them. Run: `cargo bench --bench query_paths -- --noplot`.

mod common;

use std::sync::OnceLock;

use criterion::{Criterion, criterion_group, criterion_main};
use tgpulse::domain::{ChannelRef, Days};
use tgpulse::query::{self, Engine};

async fn setup() -> (Engine, Vec<query::Channel>) {
    let db = common::with_real_data().await;
    let engine = Engine::new(db.clone());
    let top = query::largest_channels(&engine, 10).await.unwrap();
    let mut chans = Vec::new();
    for (id, _) in top {
        chans.push(query::resolve(&db, &ChannelRef::Id(id)).await.unwrap());
    }
    (engine, chans)
}

fn query_paths(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Set up on first use, so that listing the benchmarks touches no database.
    let state: OnceLock<(Engine, Vec<query::Channel>)> = OnceLock::new();
    let get = || state.get_or_init(|| rt.block_on(setup()));
    let mut g = c.benchmark_group("query");
    g.sample_size(30);
    for days in [30u32, 365] {
        g.bench_function(format!("stats_{days}d"), |b| {
            let (engine, chans) = get();
            b.to_async(&rt)
                .iter(|| query::stats(engine, &chans[0], Days::new(days).unwrap(), None));
        });
    }
    // The lookup that ends a default window (PostgreSQL runs it), part of every `stats`.
    g.bench_function("last_day", |b| {
        let (engine, chans) = get();
        b.to_async(&rt)
            .iter(|| query::last_day(engine, chans[0].id));
    });
    for n in [5usize, 10] {
        g.bench_function(format!("compare_{n}_channels_90d"), |b| {
            let (engine, chans) = get();
            b.to_async(&rt)
                .iter(|| query::compare(engine, &chans[..n], Days::new(90).unwrap(), None));
        });
    }
    g.finish();
}

/// The largest channel of the posts file (most posts) and its last local day with a post.
async fn posts_setup() -> (Engine, query::Channel, chrono::NaiveDate) {
    let db = common::with_posts().await;
    let id: i64 = db
        .pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT channel_id FROM posts GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let last: chrono::DateTime<chrono::Utc> = db
        .pool
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT max(published_at) FROM posts WHERE channel_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0);
    let last = tgpulse::domain::DayWindow::local_day(db.timezone, last);
    let id = tgpulse::domain::ChannelId::new(id).unwrap();
    let channel = query::resolve(&db, &ChannelRef::Id(id)).await.unwrap();
    (Engine::new(db), channel, last)
}

fn post_paths(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let state: OnceLock<(Engine, query::Channel, chrono::NaiveDate)> = OnceLock::new();
    let get = || state.get_or_init(|| rt.block_on(posts_setup()));
    let mut g = c.benchmark_group("posts");
    g.sample_size(10);
    for days in [30u32, 365] {
        let d = Days::new(days).unwrap();
        // The post part of `stats` (the posts file has no member samples).
        g.bench_function(format!("post_metrics_{days}d"), |b| {
            let (engine, ch, last) = get();
            let w = tgpulse::domain::DayWindow::ending(*last, d, engine.db().timezone);
            b.to_async(&rt).iter(|| query::post_metrics(engine, ch, w));
        });
        g.bench_function(format!("top_posts_{days}d"), |b| {
            let (engine, ch, _) = get();
            b.to_async(&rt)
                .iter(|| query::top_posts(engine, ch, d, None, 10));
        });
        g.bench_function(format!("heatmap_{days}d"), |b| {
            let (engine, ch, _) = get();
            b.to_async(&rt).iter(|| query::heatmap(engine, ch, d, None));
        });
        g.bench_function(format!("mentions_{days}d"), |b| {
            let (engine, ch, _) = get();
            b.to_async(&rt)
                .iter(|| query::mentions(engine, ch, d, None, 20));
        });
    }
    g.finish();
}

criterion_group!(benches, query_paths, post_paths);
criterion_main!(benches);
