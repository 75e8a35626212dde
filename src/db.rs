//! Database access: connection pool, migrations, storage-mode detection and daily refresh.
//!
//! tgpulse runs on TimescaleDB (hypertables, continuous aggregates, policies) or on plain
//! PostgreSQL (same relation names, tables refreshed by tgpulse). The mode is chosen at the
//! first migration and recorded in `tgpulse_settings`.

mod analyst;
mod connect;
mod detect;
mod migrate;
mod policies;

use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use deadpool_postgres::Pool;

pub use connect::{DatabaseTarget, connect, connect_with};
pub use migrate::{MIGRATIONS, attach, migrate};

/// Errors of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No server answered at the configured address.
    #[error(
        "cannot connect to PostgreSQL at {target}: {reason}\n\
         hint: start a server with `docker compose -f docker/compose.yml up -d` (TimescaleDB image), \
         or install your distribution's package (Debian: `apt-get install postgresql`, then \
         `pg_ctlcluster 15 main start`), or point tgpulse at a running server with \
         --database-url or TGPULSE_DATABASE_URL=postgres://user@host:5432/tgpulse"
    )]
    ConnectServer {
        /// host:port/database, without credentials.
        target: String,
        /// Cause, flattened to text because it is shown to the user with the hint.
        reason: String,
    },
    /// The URL does not parse.
    #[error("invalid database URL: {0}")]
    InvalidUrl(#[source] tokio_postgres::Error),
    /// The default database could not be created.
    #[error("failed to create database {name}")]
    CreateDatabase {
        /// Database name.
        name: String,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// Getting a pooled connection failed.
    #[error("failed to get a database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A statement failed.
    #[error("failed to {step}")]
    Query {
        /// What was being done, lower-case.
        step: &'static str,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// A migration file failed to apply; nothing of it was kept.
    #[error("failed to apply migration {file}")]
    Migrate {
        /// File name under sql/.
        file: String,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The database was created with another storage mode or time zone.
    #[error("{0}")]
    Settings(String),
    /// TimescaleDB was required but is not installed.
    #[error(
        "TimescaleDB was requested (--storage timescale) but the extension is not available on this \
         server; use the docker/ compose file or --storage auto"
    )]
    TimescaleMissing,
    /// TimescaleDB was required and is installed, but cannot be used in this database: not
    /// preloaded (the reason then says how to enable it), or the Apache-only build.
    #[error("TimescaleDB was requested (--storage timescale) but {reason}")]
    TimescaleUnusable {
        /// Why, and what to do, lower-case.
        reason: String,
    },
    /// A migration file that was already applied to this database has changed since. Applied
    /// migrations are immutable: the schema would silently differ from what the files say.
    #[error(
        "migration {file} was changed after it was applied to this database (recorded checksum \
         {recorded}, the file now gives {current}); applied migrations must not be edited: restore \
         the file as it was when it was applied and put the change into a new sql/NNNN_name.sql file"
    )]
    MigrationChanged {
        /// File name under sql/.
        file: String,
        /// Checksum recorded in `tgpulse_migrations` when the file was applied (16 hex digits).
        recorded: String,
        /// Checksum of the file in this build (16 hex digits).
        current: String,
    },
}

impl Error {
    pub(crate) fn query(step: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Self {
        move |source| Self::Query { step, source }
    }
}

/// Storage layout of a migrated database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Hypertables and continuous aggregates.
    Timescale,
    /// Plain tables refreshed by `tgpulse_refresh_daily()`.
    Plain,
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timescale => "timescale",
            Self::Plain => "plain",
        })
    }
}

/// A migrated database: the pool plus what the schema was created with.
#[derive(Debug, Clone)]
pub struct Db {
    /// Connection pool.
    pub pool: Pool,
    /// Storage layout recorded at the first migration.
    pub storage: Storage,
    /// Reporting time zone of the daily buckets, recorded at the first migration.
    pub timezone: Tz,
}

/// A closed time interval `[start, end]` (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeSpan {
    /// First instant.
    pub start: DateTime<Utc>,
    /// Last instant.
    pub end: DateTime<Utc>,
}

impl Db {
    /// Materialises the TimescaleDB continuous aggregates after an ingest has committed.
    ///
    /// `members` and `posts` are the time ranges written to `member_samples` (observation
    /// time) and `post_samples` (publication time); `None` skips that relation. Runs
    /// `refresh_continuous_aggregate` over the ranges widened by one day on each side (it
    /// only materialises whole buckets), `post_reach` before `views_daily`. Plain
    /// PostgreSQL has nothing to do here: `tgpulse_refresh_daily()` already ran inside the
    /// ingest transaction.
    ///
    /// errors: `Error::Query` if a refresh statement fails.
    pub async fn refresh_aggregates(
        &self,
        members: Option<TimeSpan>,
        posts: Option<TimeSpan>,
    ) -> Result<(), Error> {
        match self.storage {
            Storage::Plain => {}
            Storage::Timescale => {
                let client = self.pool.get().await?;
                let jobs = [
                    ("members_daily", members),
                    ("post_reach", posts),
                    ("views_daily", posts),
                ];
                for (view, span) in jobs {
                    let Some(span) = span else { continue };
                    client
                        .execute(
                            "CALL refresh_continuous_aggregate($1::text::regclass,
                                $2::timestamptz - interval '1 day', $3::timestamptz + interval '2 days')",
                            &[&view, &span.start, &span.end],
                        )
                        .await
                        .map_err(Error::query("refresh a continuous aggregate"))?;
                }
            }
        }
        Ok(())
    }
}
