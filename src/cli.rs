//! Command-line interface: argument parsing (clap) and the commands. Each command connects,
//! migrates, then calls the library; errors go back to `main` as `anyhow` chains.

mod alerts;
mod bot;
mod collect;
mod demo;
mod export;
mod health;
#[cfg(feature = "mtproto")]
mod login;
mod posts;
mod report;
mod serve;
mod sql;
mod watch;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand};

use crate::config::{DataConfig, DbConfig, IngestConfig, StorageConfig};
use crate::db::{self, DatabaseTarget, Db};
use crate::domain::{ChannelRef, Days};
use crate::import::{self, Format, ImportLimits, ImportOptions, TimeFormat};
use crate::query::{self, Engine};
use crate::render::{self, OutputFormat};

/// tgpulse: time-series analytics for Telegram channels.
#[derive(Debug, Parser)]
#[command(name = "tgpulse", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    db: DbConfig,
    #[command(flatten)]
    storage: StorageConfig,
    #[command(flatten)]
    ingest: IngestConfig,
    #[command(flatten)]
    data: DataConfig,
    /// Log filter (tracing EnvFilter syntax), e.g. info or tgpulse=debug.
    #[arg(
        long = "log",
        env = "TGPULSE_LOG",
        default_value = "warn,tgpulse=info",
        global = true
    )]
    pub log: String,
    /// Log lines as text or as JSON objects (one per line, with span fields).
    #[arg(
        long = "log-format",
        env = "TGPULSE_LOG_FORMAT",
        value_enum,
        default_value_t = crate::telemetry::LogFormat::Text,
        global = true
    )]
    pub log_format: crate::telemetry::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the SQL migrations in sql/ (safe to re-run).
    Migrate,
    /// Import a CSV (plain or .gz) or Parquet file of samples, as one transaction.
    Import(ImportArgs),
    /// Statistics of one channel over a window of local days.
    Stats(StatsArgs),
    /// The same statistics for several channels side by side, with indexed growth.
    Compare(CompareArgs),
    /// Stream a relation to Parquet, CSV or JSON Lines: a file, stdout, an S3 object, or a
    /// partitioned or incremental dataset.
    Export(export::ExportArgs),
    /// Run read-only DataFusion SQL over every relation and over Parquet, CSV or JSON files
    /// (local or s3://) registered with --table.
    Sql(sql::SqlArgs),
    /// Draw a PNG chart: members and daily deltas, indexed growth with --compare, or the
    /// views trend with --views.
    Chart(ChartArgs),
    /// Post analytics of one channel: reach at 12/24/48 h, ERR at 24 h, posting frequency,
    /// and the top posts by reach and by engagement.
    Posts(posts::PostsArgs),
    /// The best time to post: a local weekday x hour heatmap of median reach (PNG with --out).
    Heatmap(posts::HeatmapArgs),
    /// Who forwards, mentions or links a channel, whom it does, and the members change the
    /// day after (correlation, not cause).
    Mentions(posts::MentionsArgs),
    /// Run the whole slice on the real data: migrate, import, stats, compare, chart, export.
    Demo(DemoArgs),
    /// Collect samples from the configured sources (or replay a file) into the database.
    Collect(collect::CollectArgs),
    /// The long-running service until SIGTERM: the collectors under supervision, the admin bot
    /// when a bot token is set, and the ops server (/healthz, /readyz, /health, /metrics).
    Serve(Box<serve::ServeArgs>),
    /// Run the admin bot alone (Telegram commands: /stats, /compare, /export, /list, ...).
    Bot(bot::BotArgs),
    /// Manage the watched channels.
    #[command(subcommand)]
    Watch(watch::WatchCommand),
    /// Storage mode, each source's last success and lag, and recent sample counts.
    Health,
    /// Anomaly alerts: one evaluation now, or a backtest over the stored history.
    #[command(subcommand)]
    Alerts(alerts::AlertsCommand),
    /// The weekly or monthly report of the watched channels, as Markdown or its chart.
    Report(report::ReportArgs),
    /// Sign the MTProto account in (phone, code, 2FA password) and save the session file.
    #[cfg(feature = "mtproto")]
    Login(login::LoginArgs),
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// File to import: .csv, .csv.gz or .parquet.
    path: PathBuf,
    /// Import the valid rows and write rejected ones to the reject file, instead of refusing.
    #[arg(long)]
    skip_bad_rows: bool,
    /// Reject file (default: <input name>.rejects.csv in the working directory).
    #[arg(long)]
    reject_file: Option<PathBuf>,
    /// Generic mapping: column with the channel id or a known @handle.
    #[arg(long, requires_all = ["time_col", "value_col"])]
    entity_col: Option<String>,
    /// Generic mapping: column with the observation time.
    #[arg(long, requires = "entity_col")]
    time_col: Option<String>,
    /// Generic mapping: column with the subscriber count.
    #[arg(long, requires = "entity_col")]
    value_col: Option<String>,
    /// Generic mapping: `unix` for Unix seconds, or a chrono strftime pattern
    /// (e.g. "%d.%m.%Y %H:%M"). Default: ISO 8601 / RFC 3339.
    #[arg(long)]
    time_format: Option<String>,
    /// Time zone of timestamps written without one (default: such rows are rejected).
    #[arg(long, value_parser = crate::domain::parse_tz)]
    naive_tz: Option<chrono_tz::Tz>,
    /// Observation time of post files without one (RFC 3339). Default: the newest
    /// publication time in the file.
    #[arg(long)]
    observed_at: Option<DateTime<Utc>>,
    /// Longest CSV record in bytes, after gzip decoding; a longer one is a malformed row
    /// (a longer header refuses the file).
    #[arg(long, env = "TGPULSE_IMPORT_MAX_RECORD_BYTES", default_value_t = 1 << 20,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_record_bytes: u64,
    /// Most a .csv.gz may expand (decoded over compressed bytes, checked past 16 MiB
    /// decoded); beyond it the file is refused as a decompression bomb.
    #[arg(long, env = "TGPULSE_IMPORT_MAX_GZIP_RATIO", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..))]
    max_gzip_ratio: u64,
    /// Largest decoded Parquet batch (1024 rows of the columns read), in bytes; beyond it
    /// the file is refused naming the rows.
    #[arg(long, env = "TGPULSE_IMPORT_MAX_BATCH_BYTES", default_value_t = 64 << 20)]
    max_batch_bytes: usize,
}

