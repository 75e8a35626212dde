-- purpose: attribution beside the mentions: per local day of a window, the other channels'
--          posts pointing at a channel (as in mentions_incoming), their summed reach, and the
--          channel's members change on the NEXT local day (members of the next day - members
--          of the day, both from members_daily). Correlation, not cause.
-- parameters:
--   $1  channel_id    BIGINT               bare Telegram channel id
--   $2  handle        TEXT                 its current handle, lower-case ('' if none)
--   $3  window_start  TIMESTAMP(us, UTC)   local midnight starting the first day (inclusive)
--   $4  window_end    TIMESTAMP(us, UTC)   local midnight after the last day (exclusive)
-- output (days with incoming posts, in order):
--   day                      TIMESTAMP(us)  local midnight of the day (local wall time, no zone)
--   posts                    BIGINT         other channels' posts pointing at the channel that day
--   reach                    BIGINT         their summed post reach (NULL: none sampled)
--   members_change_next_day  BIGINT         NULL without member samples on both days
WITH m AS (
    SELECT channel_id, post_id, published_at
    FROM mentions
    WHERE source_channel_id = $1 AND published_at >= $3 AND published_at < $4
    UNION ALL
    SELECT channel_id, post_id, published_at
    FROM mentions
    WHERE source_name = $2 AND source_channel_id IS NULL AND published_at >= $3 AND published_at < $4
), p AS (
    SELECT DISTINCT channel_id, post_id, published_at FROM m WHERE channel_id <> $1
), reach AS (
    SELECT channel_id, post_id, views
    FROM post_reach
    WHERE bucket >= $3 - INTERVAL '2 days' AND bucket < $4 + INTERVAL '2 days'
), per_day AS (
    SELECT date_trunc('day', to_local(p.published_at)) AS day,
           count(*) AS posts,
           sum(r.views) AS reach
    FROM p
    LEFT JOIN reach r ON r.channel_id = p.channel_id AND r.post_id = p.post_id
    GROUP BY 1
), md AS (
    SELECT date_trunc('day', to_local(bucket)) AS day, members
    FROM members_daily
    WHERE channel_id = $1 AND bucket >= $3 - INTERVAL '2 days' AND bucket < $4 + INTERVAL '2 days'
)
SELECT d.day, d.posts, d.reach,
       n.members - c.members AS members_change_next_day
FROM per_day d
LEFT JOIN md c ON c.day = d.day
LEFT JOIN md n ON n.day = d.day + INTERVAL '1 day'
ORDER BY d.day
