//! Alerts in PostgreSQL: per-channel settings (`alert_rules`, `alert_mutes`), the events
//! (`alert_events`), who wants them (`bot_alert_subscribers`) and what is to be sent
//! (`bot_alert_deliveries`). See `sql/0008_alerts.sql`.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use tokio_postgres::Row;

use super::lifecycle::{Step, step};
use super::{AlertConfig, Observation, Rule, Settings};
use crate::db::Db;
use crate::domain::ChannelId;

/// Errors of the alert store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A statement failed.
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
}

fn db(step: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error {
    move |source| Error::Db { step, source }
}

/// The thresholds in force: `defaults` and every row of `alert_rules`.
///
/// errors: `Error::Db` if `alert_rules` cannot be read.
pub async fn settings(db_: &Db, defaults: &AlertConfig) -> Result<Settings, Error> {
    let client = db_.pool.get().await?;
    let rows = client
        .query(
            "SELECT channel_id, rule, threshold, enabled FROM alert_rules",
            &[],
        )
        .await
        .map_err(db("read alert_rules"))?;
    let mut overrides = HashMap::new();
    for r in rows {
        let (Ok(channel), Ok(rule)) = (
            ChannelId::new(r.get(0)),
            r.get::<_, String>(1).parse::<Rule>(),
        ) else {
            continue;
        };
        overrides.insert((channel, rule), (r.get(2), r.get(3)));
    }
    Ok(Settings {
        defaults: defaults.clone(),
        overrides,
    })
}

/// Sets a channel's threshold for a rule (`None`: back to the default) and turns it on or off.
///
/// errors: `Error::Db`.
pub async fn set_rule(
    db_: &Db,
    channel: ChannelId,
    rule: Rule,
    threshold: Option<f64>,
    enabled: bool,
    by: Option<i64>,
) -> Result<(), Error> {
    let client = db_.pool.get().await?;
    client
        .execute(
            "INSERT INTO alert_rules (channel_id, rule, threshold, enabled, updated_by)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (channel_id, rule) DO UPDATE
             SET threshold = coalesce($3, alert_rules.threshold), enabled = $4,
                 updated_by = $5, updated_at = now()",
            &[&channel.get(), &rule.name(), &threshold, &enabled, &by],
        )
        .await
        .map_err(db("store an alert rule"))?;
    Ok(())
}

/// Mutes a channel's notifications until `until` (events are still recorded).
///
/// errors: `Error::Db`.
pub async fn mute(
    db_: &Db,
    channel: ChannelId,
    until: DateTime<Utc>,
    by: Option<i64>,
) -> Result<(), Error> {
    let client = db_.pool.get().await?;
    client
        .execute(
            "INSERT INTO alert_mutes (channel_id, muted_until, muted_by) VALUES ($1, $2, $3)
             ON CONFLICT (channel_id) DO UPDATE SET muted_until = $2, muted_by = $3",
            &[&channel.get(), &until, &by],
        )
        .await
        .map_err(db("mute a channel"))?;
    Ok(())
}

/// Turns a user's own alert notifications on or off.
///
/// errors: `Error::Db`.
pub async fn subscribe(db_: &Db, user: i64, on: bool) -> Result<(), Error> {
    let client = db_.pool.get().await?;
    client
        .execute(
            "INSERT INTO bot_alert_subscribers (user_id, alerts) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET alerts = $2, updated_at = now()",
            &[&user, &on],
        )
        .await
        .map_err(db("store an alert subscription"))?;
    Ok(())
}

/// Who is told of a new event: the admins who did not turn alerts off, and the viewers who
/// turned them on.
///
/// errors: `Error::Db`.
pub async fn recipients(db_: &Db, admins: &[u64]) -> Result<Vec<i64>, Error> {
    let admins: Vec<i64> = admins.iter().map(|&a| a as i64).collect();
    let client = db_.pool.get().await?;
    let rows = client
        .query(
            "SELECT u FROM unnest($1::bigint[]) AS u
             WHERE NOT EXISTS (SELECT 1 FROM bot_alert_subscribers s
                               WHERE s.user_id = u AND NOT s.alerts)
             UNION
             SELECT s.user_id FROM bot_alert_subscribers s
             JOIN bot_viewers v ON v.user_id = s.user_id
             WHERE s.alerts
             ORDER BY 1",
            &[&admins],
        )
        .await
        .map_err(db("read the alert recipients"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// One evaluation round to apply.
#[derive(Debug, Clone, Copy)]
pub struct Round<'a> {
    /// The evaluation instant.
    pub at: DateTime<Utc>,
    /// The rules evaluated (open alerts of other rules are left alone).
    pub rules: &'a [Rule],
    /// Who is told of an event that opens.
    pub recipients: &'a [i64],
    /// A round sooner than this after the last applied one (by any process) is skipped;
    /// zero applies it whatever.
    pub min_gap: chrono::Duration,
    /// The source_stale subjects (`source:<name>`) this process judges; an open
    /// source_stale alert of another process's source is left alone.
    pub sources: &'a [String],
}

/// What one evaluation changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Applied {
    /// True when another process had evaluated less than `min_gap` before: nothing applied.
    pub skipped: bool,
    /// Events opened (their ids).
    pub opened: Vec<i64>,
    /// Events that stayed open.
    pub held: usize,
    /// Events resolved.
    pub resolved: usize,
    /// Deliveries queued for the bot.
    pub queued: usize,
}

/// Applies one round's observations in one transaction: opens the events that fire with none
/// open (queuing one delivery per recipient, or a muted one), holds or counts down the open
/// ones, and resolves those clear for 2 evaluations. Open events of the round's rules
/// without an observation this time count as clear (except another process's sources). A
/// round within `min_gap` of the last one applied by any process is skipped whole.
///
/// errors: `Error::Db`; nothing is changed then.
pub async fn apply(
    db_: &Db,
    observations: &[Observation],
    round: Round<'_>,
) -> Result<Applied, Error> {
    let Round {
        at,
        rules,
        recipients,
        min_gap,
        sources,
    } = round;
    let mut client = db_.pool.get().await?;
    let tx = client
        .transaction()
        .await
        .map_err(db("begin an alert evaluation"))?;
    // Concurrent rounds wait on this row; the later one sees the new time and is skipped.
    let won = tx
        .query_opt(
            "INSERT INTO alert_runs (scope, last_at) VALUES ('evaluation', $1)
             ON CONFLICT (scope) DO UPDATE SET last_at = EXCLUDED.last_at
             WHERE alert_runs.last_at <= $2 OR alert_runs.last_at > $1
             RETURNING last_at",
            &[&at, &(at - min_gap)],
        )
        .await
        .map_err(db("take the alert evaluation"))?;
    if won.is_none() {
        return Ok(Applied {
            skipped: true,
            ..Applied::default()
        });
    }
    let names: Vec<&str> = rules.iter().map(|r| r.name()).collect();
    let open_rows = tx
        .query(
            "SELECT id, subject, rule, clear_count FROM alert_events
             WHERE resolved_at IS NULL AND rule = ANY($1) FOR UPDATE",
            &[&names],
        )
        .await
        .map_err(db("read the open alerts"))?;
    let mut open: HashMap<(String, String), (i64, u32)> = open_rows
        .iter()
        .map(|r| {
            let clear: i32 = r.get(3);
            ((r.get(1), r.get(2)), (r.get(0), clear.max(0) as u32))
        })
        .collect();
    let mut applied = Applied::default();
    let mut seen = HashSet::new();
    for o in observations {
        let key = (o.subject.key(), o.rule.name().to_owned());
        if !seen.insert(key.clone()) {
            continue;
        }
        let current = open.remove(&key);
        let s = step(current.map(|(_, c)| c), o.fired);
        if s == Step::Open {
            let row = tx
                .query_opt(
                    "INSERT INTO alert_events (subject, channel_id, rule, day, opened_at, value,
                         baseline, change_pct, threshold, detail, last_eval_at, score)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $5, $11)
                     ON CONFLICT (subject, rule) WHERE resolved_at IS NULL DO NOTHING
                     RETURNING id",
                    &[
                        &key.0,
                        &o.subject.channel().map(ChannelId::get),
                        &key.1,
                        &o.day,
                        &at,
                        &o.value,
                        &o.baseline,
                        &o.change_pct,
                        &o.threshold,
                        &o.detail,
                        &o.score,
                    ],
                )
                .await
                .map_err(db("open an alert"))?;
            if let Some(row) = row {
                let id: i64 = row.get(0);
                applied.opened.push(id);
                applied.queued +=
                    tx.execute(
                        "INSERT INTO bot_alert_deliveries (event_id, user_id, state)
                         SELECT $1, u,
                                CASE WHEN EXISTS (SELECT 1 FROM alert_mutes m
                                                  WHERE m.channel_id = $2 AND m.muted_until > $3)
                                     THEN 'muted' ELSE 'pending' END
                         FROM unnest($4::bigint[]) AS u",
                        &[
                            &id,
                            &o.subject.channel().map(ChannelId::get),
                            &at,
                            &recipients,
                        ],
                    )
                    .await
                    .map_err(db("queue the alert's deliveries"))? as usize;
            }
            continue;
        }
        if let Some((id, _)) = current {
            advance(&tx, id, s, at, &mut applied).await?;
        }
    }
    for ((subject, rule), (id, clear)) in open {
        if rule == Rule::SourceStale.name() && !sources.contains(&subject) {
            continue;
        }
        advance(&tx, id, step(Some(clear), false), at, &mut applied).await?;
    }
    tx.commit()
        .await
        .map_err(db("commit an alert evaluation"))?;
    Ok(applied)
}

