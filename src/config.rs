//! Configuration: every setting is a clap field with a `TGPULSE_*` environment variable.
//!
//! Settings are grouped in blocks (`DbConfig`, `StorageConfig`, `IngestConfig`) and each
//! subsystem receives only its block. Nothing else in the crate reads the environment.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use chrono_tz::Tz;
use clap::{Args, ValueEnum};

use crate::domain::parse_tz;

/// A secret string (database URL with a password, tokens). `Debug` and `Display` print `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself; call only where it is handed to a client library.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Default server when no URL is configured; the database `tgpulse` is created on it if missing.
pub const DEFAULT_SERVER_URL: &str = "postgres://postgres@127.0.0.1:5432";
/// Database created on the default server.
pub const DEFAULT_DATABASE: &str = "tgpulse";

/// Database connection settings.
#[derive(Debug, Clone, Args)]
pub struct DbConfig {
    /// PostgreSQL URL, e.g. postgres://user:pass@host:5432/tgpulse. Unset: use
    /// postgres://postgres@127.0.0.1:5432 and create the database `tgpulse` if missing.
    #[arg(
        long = "database-url",
        env = "TGPULSE_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub url: Option<Secret>,

    /// Maximum connections in the pool.
    #[arg(
        long = "db-pool-size",
        env = "TGPULSE_DB_POOL_SIZE",
        default_value_t = 8,
        global = true
    )]
    pub pool_size: usize,

    /// Longest wait for a free pooled connection, in seconds; past it the caller gets an
    /// error instead of hanging (a hung database must not freeze every user).
    #[arg(
        long = "db-pool-wait-secs",
        env = "TGPULSE_DB_POOL_WAIT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub pool_wait_secs: u64,

    /// `statement_timeout` of interactive queries (the bot, `stats`, `compare`, `chart`), in
    /// seconds; 0 turns it off. Imports, COPY and exports are never limited.
    #[arg(
        long = "db-statement-timeout-secs",
        env = "TGPULSE_DB_STATEMENT_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub statement_timeout_secs: u64,
}

impl DbConfig {
    /// Pool settings for imports, collection and exports (no statement timeout).
    pub fn pool(&self) -> PoolOptions {
        PoolOptions {
            size: self.pool_size,
            wait: std::time::Duration::from_secs(self.pool_wait_secs),
            statement_timeout: None,
        }
    }

    /// Pool settings for interactive queries: the statement timeout applies.
    pub fn interactive_pool(&self) -> PoolOptions {
        PoolOptions {
            statement_timeout: (self.statement_timeout_secs > 0)
                .then(|| std::time::Duration::from_secs(self.statement_timeout_secs)),
            ..self.pool()
        }
    }
}

/// How a connection pool is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolOptions {
    /// Maximum connections.
    pub size: usize,
    /// Longest wait for a free connection.
    pub wait: std::time::Duration,
    /// `statement_timeout` of every session of the pool; `None` for none.
    pub statement_timeout: Option<std::time::Duration>,
}

impl PoolOptions {
    /// `size` connections, a 30 s wait, no statement timeout.
    pub fn sized(size: usize) -> Self {
        Self {
            size,
            wait: std::time::Duration::from_secs(30),
            statement_timeout: None,
        }
    }
}

/// Which storage layout to create on first migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StorageMode {
    /// TimescaleDB when the community extension is available, plain PostgreSQL otherwise.
    Auto,
    /// Require TimescaleDB: hypertables and continuous aggregates.
    Timescale,
    /// Plain PostgreSQL: tables with BRIN indexes; tgpulse refreshes the daily relations.
    Plain,
}

/// Schema, time zone and TimescaleDB policy settings.
#[derive(Debug, Clone, Args)]
pub struct StorageConfig {
    /// Storage layout chosen at the first migration (auto, timescale, plain). It is recorded and
    /// cannot change afterwards.
    #[arg(long = "storage", env = "TGPULSE_STORAGE", value_enum, default_value_t = StorageMode::Auto, global = true)]
    pub mode: StorageMode,

    /// Reporting time zone (IANA name) for daily buckets. Fixed at the first migration, because
    /// continuous aggregates bake it into their definition.
    #[arg(long = "timezone", env = "TGPULSE_TIMEZONE", default_value = "UTC", value_parser = parse_tz, global = true)]
    pub timezone: Tz,

