//! Bad input gets a clear, line-numbered error and loses nothing.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use tgpulse::config::IngestConfig;
use tgpulse::import::{self, Error, Format, ImportOptions, RowPos, TimeFormat};

use crate::common::{TestDb, scratch};

/// A telegram-animals-shaped CSV with a BOM, a multi-line quoted title and three bad rows.
const BAD: &str = "\u{feff}handle,channel_id,observed_at,subscriber_count,title\n\
birblife,1363895234,2021-03-17 01:17:20.354178+00:00,4180,Birb Life\n\
birblife,1363895234,2021-03-18 00:57:40+00:00,4190,\"Birb\nLife\"\n\
birblife,1363895234,2021-03-19 00:57:40+00:00,lots,Birb Life\n\
birblife,1363895234,2021-03-20 00:57:40,4200,Birb Life\n\
birblife,1505034921.0,2021-03-21 00:57:40+00:00,4210,Birb Life\n\
birblife,-7,2021-03-22 00:57:40+00:00,4220,Birb Life\n";

#[tokio::test]
async fn a_malformed_file_is_refused_with_line_numbers_and_changes_nothing() {
    let t = TestDb::plain().await;
    let dir = scratch("bad");
    let file = dir.join("bad.csv");
    std::fs::write(&file, BAD).unwrap();
    let err = import::import(
        &t.db,
        &file,
        &ImportOptions::default(),
        &IngestConfig::default(),
    )
    .await
    .expect_err("malformed rows must refuse the import");
    let Error::Refused { total, errors } = &err else {
        panic!("unexpected error: {err:#}")
    };
    assert_eq!(*total, 3);
    // Line numbers count the header and the two-line quoted field before them.
    let where_what: Vec<(RowPos, &str)> =
        errors.iter().map(|e| (e.pos, e.column.as_str())).collect();
    assert_eq!(
        where_what,
        vec![
            (RowPos::Line(5), "subscriber_count"),
            (RowPos::Line(6), "observed_at"),
            (RowPos::Line(8), "channel_id")
        ]
    );
    assert!(errors[0].reason.contains("lots"), "{}", errors[0].reason);
    assert!(
        errors[1].reason.contains("no time zone"),
        "{}",
        errors[1].reason
    );
    let message = err.to_string();
    assert!(
        message.contains("line 5, column subscriber_count"),
        "{message}"
    );
    assert!(message.contains("--skip-bad-rows"), "{message}");
    assert_eq!(t.count("SELECT count(*) FROM member_samples").await, 0);
    assert_eq!(t.count("SELECT count(*) FROM channels").await, 0);
    assert_eq!(t.count("SELECT count(*) FROM members_daily").await, 0);
}

#[tokio::test]
async fn skip_bad_rows_imports_the_valid_rows_and_writes_the_rejects() {
    let t = TestDb::plain().await;
    let dir = scratch("skip");
    let file = dir.join("bad.csv");
    let rejects = dir.join("rejects.csv");
    std::fs::write(&file, BAD).unwrap();
    let opts = ImportOptions {
        skip_bad_rows: true,
        reject_file: Some(rejects.clone()),
        ..ImportOptions::default()
    };
    let s = import::import(&t.db, &file, &opts, &IngestConfig::default())
        .await
        .unwrap();
    assert_eq!((s.rows_read, s.rejected, s.inserted), (6, 3, 3));
    // The float-written id 1505034921.0 is a valid id.
    assert_eq!(
        t.count("SELECT count(*) FROM member_samples WHERE channel_id = 1505034921")
            .await,
        1
    );
    let text = std::fs::read_to_string(&rejects).unwrap();
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[0][0], "line 5");
    assert_eq!(&rows[0][1], "subscriber_count");
    assert_eq!(&rows[0][6], "lots", "the original row is kept");
    // Re-running adds nothing and rejects the same rows again.
    let again = import::import(&t.db, &file, &opts, &IngestConfig::default())
        .await
        .unwrap();
    assert_eq!((again.inserted, again.rejected), (0, 3));
}

