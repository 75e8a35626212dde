//! `reports_queue`: one row per (kind, period, recipient), generated once and sent at most
//! once. A failed send is retried with exponential backoff (backon: 1 min doubling to 1 h)
//! for up to [`GIVE_UP_AFTER`] after it was generated, then given up (counted on `/health`
//! and in `tgpulse_reports_given_up_total`).

use backon::BackoffBuilder;
use chrono::{DateTime, NaiveDate, Utc};

use super::{ReportKind, build, chart, html_messages, period};
use crate::db::Db;
use crate::i18n::Lang;
use crate::query::Engine;

/// How long a report is retried after it was generated.
pub const GIVE_UP_AFTER: chrono::Duration = chrono::Duration::hours(24);

/// Turns a user's reports on or off.
///
/// errors: the database's.
pub async fn subscribe(db: &Db, user: i64, on: bool) -> anyhow::Result<()> {
    let client = db.pool.get().await?;
    client
        .execute(
            "INSERT INTO bot_report_subscribers (user_id, reports) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET reports = $2, updated_at = now()",
            &[&user, &on],
        )
        .await?;
    Ok(())
}

/// Generates the `kind` report of the period before `run_day` and queues it for every
/// subscriber who has no row for that period yet. Returns how many rows were queued (0 without
/// building anything when nobody is missing).
///
/// errors: the report's queries or the database failing; nothing is queued then.
pub async fn generate(
    engine: &Engine,
    kind: ReportKind,
    run_day: NaiveDate,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let (first, last) = period(kind, run_day);
    let db = engine.db();
    // Recipients without a queued row, by the language of their bot (`bot_languages`).
    let mut missing: Vec<(Lang, Vec<i64>)> = Lang::ALL.iter().map(|l| (*l, Vec::new())).collect();
    {
        let client = db.pool.get().await?;
        let rows = client
            .query(
                "SELECT s.user_id, l.chosen, l.telegram_code FROM bot_report_subscribers s
                 LEFT JOIN bot_languages l ON l.user_id = s.user_id
                 WHERE s.reports AND NOT EXISTS (
                     SELECT 1 FROM reports_queue q
                     WHERE q.kind = $1 AND q.period_start = $2 AND q.recipient = s.user_id)
                 ORDER BY s.user_id",
                &[&kind.name(), &first],
            )
            .await?;
        for r in rows {
            let (chosen, code): (Option<String>, Option<String>) = (r.get(1), r.get(2));
            let lang = Lang::of_user(chosen.as_deref(), code.as_deref());
            if let Some((_, users)) = missing.iter_mut().find(|(l, _)| *l == lang) {
                users.push(r.get(0));
            }
        }
    }
    missing.retain(|(_, users)| !users.is_empty());
    if missing.is_empty() {
        return Ok(0);
    }
    let report = build(engine, kind, first, last).await?;
    let mut n = 0;
    for (lang, users) in missing {
        let png = match chart(engine, &report, lang).await {
            Ok(png) => png,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "the report's chart could not be drawn");
                None
            }
        };
        let body = html_messages(&report, lang).join("\u{1}");
        let client = db.pool.get().await?;
        n += client
            .execute(
                "INSERT INTO reports_queue (kind, period_start, period_end, recipient, body, chart,
                                            next_attempt_at, created_at, lang)
                 SELECT $1, $2, $3, u, $4, $5, $6, $6, $8 FROM unnest($7::bigint[]) AS u
                 ON CONFLICT DO NOTHING",
                &[
                    &kind.name(),
                    &first,
                    &last,
                    &body,
                    &png,
                    &now,
                    &users,
                    &lang.code(),
                ],
            )
            .await?;
    }
    Ok(n as usize)
}

/// A report row claimed for sending.
#[derive(Debug, Clone)]
pub struct Queued {
    /// `weekly` or `monthly`.
    pub kind: String,
    /// First day of the period.
    pub period_start: NaiveDate,
    /// The recipient's Telegram user id.
    pub recipient: i64,
    /// Telegram HTML messages.
    pub messages: Vec<String>,
    /// The chart, if drawn.
    pub chart: Option<Vec<u8>>,
    /// Failed sends so far.
    pub attempts: i32,
    /// When it was generated.
    pub created_at: DateTime<Utc>,
    /// Parts already sent by an earlier attempt (messages, then the chart).
    pub parts_sent: usize,
    /// The language it was written in.
    pub lang: Lang,
}