    /// TimescaleDB: continuous-aggregate refresh window start, in days before now. Late view
    /// samples older than this are picked up by real-time aggregation until the next full refresh.
    #[arg(
        long = "refresh-window-days",
        env = "TGPULSE_REFRESH_WINDOW_DAYS",
        default_value_t = 30,
        global = true
    )]
    pub refresh_window_days: u32,

    /// TimescaleDB: how often the refresh policy runs, in minutes.
    #[arg(
        long = "refresh-every-minutes",
        env = "TGPULSE_REFRESH_EVERY_MINUTES",
        default_value_t = 30,
        global = true
    )]
    pub refresh_every_minutes: u32,

    /// TimescaleDB: compress raw sample chunks older than this many days (0 = off). Must exceed
    /// the refresh window.
    #[arg(
        long = "compress-after-days",
        env = "TGPULSE_COMPRESS_AFTER_DAYS",
        default_value_t = 60,
        global = true
    )]
    pub compress_after_days: u32,

    /// TimescaleDB: drop raw sample chunks older than this many days (0 = off, the default).
    /// Must exceed the refresh window, so no aggregate history is ever lost.
    #[arg(
        long = "retention-days",
        env = "TGPULSE_RETENTION_DAYS",
        default_value_t = 0,
        global = true
    )]
    pub retention_days: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            mode: StorageMode::Auto,
            timezone: Tz::UTC,
            refresh_window_days: 30,
            refresh_every_minutes: 30,
            compress_after_days: 60,
            retention_days: 0,
        }
    }
}

/// Ingest pipeline settings.
#[derive(Debug, Clone, Args)]
pub struct IngestConfig {
    /// Samples per batch written with one binary COPY.
    #[arg(
        long = "batch-size",
        env = "TGPULSE_BATCH_SIZE",
        default_value_t = 50_000,
        global = true
    )]
    pub batch_size: usize,

    /// Capacity of the bounded channel between sources and the writer, in samples.
    #[arg(
        long = "queue-capacity",
        env = "TGPULSE_QUEUE_CAPACITY",
        default_value_t = 100_000,
        global = true
    )]
    pub queue_capacity: usize,

    /// Longest time a sample waits in a partial batch, in milliseconds.
    #[arg(
        long = "batch-max-age-ms",
        env = "TGPULSE_BATCH_MAX_AGE_MS",
        default_value_t = 1000,
        global = true
    )]
    pub batch_max_age_ms: u64,

    /// Live collection: after shutdown is requested, how long the last batch keeps retrying
    /// while the database is unavailable, in seconds.
    #[arg(
        long = "final-flush-secs",
        env = "TGPULSE_FINAL_FLUSH_SECS",
        default_value_t = 60,
        global = true
    )]
    pub final_flush_secs: u64,

    /// Live collection on plain PostgreSQL: fold committed samples into the daily relations at
    /// most this often, in milliseconds, in a transaction of its own (0 = inside every batch's
    /// transaction). The invalidation log is written with the samples, so nothing is missed;
    /// the daily tables lag the raw samples by at most this long. Imports always refresh in
    /// their own transaction.
    #[arg(
        long = "daily-refresh-ms",
        env = "TGPULSE_DAILY_REFRESH_MS",
        default_value_t = 2000,
        global = true
    )]
    pub daily_refresh_ms: u64,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            batch_size: 50_000,
            queue_capacity: 100_000,
            batch_max_age_ms: 1000,
            final_flush_secs: 60,
            daily_refresh_ms: 2000,
        }
    }
}

/// Where the real datasets live (see `../shared/data/README.md`).
#[derive(Debug, Clone, Args)]
pub struct DataConfig {
    /// Folder holding telegram-animals/ and telegram-posts/.
    #[arg(
        long = "data",
        env = "TGPULSE_DATA_DIR",
        default_value = "../shared/data",
        global = true
    )]
    pub dir: PathBuf,
}