#[derive(Debug, clap::Args)]
struct WindowArgs {
    /// Window length in local days (1..3650).
    #[arg(long, default_value = "30")]
    days: Days,
    /// Last local day of the window (YYYY-MM-DD). Default: the last day with data.
    #[arg(long)]
    until: Option<NaiveDate>,
}

#[derive(Debug, clap::Args)]
struct StatsArgs {
    /// @handle or numeric channel id.
    channel: ChannelRef,
    #[command(flatten)]
    window: WindowArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

#[derive(Debug, clap::Args)]
struct CompareArgs {
    /// Two or more @handles or channel ids.
    #[arg(required = true, num_args = 2..)]
    channels: Vec<ChannelRef>,
    #[command(flatten)]
    window: WindowArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

#[derive(Debug, clap::Args)]
struct ChartArgs {
    /// @handle or id (members chart, or views chart with --views).
    #[arg(required_unless_present = "compare", conflicts_with = "compare")]
    channel: Option<ChannelRef>,
    /// Draw the channel's views trend (daily views of its posts and the 7-day moving
    /// average) instead of its members.
    #[arg(long, conflicts_with = "compare")]
    views: bool,
    /// Compare these channels (indexed growth).
    #[arg(long, num_args = 2..)]
    compare: Option<Vec<ChannelRef>>,
    #[command(flatten)]
    window: WindowArgs,
    /// Output PNG.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
struct DemoArgs {
    /// Folder for the chart and the export.
    #[arg(long, default_value = "tgpulse-demo")]
    out_dir: PathBuf,
    /// Window of the stats and the comparison, in local days.
    #[arg(long, default_value = "365")]
    days: Days,
}

/// Connects (creating the default database if needed) and migrates.
async fn open(cli: &Cli) -> Result<Db> {
    let target = DatabaseTarget::from_config(&cli.db)?;
    let pool = db::connect_with(&target, cli.db.pool()).await?;
    let db = db::migrate(&pool, &cli.storage).await?;
    Ok(db)
}

/// `db` on a pool of its own for interactive queries, whose sessions run under the
/// configured `statement_timeout`.
async fn interactive(cli: &Cli, db: &Db) -> Result<Db> {
    let target = DatabaseTarget::from_config(&cli.db)?;
    let pool = db::connect_with(&target, cli.db.interactive_pool()).await?;
    Ok(Db { pool, ..db.clone() })
}

/// Opens and migrates, then returns the database on an interactive pool.
async fn open_interactive(cli: &Cli) -> Result<Db> {
    let db = open(cli).await?;
    interactive(cli, &db).await
}

async fn resolve_all(db: &Db, refs: &[ChannelRef]) -> Result<Vec<query::Channel>> {
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        out.push(query::resolve(db, r).await?);
    }
    Ok(out)
}

/// Runs the parsed command.
///
/// errors: any failure of the command, with context.
pub async fn run(cli: Cli) -> Result<()> {
    match &cli.command {
        Command::Migrate => {
            let db = open(&cli).await?;
            println!(
                "database migrated: storage {}, time zone {}",
                db.storage, db.timezone
            );
        }
        Command::Import(a) => {
            let db = open(&cli).await?;
            let opts = import_options(a)?;
            let summary = import::import(&db, &a.path, &opts, &cli.ingest)
                .await
                .with_context(|| format!("import of {} failed", a.path.display()))?;
            println!("{summary}");
        }
        Command::Stats(a) => {
            let db = open_interactive(&cli).await?;
            let channel = query::resolve(&db, &a.channel).await?;
            let engine = Engine::new(db);
            let s = query::stats(&engine, &channel, a.window.days, a.window.until).await?;
            print!("{}", render::stats(&s, a.format)?);
        }
        Command::Compare(a) => {
            let db = open_interactive(&cli).await?;
            let channels = resolve_all(&db, &a.channels).await?;
            let engine = Engine::new(db);
            let c = query::compare(&engine, &channels, a.window.days, a.window.until).await?;
            print!("{}", render::comparison(&c, a.format)?);
        }
        Command::Export(a) => export::export_cmd(&cli, a).await?,
        Command::Sql(a) => sql::sql_cmd(&cli, a).await?,
        Command::Chart(a) => {
            let db = open_interactive(&cli).await?;
            let engine = Engine::new(db.clone());
            if let Some(refs) = &a.compare {
                let channels = resolve_all(&db, refs).await?;
                let c = query::compare(&engine, &channels, a.window.days, a.window.until).await?;
                write_png(
                    &a.out,
                    &crate::chart::compare_png(&c, crate::i18n::Lang::En)?,
                )?;
            } else if let (Some(r), true) = (&a.channel, a.views) {
                let channel = query::resolve(&db, r).await?;
                let v =
                    query::views_trend(&engine, &channel, a.window.days, a.window.until).await?;
                write_png(&a.out, &crate::chart::views_png(&v, crate::i18n::Lang::En)?)?;
            } else if let Some(r) = &a.channel {
                let channel = query::resolve(&db, r).await?;
                let s = query::stats(&engine, &channel, a.window.days, a.window.until).await?;
                write_png(
                    &a.out,
                    &crate::chart::members_png(&s, crate::i18n::Lang::En)?,
                )?;
            }
            println!("wrote {}", a.out.display());
        }
        Command::Posts(a) => posts::posts_cmd(&cli, a).await?,
        Command::Heatmap(a) => posts::heatmap_cmd(&cli, a).await?,
        Command::Mentions(a) => posts::mentions_cmd(&cli, a).await?,
        Command::Demo(a) => {
            demo::run(&cli, a).await?;
        }
        Command::Collect(a) => collect::collect_cmd(&cli, a).await?,
        Command::Serve(a) => serve::serve_cmd(&cli, a).await?,
        Command::Bot(a) => bot::bot_cmd(&cli, a).await?,
        Command::Watch(w) => watch::watch_cmd(&cli, w).await?,
        Command::Health => health::health_cmd(&cli).await?,
        Command::Alerts(a) => alerts::alerts_cmd(&cli, a).await?,
        Command::Report(a) => report::report_cmd(&cli, a).await?,
        #[cfg(feature = "mtproto")]
        Command::Login(a) => login::login_cmd(a).await?,
    }
    Ok(())
}

/// Writes a chart's PNG bytes to `path`.
fn write_png(path: &std::path::Path, png: &[u8]) -> Result<()> {
    std::fs::write(path, png).with_context(|| format!("cannot write {}", path.display()))
}

fn import_options(a: &ImportArgs) -> Result<ImportOptions> {
    let format = match (&a.entity_col, &a.time_col, &a.value_col) {
        (Some(e), Some(t), Some(v)) => Format::Generic {
            entity: e.clone(),
            time: t.clone(),
            value: v.clone(),
            time_format: match a.time_format.as_deref() {
                None => TimeFormat::Auto,
                Some("unix") => TimeFormat::UnixSeconds,
                Some(p) => TimeFormat::Pattern(p.to_owned()),
            },
        },
        (None, None, None) => Format::Auto,
        _ => bail!("--entity-col, --time-col and --value-col go together"),
    };
    Ok(ImportOptions {
        format,
        skip_bad_rows: a.skip_bad_rows,
        reject_file: a.reject_file.clone(),
        naive_tz: a.naive_tz,
        observed_at: a.observed_at,
        progress: std::io::stderr().is_terminal(),
        limits: ImportLimits {
            max_record_bytes: a.max_record_bytes,
            max_gzip_ratio: a.max_gzip_ratio,
            max_batch_bytes: a.max_batch_bytes,
        },
    })
}
