//! A DataFusion table provider over a PostgreSQL relation.
//!
//! Projection, channel filters (`=`, `IN`), time-range filters (`<`, `<=`, `>`, `>=`,
//! `BETWEEN`) and `LIMIT` are pushed down into SQL as bound parameters, never as formatted
//! values. Timestamps are bound as `timestamptz` instants, so results do not depend on the
//! server's or the session's `TimeZone`. Rows arrive in PostgreSQL's binary format through a
//! streaming portal and are built into Arrow batches of [`BATCH_ROWS`] rows, so memory stays
//! bounded whatever the relation size.

use std::fmt;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, RecordBatch, RecordBatchOptions, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use deadpool_postgres::Pool;
use futures::{StreamExt, TryStreamExt};
use tokio_postgres::types::ToSql;

/// Rows per Arrow batch.
pub const BATCH_ROWS: usize = 8192;

/// Column type as stored in PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgType {
    /// `bigint` → Arrow `Int64`.
    Int8,
    /// `timestamptz` → Arrow `Timestamp(Microsecond, "UTC")`.
    TimestampTz,
    /// `text` → Arrow `Utf8`.
    Text,
    /// `double precision` → Arrow `Float64` (computed views' columns).
    Float8,
}

impl PgType {
    fn arrow(self) -> DataType {
        match self {
            Self::Int8 => DataType::Int64,
            Self::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Self::Text => DataType::Utf8,
            Self::Float8 => DataType::Float64,
        }
    }
}

/// Static description of a relation tgpulse exposes to DataFusion.
#[derive(Debug, Clone, Copy)]
pub struct RelationDef {
    /// Relation name in PostgreSQL and in the DataFusion catalog.
    pub name: &'static str,
    /// Columns: name, type, nullable.
    pub columns: &'static [(&'static str, PgType, bool)],
    /// Column used by `--from/--to` and time-range pushdown.
    pub time_column: &'static str,
}

impl RelationDef {
    /// Arrow schema of the relation.
    pub fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|(n, t, null)| Field::new(*n, t.arrow(), *null))
                .collect::<Vec<_>>(),
        ))
    }

    fn column(&self, name: &str) -> Option<PgType> {
        self.columns.iter().find(|c| c.0 == name).map(|c| c.1)
    }
}

/// A bound parameter.
#[derive(Debug, Clone, PartialEq)]
enum Param {
    Int(i64),
    Time(DateTime<Utc>),
    Text(String),
}

impl Param {
    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Self::Int(v) => v,
            Self::Time(v) => v,
            Self::Text(v) => v,
        }
    }

    fn from_literal(v: &ScalarValue, ty: PgType) -> Option<Self> {
        match (ty, v) {
            (PgType::Int8, ScalarValue::Int64(Some(x))) => Some(Self::Int(*x)),
            (PgType::Int8, ScalarValue::Int32(Some(x))) => Some(Self::Int(i64::from(*x))),
            (PgType::Int8, ScalarValue::UInt32(Some(x))) => Some(Self::Int(i64::from(*x))),
            (PgType::Int8, ScalarValue::Int16(Some(x))) => Some(Self::Int(i64::from(*x))),
            (
                PgType::Text,
                ScalarValue::Utf8(Some(s))
                | ScalarValue::Utf8View(Some(s))
                | ScalarValue::LargeUtf8(Some(s)),
            ) => Some(Self::Text(s.clone())),
            (PgType::TimestampTz, ScalarValue::TimestampMicrosecond(Some(x), _)) => {
                DateTime::from_timestamp_micros(*x).map(Self::Time)
            }
            (PgType::TimestampTz, ScalarValue::TimestampNanosecond(Some(x), _)) => {
                Some(Self::Time(DateTime::from_timestamp_nanos(*x)))
            }
            (PgType::TimestampTz, ScalarValue::TimestampMillisecond(Some(x), _)) => {
                DateTime::from_timestamp_millis(*x).map(Self::Time)
            }
            (PgType::TimestampTz, ScalarValue::TimestampSecond(Some(x), _)) => {
                DateTime::from_timestamp(*x, 0).map(Self::Time)
            }
            _ => None,
        }
    }
}