/// The admin bot (`tgpulse bot`, and `tgpulse serve` when a token is set).
#[derive(Debug, Clone, Args)]
pub struct BotConfig {
    /// Bot token from @BotFather (or TGPULSE_BOT_TOKEN).
    #[arg(long = "bot-token", env = "TGPULSE_BOT_TOKEN", hide_env_values = true)]
    pub token: Option<Secret>,
    /// Bot API base URL; a local Bot API server or a test server.
    #[arg(
        long = "bot-api-url",
        env = "TGPULSE_BOT_API_URL",
        default_value = "https://api.telegram.org"
    )]
    pub api_url: url::Url,
    /// Telegram user ids of the admins, comma-separated. Nobody else may use the bot unless an
    /// admin grants them the viewer role.
    #[arg(long = "admin-ids", env = "TGPULSE_ADMIN_IDS", value_delimiter = ',')]
    pub admin_ids: Vec<u64>,
    /// Receive updates through a webhook at this public HTTPS URL instead of long polling.
    #[arg(long = "bot-webhook-url", env = "TGPULSE_BOT_WEBHOOK_URL")]
    pub webhook_url: Option<url::Url>,
    /// Local address the webhook server listens on (behind your TLS proxy).
    #[arg(
        long = "bot-webhook-listen",
        env = "TGPULSE_BOT_WEBHOOK_LISTEN",
        default_value = "0.0.0.0:8443"
    )]
    pub webhook_listen: std::net::SocketAddr,
    /// Secret Telegram sends back in X-Telegram-Bot-Api-Secret-Token (default: random).
    #[arg(
        long = "bot-webhook-secret",
        env = "TGPULSE_BOT_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub webhook_secret: Option<Secret>,
    /// Source that resolves `/add @handle` (botapi, mtproto, tgstat, telemetr). Without a
    /// table for it in the sources file, botapi uses the bot's own token.
    #[arg(
        long = "bot-resolve-via",
        env = "TGPULSE_BOT_RESOLVE_VIA",
        default_value = "botapi"
    )]
    pub resolve_via: String,
    /// Requests each user may make per minute (commands and button presses).
    #[arg(
        long = "bot-user-per-minute",
        env = "TGPULSE_BOT_USER_PER_MINUTE",
        default_value_t = 30
    )]
    pub user_per_minute: u32,
    /// Requests a user may make in a burst before the per-minute rate applies.
    #[arg(
        long = "bot-user-burst",
        env = "TGPULSE_BOT_USER_BURST",
        default_value_t = 8
    )]
    pub user_burst: u32,
    /// Stats, comparisons and exports computed at once; others wait their turn.
    #[arg(
        long = "bot-max-queries",
        env = "TGPULSE_BOT_MAX_QUERIES",
        default_value_t = 4
    )]
    pub max_queries: usize,
    /// Largest file the bot uploads, in bytes (Telegram's limit for bots is 50 MB); bigger
    /// exports are split by period.
    #[arg(
        long = "bot-max-upload",
        env = "TGPULSE_BOT_MAX_UPLOAD",
        default_value_t = 50 * 1000 * 1000
    )]
    pub max_upload: u64,
    /// Folder for charts and exports while they are sent (default: the system temp folder).
    #[arg(long = "bot-work-dir", env = "TGPULSE_BOT_WORK_DIR")]
    pub work_dir: Option<std::path::PathBuf>,
    /// Bytes of /export files each viewer may receive per UTC day (default 1 GiB); 0 lets
    /// viewers export nothing. Admins have no limit. Counted in PostgreSQL, so a restart
    /// does not reset it.
    #[arg(
        long = "bot-export-quota",
        env = "TGPULSE_BOT_EXPORT_QUOTA",
        default_value_t = DEFAULT_EXPORT_QUOTA
    )]
    pub export_quota: u64,
}

/// Default `--bot-export-quota`: 1 GiB per viewer per UTC day.
pub const DEFAULT_EXPORT_QUOTA: u64 = 1 << 30;

impl BotConfig {
    /// Checks what the bot needs before it starts.
    ///
    /// errors: a message naming the missing or wrong setting (token, admins, upload size).
    /// Returns the token.
    pub fn check(&self) -> Result<&Secret, String> {
        let Some(token) = &self.token else {
            return Err(
                "no bot token: set TGPULSE_BOT_TOKEN (or --bot-token) to the token from @BotFather"
                    .into(),
            );
        };
        if self.max_upload < MIN_UPLOAD {
            return Err(format!(
                "--bot-max-upload must be at least {MIN_UPLOAD} bytes (Telegram allows bots 50 MB)"
            ));
        }
        if self.admin_ids.is_empty() {
            return Err(
                "no admins: set TGPULSE_ADMIN_IDS to your Telegram user id(s), comma-separated"
                    .into(),
            );
        }
        if let Some(secret) = &self.webhook_secret {
            check_webhook_secret(secret.expose())?;
        }
        Ok(token)
    }
}

/// Telegram's rule for `setWebhook`'s `secret_token`: 1-256 characters from `A-Za-z0-9_-`
/// (teloxide panics on anything else, so it is refused here, at load time).
///
/// errors: a message naming `--bot-webhook-secret` (never the value).
fn check_webhook_secret(secret: &str) -> Result<(), String> {
    let ok = (1..=256).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(
            "--bot-webhook-secret (TGPULSE_BOT_WEBHOOK_SECRET) must be 1-256 characters from \
             A-Z, a-z, 0-9, _ and - (Telegram's rule for secret_token)"
                .into(),
        )
    }
}

/// Smallest `--bot-max-upload` in bytes: below it, a split export could not fit one row
/// group per part.
pub const MIN_UPLOAD: u64 = 10_000;

impl Default for BotConfig {
    fn default() -> Self {
        Self {
            token: None,
            api_url: url::Url::parse("https://api.telegram.org").expect("valid URL"),
            admin_ids: Vec::new(),
            webhook_url: None,
            webhook_listen: ([0, 0, 0, 0], 8443).into(),
            webhook_secret: None,
            resolve_via: "botapi".into(),
            user_per_minute: 30,
            user_burst: 8,
            max_queries: 4,
            max_upload: 50 * 1000 * 1000,
            work_dir: None,
            export_quota: DEFAULT_EXPORT_QUOTA,
        }
    }
}
