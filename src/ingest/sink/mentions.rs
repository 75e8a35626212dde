//! Writing a batch's mentions (forwards, @mentions, links between channels) into
//! `mentions`, after its samples and in the same transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;

use super::write_err;
use crate::domain::ChannelId;
use crate::ingest::{Error, Mention, MentionKind};

/// Key of the unique index `mentions_key`: channel, post, kind, and the other channel: its
/// id when known, else its name.
type MentionKey<'a> = (ChannelId, i64, MentionKind, Other<'a>);

/// The other channel as `mentions_key` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Other<'a> {
    Id(i64),
    Name(&'a str),
}

/// Inserts a batch's mentions, `(source name, mention)` pairs, into `mentions` with one
/// statement, inside the caller's transaction (after the batch's samples). Mentions are
/// de-duplicated on the key of the unique index `mentions_key` first (the first one of a key
/// wins, so the source recorded is the first that sent it, but a later one's name fills a
/// name the first lacked); an empty `source_name` counts as none, and a mention naming no
/// other channel at all (neither id nor name, which the table's CHECK refuses) is dropped
/// rather than failing the batch. A mention already stored is left as it is, except that a
/// stored row without the other channel's name takes the name (a forward read once without
/// the peer's name and once with it). Returns the rows inserted or given a name.
///
/// errors: `Error::Write` ("insert mentions").
pub(in crate::ingest) async fn write_mentions<'a>(
    client: &Object,
    rows: Vec<(&'a str, &'a Mention)>,
) -> Result<u64, Error> {
    let mut seen: HashMap<MentionKey<'a>, usize> = HashMap::new();
    let mut channel_ids: Vec<i64> = Vec::new();
    let mut post_ids: Vec<i64> = Vec::new();
    let mut published: Vec<DateTime<Utc>> = Vec::new();
    let mut kinds: Vec<&'static str> = Vec::new();
    let mut source_channel_ids: Vec<Option<i64>> = Vec::new();
    let mut source_post_ids: Vec<Option<i64>> = Vec::new();
    let mut source_names: Vec<Option<&'a str>> = Vec::new();
    let mut sources: Vec<&'a str> = Vec::new();
    let mut dropped = 0u64;
    for (source, m) in rows {
        let name = m.source_name.as_deref().filter(|n| !n.is_empty());
        let other = m.source_channel_id.map(ChannelId::get);
        let who = match (other, name) {
            (Some(id), _) => Other::Id(id),
            (None, Some(n)) => Other::Name(n),
            (None, None) => {
                dropped += 1;
                continue;
            }
        };
        if let Some(&at) = seen.get(&(m.channel_id, m.post_id, m.kind, who)) {
            if source_names[at].is_none() {
                source_names[at] = name;
            }
            continue;
        }
        seen.insert((m.channel_id, m.post_id, m.kind, who), channel_ids.len());
        channel_ids.push(m.channel_id.get());
        post_ids.push(m.post_id);
        published.push(m.published_at);
        kinds.push(m.kind.as_str());
        source_channel_ids.push(other);
        source_post_ids.push(m.source_post_id);
        source_names.push(name);
        sources.push(source);
    }
    if dropped > 0 {
        tracing::debug!(
            dropped,
            "mentions naming no other channel (no id, no name) were not stored"
        );
    }
    if channel_ids.is_empty() {
        return Ok(0);
    }
    client
        .execute(
            "INSERT INTO mentions
                 (channel_id, post_id, published_at, kind, source_channel_id, source_post_id, source_name, source)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[],
                                  $5::bigint[], $6::bigint[], $7::text[], $8::text[])
             ON CONFLICT (channel_id, post_id, kind, coalesce(source_channel_id::text, source_name))
             DO UPDATE SET source_name = EXCLUDED.source_name
             WHERE mentions.source_name IS NULL AND EXCLUDED.source_name IS NOT NULL",
            &[
                &channel_ids,
                &post_ids,
                &published,
                &kinds,
                &source_channel_ids,
                &source_post_ids,
                &source_names,
                &sources,
            ],
        )
        .await
        .map_err(write_err("insert mentions"))
}