/// Translates filters into a SQL `WHERE` fragment with `$n` placeholders.
#[derive(Debug, Default)]
struct Where {
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Where {
    fn placeholder(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }

    /// Returns the SQL for `expr`, or `None` (leaving `self` unchanged) if it cannot be pushed.
    fn translate(&mut self, def: &RelationDef, expr: &Expr) -> Option<String> {
        let saved = self.params.len();
        let out = self.translate_inner(def, expr);
        if out.is_none() {
            self.params.truncate(saved);
        }
        out
    }

    fn translate_inner(&mut self, def: &RelationDef, expr: &Expr) -> Option<String> {
        match expr {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => {
                let l = self.translate_inner(def, left)?;
                let r = self.translate_inner(def, right)?;
                Some(format!("({l} AND {r})"))
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (col, lit, op) = match (left.as_ref(), right.as_ref()) {
                    (Expr::Column(c), Expr::Literal(v, _)) => (c, v, *op),
                    (Expr::Literal(v, _), Expr::Column(c)) => (c, v, op.swap()?),
                    _ => return None,
                };
                let sql_op = match op {
                    Operator::Eq => "=",
                    Operator::NotEq => "<>",
                    Operator::Lt => "<",
                    Operator::LtEq => "<=",
                    Operator::Gt => ">",
                    Operator::GtEq => ">=",
                    _ => return None,
                };
                let ty = def.column(&col.name)?;
                let p = Param::from_literal(lit, ty)?;
                let ph = self.placeholder(p);
                Some(format!("{} {sql_op} {ph}", quote_ident(&col.name)))
            }
            Expr::InList(list) if !list.negated => {
                let Expr::Column(c) = list.expr.as_ref() else {
                    return None;
                };
                let ty = def.column(&c.name)?;
                let mut phs = Vec::with_capacity(list.list.len());
                for item in &list.list {
                    let Expr::Literal(v, _) = item else {
                        return None;
                    };
                    let p = Param::from_literal(v, ty)?;
                    phs.push(self.placeholder(p));
                }
                if phs.is_empty() {
                    return None;
                }
                Some(format!("{} IN ({})", quote_ident(&c.name), phs.join(", ")))
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) => {
                let (Expr::Column(c), Expr::Literal(lo, _), Expr::Literal(hi, _)) =
                    (expr.as_ref(), low.as_ref(), high.as_ref())
                else {
                    return None;
                };
                let ty = def.column(&c.name)?;
                let lo = self.placeholder(Param::from_literal(lo, ty)?);
                let hi = self.placeholder(Param::from_literal(hi, ty)?);
                Some(format!("{} BETWEEN {lo} AND {hi}", quote_ident(&c.name)))
            }
            _ => None,
        }
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Table provider for one relation on a connection pool.
#[derive(Debug)]
pub struct PgTable {
    pool: Pool,
    def: RelationDef,
    schema: SchemaRef,
    /// Column PostgreSQL sorts the rows by (`ORDER BY`), if any.
    order_by: Option<&'static str>,
    /// Connections a large scan may read through at once (1: one query).
    parallel: usize,
}

impl PgTable {
    /// A provider for `def` reading through `pool`.
    pub fn new(pool: Pool, def: RelationDef) -> Self {
        let schema = def.schema();
        Self {
            pool,
            def,
            schema,
            order_by: None,
            parallel: 1,
        }
    }

    /// A provider whose scans of a large table read `n` ranges of its blocks at once, each
    /// through its own connection, all in one snapshot (see [`parallel`](super::parallel)):
    /// DataFusion then decodes the partitions on several threads. A small table, a
    /// hypertable's parent (its rows live in chunks) and a scan with a `LIMIT` stay one query.
    pub fn parallel(pool: Pool, def: RelationDef, n: usize) -> Self {
        Self {
            parallel: n.max(1),
            ..Self::new(pool, def)
        }
    }

    /// A provider whose scans return their rows sorted by `column` (PostgreSQL sorts them,
    /// spilling to disk past `work_mem`), for dataset exports that cut one file per partition
    /// from one pass.
    /// The order holds through a plan of pushed-down filters and projections in a session
    /// of one target partition (see [`crate::query::Engine::session_ordered`]).
    pub fn ordered(pool: Pool, def: RelationDef, column: &'static str) -> Self {
        Self {
            order_by: Some(column),
            ..Self::new(pool, def)
        }
    }

    /// The SQL and parameters a scan would run (exposed for tests and `EXPLAIN`-like output).
    fn build_sql(
        &self,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> (String, Vec<Param>, Vec<usize>) {
        let cols: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..self.def.columns.len()).collect());
        let select = cols
            .iter()
            .map(|&i| quote_ident(self.def.columns[i].0))
            .collect::<Vec<_>>()
            .join(", ");
        let mut w = Where::default();
        for f in filters {
            if let Some(sql) = w.translate(&self.def, f) {
                w.clauses.push(sql);
            }
        }
        let mut sql = format!("SELECT {select} FROM {}", quote_ident(self.def.name));
        if !w.clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&w.clauses.join(" AND "));
        }
        if let Some(c) = self.order_by {
            sql.push_str(&format!(" ORDER BY {}", quote_ident(c)));
        }
        if let Some(n) = limit {
            let ph = w.placeholder(Param::Int(i64::try_from(n).unwrap_or(i64::MAX)));
            sql.push_str(&format!(" LIMIT {ph}"));
        }
        (sql, w.params, cols)
    }
}

