//! Test support: fresh databases, the real data folder, small fixtures.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::AbortHandle;

use chrono_tz::Tz;
use tgpulse::config::{IngestConfig, StorageConfig, StorageMode};
use tgpulse::db::{self, DatabaseTarget, Db};
use tgpulse::import::{self, ImportOptions, ImportSummary};

/// Server URL without a database; override with TGPULSE_TEST_DATABASE_URL.
pub(crate) fn server_url() -> String {
    std::env::var("TGPULSE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A freshly created and migrated database, dropped when the value is dropped.
pub(crate) struct TestDb {
    pub(crate) db: Db,
    pub(crate) name: String,
    pub(crate) url: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

async fn admin() -> tokio_postgres::Client {
    let (client, conn) =
        tokio_postgres::connect(&format!("{}/postgres", server_url()), tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL must run on 127.0.0.1:5432 for the tests (see README)");
    tokio::spawn(conn);
    client
}

impl TestDb {
    /// Plain PostgreSQL, UTC buckets.
    pub(crate) async fn plain() -> Self {
        Self::new(StorageMode::Plain, Tz::UTC, "").await
    }

    /// A database in `mode` bucketing days in `tz`; `options` is appended to the URL
    /// (e.g. `?options=-c%20TimeZone%3DAmerica/New_York`).
    pub(crate) async fn new(mode: StorageMode, tz: Tz, options: &str) -> Self {
        let name = format!(
            "tgpulse_it_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            chrono::Utc::now().timestamp_micros() % 1_000_000
        );
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let url = format!("{}/{name}{options}", server_url());
        let target = DatabaseTarget::from_url(&url).expect("valid url");
        let pool = db::connect(&target, 4)
            .await
            .expect("connect to the test database");
        let cfg = StorageConfig {
            mode,
            timezone: tz,
            ..StorageConfig::default()
        };
        let db = db::migrate(&pool, &cfg)
            .await
            .expect("migrate the test database");
        Self { db, name, url }
    }

    /// A direct client for assertions that must not go through tgpulse.
    pub(crate) async fn client(&self) -> deadpool_postgres::Object {
        self.db.pool.get().await.expect("pooled connection")
    }

    pub(crate) async fn count(&self, sql: &str) -> i64 {
        self.client()
            .await
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }

    pub(crate) async fn import(&self, path: &std::path::Path) -> ImportSummary {
        import::import(
            &self.db,
            path,
            &ImportOptions::default(),
            &IngestConfig::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("import {}: {e:#}", path.display()))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.db.pool.close();
        admin_on_drop(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// Runs `sql` on the server's `postgres` database from a `Drop`, best effort: drop runs
/// outside async context guarantees, so it uses a thread with its own runtime.
pub(crate) fn admin_on_drop(sql: String) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let _ = admin().await.batch_execute(&sql).await;
        });
    })
    .join();
}

/// The real data folder. Panics (fails the test) when it is missing: these tests must never
/// pass silently without the data.
pub(crate) fn data_dir() -> PathBuf {
    let dir = std::env::var_os("TGPULSE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")));
    assert!(
        dir.join("telegram-animals").is_dir() && dir.join("telegram-posts").is_dir(),
        "REAL DATA MISSING: expected telegram-animals/ and telegram-posts/ under {} (see README, 'Real data')",
        dir.display()
    );
    dir
}

pub(crate) fn animals(file: &str) -> PathBuf {
    data_dir().join("telegram-animals").join(file)
}

pub(crate) fn posts_file() -> PathBuf {
    data_dir().join("telegram-posts/posts_meta.parquet")
}

/// Why the test server cannot run TimescaleDB tests, or `None` when it can (the extension is
/// installed and preloaded).
pub(crate) async fn timescale_unavailable() -> Option<String> {
    let c = admin().await;
    let available = c
        .query_opt(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'",
            &[],
        )
        .await
        .map(|r| r.is_some())
        .unwrap_or(false);
    if !available {
        return Some(
            "TimescaleDB is not installed on the test server (pg_available_extensions)".into(),
        );
    }
    let preloaded: String = c
        .query_one("SELECT current_setting('shared_preload_libraries')", &[])
        .await
        .map(|r| r.get(0))
        .unwrap_or_default();
    if !preloaded.contains("timescaledb") {
        return Some(format!(
            "TimescaleDB is installed on the test server but not preloaded \
             (shared_preload_libraries = '{preloaded}'); set shared_preload_libraries = \
             'timescaledb' and restart it, or point TGPULSE_TEST_DATABASE_URL at a server that has it"
        ));
    }
    None
}

/// A scratch directory for a test's files.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tgpulse-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Sends SIGTERM to a child process (the real binary) and waits for its output.
pub(crate) async fn sigterm_and_wait(child: std::process::Child) -> std::process::Output {
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM");
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap()
}

/// A loopback TCP proxy in front of PostgreSQL. `cut` kills every open connection and makes
/// new ones close at once (the client sees the server vanish); `restore` forwards again.
pub(crate) struct Proxy {
    pub(crate) addr: SocketAddr,
    cut: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    pub(crate) async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (c, list) = (cut.clone(), conns.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut down, _)) = listener.accept().await else {
                    return;
                };
                if c.load(Ordering::SeqCst) {
                    drop(down);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut up) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                list.lock().await.push(task.abort_handle());
            }
        });
        Self { addr, cut, conns }
    }

    pub(crate) async fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for c in self.conns.lock().await.drain(..) {
            c.abort();
        }
    }

    pub(crate) fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// The test database, reached through the proxy.
pub(crate) async fn through(t: &TestDb, proxy: &Proxy) -> Db {
    let url = format!("postgres://postgres@{}/{}", proxy.addr, t.name);
    let pool = db::connect(&DatabaseTarget::from_url(&url).unwrap(), 4)
        .await
        .unwrap();
    Db {
        pool,
        storage: t.db.storage,
        timezone: t.db.timezone,
    }
}
