//! Criterion benchmarks of the query paths on the real data: stats of one channel and a
//! comparison of five, through DataFusion over PostgreSQL.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (or TGPULSE_BENCH_DATABASE_URL) and ../shared/data.
//! The first run imports subscriber_observations.parquet (618,930 rows) into the database
//! `tgpulse_bench`; later runs reuse it. Run: `cargo bench --bench query_paths`.

mod common;

use std::sync::OnceLock;

use criterion::{Criterion, criterion_group, criterion_main};
use tgpulse::domain::{ChannelRef, Days};
use tgpulse::query::{self, Engine};

async fn setup() -> (Engine, Vec<query::Channel>) {
    let db = common::with_real_data().await;
    let engine = Engine::new(db.clone());
    let top = query::largest_channels(&engine, 5).await.unwrap();
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
    g.bench_function("compare_5_channels_90d", |b| {
        let (engine, chans) = get();
        b.to_async(&rt)
            .iter(|| query::compare(engine, chans, Days::new(90).unwrap(), None));
    });
    g.finish();
}

criterion_group!(benches, query_paths);
criterion_main!(benches);