#[async_trait]
impl TableProvider for PgTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::common::Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if Where::default().translate(&self.def, f).is_some() {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        // Only filters we reported as Exact arrive here, so LIMIT is safe to push too.
        let (sql, params, cols) = self.build_sql(projection, filters, limit);
        let schema = Arc::new(self.schema.project(&cols)?);
        let types = cols.iter().map(|&i| self.def.columns[i].1).collect();
        tracing::debug!(relation = self.def.name, %sql, params = params.len(), "postgres scan");
        let plan = if self.parallel > 1 && limit.is_none() && self.order_by.is_none() {
            super::parallel::plan(&self.pool, self.def.name, self.parallel)
                .await
                .map_err(external)?
        } else {
            None
        };
        let partitions: Vec<Arc<dyn PartitionStream>> = match plan {
            None => vec![Arc::new(PgPartition {
                pool: self.pool.clone(),
                sql,
                params,
                schema: schema.clone(),
                types,
                range: None,
            })],
            Some(plan) => plan
                .ranges()
                .into_iter()
                .map(|range| {
                    let (sql, bounds) = super::parallel::restrict(&sql, params.len(), range.blocks);
                    let mut params = params.clone();
                    params.extend(bounds.into_iter().map(Param::Int));
                    Arc::new(PgPartition {
                        pool: self.pool.clone(),
                        sql,
                        params,
                        schema: schema.clone(),
                        types: types.clone(),
                        range: Some(range),
                    }) as Arc<dyn PartitionStream>
                })
                .collect(),
        };
        Ok(Arc::new(StreamingTableExec::try_new(
            schema,
            partitions,
            None,
            [],
            false,
            None,
        )?))
    }
}

struct PgPartition {
    pool: Pool,
    sql: String,
    params: Vec<Param>,
    schema: SchemaRef,
    types: Vec<PgType>,
    /// One block range of a parallel scan, read in the scan's shared snapshot.
    range: Option<super::parallel::Range>,
}

impl fmt::Debug for PgPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgPartition")
            .field("sql", &self.sql)
            .field("params", &self.params.len())
            .field("range", &self.range.as_ref().map(|r| r.blocks))
            .finish()
    }
}

