//! The documented schema of every exported relation: each column's type, unit and meaning,
//! as the README's "Exported schema" table shows it and as every Parquet file carries it in
//! its key-value metadata (`tgpulse.schema`, JSON).
//!
//! Times are instants in UTC (`timestamp[us, UTC]`); a `bucket` is the local midnight of a
//! day in the database's reporting time zone (`tgpulse.timezone` in the metadata).

use chrono::{DateTime, SecondsFormat, Utc};
use parquet::file::metadata::KeyValue;

use crate::query::{PgType, RelationDef};

/// One documented column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnDoc {
    /// Relation name.
    pub relation: &'static str,
    /// Column name.
    pub column: &'static str,
    /// Unit of the values ("count", "instant", "id", "text").
    pub unit: &'static str,
    /// What the value is and where it comes from.
    pub description: &'static str,
}

const fn c(
    relation: &'static str,
    column: &'static str,
    unit: &'static str,
    description: &'static str,
) -> ColumnDoc {
    ColumnDoc {
        relation,
        column,
        unit,
        description,
    }
}

/// Every exported column, relation by relation, in column order.
pub const COLUMNS: &[ColumnDoc] = &[
    c("members_daily", "channel_id", "id", "Telegram channel id"),
    c(
        "members_daily",
        "bucket",
        "instant",
        "local midnight of the day in the reporting time zone",
    ),
    c(
        "members_daily",
        "members",
        "count",
        "subscribers at the day's last sample",
    ),
    c(
        "members_daily",
        "members_min",
        "count",
        "fewest subscribers sampled that day",
    ),
    c(
        "members_daily",
        "members_max",
        "count",
        "most subscribers sampled that day",
    ),
    c(
        "members_daily",
        "samples",
        "count",
        "subscriber samples taken that day",
    ),
    c(
        "members_daily",
        "last_observed_at",
        "instant",
        "time of the day's last sample",
    ),
    c("views_daily", "channel_id", "id", "Telegram channel id"),
    c(
        "views_daily",
        "bucket",
        "instant",
        "local midnight of the publication day",
    ),
    c(
        "views_daily",
        "posts",
        "count",
        "posts published that day with at least one sample",
    ),
    c(
        "views_daily",
        "views",
        "count",
        "sum of those posts' highest view counts (reach)",
    ),
    c(
        "views_daily",
        "forwards",
        "count",
        "sum of their highest forward counts",
    ),
    c(
        "views_daily",
        "replies",
        "count",
        "sum of their highest reply counts",
    ),
    c(
        "views_daily",
        "reactions",
        "count",
        "sum of their highest reaction counts (all kinds)",
    ),
    c(
        "views_daily",
        "last_observed_at",
        "instant",
        "time of the newest sample counted",
    ),
    c("post_reach", "channel_id", "id", "Telegram channel id"),
    c(
        "post_reach",
        "post_id",
        "id",
        "message id inside the channel",
    ),
    c(
        "post_reach",
        "bucket",
        "instant",
        "local midnight of the publication day",
    ),
    c(
        "post_reach",
        "views",
        "count",
        "highest view count seen (reach)",
    ),
    c(
        "post_reach",
        "forwards",
        "count",
        "highest forward count seen",
    ),
    c("post_reach", "replies", "count", "highest reply count seen"),
    c(
        "post_reach",
        "reactions",
        "count",
        "highest reaction count seen (all kinds)",
    ),
    c("post_reach", "samples", "count", "samples of the post"),
    c(
        "post_reach",
        "last_observed_at",
        "instant",
        "time of the post's newest sample",
    ),
    c("member_samples", "channel_id", "id", "Telegram channel id"),
    c(
        "member_samples",
        "observed_at",
        "instant",
        "when the subscriber count was read",
    ),
    c(
        "member_samples",
        "members",
        "count",
        "subscribers at observation time",
    ),
    c(
        "member_samples",
        "source",
        "text",
        "collector or import that produced the sample",
    ),
    c(
        "member_samples",
        "stored_at",
        "instant",
        "when tgpulse stored (or last replaced) the sample; null if stored before tgpulse recorded it",
    ),
    c(
        "member_samples",
        "post_count",
        "count",
        "posts the channel had published at observation time, where the source gives it (animals file); null otherwise",
    ),
    c("post_samples", "channel_id", "id", "Telegram channel id"),
    c(
        "post_samples",
        "post_id",
        "id",
        "message id inside the channel",
    ),
    c(
        "post_samples",
        "published_at",
        "instant",
        "the post's publication time",
    ),
    c(
        "post_samples",
        "observed_at",
        "instant",
        "when the counters were read",
    ),
    c(
        "post_samples",
        "views",
        "count",
        "views at observation time; null if not reported",
    ),
    c(
        "post_samples",
        "forwards",
        "count",
        "forwards at observation time; null if not reported",
    ),
    c(
        "post_samples",
        "replies",
        "count",
        "replies at observation time; null if not reported",
    ),
    c(
        "post_samples",
        "reactions",
        "count",
        "reactions of all kinds at observation time; null if not reported",
    ),
    c(
        "post_samples",
        "source",
        "text",
        "collector or import that produced the sample",
    ),
    c(
        "post_samples",
        "stored_at",
        "instant",
        "when tgpulse stored (or last replaced) the sample; null if stored before tgpulse recorded it",
    ),
    c("posts", "channel_id", "id", "Telegram channel id"),
    c("posts", "post_id", "id", "message id inside the channel"),
    c(
        "posts",
        "published_at",
        "instant",
        "the post's publication time",
    ),
    c("channels", "channel_id", "id", "Telegram channel id"),
    c(
        "channels",
        "handle",
        "text",
        "current handle, lower-case, without @; null if never seen",
    ),
    c(
        "channels",
        "title",
        "text",
        "current title; null if never seen",
    ),
    c(
        "channels",
        "added_at",
        "instant",
        "when tgpulse first stored the channel",
    ),
    c(
        "mentions",
        "channel_id",
        "id",
        "channel whose post forwards, mentions or links the other channel",
    ),
    c("mentions", "post_id", "id", "message id of that post"),
    c(
        "mentions",
        "published_at",
        "instant",
        "publication time of that post",
    ),
    c(
        "mentions",
        "kind",
        "text",
        "forward (a forward of the other channel's post), mention (@handle in the text) or link (t.me address)",
    ),
    c(
        "mentions",
        "source_channel_id",
        "id",
        "the other channel's Telegram id; null when the source gave only a name",
    ),
    c(
        "mentions",
        "source_post_id",
        "id",
        "the other channel's message id (forwards, post links); null if unknown",
    ),
    c(
        "mentions",
        "source_name",
        "text",
        "the other channel's handle (lower-case, no @) or title as the source gave it; null if none",
    ),
    c(
        "mentions",
        "source",
        "text",
        "collector or import that recorded it (import, mtproto, tgstat)",
    ),
    c(
        "post_reach_hours",
        "channel_id",
        "id",
        "Telegram channel id",
    ),
    c(
        "post_reach_hours",
        "post_id",
        "id",
        "message id inside the channel",
    ),
    c(
        "post_reach_hours",
        "published_at",
        "instant",
        "the post's publication time",
    ),
    c(
        "post_reach_hours",
        "samples",
        "count",
        "samples of the post that carry views",
    ),
    c(
        "post_reach_hours",
        "first_observed_at",
        "instant",
        "time of the first of them",
    ),
    c(
        "post_reach_hours",
        "last_observed_at",
        "instant",
        "time of the last of them",
    ),
    c(
        "post_reach_hours",
        "views",
        "count",
        "post reach: highest views seen",
    ),
    c(
        "post_reach_hours",
        "forwards",
        "count",
        "highest forwards seen; null if never reported",
    ),
    c(
        "post_reach_hours",
        "replies",
        "count",
        "highest replies seen; null if never reported",
    ),
    c(
        "post_reach_hours",
        "reactions",
        "count",
        "highest reactions (all kinds) seen; null if never reported",
    ),
    c(
        "post_reach_hours",
        "reach_12h",
        "count",
        "views at publication + 12 h, linearly interpolated between the samples around that mark; null (n/a) without a sample on each side, never extrapolated",
    ),
    c(
        "post_reach_hours",
        "reach_12h_from",
        "instant",
        "observation time of the sample at or before the 12 h mark used",
    ),
    c(
        "post_reach_hours",
        "reach_12h_to",
        "instant",
        "observation time of the sample at or after the 12 h mark used",
    ),
    c(
        "post_reach_hours",
        "reach_24h",
        "count",
        "views at publication + 24 h, linearly interpolated between the samples around that mark; null (n/a) without a sample on each side, never extrapolated",
    ),
    c(
        "post_reach_hours",
        "reach_24h_from",
        "instant",
        "observation time of the sample at or before the 24 h mark used",
    ),
    c(
        "post_reach_hours",
        "reach_24h_to",
        "instant",
        "observation time of the sample at or after the 24 h mark used",
    ),
    c(
        "post_reach_hours",
        "reach_48h",
        "count",
        "views at publication + 48 h, linearly interpolated between the samples around that mark; null (n/a) without a sample on each side, never extrapolated",
    ),
    c(
        "post_reach_hours",
        "reach_48h_from",
        "instant",
        "observation time of the sample at or before the 48 h mark used",
    ),
    c(
        "post_reach_hours",
        "reach_48h_to",
        "instant",
        "observation time of the sample at or after the 48 h mark used",
    ),
];

