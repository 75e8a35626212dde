//! `tgpulse sql`: read-only DataFusion SQL for analysts over every tgpulse relation (read
//! from PostgreSQL through the same pushdown provider as the reports) and over files
//! registered with `--table name=PATH`, streamed as a table, CSV, JSON Lines or Parquet.

use anyhow::{Context, Result};
use datafusion::arrow::util::pretty::pretty_format_batches;
use futures::StreamExt;
use parquet::file::metadata::KeyValue;

use super::Cli;
use crate::db::{self, DatabaseTarget};
use crate::export::{self, Destination, ExportFormat};
use crate::lake::{S3Options, tables};
use crate::query::Engine;

/// Output of `tgpulse sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum SqlFormat {
    /// An aligned text table of at most --max-rows rows.
    Table,
    /// CSV with a header row.
    Csv,
    /// JSON Lines, one object per row.
    Json,
    /// Parquet (zstd), through the export writer; needs --out.
    Parquet,
}

#[derive(Debug, clap::Args)]
pub(super) struct SqlArgs {
    /// One query: SELECT, WITH, EXPLAIN, SHOW or DESCRIBE (DataFusion's SQL dialect).
    query: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = SqlFormat::Table)]
    format: SqlFormat,
    /// Write to a file or s3://bucket/key instead of stdout (an existing one is refused
    /// unless --force).
    #[arg(long)]
    out: Option<String>,
    /// Replace an existing --out.
    #[arg(long)]
    force: bool,
    /// Register files as a table: name=PATH, where PATH is a .parquet, .csv, .json or .jsonl
    /// file, or a folder or s3:// prefix of them (Hive folders such as month=2021-07 become
    /// string columns). Repeatable.
    #[arg(long = "table", value_name = "NAME=PATH")]
    tables: Vec<String>,
    /// Rows shown by --format table (the query still streams; the rest is not printed).
    #[arg(long, default_value_t = 1000)]
    max_rows: usize,
    /// Endpoint of an S3-compatible server; default AWS_ENDPOINT_URL.
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
}

/// `tgpulse sql`.
pub(super) async fn sql_cmd(cli: &Cli, a: &SqlArgs) -> Result<()> {
    // No migration: an analyst's role may not run DDL. Sessions run under the role's own
    // statement_timeout (60 s for tgpulse_analyst), as exports do.
    let target = DatabaseTarget::from_config(&cli.db)?;
    let pool = db::connect_with(&target, cli.db.pool()).await?;
    let engine = Engine::new(db::attach(&pool).await?);
    let ctx = engine.session().await?;
    let s3 = S3Options {
        endpoint: a.s3_endpoint.clone(),
        max_retries: None,
    };
    for spec in &a.tables {
        let (name, path) = tables::parse_spec(spec)?;
        tables::register(&ctx, &name, &path, &s3)
            .await
            .with_context(|| format!("cannot register --table {spec}"))?;
    }
    let df = tables::read_only(&ctx, &a.query).await?;
    let stream = df.execute_stream().await.context("the query failed")?;
    if a.format == SqlFormat::Table && a.out.is_none() {
        return print_table(stream, a.max_rows).await;
    }
    let format = match a.format {
        SqlFormat::Table | SqlFormat::Csv => ExportFormat::Csv,
        SqlFormat::Json => ExportFormat::Jsonl,
        SqlFormat::Parquet => ExportFormat::Parquet,
    };
    let dest = match a.out.as_deref() {
        None | Some("-") if format == ExportFormat::Parquet => {
            anyhow::bail!("--format parquet needs --out FILE or s3://bucket/key")
        }
        None | Some("-") => Destination::Stdout,
        Some(out) => Destination::from_out(out, a.force, &s3)?,
    };
    let meta = vec![
        KeyValue::new(
            "tgpulse.version".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
        ),
        KeyValue::new("tgpulse.query".to_owned(), a.query.clone()),
    ];
    let mut stop = Box::pin(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    let s = export::write_query(stream, format, &dest, meta, &mut stop).await?;
    if let Some(shown) = s.path.map(|p| p.display().to_string()).or(s.url) {
        eprintln!("wrote {} rows to {shown}", s.rows);
    }
    Ok(())
}

/// Prints up to `max_rows` rows as a table; the query stops as soon as one row more was
/// seen.
async fn print_table(
    mut stream: datafusion::execution::SendableRecordBatchStream,
    max_rows: usize,
) -> Result<()> {
    let mut shown = Vec::new();
    let (mut kept, mut more) = (0usize, false);
    while let Some(b) = stream.next().await {
        let b = b.context("the query failed")?;
        let take = b.num_rows().min(max_rows - kept);
        kept += take;
        shown.push(b.slice(0, take));
        if take < b.num_rows() {
            more = true;
            break;
        }
    }
    if kept == 0 && !more {
        println!("(no rows)");
        return Ok(());
    }
    println!("{}", pretty_format_batches(&shown)?);
    if more {
        eprintln!(
            "the first {kept} rows shown; raise --max-rows, or use --format csv|json|parquet for all"
        );
    } else {
        eprintln!("{kept} rows");
    }
    Ok(())
}
