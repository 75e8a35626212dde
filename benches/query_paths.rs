//! Criterion benchmarks of the query paths on the real data: stats of one channel and a
//! comparison of five, through DataFusion over PostgreSQL.
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (or TGPULSE_BENCH_DATABASE_URL) and ../shared/data.
//! The first run imports subscriber_observations.parquet (618,930 rows) into the database
//! `tgpulse_bench`; later runs reuse it. Run: `cargo bench --bench query_paths`.

use std::path::PathBuf;
use std::sync::OnceLock;

use criterion::{Criterion, criterion_group, criterion_main};
use tgpulse::config::{IngestConfig, StorageConfig};
use tgpulse::db::{self, DatabaseTarget};
use tgpulse::domain::{ChannelRef, Days};
use tgpulse::import::{self, ImportOptions};
use tgpulse::query::{self, Engine};

fn bench_url() -> String {
    std::env::var("TGPULSE_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/tgpulse_bench".into())
}

fn data_file() -> PathBuf {
    let dir = std::env::var_os("TGPULSE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")));
    let f = dir.join("telegram-animals/subscriber_observations.parquet");
    assert!(
        f.is_file(),
        "real data missing at {} (see README, 'Real data')",
        f.display()
    );
    f
}

async fn setup() -> (Engine, Vec<query::Channel>) {
    let url = bench_url();
    let (base, name) = url.rsplit_once('/').expect("url with a database name");
    let (admin, conn) = tokio_postgres::connect(&format!("{base}/postgres"), tokio_postgres::NoTls)
        .await
        .expect("postgres");
    let driver = tokio::spawn(conn);
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap()
        .is_some();
    if !exists {
        // Another bench process may have created it meanwhile; that is fine.
        let _ = admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await;
    }
    drop(admin);
    let _ = driver.await;
    let pool = db::connect(&DatabaseTarget::from_url(&url).unwrap(), 4)
        .await
        .unwrap();
    let db = db::migrate(&pool, &StorageConfig::default()).await.unwrap();
    let have: i64 = pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM member_samples", &[])
        .await
        .unwrap()
        .get(0);
    if have == 0 {
        import::import(
            &db,
            &data_file(),
            &ImportOptions::default(),
            &IngestConfig::default(),
        )
        .await
        .unwrap();
    }
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
