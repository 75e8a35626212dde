//! Data teams' exports and analysts' SQL against real servers: moto's S3 server on loopback
//! (started here), read back by pyarrow and DuckDB (installed by `scripts/lake-tools`), and
//! the real datasets.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use chrono_tz::Tz;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use tgpulse::config::StorageMode;
use tgpulse::export::{self, DatasetRequest, ExportFormat, ExportRequest, PartitionBy};
use tgpulse::lake::Location;
use tgpulse::query::{self, Engine};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::AbortHandle;

use crate::common::{TestDb, animals, posts_file, scratch};

/// The virtualenv with moto, pyarrow and duckdb, installed by `scripts/lake-tools` on first
/// use. Fails the test when it cannot be installed.
fn venv() -> PathBuf {
    let v = std::env::var_os("TGPULSE_PY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/tgpulse/venv")
        });
    if !v.join("bin/moto_server").exists() {
        let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lake-tools"))
            .env("TGPULSE_PY_VENV", &v)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the lake tests need moto, pyarrow and duckdb in {}; scripts/lake-tools failed: {}",
            v.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    v
}

/// Runs a Python snippet in the virtualenv with `args` as `sys.argv[1:]`; returns stdout.
fn python(code: &str, args: &[&str]) -> String {
    let out = Command::new(venv().join("bin/python"))
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// moto's S3 server on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    addr: SocketAddr,
}