pub(super) fn external(e: impl std::error::Error + Send + Sync + 'static) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl PartitionStream for PgPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let pool = self.pool.clone();
        let sql = self.sql.clone();
        let params = self.params.clone();
        let schema = self.schema.clone();
        let types = self.types.clone();
        let range = self.range.clone();
        let open = async move {
            let client = pool.get().await.map_err(external)?;
            // A range of a parallel scan: its own transaction in the scan's snapshot, ended
            // after the last row (or the connection closed if the stream is dropped first).
            let client = match &range {
                Some(r) => super::parallel::Conn::enter(client, r)
                    .await
                    .map_err(external)?,
                None => super::parallel::Conn::plain(client),
            };
            // Prepared once per pooled connection and SQL text (the text holds no values,
            // only the shape of the scan), so a repeated scan takes one round trip.
            let statement = client.prepare_cached(&sql).await.map_err(external)?;
            let rows = client
                .query_raw(&statement, params.iter().map(Param::as_sql))
                .await
                .map_err(external)?;
            // RowStream is not fused: polling it after its end reports "connection closed".
            let rows = Box::pin(rows.fuse());
            let state = (client, rows, schema, types);
            let batches = futures::stream::try_unfold(
                state,
                |(mut client, mut rows, schema, types)| async move {
                    let mut builders: Vec<ColBuilder> =
                        types.iter().map(|t| ColBuilder::new(*t)).collect();
                    let mut n = 0usize;
                    while n < BATCH_ROWS {
                        match rows.next().await {
                            None => break,
                            Some(row) => {
                                let row = row.map_err(external)?;
                                for (i, b) in builders.iter_mut().enumerate() {
                                    b.push(&row, i).map_err(external)?;
                                }
                                n += 1;
                            }
                        }
                    }
                    if n == 0 {
                        client.done().await.map_err(external)?;
                        return Ok(None);
                    }
                    let arrays: Vec<ArrayRef> =
                        builders.into_iter().map(ColBuilder::finish).collect();
                    let batch = RecordBatch::try_new_with_options(
                        schema.clone(),
                        arrays,
                        &RecordBatchOptions::new().with_row_count(Some(n)),
                    )?;
                    Ok(Some((batch, (client, rows, schema, types))))
                },
            );
            Ok::<_, DataFusionError>(batches)
        };
        let stream = futures::stream::once(open).try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

enum ColBuilder {
    Int(Int64Builder),
    Float(Float64Builder),
    Time(TimestampMicrosecondBuilder),
    Text(StringBuilder),
}

impl ColBuilder {
    fn new(t: PgType) -> Self {
        match t {
            PgType::Int8 => Self::Int(Int64Builder::with_capacity(BATCH_ROWS)),
            PgType::TimestampTz => Self::Time(
                TimestampMicrosecondBuilder::with_capacity(BATCH_ROWS).with_timezone("UTC"),
            ),
            PgType::Text => Self::Text(StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * 8)),
            PgType::Float8 => Self::Float(Float64Builder::with_capacity(BATCH_ROWS)),
        }
    }

    fn push(&mut self, row: &tokio_postgres::Row, i: usize) -> Result<(), tokio_postgres::Error> {
        match self {
            Self::Int(b) => b.append_option(row.try_get::<_, Option<i64>>(i)?),
            Self::Float(b) => b.append_option(row.try_get::<_, Option<f64>>(i)?),
            Self::Time(b) => b.append_option(
                row.try_get::<_, Option<DateTime<Utc>>>(i)?
                    .map(|t| t.timestamp_micros()),
            ),
            Self::Text(b) => b.append_option(row.try_get::<_, Option<&str>>(i)?),
        }
        Ok(())
    }

    fn finish(self) -> ArrayRef {
        match self {
            Self::Int(mut b) => Arc::new(b.finish()),
            Self::Float(mut b) => Arc::new(b.finish()),
            Self::Time(mut b) => Arc::new(b.finish()),
            Self::Text(mut b) => Arc::new(b.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    const DEF: RelationDef = RelationDef {
        name: "members_daily",
        columns: &[
            ("channel_id", PgType::Int8, false),
            ("bucket", PgType::TimestampTz, false),
            ("members", PgType::Int8, false),
        ],
        time_column: "bucket",
    };

    fn ts(s: &str) -> Expr {
        let t = DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros();
        Expr::Literal(
            ScalarValue::TimestampMicrosecond(Some(t), Some("UTC".into())),
            None,
        )
    }

    #[test]
    fn channel_and_time_filters_become_bound_parameters() {
        let mut w = Where::default();
        let a = w
            .translate(&DEF, &col("channel_id").eq(lit(42i64)))
            .unwrap();
        let b = w
            .translate(&DEF, &col("bucket").gt_eq(ts("2021-07-01T00:00:00Z")))
            .unwrap();
        let c = w.translate(&DEF, &lit(5i64).lt(col("members"))).unwrap();
        assert_eq!(a, "\"channel_id\" = $1");
        assert_eq!(b, "\"bucket\" >= $2");
        assert_eq!(c, "\"members\" > $3");
        assert_eq!(w.params[0], Param::Int(42));
        assert!(
            matches!(w.params[1], Param::Time(t) if t.to_rfc3339() == "2021-07-01T00:00:00+00:00")
        );
    }

    #[test]
    fn scans_select_only_projected_columns_and_bind_the_limit() {
        let cfg: tokio_postgres::Config = "postgres://nobody@127.0.0.1:1/none".parse().unwrap();
        let mgr = deadpool_postgres::Manager::new(cfg, tokio_postgres::NoTls);
        // Building a pool does not connect.
        let pool = Pool::builder(mgr).max_size(1).build().unwrap();
        let table = PgTable::new(pool, DEF);
        let filters = [col("channel_id").in_list(vec![lit(1i64), lit(2i64)], false)];
        let (sql, params, cols) = table.build_sql(Some(&vec![1, 2]), &filters, Some(10));
        assert_eq!(
            sql,
            "SELECT \"bucket\", \"members\" FROM \"members_daily\" WHERE \"channel_id\" IN ($1, $2) LIMIT $3"
        );
        assert_eq!(params, vec![Param::Int(1), Param::Int(2), Param::Int(10)]);
        assert_eq!(cols, vec![1, 2]);
    }

    #[test]
    fn untranslatable_filters_are_left_to_datafusion() {
        let mut w = Where::default();
        assert!(w.translate(&DEF, &col("members").eq(lit("text"))).is_none());
        assert!(
            w.translate(&DEF, &(col("members") + lit(1i64)).gt(lit(3i64)))
                .is_none()
        );
        assert!(w.translate(&DEF, &col("nope").eq(lit(1i64))).is_none());
        assert!(w.params.is_empty());
    }
}
