-- purpose: daily members of one channel in a window of local days, each day with its delta
--          against the previous day with data, plus one baseline row: the last day with data
--          before the window (so the first day in the window has a delta too).
-- parameters:
--   $1  channel_id    BIGINT                      bare Telegram channel id
--   $2  window_start  TIMESTAMP(us, UTC)          local midnight starting the first day (inclusive)
--   $3  window_end    TIMESTAMP(us, UTC)          local midnight after the last day (exclusive)
-- output:
--   bucket     TIMESTAMP(us, UTC)  local midnight of the day (members_daily.bucket)
--   members    BIGINT              subscribers: last sample of the local day
--   delta      BIGINT              members - members of the previous day with data; NULL on the first row
--   in_window  BOOLEAN             false only for the baseline row
WITH baseline AS (
    SELECT bucket, members
    FROM members_daily
    WHERE channel_id = $1 AND bucket < $2
    ORDER BY bucket DESC
    LIMIT 1
), inside AS (
    SELECT bucket, members
    FROM members_daily
    WHERE channel_id = $1 AND bucket >= $2 AND bucket < $3
), series AS (
    SELECT bucket, members FROM baseline
    UNION ALL
    SELECT bucket, members FROM inside
)
SELECT bucket,
       members,
       members - lag(members) OVER (ORDER BY bucket) AS delta,
       bucket >= $2 AS in_window
FROM series
ORDER BY bucket