/// A row in `sending` for longer than this belongs to a sender that died; it is taken up
/// again from its `parts_sent`.
pub const SENDING_LEASE: chrono::Duration = chrono::Duration::minutes(10);

/// Claims the rows due at `now` (marks them `sending`), and those left in `sending` past
/// [`SENDING_LEASE`].
///
/// errors: the database's.
pub async fn claim_due(db: &Db, now: DateTime<Utc>) -> anyhow::Result<Vec<Queued>> {
    let client = db.pool.get().await?;
    let rows = client
        .query(
            "UPDATE reports_queue SET state = 'sending', claimed_at = $1
             WHERE (state = 'queued' AND next_attempt_at <= $1)
                OR (state = 'sending' AND claimed_at < $2)
             RETURNING kind, period_start, recipient, body, chart, attempts, created_at,
                       parts_sent, lang",
            &[&now, &(now - SENDING_LEASE)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Queued {
            kind: r.get(0),
            period_start: r.get(1),
            recipient: r.get(2),
            messages: r
                .get::<_, String>(3)
                .split('\u{1}')
                .map(str::to_owned)
                .collect(),
            chart: r.get(4),
            attempts: r.get(5),
            created_at: r.get(6),
            parts_sent: r.get::<_, i32>(7).max(0) as usize,
            lang: Lang::parse(r.get(8)).unwrap_or_default(),
        })
        .collect())
}

/// Records that the first `parts` parts (messages, then the chart) of a claimed row are sent.
///
/// errors: the database's.
pub async fn part_sent(db: &Db, q: &Queued, parts: usize) -> anyhow::Result<()> {
    let client = db.pool.get().await?;
    client
        .execute(
            "UPDATE reports_queue SET parts_sent = $4
             WHERE kind = $1 AND period_start = $2 AND recipient = $3",
            &[&q.kind, &q.period_start, &q.recipient, &(parts as i32)],
        )
        .await?;
    Ok(())
}

/// How a claimed row ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Sent.
    Sent,
    /// Not sent; retried later, or given up past [`GIVE_UP_AFTER`].
    Failed,
    /// The recipient no longer has a role: dropped without sending.
    Dropped,
}

/// Records how a claimed row ended; returns whether a failure was given up.
///
/// errors: the database's.
pub async fn finish(
    db: &Db,
    q: &Queued,
    outcome: Outcome,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let client = db.pool.get().await?;
    let key: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
        [&q.kind, &q.period_start, &q.recipient];
    let where_ = "WHERE kind = $1 AND period_start = $2 AND recipient = $3";
    let given_up = match outcome {
        Outcome::Sent | Outcome::Dropped => {
            let state = if outcome == Outcome::Sent {
                "sent"
            } else {
                "dropped"
            };
            client
                .execute(
                    &format!("UPDATE reports_queue SET state = $4, sent_at = $5 {where_}"),
                    &[key[0], key[1], key[2], &state, &now],
                )
                .await?;
            false
        }
        Outcome::Failed => {
            let give_up = now - q.created_at >= GIVE_UP_AFTER;
            let pause = backon::ExponentialBuilder::default()
                .with_min_delay(std::time::Duration::from_secs(60))
                .with_max_delay(std::time::Duration::from_secs(3600))
                .without_max_times()
                .build()
                .nth(q.attempts.max(0) as usize)
                .unwrap_or(std::time::Duration::from_secs(3600));
            let next = now + crate::clock::chrono_duration(pause);
            let state = if give_up { "given_up" } else { "queued" };
            client
                .execute(
                    &format!(
                        "UPDATE reports_queue SET state = $4, attempts = attempts + 1,
                             next_attempt_at = $5, last_error = $6 {where_}"
                    ),
                    &[key[0], key[1], key[2], &state, &next, &error],
                )
                .await?;
            if give_up {
                metrics::counter!("tgpulse_reports_given_up_total").increment(1);
            }
            give_up
        }
    };
    Ok(given_up)
}