async fn advance(
    tx: &tokio_postgres::Transaction<'_>,
    id: i64,
    s: Step,
    at: DateTime<Utc>,
    applied: &mut Applied,
) -> Result<(), Error> {
    let (clear, resolved_at): (i32, Option<DateTime<Utc>>) = match s {
        Step::Hold => {
            applied.held += 1;
            (0, None)
        }
        Step::Clearing(c) => {
            applied.held += 1;
            (c as i32, None)
        }
        Step::Resolve => {
            applied.resolved += 1;
            (super::RESOLVE_AFTER as i32, Some(at))
        }
        Step::Open | Step::Quiet => return Ok(()),
    };
    tx.execute(
        "UPDATE alert_events SET clear_count = $2, last_eval_at = $3, resolved_at = $4
         WHERE id = $1",
        &[&id, &clear, &at, &resolved_at],
    )
    .await
    .map_err(db("update an alert"))?;
    Ok(())
}

/// An alert event as stored, with its channel's handle and title.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Row id.
    pub id: i64,
    /// Channel id as text, or `source:<name>` / `writer`.
    pub subject: String,
    /// The channel, for channel rules.
    pub channel_id: Option<i64>,
    /// The channel's handle (lower-case, no `@`), if known.
    pub handle: Option<String>,
    /// The channel's title, if known.
    pub title: Option<String>,
    /// Rule name.
    pub rule: String,
    /// Local day of the observation that opened it.
    pub day: NaiveDate,
    /// When it opened.
    pub opened_at: DateTime<Utc>,
    /// See [`Observation`].
    pub value: Option<f64>,
    /// See [`Observation`].
    pub baseline: Option<f64>,
    /// See [`Observation`].
    pub change_pct: Option<f64>,
    /// Threshold in force when it opened.
    pub threshold: f64,
    /// See [`Observation`]: unusual_change's robust z, no_posts' limit in hours.
    pub score: Option<f64>,
    /// One line for people, in English (the bot words it per reader from the numbers).
    pub detail: String,
    /// When it resolved; `None` while open.
    pub resolved_at: Option<DateTime<Utc>>,
}

