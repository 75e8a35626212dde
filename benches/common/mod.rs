//! Set-up shared by the benchmarks that read the real data: the bench database (created and
//! migrated on first use) and `subscriber_observations.parquet` imported into it once.

use std::path::PathBuf;

use tgpulse::config::{IngestConfig, StorageConfig};
use tgpulse::db::{self, DatabaseTarget, Db};
use tgpulse::import::{self, ImportOptions};

/// TGPULSE_BENCH_DATABASE_URL (default `…/tgpulse_bench`) with `suffix` appended to the
/// database name.
pub(crate) fn bench_url(suffix: &str) -> String {
    let url = std::env::var("TGPULSE_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/tgpulse_bench".into());
    format!("{url}{suffix}")
}

/// `subscriber_observations.parquet` under TGPULSE_DATA_DIR (default ../shared/data); panics
/// with the README's pointer when it is missing.
pub(crate) fn data_file() -> PathBuf {
    real_file("telegram-animals/subscriber_observations.parquet")
}

/// `rel` under TGPULSE_DATA_DIR (default ../shared/data); panics with the README's pointer
/// when it is missing.
pub(crate) fn real_file(rel: &str) -> PathBuf {
    let dir = std::env::var_os("TGPULSE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")));
    let f = dir.join(rel);
    assert!(
        f.is_file(),
        "real data missing at {} (see README, 'Real data')",
        f.display()
    );
    f
}

/// The database at `url`, created if missing (another bench process may create it at the
/// same moment; that is fine) and migrated.
pub(crate) async fn open(url: &str) -> Db {
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
        let _ = admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await;
    }
    drop(admin);
    let _ = driver.await;
    let pool = db::connect(&DatabaseTarget::from_url(url).unwrap(), 4)
        .await
        .unwrap();
    db::migrate(&pool, &StorageConfig::default()).await.unwrap()
}

/// The bench database with the real observations file imported (on first use only).
pub(crate) async fn with_real_data() -> Db {
    let db = open(&bench_url("")).await;
    let have: i64 = db
        .pool
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
    db
}

/// The bench database `…_posts` with `posts_meta.parquet` (2.74M posts, their forwards)
/// imported (on first use only).
#[allow(dead_code)] // used by query_paths only
pub(crate) async fn with_posts() -> Db {
    let db = open(&bench_url("_posts")).await;
    let have: i64 = db
        .pool
        .get()
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM post_samples", &[])
        .await
        .unwrap()
        .get(0);
    if have == 0 {
        import::import(
            &db,
            &real_file("telegram-posts/posts_meta.parquet"),
            &ImportOptions::default(),
            &IngestConfig::default(),
        )
        .await
        .unwrap();
    }
    db
}
