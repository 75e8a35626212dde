//! Hostile inputs stay inside the memory bound: the real binary imports (or replays) each
//! one, and its peak resident memory is read from `/proc/<pid>/status` while it runs.
//!
//! The inputs are generated in a scratch folder at test time and removed afterwards.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, DictionaryArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int32Type, Schema};
use flate2::Compression;
use flate2::write::GzEncoder;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowWriterOptions;

use crate::common::{TestDb, scratch};

/// The bound the issue sets: 256 MB of peak resident memory on any input.
const MAX_RSS_KB: u64 = 256 * 1024;

/// One run of the real binary: its output, peak RSS in KiB and wall time.
struct Measured {
    out: Output,
    peak_kb: u64,
    secs: f64,
}

impl Measured {
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    fn assert_bounded(&self, what: &str) {
        eprintln!(
            "{what}: peak RSS {} MiB, {:.1} s",
            self.peak_kb / 1024,
            self.secs
        );
        assert!(self.peak_kb > 0, "{what}: no memory sample was taken");
        assert!(
            self.peak_kb <= MAX_RSS_KB,
            "{what}: peak RSS {} KiB over the {MAX_RSS_KB} KiB bound\n{}",
            self.peak_kb,
            self.stderr()
        );
    }
}

/// `VmHWM` (peak resident set) of a live process, in KiB.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `tgpulse args..` to the end, sampling its peak RSS every 5 ms (the kernel keeps the
/// high-water mark, so a sample misses only growth in the last few milliseconds).
fn run_measured(args: &[&str]) -> Measured {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tgpulse"))
        .args(args)
        .env_remove("TGPULSE_DATABASE_URL")
        .env("TGPULSE_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tgpulse");
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut b).unwrap();
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut b).unwrap();
        b
    });
    let mut peak_kb = 0;
    let status = loop {
        if let Some(kb) = peak_rss_kb(pid) {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "tgpulse {args:?} still runs after 10 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    Measured {
        out: Output {
            status,
            stdout: out_reader.join().unwrap(),
            stderr: err_reader.join().unwrap(),
        },
        peak_kb,
        secs: started.elapsed().as_secs_f64(),
    }
}

/// Runs the binary on a blocking thread (the test runtime stays free for the database).
async fn tgpulse(args: Vec<String>) -> Measured {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_measured(&args)
    })
    .await
    .unwrap()
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

const HEADER: &str = "handle,channel_id,observed_at,subscriber_count,title\n";

/// A valid telegram-animals row for `day` (0-based from 2021-03-01).
fn row(day: u32) -> String {
    format!(
        "birblife,1363895234,2021-03-{:02} 01:00:00+00:00,{},Birb Life\n",
        day + 1,
        4000 + day
    )
}

/// A .csv.gz that decodes to `gib` GiB: a header member, then one 1 MiB member of repeated
/// valid rows written over and over (gzip readers decode concatenated members as one
/// stream), so it is built in well under a second.
fn gzip_bomb(path: &Path, gib: u64) {
    let mut head = GzEncoder::new(Vec::new(), Compression::best());
    head.write_all(HEADER.as_bytes()).unwrap();
    let head = head.finish().unwrap();
    let line = row(0);
    let mut chunk = Vec::with_capacity(1 << 20);
    while chunk.len() + line.len() <= 1 << 20 {
        chunk.extend_from_slice(line.as_bytes());
    }
    let mut member = GzEncoder::new(Vec::new(), Compression::best());
    member.write_all(&chunk).unwrap();
    let member = member.finish().unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(&head).unwrap();
    for _ in 0..gib * 1024 {
        f.write_all(&member).unwrap();
    }
    f.flush().unwrap();
}

/// `tgpulse import FILE --database-url URL`, with `--skip-bad-rows --reject-file REJECTS` when
/// `rejects` is given.
fn import_args(file: &Path, url: &str, rejects: Option<&Path>) -> Vec<String> {
    let mut args = vec![
        "import".into(),
        s(file),
        "--database-url".into(),
        url.to_owned(),
    ];
    if let Some(rejects) = rejects {
        args.extend(["--skip-bad-rows".into(), "--reject-file".into(), s(rejects)]);
    }
    args
}