impl Event {
    /// `@handle`, the title, or the subject.
    pub fn label(&self) -> String {
        match (&self.handle, &self.title) {
            (Some(h), _) => format!("@{h}"),
            (None, Some(t)) if !t.is_empty() => t.clone(),
            _ => self.subject.clone(),
        }
    }
}

const EVENT_COLUMNS: &str = "e.id, e.subject, e.channel_id, c.handle, c.title, e.rule, e.day,
    e.opened_at, e.value, e.baseline, e.change_pct, e.threshold, e.detail, e.resolved_at,
    e.score";

/// The event whose [`EVENT_COLUMNS`] start at column `o` of `r`.
fn event(r: &Row, o: usize) -> Event {
    Event {
        id: r.get(o),
        subject: r.get(o + 1),
        channel_id: r.get(o + 2),
        handle: r.get(o + 3),
        title: r.get(o + 4),
        rule: r.get(o + 5),
        day: r.get(o + 6),
        opened_at: r.get(o + 7),
        value: r.get(o + 8),
        baseline: r.get(o + 9),
        change_pct: r.get(o + 10),
        threshold: r.get(o + 11),
        detail: r.get(o + 12),
        resolved_at: r.get(o + 13),
        score: r.get(o + 14),
    }
}

/// The open alerts (oldest first) and the `resolved` most recently resolved ones.
///
/// errors: `Error::Db`.
pub async fn list(db_: &Db, resolved: i64) -> Result<(Vec<Event>, Vec<Event>), Error> {
    let client = db_.pool.get().await?;
    let open = client
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM alert_events e
                 LEFT JOIN channels c ON c.channel_id = e.channel_id
                 WHERE e.resolved_at IS NULL ORDER BY e.opened_at, e.id"
            ),
            &[],
        )
        .await
        .map_err(db("read the open alerts"))?;
    let done = client
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM alert_events e
                 LEFT JOIN channels c ON c.channel_id = e.channel_id
                 WHERE e.resolved_at IS NOT NULL ORDER BY e.resolved_at DESC, e.id DESC
                 LIMIT $1"
            ),
            &[&resolved],
        )
        .await
        .map_err(db("read the resolved alerts"))?;
    Ok((
        open.iter().map(|r| event(r, 0)).collect(),
        done.iter().map(|r| event(r, 0)).collect(),
    ))
}

