//! Query layer: DataFusion over the PostgreSQL relations, with the analytics SQL kept as
//! named files in `queries/`.
//!
//! Each relation of [`RELATIONS`] is a [`PgTable`] provider that pushes projection, channel
//! and time-range filters down to PostgreSQL. The named queries run in one session the
//! engine keeps, planned once each and bound per call ([`Engine::run`]); analysts, exports
//! and alert rules get sessions of their own. Parameters are bound with DataFusion's `$n`
//! placeholders; no value is formatted into SQL.

mod channels;
pub mod mentions;
mod parallel;
pub mod pg_table;
pub mod posts;
mod posts_run;
mod stats;
mod udf;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::ScalarValue;
use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
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
// (see `crate::catalog`). So does the lookup of a channel's last day (`stats::last_day`): a
// maximum PostgreSQL reads from the primary key's index, where DataFusion would fetch every
// daily row of the channel to find it.
named!(WATCHED_CHANNELS, "watched_channels");
named!(SOURCE_HEALTH, "source_health");
named!(RECENT_SAMPLES, "recent_samples");
named!(CHANNEL_LAST_DAY, "channel_last_day");

/// The named queries that PostgreSQL runs itself, in PostgreSQL's dialect: the catalog's
/// ([`crate::catalog`]) and the last-day lookup of `stats`.
pub const CATALOG_QUERIES: &[NamedQuery] = &[
    WATCHED_CHANNELS,
    SOURCE_HEALTH,
    RECENT_SAMPLES,
    CHANNEL_LAST_DAY,
];

/// Entry point of the query layer: one shared session for the named queries, whose plans
/// are built once and bound per call, and fresh sessions for analysts and exports.
#[derive(Debug, Clone)]
pub struct Engine {
    db: Db,
    /// [`VIEWS`], planned once on first use and shared by every later session: a view's
    /// logical plan reads the same stateless providers a new session would register, and
    /// planning it costs more than a small query.
    views: Arc<tokio::sync::OnceCell<Vec<Arc<dyn TableProvider>>>>,
    /// The session state [`Engine::run`] plans and runs the named queries in, built on
    /// first use. Its providers are stateless (a pool and a relation), so concurrent calls
    /// share it, by reference: no per-call copy of its function registry.
    shared: Arc<tokio::sync::OnceCell<SessionState>>,
    /// Logical plans of the named queries, with their `$n` placeholders unbound: parsing and
    /// turning SQL into a plan happen once per query and engine, and every call only binds
    /// its parameters (then optimises and runs, so filters with the bound values still go
    /// down to PostgreSQL).
    plans: Arc<std::sync::Mutex<HashMap<&'static str, LogicalPlan>>>,
}

impl Engine {
    /// An engine over a migrated database.
    pub fn new(db: Db) -> Self {
        Self {
            db,
            views: Arc::default(),
            shared: Arc::default(),
            plans: Arc::default(),
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
        self.register(&ctx, Scans::Plain, |_| true).await?;
        Ok(ctx)
    }

    /// A session for exporting whole relations: scans of a large stored table read `n`
    /// block ranges at once in one snapshot (see [`PgTable::parallel`]), decoded on
    /// DataFusion's threads; rows come in no particular order.
    ///
    /// errors: as [`Engine::session`].
    pub async fn session_parallel(&self, n: usize) -> Result<SessionContext, Error> {
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(n));
        self.register(&ctx, Scans::Parallel(n), |_| true).await?;
        Ok(ctx)
    }

    /// The shared session of the named queries (every relation and view registered).
    async fn shared(&self) -> Result<&SessionState, Error> {
        self.shared
            .get_or_try_init(|| async {
                // One partition: a named query reads one channel's rows (at most a few
                // thousand), and repartitioning them across threads costs more than it saves.
                let ctx =
                    SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
                self.register(&ctx, Scans::Plain, |_| true).await?;
                Ok(ctx.state())
            })
            .await
    }

    /// The logical plan of `q` in the shared session, with its placeholders unbound: built
    /// on the first call, cloned (cheaply: plans share their nodes) on the next ones.
    async fn plan(&self, state: &SessionState, q: NamedQuery) -> Result<LogicalPlan, Error> {
        if let Some(p) = self.plans.lock().expect("plan cache lock").get(q.name) {
            return Ok(p.clone());
        }
        let plan = state
            .create_logical_plan(q.sql)
            .await
            .map_err(|source| Error::Query {
                name: q.name,
                source,
            })?;
        self.plans
            .lock()
            .expect("plan cache lock")
            .insert(q.name, plan.clone());
        Ok(plan)
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
        self.register(&ctx, Scans::Ordered(relation.name, column), |_| true)
            .await?;
        Ok(ctx)
    }

    async fn register(
        &self,
        ctx: &SessionContext,
        scans: Scans<'_>,
        with_view: impl Fn(&ViewDef) -> bool,
    ) -> Result<(), Error> {
        self.register_tables(ctx, scans);
        if !VIEWS.iter().any(&with_view) {
            return Ok(());
        }
        let planned = self
            .views
            .get_or_try_init(|| async {
                // Planned over plain providers, whatever `ctx`'s order, as every session shares it.
                let base = SessionContext::new();
                self.register_tables(&base, Scans::Plain);
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

    /// Registers the stored relations, scanned as `scans` says, and `to_local`.
    fn register_tables(&self, ctx: &SessionContext, scans: Scans<'_>) {
        for def in RELATIONS {
            let pool = self.db.pool.clone();
            let table = match scans {
                Scans::Ordered(name, column) if name == def.name => {
                    PgTable::ordered(pool, *def, column)
                }
                Scans::Parallel(n) => PgTable::parallel(pool, *def, n),
                _ => PgTable::new(pool, *def),
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
        let state = self.shared().await?;
        let plan = self.plan(state, q).await?;
        let err = |source| Error::Query {
            name: q.name,
            source,
        };
        let plan = if params.is_empty() {
            plan
        } else {
            plan.with_param_values(params).map_err(err)?
        };
        // Optimised per call: the bound values are what lets filters go down to PostgreSQL.
        let physical = state.create_physical_plan(&plan).await.map_err(err)?;
        datafusion::physical_plan::collect(physical, state.task_ctx())
            .await
            .map_err(err)
    }
}

/// How a session's stored relations are scanned.
#[derive(Debug, Clone, Copy)]
enum Scans<'a> {
    /// One query per scan.
    Plain,
    /// The named relation's rows sorted by the column.
    Ordered(&'a str, &'static str),
    /// Large tables read in this many block ranges at once.
    Parallel(usize),
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