#[tokio::test]
async fn a_generic_series_maps_ids_and_known_handles_with_a_time_format() {
    let t = TestDb::plain().await;
    let dir = scratch("generic");
    let known = dir.join("known.csv");
    std::fs::write(
        &known,
        "handle,channel_id,observed_at,subscriber_count\nbirblife,1363895234,2021-03-17T01:17:20Z,4180\n",
    )
    .unwrap();
    t.import(&known).await;
    let series = dir.join("series.csv");
    std::fs::write(
        &series,
        "who;when;count\n@birblife;1616030000;4300\n1505034921;1616030000;77\n@nobody_here;1616030000;1\n"
            .replace(';', ","),
    )
    .unwrap();
    let opts = ImportOptions {
        format: Format::Generic {
            entity: "who".into(),
            time: "when".into(),
            value: "count".into(),
            time_format: TimeFormat::UnixSeconds,
        },
        skip_bad_rows: true,
        reject_file: Some(dir.join("rej.csv")),
        ..ImportOptions::default()
    };
    let s = import::import(&t.db, &series, &opts, &IngestConfig::default())
        .await
        .unwrap();
    assert_eq!((s.rows_read, s.inserted, s.rejected), (3, 2, 1));
    let members = t
        .count("SELECT members FROM member_samples WHERE channel_id = 1363895234 AND observed_at = to_timestamp(1616030000)")
        .await;
    assert_eq!(members, 4300);
    let rej = std::fs::read_to_string(dir.join("rej.csv")).unwrap();
    assert!(rej.contains("unknown channel @nobody_here"), "{rej}");
}

#[tokio::test]
async fn an_unknown_layout_names_the_generic_options() {
    let t = TestDb::plain().await;
    let dir = scratch("layout");
    let file = dir.join("x.csv");
    std::fs::write(&file, "a,b\n1,2\n").unwrap();
    let err = import::import(
        &t.db,
        &file,
        &ImportOptions::default(),
        &IngestConfig::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("--entity-col"), "{err}");
}

#[tokio::test]
async fn an_over_long_record_is_a_bad_row_and_later_lines_keep_their_numbers() {
    let t = TestDb::plain().await;
    let dir = scratch("long-record");
    let file = dir.join("long.csv");
    let long_title = "Birb\n".repeat(40);
    std::fs::write(
        &file,
        format!(
            "handle,channel_id,observed_at,subscriber_count,title\n\
             birblife,1363895234,2021-03-17 01:17:20+00:00,4180,Birb Life\n\
             birblife,1363895234,2021-03-18 01:17:20+00:00,4181,\"{long_title}\"\n\
             birblife,1363895234,2021-03-19 01:17:20+00:00,lots,Birb Life\n\
             birblife,1363895234,2021-03-20 01:17:20+00:00,4183,Birb Life\n"
        ),
    )
    .unwrap();
    let limits = import::ImportLimits {
        max_record_bytes: 128,
        ..import::ImportLimits::default()
    };
    let opts = ImportOptions {
        limits,
        ..ImportOptions::default()
    };
    let err = import::import(&t.db, &file, &opts, &IngestConfig::default())
        .await
        .unwrap_err();
    let Error::Refused { total, errors } = &err else {
        panic!("unexpected error: {err:#}")
    };
    assert_eq!(*total, 2);
    // The 41-line quoted title starts on line 3; the row after it is on line 44.
    assert_eq!(errors[0].pos, RowPos::Line(3));
    assert_eq!(errors[0].column, "(record)");
    assert!(errors[0].reason.contains("longer than 128 bytes"), "{err}");
    assert_eq!(
        (errors[1].pos, errors[1].column.as_str()),
        (RowPos::Line(44), "subscriber_count")
    );

    let opts = ImportOptions {
        skip_bad_rows: true,
        reject_file: Some(dir.join("rejects.csv")),
        limits,
        ..ImportOptions::default()
    };
    let s = import::import(&t.db, &file, &opts, &IngestConfig::default())
        .await
        .unwrap();
    assert_eq!((s.rows_read, s.inserted, s.rejected), (4, 2, 2));
}

