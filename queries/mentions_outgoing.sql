-- purpose: whom a channel forwards, mentions or links: its posts published in a window of
--          local days that point at other channels, per other channel with counts by kind and
--          the summed post reach of those posts. A reference by name only is put with the
--          channel that has that current handle in `channels` when exactly one has it (so a
--          forward by id and an @mention of the same channel are one peer); references to the
--          channel itself (by id or its own handle) are left out.
-- parameters:
--   $1  channel_id    BIGINT               bare Telegram channel id
--   $2  window_start  TIMESTAMP(us, UTC)   local midnight starting the first day (inclusive)
--   $3  window_end    TIMESTAMP(us, UTC)   local midnight after the last day (exclusive)
--   $4  handle        TEXT                 the channel's current handle, lower-case ('' if none)
-- output (one row per other channel, most posts first):
--   peer_id    BIGINT  the other channel's id (NULL: known by name only)
--   peer_name  TEXT    the name the source gave (a handle or title; NULL if none)
--   forwards   BIGINT  posts forwarding it
--   mentions   BIGINT  posts mentioning it
--   links      BIGINT  posts linking it
--   posts      BIGINT  distinct posts of any kind
--   reach      BIGINT  Σ post reach of those posts (NULL: none sampled)
WITH handles AS (
    SELECT handle, min(channel_id) AS channel_id
    FROM channels
    WHERE handle IS NOT NULL
    GROUP BY handle
    HAVING count(*) = 1
), m AS (
    SELECT m.post_id, m.kind, m.source_name,
           coalesce(m.source_channel_id, h.channel_id) AS peer_id
    FROM mentions m
    LEFT JOIN handles h ON m.source_channel_id IS NULL AND h.handle = m.source_name
    WHERE m.channel_id = $1 AND m.published_at >= $2 AND m.published_at < $3
), keyed AS (
    SELECT post_id, kind, source_name, peer_id,
           coalesce(CAST(peer_id AS VARCHAR), '@' || source_name) AS peer_key
    FROM m
    WHERE (peer_id IS NULL OR peer_id <> $1)
      AND (peer_id IS NOT NULL OR source_name <> $4)
), per_post AS (
    SELECT peer_key, post_id,
           max(peer_id) AS peer_id,
           max(source_name) AS peer_name,
           max(CASE WHEN kind = 'forward' THEN 1 ELSE 0 END) AS f,
           max(CASE WHEN kind = 'mention' THEN 1 ELSE 0 END) AS n,
           max(CASE WHEN kind = 'link' THEN 1 ELSE 0 END) AS l
    FROM keyed
    GROUP BY peer_key, post_id
), reach AS (
    SELECT post_id, views
    FROM post_reach
    WHERE channel_id = $1 AND bucket >= $2 - INTERVAL '2 days' AND bucket < $3 + INTERVAL '2 days'
)
SELECT max(p.peer_id) AS peer_id, max(p.peer_name) AS peer_name,
       sum(p.f) AS forwards, sum(p.n) AS mentions, sum(p.l) AS links,
       count(*) AS posts,
       sum(r.views) AS reach
FROM per_post p
LEFT JOIN reach r ON r.post_id = p.post_id
GROUP BY p.peer_key
ORDER BY posts DESC, peer_name, peer_id
