//! A real server in the state right after the TimescaleDB package is installed: the extension's
//! files are there, `shared_preload_libraries` does not name it. The test starts a throwaway
//! cluster of its own in that state (initdb + pg_ctl of the local PostgreSQL 15 into a scratch
//! folder, on a free port) and runs the real binary against it. It needs only the extension's
//! files on this machine and says SKIPPED otherwise; the main test server is not touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{data_dir, scratch, server_url};

/// Binaries of the local PostgreSQL whose extension folder is checked.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn tgpulse() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tgpulse"));
    c.env_remove("TGPULSE_DATABASE_URL")
        .env_remove("TGPULSE_STORAGE")
        .env("TGPULSE_LOG", "warn");
    c
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Why the test cannot run here, if it cannot.
fn unavailable() -> Option<String> {
    if !Path::new(PG_BIN).join("initdb").exists() {
        return Some(format!("no PostgreSQL server binaries in {PG_BIN}"));
    }
    let sharedir = Command::new(Path::new(PG_BIN).join("pg_config"))
        .arg("--sharedir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "/usr/share/postgresql/15".into());
    let control = Path::new(&sharedir).join("extension/timescaledb.control");
    if !control.exists() {
        return Some(format!(
            "timescaledb not installed ({} is missing)",
            control.display()
        ));
    }
    None
}

/// A PostgreSQL cluster in a scratch folder, stopped and removed on drop.
struct Cluster {
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    /// initdb (trust, user postgres) and start on a free loopback port, without preloads.
    fn start(name: &str) -> Self {
        let dir = scratch(name);
        // initdb refuses to run as root: run the server tools as the postgres user then.
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown {} to postgres", dir.display());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Self {
            dir,
            port,
            as_postgres,
        };
        let data = cluster.dir.join("data");
        let out = cluster
            .tool("initdb")
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", text(&out));
        let opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            cluster.dir.display()
        );
        let out = cluster
            .tool("pg_ctl")
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .args(["-l"])
            .arg(cluster.dir.join("server.log"))
            .args(["-o", &opts, "start"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start: {}", text(&out));
        cluster
    }

    fn tool(&self, name: &str) -> Command {
        let path = Path::new(PG_BIN).join(name);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    async fn client(&self, db: &str) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url(db), tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to the throwaway cluster: {e}"));
        tokio::spawn(conn);
        client
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What of the main test server this test could conceivably change.
async fn main_server_state() -> (String, Vec<String>) {
    let (c, conn) =
        tokio_postgres::connect(&format!("{}/postgres", server_url()), tokio_postgres::NoTls)
            .await
            .expect("the main test server");
    tokio::spawn(conn);
    let preload: String = c
        .query_one("SELECT current_setting('shared_preload_libraries')", &[])
        .await
        .unwrap()
        .get(0);
    let mut databases: Vec<String> = c
        .query("SELECT datname::text FROM pg_database", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Other tests create and drop their databases meanwhile: only ours would be named so.
    databases.retain(|d| d.starts_with("tgpulse_fallback"));
    (preload, databases)
}

async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn storage_falls_back_to_plain_when_timescaledb_is_installed_but_not_preloaded() {
    if let Some(why) = unavailable() {
        eprintln!("skipped: timescaledb not installed: {why}");
        return;
    }
    let before = main_server_state().await;
    let cluster = Cluster::start("ts-not-preloaded");
    let admin = cluster.client("postgres").await;
    let preload: String = admin
        .query_one("SELECT current_setting('shared_preload_libraries')", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!preload.contains("timescaledb"), "{preload}");
    assert!(
        admin
            .query_opt(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'",
                &[]
            )
            .await
            .unwrap()
            .is_some(),
        "the throwaway cluster must offer the extension"
    );
    for db in ["tgpulse_fallback", "tgpulse_fallback_strict"] {
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
    }

    // --storage auto: the whole demo runs, on plain storage, and the user is told how to
    // enable TimescaleDB.
    let out_dir = cluster.dir.join("demo");
    let mut demo = tgpulse();
    demo.args(["demo", "--database-url", &cluster.url("tgpulse_fallback")])
        .arg("--out-dir")
        .arg(&out_dir)
        .arg("--data")
        .arg(data_dir());
    let out = run(demo).await;
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(!all.contains("connection closed"), "{all}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not preloaded"), "{all}");
    assert!(
        stderr.contains("shared_preload_libraries = 'timescaledb'"),
        "{all}"
    );
    assert!(stderr.contains("restart PostgreSQL"), "{all}");
    assert!(stderr.contains("--storage plain"), "{all}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("== stats of the largest channel"),
        "{all}"
    );
    let db = cluster.client("tgpulse_fallback").await;
    let storage: String = db
        .query_one(
            "SELECT value FROM tgpulse_settings WHERE key = 'storage'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(storage, "plain");
    let members: i64 = db
        .query_one("SELECT count(*) FROM members_daily", &[])
        .await
        .unwrap()
        .get(0);
    assert!(members > 0);
    assert!(
        db.query_opt(
            "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'",
            &[]
        )
        .await
        .unwrap()
        .is_none()
    );

    // The next start reads the recorded mode: no detection, no warning.
    let mut health = tgpulse();
    health.args(["health", "--database-url", &cluster.url("tgpulse_fallback")]);
    let out = run(health).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("not preloaded"),
        "{}",
        text(&out)
    );

    // --storage timescale: refused, with the same advice, and nothing recorded.
    let mut strict = tgpulse();
    strict.args([
        "migrate",
        "--storage",
        "timescale",
        "--database-url",
        &cluster.url("tgpulse_fallback_strict"),
    ]);
    let out = run(strict).await;
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("TimescaleDB was requested (--storage timescale)"),
        "{all}"
    );
    assert!(
        stderr.contains("shared_preload_libraries = 'timescaledb'"),
        "{all}"
    );
    assert!(!stderr.contains("connection closed"), "{all}");
    let strict_db = cluster.client("tgpulse_fallback_strict").await;
    assert!(
        strict_db
            .query_opt("SELECT 1 FROM tgpulse_settings WHERE key = 'storage'", &[])
            .await
            .unwrap()
            .is_none()
    );

    drop((db, strict_db, admin));
    drop(cluster);
    assert_eq!(
        main_server_state().await,
        before,
        "the main test server changed"
    );
}