/// The alerts opened on the local days `first..=last`, in the order they opened.
///
/// errors: `Error::Db`.
pub async fn opened_between(
    db_: &Db,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<Vec<Event>, Error> {
    let client = db_.pool.get().await?;
    let rows = client
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM alert_events e
                 LEFT JOIN channels c ON c.channel_id = e.channel_id
                 WHERE e.day BETWEEN $1 AND $2 ORDER BY e.opened_at, e.id"
            ),
            &[&first, &last],
        )
        .await
        .map_err(db("read the alerts of a period"))?;
    Ok(rows.iter().map(|r| event(r, 0)).collect())
}

/// Claims every pending delivery (marks it `sending`, so no other process sends it) and
/// returns them per recipient, events in the order they opened.
///
/// errors: `Error::Db`.
pub async fn claim(db_: &Db) -> Result<Vec<(i64, Vec<Event>)>, Error> {
    let client = db_.pool.get().await?;
    let rows = client
        .query(
            &format!(
                "WITH claimed AS (
                     UPDATE bot_alert_deliveries SET state = 'sending'
                     WHERE state = 'pending'
                     RETURNING event_id, user_id)
                 SELECT k.user_id, {EVENT_COLUMNS} FROM claimed k
                 JOIN alert_events e ON e.id = k.event_id
                 LEFT JOIN channels c ON c.channel_id = e.channel_id
                 ORDER BY k.user_id, e.opened_at, e.id"
            ),
            &[],
        )
        .await
        .map_err(db("claim the pending alert deliveries"))?;
    let mut out: Vec<(i64, Vec<Event>)> = Vec::new();
    for r in &rows {
        let user: i64 = r.get(0);
        let e = event(r, 1);
        match out.last_mut() {
            Some((u, events)) if *u == user => events.push(e),
            _ => out.push((user, vec![e])),
        }
    }
    Ok(out)
}

/// Records how claimed deliveries ended: `sent` or `failed`.
///
/// errors: `Error::Db`.
pub async fn finish(
    db_: &Db,
    user: i64,
    events: &[i64],
    sent: bool,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let client = db_.pool.get().await?;
    let state = if sent { "sent" } else { "failed" };
    client
        .execute(
            "UPDATE bot_alert_deliveries SET state = $3, sent_at = $4
             WHERE user_id = $1 AND event_id = ANY($2)",
            &[&user, &events, &state, &at],
        )
        .await
        .map_err(db("record an alert delivery"))?;
    Ok(())
}