impl Moto {
    async fn start() -> Self {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let child = Command::new(venv().join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &addr.port().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Dropped (killed and waited for) if the server never answers.
        let moto = Self { child, addr };
        for _ in 0..200 {
            if TcpStream::connect(addr).await.is_ok() {
                return moto;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("moto_server did not start on {addr}");
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A plain (unsigned) request to moto, which does not check signatures.
    async fn get(&self, path: &str) -> String {
        reqwest::get(format!("{}{path}", self.endpoint()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    async fn create_bucket(&self, bucket: &str) {
        let r = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.endpoint()))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }

    /// Keys under `prefix`.
    async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let xml = self
            .get(&format!(
                "/{bucket}?list-type=2&prefix={prefix}&max-keys=1000"
            ))
            .await;
        xml.split("<Key>")
            .skip(1)
            .map(|s| s.split("</Key>").next().unwrap().to_owned())
            .collect()
    }

    /// Multipart uploads begun and neither completed nor aborted.
    async fn open_uploads(&self, bucket: &str) -> usize {
        self.get(&format!("/{bucket}?uploads"))
            .await
            .matches("<Upload>")
            .count()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary, with S3 credentials for moto in the environment and no profile.
fn tgpulse(t: &TestDb) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tgpulse"));
    c.env_remove("TGPULSE_DATABASE_URL")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_ACCESS_KEY_ID", "tgpulse-test")
        .env("AWS_SECRET_ACCESS_KEY", "tgpulse-test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("TGPULSE_LOG", "error")
        .args(["--database-url", &t.url]);
    c
}

fn run_ok(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        c.get_args().collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const PYARROW_S3: &str = r#"
import sys, json
import pyarrow.fs as fs, pyarrow.parquet as pq, pyarrow.compute as pc, pyarrow.dataset as ds
s3 = fs.S3FileSystem(access_key="x", secret_key="x", region="us-east-1",
                     endpoint_override=sys.argv[1], scheme="http")
"#;

#[tokio::test]
async fn a_full_post_samples_export_to_s3_reads_back_in_pyarrow_with_the_same_rows_and_sums() {
    let t = TestDb::plain().await;
    t.import(&posts_file()).await;
    let (n, views, forwards): (i64, i64, i64) = {
        let r = t
            .client()
            .await
            .query_one(
                "SELECT count(*), sum(views)::bigint, sum(forwards)::bigint FROM post_samples",
                &[],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1), r.get(2))
    };
    let moto = Moto::start().await;
    moto.create_bucket("lake").await;
    let key = "s3://lake/full/post_samples.parquet";
    run_ok(tgpulse(&t).args([
        "export",
        "--relation",
        "post_samples",
        "--format",
        "parquet",
        "--out",
        key,
        "--s3-endpoint",
        &moto.endpoint(),
    ]));
    assert_eq!(
        moto.keys("lake", "full/").await,
        ["full/post_samples.parquet"]
    );
    assert_eq!(moto.open_uploads("lake").await, 0);

    // pyarrow's own S3 client and Parquet reader.
    let got = python(
        &format!(
            "{PYARROW_S3}
f = s3.get_file_info('lake/full/post_samples.parquet')
t = pq.read_table('lake/full/post_samples.parquet', filesystem=s3)
print(json.dumps([t.num_rows, pc.sum(t['views']).as_py(), pc.sum(t['forwards']).as_py(), f.size]))"
        ),
        &[&moto.endpoint()],
    );
    let got: (i64, i64, i64, u64) = serde_json::from_str(&got).unwrap();
    assert_eq!((got.0, got.1, got.2), (n, views, forwards));
    assert!(
        got.3 > 2 * export::PART_BYTES as u64,
        "{} bytes: the file must take several parts to test the multipart path",
        got.3
    );

    // The same key again is refused, and the object stays.
    let again = tgpulse(&t)
        .args([
            "export",
            "--relation",
            "post_samples",
            "--format",
            "csv",
            "--out",
            key,
            "--s3-endpoint",
            &moto.endpoint(),
        ])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists; pass --force"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // views_daily partitioned by channel, read by pyarrow as one Hive-partitioned dataset.
    let listed = run_ok(tgpulse(&t).args([
        "export",
        "--relation",
        "views_daily",
        "--format",
        "parquet",
        "--partition-by",
        "channel",
        "--out",
        "s3://lake/views_by_channel",
        "--s3-endpoint",
        &moto.endpoint(),
    ]));
    let files = listed.lines().count();
    let per_channel: Vec<(i64, i64, i64)> = t
        .client()
        .await
        .query(
            "SELECT channel_id, count(*), coalesce(sum(views), 0)::bigint FROM views_daily GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(files, per_channel.len(), "one file per channel");
    assert_eq!(moto.keys("lake", "views_by_channel/").await.len(), files);
    let got = python(
        &format!(
            "{PYARROW_S3}
d = ds.dataset('lake/views_by_channel', filesystem=s3, format='parquet', partitioning='hive')
t = d.to_table()
assert 'channel_id' in t.schema.names
g = t.group_by('channel_id').aggregate([('bucket', 'count'), ('views', 'sum')]).sort_by('channel_id')
print(json.dumps([[int(r['channel_id']), r['bucket_count'], r['views_sum'] or 0] for r in g.to_pylist()]))"
        ),
        &[&moto.endpoint()],
    );
    let got: Vec<(i64, i64, i64)> = serde_json::from_str(&got).unwrap();
    assert_eq!(got, per_channel);
}

/// A loopback TCP proxy that kills every open connection once, as soon as `limit` bytes
/// went upstream in all (the server vanishing mid-upload from the client's view), and
/// forwards new connections after that.
struct CutProxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
}

impl CutProxy {
    async fn start(upstream: SocketAddr, limit: u64) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let c = cut.clone();
        tokio::spawn(async move {
            loop {
                let Ok((down, _)) = listener.accept().await else {
                    return;
                };
                let (c, sent, list) = (c.clone(), sent.clone(), conns.clone());
                let list2 = list.clone();
                let task = tokio::spawn(async move {
                    let Ok(up) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut dr, mut dw) = down.into_split();
                    let (mut ur, mut uw) = up.into_split();
                    let back = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut ur, &mut dw).await;
                    });
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(k) = dr.read(&mut buf).await {
                        if k == 0 || uw.write_all(&buf[..k]).await.is_err() {
                            break;
                        }
                        let total = sent.fetch_add(k as u64, Ordering::SeqCst) + k as u64;
                        if total >= limit && !c.swap(true, Ordering::SeqCst) {
                            back.abort();
                            for h in list2.lock().await.drain(..) {
                                h.abort();
                            }
                            return;
                        }
                    }
                    back.abort();
                });
                list.lock().await.push(task.abort_handle());
            }
        });
        Self { addr, cut }
    }
}

// Multi-threaded: the proxy's tasks run while the test waits for the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_killed_mid_upload_leaves_no_object_and_no_parts() {
    let t = TestDb::plain().await;
    // 1.5M samples of random counters: a Parquet file of several 8 MiB parts.
    t.client()
        .await
        .batch_execute(
            "INSERT INTO post_samples (channel_id, post_id, published_at, observed_at, views, forwards, replies, reactions, source)
             SELECT 1 + i % 50, i, timestamptz '2024-01-01 00:00Z' + i * interval '1 minute',
                    timestamptz '2024-01-01 01:00Z' + i * interval '1 minute',
                    (random() * 1e12)::bigint, (random() * 1e9)::bigint, (random() * 1e9)::bigint,
                    (random() * 1e9)::bigint, 'import'
             FROM generate_series(1, 1500000) i",
        )
        .await
        .unwrap();
    let moto = Moto::start().await;
    moto.create_bucket("lake").await;
    // CSV too, whose encoder reports write failures as text: the error still names the store.
    for format in ["parquet", "csv"] {
        let proxy = CutProxy::start(moto.addr, 12 << 20).await;
        let out = tgpulse(&t)
            .args([
                "export",
                "--relation",
                "post_samples",
                "--format",
                format,
                "--out",
                &format!("s3://lake/cut/post_samples.{format}"),
                "--s3-endpoint",
                &format!("http://{}", proxy.addr),
                "--s3-max-retries",
                "0",
            ])
            .output()
            .unwrap();
        assert!(
            proxy.cut.load(Ordering::SeqCst),
            "{format}: the upload never reached 12 MiB"
        );
        assert!(!out.status.success(), "{format}: the export must fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("the object store failed"), "{format}: {err}");
        assert!(
            moto.keys("lake", "cut/").await.is_empty(),
            "{format}: an object was left"
        );
        assert_eq!(
            moto.open_uploads("lake").await,
            0,
            "{format}: the upload was not aborted"
        );
    }
}

#[tokio::test]
async fn a_month_partitioned_export_is_one_table_for_duckdb_with_the_local_months() {
    let zone = "America/New_York";
    let t = TestDb::new(StorageMode::Plain, zone.parse::<Tz>().unwrap(), "").await;
    t.import(&animals("subscriber_observations_top30.csv"))
        .await;
    let dir = scratch("lake-months");
    let root = dir.join("members");
    let req = ExportRequest {
        relation: query::relation("member_samples").unwrap(),
        channel: None,
        from: None,
        to: None,
        format: ExportFormat::Parquet,
    };
    let ds = DatasetRequest {
        root: Location::Local(root.clone()),
        partition_by: Some(PartitionBy::Month),
        since_last: None,
    };
    let engine = Engine::new(t.db.clone());
    let s = dataset(&engine, &req, &ds).await.unwrap();
    let pg: Vec<(String, i64, i64)> = t
        .client()
        .await
        .query(
            &format!(
                "SELECT to_char(observed_at AT TIME ZONE '{zone}', 'YYYY-MM'), count(*), sum(members)::bigint
                 FROM member_samples GROUP BY 1 ORDER BY 1"
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(s.rows as i64, pg.iter().map(|m| m.1).sum::<i64>());
    let got = python(
        "import sys, json, duckdb
rows = duckdb.sql(f\"SELECT month, count(*), sum(members) FROM read_parquet('{sys.argv[1]}/**/*.parquet', hive_partitioning = true) GROUP BY month ORDER BY month\").fetchall()
print(json.dumps([[str(m), int(c), int(v)] for m, c, v in rows]))",
        &[root.to_str().unwrap()],
    );
    let got: Vec<(String, i64, i64)> = serde_json::from_str(&got).unwrap();
    assert_eq!(got, pg);
    // A second export into the same folder is refused: a partitioned dataset starts empty.
    let again = dataset(&engine, &req, &ds).await;
    assert!(
        matches!(again, Err(export::Error::NotEmpty(_))),
        "{again:?}"
    );
}

/// A dataset export that is never stopped.
async fn dataset(
    engine: &Engine,
    req: &ExportRequest,
    ds: &DatasetRequest,
) -> Result<export::DatasetSummary, export::Error> {
    export::export_dataset(engine, req, ds, &|_| {}, &mut std::future::pending::<()>()).await
}

async fn rows_in(dir: &Path) -> (i64, i64) {
    let ctx = SessionContext::new();
    ctx.register_parquet(
        "x",
        &format!("{}/", dir.display()),
        ParquetReadOptions::default(),
    )
    .await
    .unwrap();
    let b = ctx
        .sql("SELECT count(*), count(DISTINCT (channel_id, observed_at)) FROM x")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let get = |i: usize| b[0].column(i).as_primitive::<Int64Type>().value(0);
    (get(0), get(1))
}

#[tokio::test]
async fn incremental_exports_hold_every_row_once_late_and_in_flight_rows_included() {
    let t = TestDb::plain().await;
    t.import(&animals("subscriber_observations_top30.csv"))
        .await;
    let dir = scratch("lake-incremental");
    let engine = Engine::new(t.db.clone());
    let req = ExportRequest {
        relation: query::relation("member_samples").unwrap(),
        channel: None,
        from: None,
        to: None,
        format: ExportFormat::Parquet,
    };
    let ds = DatasetRequest {
        root: Location::Local(dir.clone()),
        partition_by: None,
        since_last: Some("members".into()),
    };
    // Rows stored before the column existed (an upgraded database) have no stored_at.
    t.client()
        .await
        .execute(
            "UPDATE member_samples SET stored_at = NULL WHERE channel_id IN (SELECT channel_id FROM member_samples LIMIT 1)",
            &[],
        )
        .await
        .unwrap();
    let run = || async { dataset(&engine, &req, &ds).await };
    let first = run().await.unwrap();
    assert_eq!(
        first.rows as i64,
        t.count("SELECT count(*) FROM member_samples").await
    );
    assert_eq!(first.run, Some(1));

    // More of the real data (overlapping the first file: only new rows are stored), and a
    // late sample from 2020.
    t.import(&animals("subscriber_observations.parquet")).await;
    t.client()
        .await
        .execute(
            "INSERT INTO member_samples (channel_id, observed_at, members, source)
             VALUES (42, '2020-01-01 00:00Z', 7, 'late')",
            &[],
        )
        .await
        .unwrap();
    let second = run().await.unwrap();
    assert!(second.rows > 0);
    assert_eq!(second.run, Some(2));

    // A transaction that stored a row but has not committed: not exported (and not lost).
    let pending = tokio_postgres::connect(&t.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(pending.1);
    let pending = pending.0;
    pending
        .batch_execute(
            "BEGIN; INSERT INTO member_samples (channel_id, observed_at, members, source)
             VALUES (43, '2026-01-01 00:00Z', 9, 'slow')",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let third = run().await.unwrap();
    assert_eq!(third.rows, 0);
    assert!(third.files.is_empty());
    pending.batch_execute("COMMIT").await.unwrap();
    let fourth = run().await.unwrap();
    assert_eq!(fourth.rows, 1);
    assert_eq!(fourth.run, Some(3));
    // Nothing new: nothing exported, no file.
    let fifth = run().await.unwrap();
    assert_eq!((fifth.rows, fifth.files.len()), (0, 0));

    let total = t.count("SELECT count(*) FROM member_samples").await;
    assert_eq!(
        rows_in(&dir).await,
        (total, total),
        "every row exactly once"
    );
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "members-000001-0.parquet",
            "members-000002-0.parquet",
            "members-000003-0.parquet"
        ]
    );
    // The watermark is the relation's own: another relation under the same name is refused.
    let other = ExportRequest {
        relation: query::relation("post_samples").unwrap(),
        ..req.clone()
    };
    let e = dataset(&engine, &other, &ds).await;
    assert!(
        matches!(e, Err(export::Error::OtherRelation { .. })),
        "{e:?}"
    );
    // And a daily relation has no stored_at to follow.
    let daily = ExportRequest {
        relation: query::relation("members_daily").unwrap(),
        ..req.clone()
    };
    let e = dataset(&engine, &daily, &ds).await;
    assert!(matches!(e, Err(export::Error::NotIncremental(_))), "{e:?}");
}

#[tokio::test]
async fn sql_joins_members_daily_with_a_parquet_file_like_duckdb_and_refuses_writes() {
    let t = TestDb::plain().await;
    t.import(&animals("subscriber_observations_top30.csv"))
        .await;
    let dir = scratch("lake-sql");
    let samples = dir.join("samples.parquet");
    let daily = dir.join("daily.parquet");
    for (relation, path) in [("member_samples", &samples), ("members_daily", &daily)] {
        run_ok(tgpulse(&t).args([
            "export",
            "--relation",
            relation,
            "--format",
            "parquet",
            "--out",
            path.to_str().unwrap(),
        ]));
    }
    let ours = run_ok(tgpulse(&t).args([
        "sql",
        "SELECT d.channel_id, CAST(extract(epoch FROM d.bucket) AS BIGINT) AS day, d.members, count(*) AS n \
         FROM members_daily d JOIN s ON s.channel_id = d.channel_id AND date_trunc('day', s.observed_at) = d.bucket \
         WHERE d.members > 100000 GROUP BY 1, 2, 3 ORDER BY 1, 2",
        "--table",
        &format!("s={}", samples.display()),
        "--format",
        "csv",
    ]));
    let duck = python(
        "import sys, duckdb
rows = duckdb.sql(f\"SELECT d.channel_id, epoch(d.bucket)::BIGINT AS day, d.members, count(*) AS n FROM read_parquet('{sys.argv[1]}') d JOIN read_parquet('{sys.argv[2]}') s ON s.channel_id = d.channel_id AND date_trunc('day', s.observed_at AT TIME ZONE 'UTC') = d.bucket AT TIME ZONE 'UTC' WHERE d.members > 100000 GROUP BY 1, 2, 3 ORDER BY 1, 2\").fetchall()
print('channel_id,day,members,n')
for r in rows: print(','.join(str(v) for v in r))",
        &[daily.to_str().unwrap(), samples.to_str().unwrap()],
    );
    assert!(ours.lines().count() > 100, "{} rows", ours.lines().count());
    assert_eq!(ours, duck);

    // As an analyst login (no DDL rights: tgpulse sql does not migrate).
    let role = format!("tgpulse_it_analyst_{}", std::process::id());
    t.client()
        .await
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN IN ROLE tgpulse_analyst"
        ))
        .await
        .unwrap();
    let analyst_url = t.url.replacen("postgres@", &format!("{role}@"), 1);
    let as_analyst = Command::new(env!("CARGO_BIN_EXE_tgpulse"))
        .env_remove("TGPULSE_DATABASE_URL")
        .env("TGPULSE_LOG", "error")
        .args([
            "--database-url",
            &analyst_url,
            "sql",
            "SELECT count(*) AS n FROM members_daily",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    crate::common::admin_on_drop(format!("DROP ROLE IF EXISTS {role}"));
    assert!(
        as_analyst.status.success(),
        "{}",
        String::from_utf8_lossy(&as_analyst.stderr)
    );
    let before = t.count("SELECT count(*) FROM members_daily").await;
    assert_eq!(
        String::from_utf8_lossy(&as_analyst.stdout),
        format!("n\n{before}\n")
    );
    let copied = dir.join("copied.csv");
    let copy_to = format!(
        "COPY (SELECT * FROM members_daily) TO '{}' STORED AS CSV",
        copied.display()
    );
    let external = format!(
        "CREATE EXTERNAL TABLE e STORED AS PARQUET LOCATION '{}'",
        samples.display()
    );
    for stmt in [
        "INSERT INTO members_daily SELECT * FROM members_daily",
        "DROP TABLE members_daily",
        "CREATE TABLE x AS SELECT 1",
        "DELETE FROM members_daily",
        "EXPLAIN ANALYZE INSERT INTO members_daily SELECT * FROM members_daily",
        "SET datafusion.execution.batch_size = 1",
        copy_to.as_str(),
        external.as_str(),
    ] {
        let out = tgpulse(&t).args(["sql", stmt]).output().unwrap();
        assert!(!out.status.success(), "{stmt} ran");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("tgpulse sql is read-only"), "{stmt}: {err}");
    }
    assert_eq!(t.count("SELECT count(*) FROM members_daily").await, before);
    assert!(!copied.exists(), "COPY TO wrote a file");
}

/// The README's "Exported schema" table: relation → [(column, type, unit, description)].
fn readme_schema() -> Vec<(String, String, String, String, String)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("### Exported schema")
        .expect("README has an 'Exported schema' section");
    readme[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| relation"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let c: Vec<String> = l
                .trim_matches('|')
                .split('|')
                .map(|s| s.trim().trim_matches('`').to_owned())
                .collect();
            (
                c[0].clone(),
                c[1].clone(),
                c[2].clone(),
                c[3].clone(),
                c[4].clone(),
            )
        })
        .collect()
}

fn arrow_type_name(t: &arrow::datatypes::DataType) -> &'static str {
    use arrow::datatypes::{DataType, TimeUnit};
    match t {
        DataType::Int64 => "int64",
        DataType::Utf8 => "string",
        DataType::Float64 => "float64",
        DataType::Timestamp(TimeUnit::Microsecond, Some(z)) if z.as_ref() == "UTC" => {
            "timestamp[us, UTC]"
        }
        other => panic!("undocumented type {other}"),
    }
}

#[tokio::test]
async fn parquet_metadata_and_column_types_match_the_readme_schema_table() {
    let t = TestDb::plain().await;
    t.import(&animals("subscriber_observations_top30.csv"))
        .await;
    let engine = Engine::new(t.db.clone());
    let dir = scratch("lake-schema");
    let table = readme_schema();
    assert_eq!(table.len(), tgpulse::export::schema::COLUMNS.len());
    let views = query::VIEWS.iter().map(|v| &v.def);
    for def in query::RELATIONS.iter().chain(views) {
        let path = dir.join(format!("{}.parquet", def.name));
        let req = ExportRequest {
            relation: def,
            channel: None,
            from: None,
            to: None,
            format: ExportFormat::Parquet,
        };
        export::export(&engine, &req, &export::Destination::File(path.clone()))
            .await
            .unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let builder =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let kv: std::collections::HashMap<String, String> = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .unwrap()
            .iter()
            .map(|k| (k.key.clone(), k.value.clone().unwrap_or_default()))
            .collect();
        let readme: Vec<_> = table.iter().filter(|r| r.0 == def.name).collect();
        let file_cols: Vec<(String, String)> = builder
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), arrow_type_name(f.data_type()).to_owned()))
            .collect();
        let readme_cols: Vec<(String, String)> =
            readme.iter().map(|r| (r.1.clone(), r.2.clone())).collect();
        assert_eq!(file_cols, readme_cols, "{}", def.name);
        let described: Vec<serde_json::Value> =
            serde_json::from_str(&kv["tgpulse.schema"]).unwrap();
        let described: Vec<(String, String, String, String)> = described
            .iter()
            .map(|c| {
                let s = |k: &str| c[k].as_str().unwrap().to_owned();
                (s("name"), s("type"), s("unit"), s("description"))
            })
            .collect();
        let readme_full: Vec<(String, String, String, String)> = readme
            .iter()
            .map(|r| (r.1.clone(), r.2.clone(), r.3.clone(), r.4.clone()))
            .collect();
        assert_eq!(described, readme_full, "{}", def.name);
        assert_eq!(kv["tgpulse.version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(kv["tgpulse.relation"], def.name);
        assert_eq!(kv["tgpulse.timezone"], "UTC");
        assert_eq!(kv["tgpulse.time_column"], def.time_column);
        let span: Option<(String, String)> = t
            .client()
            .await
            .query_one(
                &format!(
                    "SELECT to_char(min({c}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                            to_char(max({c}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')
                     FROM {r}",
                    c = def.time_column,
                    // A computed relation's rows are those of the relation it is computed from.
                    r = if query::is_view(def.name) {
                        "(SELECT published_at FROM post_samples WHERE views IS NOT NULL) AS v"
                    } else {
                        def.name
                    }
                ),
                &[],
            )
            .await
            .map(|r| r.get::<_, Option<String>>(0).zip(r.get::<_, Option<String>>(1)))
            .unwrap();
        let (first, last) = span.unwrap_or_default();
        assert_eq!(
            (
                kv["tgpulse.rows.first"].clone(),
                kv["tgpulse.rows.last"].clone()
            ),
            (first, last),
            "{}",
            def.name
        );
    }
}