#[tokio::test]
async fn a_gzip_bomb_of_10_gib_is_refused_quickly_in_bounded_memory() {
    let t = TestDb::plain().await;
    let dir = scratch("gzip-bomb");
    let bomb = dir.join("bomb.csv.gz");
    gzip_bomb(&bomb, 10);
    let compressed = std::fs::metadata(&bomb).unwrap().len();
    assert!(
        compressed < 64 << 20,
        "the bomb is small: {compressed} bytes"
    );

    for skip in [false, true] {
        let rejects = dir.join("rejects.csv");
        let m = tgpulse(import_args(
            &bomb,
            &t.url,
            skip.then_some(rejects.as_path()),
        ))
        .await;
        m.assert_bounded(&format!("gzip bomb (skip bad rows: {skip})"));
        let err = m.stderr();
        assert!(!m.out.status.success(), "{}", m.stdout());
        assert!(err.contains("decompression bomb"), "{err}");
        assert!(err.contains("--max-gzip-ratio"), "{err}");
        assert!(m.secs < 60.0, "took {:.1} s", m.secs);
    }
    assert_eq!(t.count("SELECT count(*) FROM member_samples").await, 0);
    assert!(
        !dir.join("rejects.csv").exists(),
        "a failed import leaves no reject file"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CSV whose line 4 is `gib` GiB long (one huge title), between valid rows.
fn csv_with_a_huge_line(path: &Path, bytes: u64) {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    f.write_all(HEADER.as_bytes()).unwrap();
    f.write_all(row(0).as_bytes()).unwrap();
    f.write_all(row(1).as_bytes()).unwrap();
    f.write_all(b"birblife,1363895234,2021-03-03 01:00:00+00:00,4002,")
        .unwrap();
    let block = vec![b'x'; 1 << 20];
    for _ in 0..bytes >> 20 {
        f.write_all(&block).unwrap();
    }
    f.write_all(b"\n").unwrap();
    f.write_all(row(3).as_bytes()).unwrap();
    f.write_all(row(4).as_bytes()).unwrap();
    f.flush().unwrap();
}

#[tokio::test]
async fn a_1_gib_csv_line_is_named_by_its_line_and_skipped_in_bounded_memory() {
    let t = TestDb::plain().await;
    let dir = scratch("huge-line");
    let file = dir.join("huge.csv");
    csv_with_a_huge_line(&file, 1 << 30);

    let m = tgpulse(import_args(&file, &t.url, None)).await;
    m.assert_bounded("1 GiB line");
    let err = m.stderr();
    assert!(!m.out.status.success(), "{}", m.stdout());
    assert!(
        err.contains("line 4, column (record): record longer than 1048576 bytes"),
        "{err}"
    );
    assert!(err.contains("--skip-bad-rows"), "{err}");
    assert_eq!(t.count("SELECT count(*) FROM member_samples").await, 0);

    let rejects = dir.join("rejects.csv");
    let m = tgpulse(import_args(&file, &t.url, Some(&rejects))).await;
    m.assert_bounded("1 GiB line, skipping bad rows");
    assert!(m.out.status.success(), "{}", m.stderr());
    assert_eq!(t.count("SELECT count(*) FROM member_samples").await, 4);
    let text = std::fs::read_to_string(&rejects).unwrap();
    assert!(text.len() < 4096, "the reject file stays small");
    assert!(
        text.contains("line 4,(record),record longer than"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Parquet file in the telegram-animals layout whose `title` column is dictionary-encoded:
/// every other row carries one 100 KiB title, so decoding it plainly takes over 1000× the
/// file's size. The Arrow schema is left out of the file, so a reader sees plain text.
fn parquet_dictionary_bomb(path: &Path, rows: usize) -> u64 {
    let schema = Arc::new(Schema::new(vec![
        Field::new("handle", DataType::Utf8, false),
        Field::new("channel_id", DataType::Int64, false),
        Field::new("observed_at", DataType::Utf8, false),
        Field::new("subscriber_count", DataType::Int64, false),
        Field::new(
            "title",
            DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
            false,
        ),
    ]));
    let file = std::fs::File::create(path).unwrap();
    let options = ArrowWriterOptions::new().with_skip_arrow_metadata(true);
    let mut w = ArrowWriter::try_new_with_options(file, schema.clone(), options).unwrap();
    let long = "ζ".repeat(50 * 1024);
    let titles = StringArray::from(vec!["Birb Life", long.as_str()]);
    let t0 = chrono::DateTime::parse_from_rfc3339("2021-03-01T00:00:00Z").unwrap();
    for start in (0..rows).step_by(8192) {
        let n = 8192.min(rows - start);
        let idx = start..start + n;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["birblife"; n])),
            Arc::new(Int64Array::from(vec![1363895234; n])),
            Arc::new(StringArray::from_iter_values(idx.clone().map(|i| {
                (t0 + chrono::Duration::minutes(i as i64)).to_rfc3339()
            }))),
            Arc::new(Int64Array::from_iter_values(idx.clone().map(|i| i as i64))),
            Arc::new(DictionaryArray::<Int32Type>::new(
                idx.map(|i| (i % 2) as i32).collect(),
                Arc::new(titles.clone()),
            )),
        ];
        w.write(&RecordBatch::try_new(schema.clone(), cols).unwrap())
            .unwrap();
    }
    w.close().unwrap();
    std::fs::metadata(path).unwrap().len()
}

#[tokio::test]
async fn a_parquet_dictionary_expanding_1000_times_stays_bounded() {
    let t = TestDb::plain().await;
    let dir = scratch("parquet-bomb");
    let file = dir.join("bomb.parquet");
    let rows = 40_000;
    let size = parquet_dictionary_bomb(&file, rows);
    let decoded = (rows as u64 / 2) * 100 * 1024;
    assert!(
        decoded / size >= 1000,
        "{size} bytes decode to {decoded}: at least 1000×"
    );

    let m = tgpulse(import_args(&file, &t.url, None)).await;
    m.assert_bounded("Parquet dictionary bomb");
    let err = m.stderr();
    assert!(!m.out.status.success(), "{}", m.stdout());
    assert!(
        err.contains("row 1, column title: longer than 1024 bytes"),
        "{err}"
    );
    assert_eq!(t.count("SELECT count(*) FROM member_samples").await, 0);

    let rejects = dir.join("rejects.csv");
    let m = tgpulse(import_args(&file, &t.url, Some(&rejects))).await;
    m.assert_bounded("Parquet dictionary bomb, skipping bad rows");
    assert!(m.out.status.success(), "{}", m.stderr());
    assert_eq!(
        t.count("SELECT count(*) FROM member_samples").await,
        rows as i64 / 2
    );
    // Each rejected row keeps its cells cut to 4 KiB: 20 000 rows, not 2 GB.
    let len = std::fs::metadata(&rejects).unwrap().len();
    assert!(len < 200 << 20, "reject file of {len} bytes");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `rows` telegram-animals rows, channel after channel (so not in time order): `channels`
/// channels, each observed every minute.
fn out_of_order_file(path: &Path, rows: u64, channels: u64) -> PathBuf {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    f.write_all(HEADER.as_bytes()).unwrap();
    let per = rows / channels;
    let t0 = 1_600_000_000i64;
    for c in 0..channels {
        let id = 1_000_000_000 + c;
        for i in 0..per {
            let t = chrono::DateTime::from_timestamp(t0 + i as i64 * 60, 0).unwrap();
            writeln!(
                f,
                "chan{c:04},{id},{},{},Channel {c}",
                t.format("%Y-%m-%d %H:%M:%S+00:00"),
                1000 + i
            )
            .unwrap();
        }
    }
    f.flush().unwrap();
    path.to_owned()
}

#[tokio::test]
async fn replaying_5_million_rows_out_of_time_order_stays_bounded() {
    let t = TestDb::plain().await;
    let dir = scratch("replay-5m");
    let rows = 5_000_000u64;
    let file = out_of_order_file(&dir.join("big.csv"), rows, 100);
    let m = tgpulse(vec![
        "collect".into(),
        "--database-url".into(),
        t.url.clone(),
        "--sources".into(),
        "/dev/null".into(),
        "--file".into(),
        s(&file),
        "--speed".into(),
        "max".into(),
        "--once".into(),
    ])
    .await;
    m.assert_bounded("replay of 5M rows");
    assert!(m.out.status.success(), "{}\n{}", m.stdout(), m.stderr());
    assert_eq!(
        t.count("SELECT count(*) FROM member_samples").await,
        rows as i64
    );
    let _ = std::fs::remove_dir_all(&dir);
}