#[tokio::test]
async fn reject_files_never_overwrite_or_follow_symlinks_and_vanish_when_the_import_fails() {
    let t = TestDb::plain().await;
    let dir = scratch("reject-files");
    let file = dir.join("bad.csv");
    std::fs::write(&file, BAD).unwrap();
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "keep me").unwrap();
    let rejects = dir.join("rejects.csv");
    std::os::unix::fs::symlink(&victim, &rejects).unwrap();
    let opts = ImportOptions {
        skip_bad_rows: true,
        reject_file: Some(rejects.clone()),
        ..ImportOptions::default()
    };
    let first = import::import(&t.db, &file, &opts, &IngestConfig::default())
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    assert!(std::fs::symlink_metadata(&rejects).unwrap().is_symlink());
    assert_eq!(first.reject_file, Some(dir.join("rejects.1.csv")));
    let second = import::import(&t.db, &file, &opts, &IngestConfig::default())
        .await
        .unwrap();
    assert_eq!(second.reject_file, Some(dir.join("rejects.2.csv")));
    let earlier = std::fs::read_to_string(dir.join("rejects.1.csv")).unwrap();
    assert_eq!(earlier.lines().count(), 4, "{earlier}");

    // A bad row, then a broken gzip stream: the import fails whole, and its rejects with it.
    let broken = dir.join("broken.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, BAD.as_bytes()).unwrap();
    let mut bytes = gz.finish().unwrap();
    bytes.extend_from_slice(b"this is not gzip");
    std::fs::write(&broken, bytes).unwrap();
    let fresh = dir.join("fresh-rejects.csv");
    let opts = ImportOptions {
        skip_bad_rows: true,
        reject_file: Some(fresh.clone()),
        ..ImportOptions::default()
    };
    let before = t.count("SELECT count(*) FROM member_samples").await;
    import::import(&t.db, &broken, &opts, &IngestConfig::default())
        .await
        .expect_err("a broken gzip stream fails the import");
    assert_eq!(t.count("SELECT count(*) FROM member_samples").await, before);
    assert!(!fresh.exists());
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A telegram-animals-shaped Parquet file whose footer carries `arrow_schema` as its embedded
/// Arrow schema (`ARROW:schema`, base64 of an IPC flatbuffer), as any Arrow writer leaves it.
fn parquet_with_embedded_schema(path: &std::path::Path, arrow_schema: &str) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("handle", DataType::Utf8, false),
        Field::new("channel_id", DataType::Int64, false),
        Field::new("observed_at", DataType::Utf8, false),
        Field::new("subscriber_count", DataType::Int64, false),
        Field::new("title", DataType::Utf8, true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec!["birblife"; 3])),
        Arc::new(Int64Array::from(vec![1363895234; 3])),
        Arc::new(StringArray::from(vec![
            "2021-03-17 01:17:20+00:00",
            "2021-03-18 00:57:40+00:00",
            "2021-03-19 00:57:40+00:00",
        ])),
        Arc::new(Int64Array::from(vec![4180, 4190, 4200])),
        Arc::new(StringArray::from(vec![
            Some("Birb Life"),
            None,
            Some("Birb Life"),
        ])),
    ];
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "ARROW:schema".to_owned(),
            arrow_schema.to_owned(),
        )]))
        .build();
    let options = ArrowWriterOptions::new()
        .with_skip_arrow_metadata(true)
        .with_properties(props);
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new_with_options(file, schema.clone(), options).unwrap();
    w.write(&RecordBatch::try_new(schema, cols).unwrap())
        .unwrap();
    w.close().unwrap();
}

/// Found in CI by `properties::any_import_file_is_read_without_panic`: one changed byte in the
/// embedded Arrow schema made arrow-ipc panic ("not implemented: Type <UNKNOWN 37> not
/// supported") while the file was opened. Every byte of that schema is set to 37, an unknown
/// type id, in turn; each file still reads, with exactly the rows of the clean file, because
/// the columns' types come from the Parquet schema.
#[test]
fn any_byte_of_an_embedded_arrow_schema_changed_still_reads_the_same_rows() {
    let dir = scratch("arrow-schema");
    let file = dir.join("members.parquet");
    let clean = parquet::arrow::encode_arrow_schema(&Schema::new(vec![
        Field::new("handle", DataType::Utf8, false),
        Field::new("channel_id", DataType::Int64, false),
        Field::new("observed_at", DataType::Utf8, false),
        Field::new("subscriber_count", DataType::Int64, false),
        Field::new("title", DataType::Utf8, true),
    ]));
    parquet_with_embedded_schema(&file, &clean);
    let opts = ImportOptions::default();
    let (expected, rows) = import::read_records(&file, &opts).expect("the clean file reads");
    assert_eq!(rows, 3);
    let samples = expected.iter().filter(|r| r.is_sample()).count();
    assert_eq!(samples, 3, "one member sample per row: {expected:?}");
    let raw = STANDARD.decode(&clean).unwrap();
    assert!(
        raw.len() > 100,
        "an IPC schema message, {} bytes",
        raw.len()
    );
    for i in 0..raw.len() {
        let mut bad = raw.clone();
        bad[i] = 37;
        parquet_with_embedded_schema(&file, &STANDARD.encode(&bad));
        let got = import::read_records(&file, &opts)
            .unwrap_or_else(|e| panic!("byte {i} of the embedded schema set to 37: {e}"));
        assert_eq!(got, (expected.clone(), 3), "byte {i}");
    }
}
