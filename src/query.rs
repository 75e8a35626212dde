//! Query layer: DataFusion over the PostgreSQL relations, with the analytics SQL kept as
//! named files in `queries/`.
//!
//! Every request gets its own `SessionContext` in which each relation of [`RELATIONS`] is a
//! [`PgTable`] provider that pushes projection, channel and time-range filters down to
//! PostgreSQL. Parameters are bound with DataFusion's `$n` placeholders; no value is
//! formatted into SQL.

mod channels;
pub mod mentions;
pub mod pg_table;
pub mod posts;
mod posts_run;
mod stats;
mod udf;

use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::prelude::{SessionConfig, SessionContext};

pub use channels::{Channel, resolve};
pub use mentions::{MentionDay, MentionReport, Peer};
pub use pg_table::{PgTable, PgType, RelationDef};
pub use posts::{
    Frequency, FrequencyBasis, HeatCell, Heatmap, PostMetrics, ReachAt, ReachBasis, TopPost,
    TopPosts, ViewsDay, ViewsTrend,
};
pub use posts_run::{heatmap, mentions, post_metrics, top_posts, views_trend};
pub use stats::{ChannelStats, Comparison, DayPoint, compare, largest_channels, last_day, stats};

use crate::db::Db;

/// Errors of the query layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The channel was never added or imported.
    #[error("unknown channel {0}: it was never added or imported (see `tgpulse import` or `/add`)")]
    NotFound(String),
    /// A handle that belonged to several channels.
    #[error("{handle} is ambiguous: it has pointed to channels {ids}; use the numeric id")]
    Ambiguous {
        /// The handle.
        handle: String,
        /// Candidate channel ids, comma-separated.
        ids: String,
    },
    /// The channel has no data at all.
    #[error("channel {0} has no samples yet")]
    NoData(String),
    /// A named query failed to plan or run.
    #[error("query {name} failed")]
    Query {
        /// Name of the query file.
        name: &'static str,
        /// Cause.
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// A service lookup failed.
    #[error("failed to {step}")]
    Db {
        /// What was being done.
        step: &'static str,
        /// Cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// No pooled connection.
    #[error("failed to get a database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A query returned an unexpected shape (a bug in a `queries/*.sql` file).
    #[error("query {0} returned an unexpected shape")]
    Shape(&'static str),
}

impl Error {
    /// True when PostgreSQL cancelled the query because it ran past the session's
    /// `statement_timeout` (SQLSTATE 57014), anywhere in the cause chain; DataFusion may carry
    /// the cause as text, so its message is checked too.
    pub fn is_timeout(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cause {
            if let Some(pg) = e.downcast_ref::<tokio_postgres::Error>()
                && pg.code() == Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
            {
                return true;
            }
            if e.to_string()
                .contains("canceling statement due to statement timeout")
            {
                return true;
            }
            cause = e.source();
        }
        false
    }
}

const BIG: PgType = PgType::Int8;
const TS: PgType = PgType::TimestampTz;
const F64: PgType = PgType::Float8;

/// The relations registered in every session, with their documented columns.
pub const RELATIONS: &[RelationDef] = &[
    RelationDef {
        name: "members_daily",
        columns: &[
            ("channel_id", BIG, false),
            ("bucket", TS, false),
            ("members", BIG, false),
            ("members_min", BIG, false),
            ("members_max", BIG, false),
            ("samples", BIG, false),
            ("last_observed_at", TS, false),
        ],
        time_column: "bucket",
    },
    RelationDef {
        name: "views_daily",
        columns: &[
            ("channel_id", BIG, false),
            ("bucket", TS, false),
            ("posts", BIG, false),
            ("views", BIG, true),
            ("forwards", BIG, true),
            ("replies", BIG, true),
            ("reactions", BIG, true),
            ("last_observed_at", TS, false),
        ],
        time_column: "bucket",
    },
    RelationDef {
        name: "post_reach",
        columns: &[
            ("channel_id", BIG, false),
            ("post_id", BIG, false),
            ("bucket", TS, false),
            ("views", BIG, true),
            ("forwards", BIG, true),
            ("replies", BIG, true),
            ("reactions", BIG, true),
            ("samples", BIG, false),
            ("last_observed_at", TS, false),
        ],
        time_column: "bucket",
    },
    RelationDef {
        name: "member_samples",
        columns: &[
            ("channel_id", BIG, false),
            ("observed_at", TS, false),
            ("members", BIG, false),
            ("source", PgType::Text, false),
            ("stored_at", TS, true),
            ("post_count", BIG, true),
        ],
        time_column: "observed_at",
    },
    RelationDef {
        name: "post_samples",
        columns: &[
            ("channel_id", BIG, false),
            ("post_id", BIG, false),
            ("published_at", TS, false),
            ("observed_at", TS, false),
            ("views", BIG, true),
            ("forwards", BIG, true),
            ("replies", BIG, true),
            ("reactions", BIG, true),
            ("source", PgType::Text, false),
            ("stored_at", TS, true),
        ],
        time_column: "published_at",
    },
    RelationDef {
        name: "posts",
        columns: &[
            ("channel_id", BIG, false),
            ("post_id", BIG, false),
            ("published_at", TS, false),
        ],
        time_column: "published_at",
    },
    RelationDef {
        name: "channels",
        columns: &[
            ("channel_id", BIG, false),
            ("handle", PgType::Text, true),
            ("title", PgType::Text, true),
            ("added_at", TS, false),
        ],
        time_column: "added_at",
    },
    RelationDef {
        name: "mentions",
        columns: &[
            ("channel_id", BIG, false),
            ("post_id", BIG, false),
            ("published_at", TS, false),
            ("kind", PgType::Text, false),
            ("source_channel_id", BIG, true),
            ("source_post_id", BIG, true),
            ("source_name", PgType::Text, true),
            ("source", PgType::Text, false),
        ],
        time_column: "published_at",
    },
];

/// A relation computed by DataFusion from the stored ones: a named query registered as a
/// view in every session, exported and queried like a stored relation.
#[derive(Debug, Clone, Copy)]
pub struct ViewDef {
    /// Name, columns (as the query returns them) and time column.
    pub def: RelationDef,
    /// The defining query (no parameters).
    pub query: NamedQuery,
}

/// The computed relations, registered in every session after [`RELATIONS`].
pub const VIEWS: &[ViewDef] = &[ViewDef {
    def: RelationDef {
        name: "post_reach_hours",
        columns: &[
            ("channel_id", BIG, false),
            ("post_id", BIG, false),
            ("published_at", TS, false),
            ("samples", BIG, false),
            ("first_observed_at", TS, true),
            ("last_observed_at", TS, true),
            ("views", BIG, true),
            ("forwards", BIG, true),
            ("replies", BIG, true),
            ("reactions", BIG, true),
            ("reach_12h", F64, true),
            ("reach_12h_from", TS, true),
            ("reach_12h_to", TS, true),
            ("reach_24h", F64, true),
            ("reach_24h_from", TS, true),
            ("reach_24h_to", TS, true),
            ("reach_48h", F64, true),
            ("reach_48h_from", TS, true),
            ("reach_48h_to", TS, true),
        ],
        time_column: "published_at",
    },
    query: POST_REACH_HOURS,
}];

/// Looks up a stored or computed relation by name.
pub fn relation(name: &str) -> Option<&'static RelationDef> {
    RELATIONS
        .iter()
        .chain(VIEWS.iter().map(|v| &v.def))
        .find(|r| r.name == name)
}

/// True for a relation of [`VIEWS`] (computed, not stored).
pub fn is_view(name: &str) -> bool {
    VIEWS.iter().any(|v| v.def.name == name)
}

/// An analytics query from `queries/`, compiled in.
#[derive(Debug, Clone, Copy)]
pub struct NamedQuery {
    /// File stem under `queries/`.
    pub name: &'static str,
    /// The SQL with its header comment.
    pub sql: &'static str,
}

macro_rules! named {
    ($ident:ident, $name:literal) => {
        #[doc = concat!("`queries/", $name, ".sql`")]
        pub const $ident: NamedQuery = NamedQuery {
            name: $name,
            sql: include_str!(concat!("../queries/", $name, ".sql")),
        };
    };
}

named!(CHANNEL_DAYS, "channel_days");
named!(CHANNEL_REACH, "channel_reach");
named!(CHANNEL_LAST_DAY, "channel_last_day");
named!(LARGEST_CHANNELS, "largest_channels");
named!(ALERT_MEMBERS_CHANGE, "alert_members_change");
named!(ALERT_UNUSUAL_CHANGE, "alert_unusual_change");
named!(ALERT_NO_POSTS, "alert_no_posts");
named!(ALERT_VIEWS_DROP, "alert_views_drop");
named!(POST_REACH_HOURS, "post_reach_hours");
named!(CHANNEL_POST_REACH, "channel_post_reach");
named!(POSTING_FREQUENCY, "posting_frequency");
named!(POST_COUNT_FREQUENCY, "post_count_frequency");
named!(VIEWS_TREND, "views_trend");
named!(POST_HEATMAP, "post_heatmap");
named!(TOP_POSTS, "top_posts");
named!(MENTIONS_INCOMING, "mentions_incoming");
named!(MENTIONS_OUTGOING, "mentions_outgoing");
named!(MENTION_DAYS, "mention_days");
named!(CHANNEL_LAST_POST_DAY, "channel_last_post_day");

/// Every named query that [`Engine::run`] (or [`run_in`]) runs, for documentation and tests.
pub const QUERIES: &[NamedQuery] = &[
    CHANNEL_DAYS,
    CHANNEL_REACH,
    CHANNEL_LAST_DAY,
    LARGEST_CHANNELS,
    ALERT_MEMBERS_CHANGE,
    ALERT_UNUSUAL_CHANGE,
    ALERT_NO_POSTS,
    ALERT_VIEWS_DROP,
    POST_REACH_HOURS,
    CHANNEL_POST_REACH,
    POSTING_FREQUENCY,
    POST_COUNT_FREQUENCY,
    VIEWS_TREND,
    POST_HEATMAP,
    TOP_POSTS,
    MENTIONS_INCOMING,
    MENTIONS_OUTGOING,
    MENTION_DAYS,
    CHANNEL_LAST_POST_DAY,
];

// The catalog's queries read the service tables (`watched_channels`, `source_status`), which
// are not registered in DataFusion: PostgreSQL runs them itself, with bound parameters
// (see `crate::catalog`).
named!(WATCHED_CHANNELS, "watched_channels");
named!(SOURCE_HEALTH, "source_health");
named!(RECENT_SAMPLES, "recent_samples");

/// The named queries that PostgreSQL runs for [`crate::catalog`], in PostgreSQL's dialect.
pub const CATALOG_QUERIES: &[NamedQuery] = &[WATCHED_CHANNELS, SOURCE_HEALTH, RECENT_SAMPLES];

/// Entry point of the query layer: builds per-request sessions over one database.
#[derive(Debug, Clone)]
pub struct Engine {
    db: Db,
    /// [`VIEWS`], planned once on first use and shared by every later session: a view's
    /// logical plan reads the same stateless providers a new session would register, and
    /// planning it costs more than a small query.
    views: Arc<tokio::sync::OnceCell<Vec<Arc<dyn TableProvider>>>>,
}

impl Engine {
    /// An engine over a migrated database.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            views: Arc::default(),
        }
    }

    /// The database this engine reads.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// A fresh session with every relation of [`RELATIONS`] and [`VIEWS`] registered, and
    /// the function `to_local(instant)`: the local wall time of a UTC instant in the
    /// database's reporting time zone (`TIMESTAMP(us)` without zone; DST-aware).
    ///
    /// errors: `Error::Query` if a view's query fails to plan (a bug in `queries/`).
    pub async fn session(&self) -> Result<SessionContext, Error> {
        let ctx =
            SessionContext::new_with_config(SessionConfig::new().with_information_schema(true));
        self.register(&ctx, None, |_| true).await?;
        Ok(ctx)
    }

    /// A session for one named query: the views it names are planned, the others left out
    /// (planning a view costs more than the rest of a small query).
    async fn session_for(&self, q: NamedQuery) -> Result<SessionContext, Error> {
        let ctx =
            SessionContext::new_with_config(SessionConfig::new().with_information_schema(true));
        self.register(&ctx, None, |v| q.sql.contains(v.def.name))
            .await?;
        Ok(ctx)
    }

    /// A session of one target partition in which `relation`'s scans return rows sorted by
    /// `column` (the other relations as in [`Engine::session`]).
    ///
    /// errors: as [`Engine::session`].
    pub async fn session_ordered(
        &self,
        relation: &RelationDef,
        column: &'static str,
    ) -> Result<SessionContext, Error> {
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
        self.register(&ctx, Some((relation.name, column)), |_| true)
            .await?;
        Ok(ctx)
    }

    async fn register(
        &self,
        ctx: &SessionContext,
        ordered: Option<(&str, &'static str)>,
        with_view: impl Fn(&ViewDef) -> bool,
    ) -> Result<(), Error> {
        self.register_tables(ctx, ordered);
        if !VIEWS.iter().any(&with_view) {
            return Ok(());
        }
        let planned = self
            .views
            .get_or_try_init(|| async {
                // Planned over plain providers, whatever `ctx`'s order, as every session shares it.
                let base = SessionContext::new();
                self.register_tables(&base, None);
                let mut out = Vec::with_capacity(VIEWS.len());
                for v in VIEWS {
                    let df = base.sql(v.query.sql).await.map_err(|source| Error::Query {
                        name: v.query.name,
                        source,
                    })?;
                    out.push(df.into_view());
                }
                Ok::<_, Error>(out)
            })
            .await?;
        for (v, table) in VIEWS.iter().zip(planned) {
            if with_view(v) {
                ctx.register_table(v.def.name, Arc::clone(table))
                    .map_err(|source| Error::Query {
                        name: v.query.name,
                        source,
                    })?;
            }
        }
        Ok(())
    }

    /// Registers the stored relations (`ordered`: one of them sorted by a column) and
    /// `to_local`.
    fn register_tables(&self, ctx: &SessionContext, ordered: Option<(&str, &'static str)>) {
        for def in RELATIONS {
            let table = match ordered {
                Some((name, column)) if name == def.name => {
                    PgTable::ordered(self.db.pool.clone(), *def, column)
                }
                _ => PgTable::new(self.db.pool.clone(), *def),
            };
            ctx.register_table(def.name, Arc::new(table))
                .expect("relation names are unique and valid");
        }
        ctx.register_udf(udf::to_local(self.db.timezone));
    }

    /// Runs a named query with bound parameters and collects the result.
    ///
    /// errors: `Error::Query` naming the query if planning or execution fails.
    pub async fn run(
        &self,
        q: NamedQuery,
        params: Vec<ScalarValue>,
    ) -> Result<Vec<RecordBatch>, Error> {
        run_in(&self.session_for(q).await?, q, params).await
    }
}

/// An instant as a DataFusion parameter: TIMESTAMP(us, UTC), the type of every time column.
pub(crate) fn ts_param(t: chrono::DateTime<chrono::Utc>) -> ScalarValue {
    ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), Some("UTC".into()))
}

/// Runs a named query in a given session (one with extra tables registered, such as the
/// alert rules' calendar) with bound parameters and collects the result.
///
/// errors: `Error::Query` naming the query if planning or execution fails.
pub async fn run_in(
    ctx: &SessionContext,
    q: NamedQuery,
    params: Vec<ScalarValue>,
) -> Result<Vec<RecordBatch>, Error> {
    let err = |source| Error::Query {
        name: q.name,
        source,
    };
    let df = ctx.sql(q.sql).await.map_err(err)?;
    let df = if params.is_empty() {
        df
    } else {
        df.with_param_values(params).map_err(err)?
    };
    df.collect().await.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_file_is_compiled_in_and_has_a_header() {
        let files = crate::test_support::sql_files("queries");
        let all = || QUERIES.iter().chain(CATALOG_QUERIES);
        let mut names: Vec<String> = all().map(|q| format!("{}.sql", q.name)).collect();
        names.sort();
        assert_eq!(files, names);
        for q in all() {
            for part in ["-- purpose:", "-- parameters", "-- output"] {
                assert!(q.sql.contains(part), "{} lacks `{part}`", q.name);
            }
        }
    }
}
