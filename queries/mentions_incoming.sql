-- purpose: who forwards, mentions or links a channel: the posts of other channels published
--          in a window of local days that point at it, by id or (where the source gave only
--          a name) by its current handle, per other channel with counts by kind and the
--          summed post reach of those posts (the ones tgpulse sampled).
-- parameters:
--   $1  channel_id    BIGINT               bare Telegram channel id
--   $2  handle        TEXT                 its current handle, lower-case ('' if none)
--   $3  window_start  TIMESTAMP(us, UTC)   local midnight starting the first day (inclusive)
--   $4  window_end    TIMESTAMP(us, UTC)   local midnight after the last day (exclusive)
-- output (one row per other channel, most posts first):
--   peer_id   BIGINT  the other channel's id
--   forwards  BIGINT  its posts forwarding this channel's posts
--   mentions  BIGINT  its posts mentioning @handle
--   links     BIGINT  its posts linking t.me/handle
--   posts     BIGINT  distinct posts of any kind
--   reach     BIGINT  Σ post reach of those posts (NULL: none sampled)
WITH m AS (
    SELECT channel_id, post_id, published_at, kind
    FROM mentions
    WHERE source_channel_id = $1 AND published_at >= $3 AND published_at < $4
    UNION ALL
    SELECT channel_id, post_id, published_at, kind
    FROM mentions
    WHERE source_name = $2 AND source_channel_id IS NULL AND published_at >= $3 AND published_at < $4
), mine AS (
    SELECT DISTINCT channel_id, post_id, published_at, kind FROM m WHERE channel_id <> $1
), per_post AS (
    SELECT channel_id, post_id,
           max(CASE WHEN kind = 'forward' THEN 1 ELSE 0 END) AS f,
           max(CASE WHEN kind = 'mention' THEN 1 ELSE 0 END) AS n,
           max(CASE WHEN kind = 'link' THEN 1 ELSE 0 END) AS l
    FROM mine
    GROUP BY channel_id, post_id
), reach AS (
    SELECT channel_id, post_id, views
    FROM post_reach
    WHERE bucket >= $3 - INTERVAL '2 days' AND bucket < $4 + INTERVAL '2 days'
)
SELECT p.channel_id AS peer_id,
       sum(p.f) AS forwards, sum(p.n) AS mentions, sum(p.l) AS links,
       count(*) AS posts,
       sum(r.views) AS reach
FROM per_post p
LEFT JOIN reach r ON r.channel_id = p.channel_id AND r.post_id = p.post_id
GROUP BY p.channel_id
ORDER BY posts DESC, peer_id