/// The Arrow type of a column as the README writes it.
pub fn type_name(t: PgType) -> &'static str {
    match t {
        PgType::Int8 => "int64",
        PgType::TimestampTz => "timestamp[us, UTC]",
        PgType::Text => "string",
        PgType::Float8 => "float64",
    }
}

/// The documented columns of `relation`, in column order.
pub fn columns_of(relation: &str) -> impl Iterator<Item = &'static ColumnDoc> {
    COLUMNS.iter().filter(move |d| d.relation == relation)
}

/// `tgpulse.schema`: the relation's columns as a JSON array of
/// `{name, type, nullable, unit, description}`.
pub fn schema_json(def: &RelationDef, skip: Option<&str>) -> String {
    let cols: Vec<serde_json::Value> = def
        .columns
        .iter()
        .filter(|(n, _, _)| Some(*n) != skip)
        .map(|(name, ty, nullable)| {
            let doc = columns_of(def.name).find(|d| d.column == *name);
            serde_json::json!({
                "name": name,
                "type": type_name(*ty),
                "nullable": nullable,
                "unit": doc.map_or("", |d| d.unit),
                "description": doc.map_or("", |d| d.description),
            })
        })
        .collect();
    serde_json::Value::Array(cols).to_string()
}

/// What an exported file says about itself, besides its schema.
#[derive(Debug, Clone, Default)]
pub struct FileMeta {
    /// The relation.
    pub relation: &'static str,
    /// The reporting time zone of `bucket` columns.
    pub timezone: String,
    /// The window asked for on the time column, `[from, to)`; `None` is open.
    pub window: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    /// Incremental exports: the `stored_at` range `[from, to)` of this run.
    pub stored: Option<(Option<DateTime<Utc>>, DateTime<Utc>)>,
    /// Hive partition of this file (`bucket=2021-07`), if any; its column is not in the file
    /// when it is a column of the relation.
    pub partition: Option<(String, String)>,
}

