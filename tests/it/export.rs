//! Exports stream to Parquet and CSV files that another reader reads back with the same
//! row counts and sums as PostgreSQL itself reports.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use tgpulse::export::{self, Destination, ExportFormat, ExportRequest};
use tgpulse::query::{self, Engine};

use crate::common::{TestDb, animals, posts_file, scratch};

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
        "RFC 3339 UTC days of July"
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