#[tokio::test]
async fn json_lines_hold_every_column_of_every_row_with_explicit_nulls() {
    let t = TestDb::plain().await;
    t.client()
        .await
        .batch_execute(
            "INSERT INTO post_samples (channel_id, post_id, published_at, observed_at, views, forwards, replies, reactions, source)
             VALUES (7, 1, '2024-05-01 10:00Z', '2024-05-01 12:00Z', 100, NULL, 2, 3, 'import'),
                    (7, 2, '2024-05-02 10:00Z', '2024-05-02 12:00Z', NULL, 1, NULL, NULL, 'import')",
        )
        .await
        .unwrap();
    let out = run_ok(tgpulse(&t).args([
        "export",
        "--relation",
        "post_samples",
        "--format",
        "jsonl",
        "--out",
        "-",
    ]));
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    let cols: Vec<&str> = query::relation("post_samples")
        .unwrap()
        .columns
        .iter()
        .map(|c| c.0)
        .collect();
    for r in &rows {
        let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = cols.clone();
        want.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, want);
    }
    let first = rows.iter().find(|r| r["post_id"] == 1).unwrap();
    assert_eq!(first["views"], 100);
    assert!(first["forwards"].is_null());
    assert_eq!(first["published_at"], "2024-05-01T10:00:00.000000Z");
    let second = rows.iter().find(|r| r["post_id"] == 2).unwrap();
    assert!(second["views"].is_null());
}

