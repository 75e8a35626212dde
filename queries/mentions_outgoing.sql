-- purpose: whom a channel forwards, mentions or links: its posts published in a window of
--          local days that point at other channels, per other channel (by id, else by the
--          name the source gave) with counts by kind and the summed post reach of those posts.
-- parameters:
--   $1  channel_id    BIGINT               bare Telegram channel id
--   $2  window_start  TIMESTAMP(us, UTC)   local midnight starting the first day (inclusive)
--   $3  window_end    TIMESTAMP(us, UTC)   local midnight after the last day (exclusive)
-- output (one row per other channel, most posts first):
--   peer_id    BIGINT  the other channel's id (NULL: known by name only)
--   peer_name  TEXT    the name the source gave (a handle or title; NULL if none)
--   forwards   BIGINT  posts forwarding it
--   mentions   BIGINT  posts mentioning it
--   links      BIGINT  posts linking it
--   posts      BIGINT  distinct posts of any kind
--   reach      BIGINT  Σ post reach of those posts (NULL: none sampled)
WITH m AS (
    SELECT post_id, kind, source_channel_id, source_name,
           coalesce(CAST(source_channel_id AS VARCHAR), '@' || source_name) AS peer_key
    FROM mentions
    WHERE channel_id = $1 AND published_at >= $2 AND published_at < $3
), per_post AS (
    SELECT peer_key, post_id,
           max(source_channel_id) AS peer_id,
           max(source_name) AS peer_name,
           max(CASE WHEN kind = 'forward' THEN 1 ELSE 0 END) AS f,
           max(CASE WHEN kind = 'mention' THEN 1 ELSE 0 END) AS n,
           max(CASE WHEN kind = 'link' THEN 1 ELSE 0 END) AS l
    FROM m
    WHERE source_channel_id IS NULL OR source_channel_id <> $1
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