fn rfc3339(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(String::new, |t| {
        t.to_rfc3339_opts(SecondsFormat::Micros, true)
    })
}

/// The key-value metadata of an exported Parquet file: `tgpulse.version`,
/// `tgpulse.relation`, `tgpulse.schema`, `tgpulse.timezone`, `tgpulse.time_column`,
/// `tgpulse.window.from`/`.to` (empty when open), `tgpulse.rows.first`/`.last` (the span
/// of the time column in this file, empty without rows), `tgpulse.stored.from`/`.to`
/// (incremental runs) and `tgpulse.partition` (`key=value`).
pub fn key_values(
    def: &RelationDef,
    meta: &FileMeta,
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
) -> Vec<KeyValue> {
    let skip = meta.partition.as_ref().map(|(k, _)| k.as_str());
    let mut kv = vec![
        ("tgpulse.version", env!("CARGO_PKG_VERSION").to_owned()),
        ("tgpulse.relation", def.name.to_owned()),
        ("tgpulse.schema", schema_json(def, skip)),
        ("tgpulse.timezone", meta.timezone.clone()),
        ("tgpulse.time_column", def.time_column.to_owned()),
        ("tgpulse.window.from", rfc3339(meta.window.0)),
        ("tgpulse.window.to", rfc3339(meta.window.1)),
        ("tgpulse.rows.first", rfc3339(span.map(|s| s.0))),
        ("tgpulse.rows.last", rfc3339(span.map(|s| s.1))),
    ];
    if let Some((from, to)) = meta.stored {
        kv.push(("tgpulse.stored.from", rfc3339(from)));
        kv.push(("tgpulse.stored.to", rfc3339(Some(to))));
    }
    if let Some((k, v)) = &meta.partition {
        kv.push(("tgpulse.partition", format!("{k}={v}")));
    }
    kv.into_iter()
        .map(|(k, v)| KeyValue::new(k.to_owned(), v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_of_every_relation_is_documented_in_order() {
        let views = crate::query::VIEWS.iter().map(|v| &v.def);
        for def in crate::query::RELATIONS.iter().chain(views) {
            let documented: Vec<&str> = columns_of(def.name).map(|d| d.column).collect();
            let actual: Vec<&str> = def.columns.iter().map(|c| c.0).collect();
            assert_eq!(documented, actual, "{}", def.name);
        }
        assert!(
            COLUMNS
                .iter()
                .all(|d| crate::query::relation(d.relation).is_some()),
            "a documented relation that is not exported"
        );
    }
}
