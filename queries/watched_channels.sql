-- purpose: the watched channels with their latest numbers (`tgpulse watch list`, the bot's
--          /list): the latest member sample, and the change between the last two local days
--          with data in members_daily.
-- runs on: PostgreSQL itself (the catalog): it reads the service tables watched_channels and
--          channels, which are not registered in DataFusion.
-- parameters: none
-- output (one row per watched channel, ordered by handle, channels without one last, then id):
--   channel_id      BIGINT       bare Telegram channel id
--   handle          TEXT         handle the channel is watched under (lower-case, no @); NULL if none
--   title           TEXT         current title; NULL if unknown
--   members         BIGINT       subscribers at the latest member sample; NULL before the first
--   last_sample_at  TIMESTAMPTZ  when the latest member sample was read; NULL before the first
--   day_delta       BIGINT       members of the last day with data - members of the day with data
--                                before it; NULL with fewer than two days
SELECT w.channel_id,
       coalesce(w.handle, c.handle) AS handle,
       c.title,
       last.members,
       last.observed_at AS last_sample_at,
       (SELECT d.members - d.prev
        FROM (SELECT two.members, lag(two.members) OVER (ORDER BY two.bucket) AS prev, two.bucket
              FROM (SELECT md.members, md.bucket FROM members_daily md
                    WHERE md.channel_id = w.channel_id
                    ORDER BY md.bucket DESC LIMIT 2) AS two) AS d
        ORDER BY d.bucket DESC LIMIT 1) AS day_delta
FROM watched_channels w
JOIN channels c USING (channel_id)
LEFT JOIN LATERAL (
    SELECT m.members, m.observed_at FROM member_samples m
    WHERE m.channel_id = w.channel_id
    ORDER BY m.observed_at DESC LIMIT 1
) AS last ON true
ORDER BY coalesce(w.handle, c.handle) NULLS LAST, w.channel_id
