//! Exports stream to Parquet and CSV files that another reader reads back with the same
//! row counts and sums as PostgreSQL itself reports; a file appears at its destination only
//! complete, never over an existing file without being asked, never through a symlink.

use std::path::Path;
use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use tgpulse::export::{self, Destination, ExportFormat, ExportRequest};
use tgpulse::query::{self, Engine};

use crate::common::{TestDb, animals, posts_file, scratch};

/// `n` member samples of channel 1, one a minute from 2024-01-01 (many read batches).
async fn minute_samples(t: &TestDb, n: i64) {
    t.client()
        .await
        .execute(
            "INSERT INTO member_samples (channel_id, observed_at, members, source)
             SELECT 1, timestamptz '2024-01-01 00:00Z' + i * interval '1 minute', i, 'import'
             FROM generate_series(1, $1::bigint) i",
            &[&n],
        )
        .await
        .unwrap();
}

fn samples_request(format: ExportFormat) -> ExportRequest {
    ExportRequest {
        relation: query::relation("member_samples").unwrap(),
        channel: None,
        from: None,
        to: None,
        format,
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn parquet_row_count(path: &Path) -> i64 {
    let file = std::fs::File::open(path).unwrap();
    let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
    parquet::file::reader::FileReader::metadata(&reader)
        .file_metadata()
        .num_rows()
}

#[tokio::test]
async fn post_samples_export_to_parquet_reads_back_with_the_same_count_and_sums() {
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
    let dir = scratch("export-posts");
    let out = dir.join("post_samples.parquet");
    let req = ExportRequest {
        relation: query::relation("post_samples").unwrap(),
        channel: None,
        from: None,
        to: None,
        format: ExportFormat::Parquet,
    };
    let s = export::export(
        &Engine::new(t.db.clone()),
        &req,
        &Destination::File(out.clone()),
    )
    .await
    .unwrap();
    assert_eq!(s.rows as i64, n);

    // Read back with DataFusion's Parquet reader (not the writer's code path).
    let ctx = SessionContext::new();
    ctx.register_parquet("x", out.to_str().unwrap(), ParquetReadOptions::default())
        .await
        .unwrap();
    let b = ctx
        .sql("SELECT count(*), sum(views), sum(forwards) FROM x")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let get = |i: usize| b[0].column(i).as_primitive::<Int64Type>().value(0);
    assert_eq!((get(0), get(1), get(2)), (n, views, forwards));

    // zstd-compressed, with more than one row group for 2.7M rows.
    let file = std::fs::File::open(&out).unwrap();
    let meta = parquet::file::reader::FileReader::metadata(
        &parquet::file::reader::SerializedFileReader::new(file).unwrap(),
    )
    .clone();
    assert!(meta.num_row_groups() > 1);
    let codec = meta.row_group(0).column(0).compression();
    assert!(
        matches!(codec, parquet::basic::Compression::ZSTD(_)),
        "{codec:?}"
    );
}

#[tokio::test]
async fn a_filtered_csv_export_holds_exactly_the_channel_and_days_asked_for() {
    let t = TestDb::plain().await;
    t.import(&animals("subscriber_observations_top30.csv"))
        .await;
    let birds = query::resolve(&t.db, &"@birds".parse().unwrap())
        .await
        .unwrap();
    let from = chrono::DateTime::parse_from_rfc3339("2021-07-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let to = chrono::DateTime::parse_from_rfc3339("2021-08-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let (n, sum): (i64, i64) = {
        let r = t
            .client()
            .await
            .query_one(
                "SELECT count(*), sum(members)::bigint FROM members_daily WHERE channel_id = $1 AND bucket >= $2 AND bucket < $3",
                &[&birds.id.get(), &from, &to],
            )
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(n >= 28);
    let dir = scratch("export-csv");
    let out = dir.join("birds.csv");
    let req = ExportRequest {
        relation: query::relation("members_daily").unwrap(),
        channel: Some(birds.id),
        from: Some(from),
        to: Some(to),
        format: ExportFormat::Csv,
    };
    export::export(
        &Engine::new(t.db.clone()),
        &req,
        &Destination::File(out.clone()),
    )
    .await
    .unwrap();
    let mut r = csv::Reader::from_path(&out).unwrap();
    let headers = r.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>()[..3],
        ["channel_id", "bucket", "members"]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len() as i64, n);
    let total: i64 = rows.iter().map(|r| r[2].parse::<i64>().unwrap()).sum();
    assert_eq!(total, sum);
    assert!(rows.iter().all(|r| r[0] == *birds.id.get().to_string()));
    assert!(
        rows.iter().all(|r| r[1].starts_with("2021-07-")),
        "UTC days of July"
    );
}

#[tokio::test]
async fn a_server_formatted_csv_reads_back_with_quotes_line_breaks_and_postgres_timestamps() {
    let t = TestDb::plain().await;
    t.client()
        .await
        .batch_execute(
            "INSERT INTO channels (channel_id, handle, title) VALUES
                 (1, 'plain', 'Plain title'),
                 (2, NULL, 'Two
lines, a comma and \"quotes\"'),
                 (3, 'q', '\"')",
        )
        .await
        .unwrap();
    let dir = scratch("export-server-csv");
    let out = dir.join("channels.csv");
    let req = ExportRequest {
        relation: query::relation("channels").unwrap(),
        channel: None,
        from: None,
        to: None,
        format: ExportFormat::Csv,
    };
    let s = export::export(
        &Engine::new(t.db.clone()),
        &req,
        &Destination::File(out.clone()),
    )
    .await
    .unwrap();
    assert_eq!(
        s.rows, 3,
        "records, not lines: one title holds a line break"
    );
    let mut r = csv::Reader::from_path(&out).unwrap();
    assert_eq!(
        r.headers().unwrap().iter().collect::<Vec<_>>(),
        ["channel_id", "handle", "title", "added_at"]
    );
    let mut rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    rows.sort_by(|a, b| a[0].cmp(&b[0]));
    assert_eq!(&rows[1][2], "Two\nlines, a comma and \"quotes\"");
    assert_eq!(&rows[1][1], "", "NULL is an empty field");
    assert_eq!(&rows[2][2], "\"");
    // UTC in PostgreSQL's ISO form, whatever the server's TimeZone.
    let added = &rows[0][3];
    assert!(
        added.ends_with("+00") && added.as_bytes()[10] == b' ',
        "{added}"
    );
    chrono::DateTime::parse_from_str(&format!("{added}00"), "%Y-%m-%d %H:%M:%S%.f%z")
        .expect("an ISO timestamp with its offset");
    assert_eq!(s.bytes, std::fs::metadata(&out).unwrap().len());
}

#[tokio::test]
async fn a_cancelled_csv_export_leaves_nothing_and_its_connection_is_not_reused_mid_copy() {
    let t = TestDb::plain().await;
    minute_samples(&t, 300_000).await;
    let dir = scratch("export-cancel-csv");
    let out = dir.join("samples.csv");
    let engine = Engine::new(t.db.clone());
    let req = samples_request(ExportFormat::Csv);
    let first_chunk = tokio::sync::Notify::new();
    let progress = |_: u64| first_chunk.notify_one();
    let dest = Destination::File(out.clone());
    tokio::select! {
        r = export::export_with_progress(&engine, &req, &dest, &progress) => {
            panic!("the export finished before it was cancelled: {r:?}")
        }
        () = first_chunk.notified() => {}
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !listing(&dir).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listing(&dir), Vec::<String>::new(), "nothing left behind");
    // The cancelled export's connection, left inside its COPY, was closed rather than put
    // back: nothing is checked out, and every idle pooled connection (and a new one) takes a
    // write, so none is inside the export's read-only transaction.
    let status = t.db.pool.status();
    assert_eq!(status.size, status.available, "{status:?}");
    let conns: Vec<_> =
        futures::future::join_all((0..status.available.max(1)).map(|_| t.db.pool.get()))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    for c in &conns {
        c.execute("CREATE TEMP TABLE IF NOT EXISTS probe (x int)", &[])
            .await
            .expect("not inside the export's read-only transaction");
    }
    drop(conns);
    // And the same export, run to its end, has every row.
    let s = export::export(&engine, &req, &Destination::Replace(out.clone()))
        .await
        .unwrap();
    assert_eq!(s.rows, 300_000);
    assert_eq!(
        csv::Reader::from_path(&out).unwrap().records().count(),
        300_000
    );
}

#[tokio::test]
async fn a_failed_read_leaves_no_file_behind() {
    let t = TestDb::plain().await;
    // The relation disappears between planning and streaming: the read fails mid-export.
    t.client()
        .await
        .batch_execute("DROP TABLE views_daily")
        .await
        .unwrap();
    let dir = scratch("export-fail");
    let out = dir.join("views.parquet");
    let req = ExportRequest {
        relation: query::relation("views_daily").unwrap(),
        channel: None,
        from: None,
        to: None,
        format: ExportFormat::Parquet,
    };
    let err = export::export(
        &Engine::new(t.db.clone()),
        &req,
        &Destination::File(out.clone()),
    )
    .await
    .expect_err("reading a missing relation fails");
    assert!(matches!(err, export::Error::Read { .. }), "{err:?}");
    assert!(!out.exists(), "no truncated file at the destination");
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        0,
        "no temporary file either"
    );
}

#[tokio::test]
async fn a_cancelled_export_leaves_neither_the_file_nor_a_temporary_file() {
    let t = TestDb::plain().await;
    minute_samples(&t, 200_000).await;
    let dir = scratch("export-cancel");
    let out = dir.join("samples.parquet");
    let engine = Engine::new(t.db.clone());
    let req = samples_request(ExportFormat::Parquet);
    let first_batch = tokio::sync::Notify::new();
    let progress = |_: u64| first_batch.notify_one();
    let dest = Destination::File(out.clone());
    // Dropped after its first batch, with many more to come: as a task is cancelled.
    tokio::select! {
        r = export::export_with_progress(&engine, &req, &dest, &progress) => {
            panic!("the export finished before it was cancelled: {r:?}")
        }
        () = first_batch.notified() => {}
    }
    // The writer thread notices the missing end marker on its own; give it a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !listing(&dir).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!out.exists(), "a truncated export was put in place");
    assert_eq!(
        listing(&dir),
        Vec::<String>::new(),
        "no temporary file left"
    );
}

#[tokio::test]
async fn an_existing_out_is_refused_without_force_and_replaced_with_it() {
    let t = TestDb::plain().await;
    minute_samples(&t, 1000).await;
    let dir = scratch("export-exists");
    let out = dir.join("samples.csv");
    std::fs::write(&out, "keep me").unwrap();
    let engine = Engine::new(t.db.clone());
    let req = samples_request(ExportFormat::Csv);
    let err = export::export(&engine, &req, &Destination::File(out.clone()))
        .await
        .expect_err("an existing file is refused");
    assert!(matches!(err, export::Error::Exists(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(out.to_str().unwrap()) && msg.contains("--force"),
        "{msg}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");

    let s = export::export(&engine, &req, &Destination::Replace(out.clone()))
        .await
        .unwrap();
    assert_eq!(s.rows, 1000);
    let rows = csv::Reader::from_path(&out).unwrap().records().count();
    assert_eq!(rows, 1000);
    assert_eq!(s.bytes, std::fs::metadata(&out).unwrap().len());
    assert_eq!(listing(&dir), ["samples.csv"], "no temporary file left");
}

#[cfg(unix)]
#[tokio::test]
async fn a_symlink_at_out_is_refused_and_with_force_replaced_never_followed() {
    let t = TestDb::plain().await;
    minute_samples(&t, 1000).await;
    let dir = scratch("export-symlink");
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let out = dir.join("samples.parquet");
    std::os::unix::fs::symlink(&victim, &out).unwrap();
    let engine = Engine::new(t.db.clone());
    let req = samples_request(ExportFormat::Parquet);
    let err = export::export(&engine, &req, &Destination::File(out.clone()))
        .await
        .expect_err("a symlink at --out counts as an existing file");
    assert!(matches!(err, export::Error::Exists(_)), "{err:?}");
    assert!(out.symlink_metadata().unwrap().file_type().is_symlink());

    export::export(&engine, &req, &Destination::Replace(out.clone()))
        .await
        .unwrap();
    assert!(
        out.symlink_metadata().unwrap().file_type().is_file(),
        "the symlink itself was replaced by the export"
    );
    assert_eq!(parquet_row_count(&out), 1000);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

#[cfg(unix)]
#[tokio::test]
async fn a_symlink_planted_at_a_predictable_temporary_name_is_not_followed() {
    let t = TestDb::plain().await;
    minute_samples(&t, 1000).await;
    let dir = scratch("export-planted");
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let out = dir.join("samples.parquet");
    // What a local attacker would plant for a writer that uses `<out>.partial`.
    let planted = dir.join("samples.parquet.partial");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    export::export(
        &Engine::new(t.db.clone()),
        &samples_request(ExportFormat::Parquet),
        &Destination::File(out.clone()),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(out.symlink_metadata().unwrap().file_type().is_file());
    assert_eq!(parquet_row_count(&out), 1000);
    assert_eq!(
        listing(&dir),
        ["samples.parquet", "samples.parquet.partial", "victim.txt"]
    );
}

#[tokio::test]
async fn the_cli_refuses_an_existing_out_naming_it_and_replaces_it_with_force() {
    let t = TestDb::plain().await;
    minute_samples(&t, 100).await;
    let dir = scratch("export-cli-force");
    let out = dir.join("samples.csv");
    std::fs::write(&out, "keep me").unwrap();
    let run = |force: bool| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_tgpulse"));
        c.env_remove("TGPULSE_DATABASE_URL")
            .env("TGPULSE_LOG", "error")
            .args(["export", "--database-url", &t.url])
            .args(["--relation", "member_samples", "--format", "csv", "--out"])
            .arg(&out);
        if force {
            c.arg("--force");
        }
        c
    };
    let refused = tokio::task::spawn_blocking({
        let mut c = run(false);
        move || c.output().unwrap()
    })
    .await
    .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains(&format!("{} already exists; pass --force", out.display())),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
    let forced = tokio::task::spawn_blocking({
        let mut c = run(true);
        move || c.output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    assert_eq!(csv::Reader::from_path(&out).unwrap().records().count(), 100);
}

/// Exports `rows` minute samples in parts of at most `max` bytes; checks at every delivery
/// that the part is the only file in the folder, and returns the parts' bytes.
async fn parts_of(format: ExportFormat, rows: i64, max: u64) -> Vec<(export::Part, Vec<u8>)> {
    let t = TestDb::plain().await;
    minute_samples(&t, rows).await;
    let dir = scratch(&format!("export-parts-{}", format.name()));
    let parts = std::sync::Mutex::new(Vec::new());
    let s = export::export_parts(
        &Engine::new(t.db.clone()),
        &samples_request(format),
        &dir,
        max,
        &|_| {},
        |p: export::Part| {
            let on_disk = listing(&dir);
            let bytes = std::fs::read(&p.path).unwrap();
            parts.lock().unwrap().push((p, bytes));
            async move {
                assert_eq!(on_disk.len(), 1, "one part on disk: {on_disk:?}");
                Ok(())
            }
        },
    )
    .await
    .unwrap();
    let parts = parts.into_inner().unwrap();
    assert_eq!(s.rows, rows as u64);
    assert_eq!(s.parts as usize, parts.len());
    assert_eq!(
        s.bytes,
        parts.iter().map(|(p, _)| p.bytes).sum::<u64>(),
        "the summary counts every part"
    );
    assert_eq!(listing(&dir), Vec::<String>::new(), "every part deleted");
    for (i, (p, bytes)) in parts.iter().enumerate() {
        assert_eq!(p.index as usize, i + 1);
        assert_eq!(p.last, i + 1 == parts.len());
        assert_eq!(p.bytes, bytes.len() as u64);
        assert!(p.bytes <= max, "part {} is {} bytes", p.index, p.bytes);
    }
    parts
}

#[tokio::test]
async fn parquet_parts_each_read_alone_and_hold_every_row_once() {
    let parts = parts_of(ExportFormat::Parquet, 100_000, 100_000).await;
    assert!(parts.len() >= 3, "{} parts", parts.len());
    let mut members = Vec::new();
    for (p, bytes) in &parts {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::copy_from_slice(bytes),
        )
        .unwrap()
        .build()
        .unwrap();
        let mut n = 0;
        for b in reader {
            let b = b.unwrap();
            n += b.num_rows() as u64;
            members.extend(
                b.column_by_name("members")
                    .unwrap()
                    .as_primitive::<Int64Type>()
                    .values()
                    .iter()
                    .copied(),
            );
        }
        assert_eq!(n, p.rows);
    }
    members.sort_unstable();
    assert_eq!(members, (1..=100_000).collect::<Vec<i64>>());
}

#[tokio::test]
async fn csv_parts_each_start_with_the_header_and_fill_up_to_the_limit() {
    let max = 50_000;
    let parts = parts_of(ExportFormat::Csv, 20_000, max).await;
    assert!(parts.len() >= 3, "{} parts", parts.len());
    let mut members = Vec::new();
    for (i, (p, bytes)) in parts.iter().enumerate() {
        let mut r = csv::Reader::from_reader(bytes.as_slice());
        assert_eq!(
            r.headers().unwrap().iter().collect::<Vec<_>>(),
            [
                "channel_id",
                "observed_at",
                "members",
                "source",
                "stored_at",
                "post_count"
            ]
        );
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len() as u64, p.rows);
        members.extend(rows.iter().map(|r| r[2].parse::<i64>().unwrap()));
        if !p.last {
            // The next row (about 60 bytes) did not fit.
            assert!(
                p.bytes > max - 100,
                "part {} is only {} bytes",
                i + 1,
                p.bytes
            );
        }
    }
    members.sort_unstable();
    assert_eq!(members, (1..=20_000).collect::<Vec<i64>>());
}
