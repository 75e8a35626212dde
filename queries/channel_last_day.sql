-- purpose: the last local day with any data for a channel (members or posts), used as the
--          default end of a stats window, and the time of its newest sample. PostgreSQL runs
--          it itself (the maximum comes from the primary key's index), not DataFusion.
-- parameters:
--   $1  channel_id  BIGINT  bare Telegram channel id
-- output (one row; NULLs if the channel has no data):
--   last_bucket       TIMESTAMP(us, UTC)  local midnight of the last day with data
--   last_observed_at  TIMESTAMP(us, UTC)  newest observation time among those samples
SELECT max(bucket) AS last_bucket,
       max(last_observed_at) AS last_observed_at
FROM (
    SELECT bucket, last_observed_at FROM members_daily WHERE channel_id = $1
    UNION ALL
    SELECT bucket, last_observed_at FROM views_daily WHERE channel_id = $1
) AS days