#[tokio::test]
async fn an_incremental_export_by_a_role_that_cannot_see_other_sessions_is_refused() {
    let t = TestDb::plain().await;
    let role = format!("tgpulse_it_exporter_{}", std::process::id());
    t.client()
        .await
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN;
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role};
             GRANT INSERT, UPDATE ON export_watermarks TO {role};"
        ))
        .await
        .unwrap();
    // Another role's session storing a row in a transaction still open.
    let (other, conn) = tokio_postgres::connect(&t.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    other
        .batch_execute(
            "BEGIN; INSERT INTO member_samples (channel_id, observed_at, members, source)
             VALUES (1, now(), 1, 'slow')",
        )
        .await
        .unwrap();
    let url = t.url.replacen("postgres@", &format!("{role}@"), 1);
    let pool = tgpulse::db::connect(&tgpulse::db::DatabaseTarget::from_url(&url).unwrap(), 2)
        .await
        .unwrap();
    let engine = Engine::new(tgpulse::db::attach(&pool).await.unwrap());
    let req = ExportRequest {
        relation: query::relation("member_samples").unwrap(),
        channel: None,
        from: None,
        to: None,
        format: ExportFormat::Parquet,
    };
    let ds = DatasetRequest {
        root: Location::Local(scratch("lake-hidden")),
        partition_by: None,
        since_last: Some("hidden".into()),
    };
    let e = dataset(&engine, &req, &ds).await;
    pool.close();
    other.batch_execute("ROLLBACK").await.unwrap();
    t.client()
        .await
        .batch_execute(&format!(
            "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}"
        ))
        .await
        .unwrap();
    crate::common::admin_on_drop(format!("DROP ROLE IF EXISTS {role}"));
    assert!(matches!(e, Err(export::Error::CannotSeeWriters)), "{e:?}");
    // A filtered incremental export is refused before anything runs.
    let engine = Engine::new(t.db.clone());
    let filtered = ExportRequest {
        channel: Some(tgpulse::domain::ChannelId::new(1).unwrap()),
        ..req.clone()
    };
    let e = dataset(&engine, &filtered, &ds).await;
    assert!(
        matches!(e, Err(export::Error::FilteredIncremental)),
        "{e:?}"
    );
}
