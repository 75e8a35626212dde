-- purpose: the last local day on which a channel published a post tgpulse sampled (the
--          default end of the post analytics' windows).
-- parameters:
--   $1  channel_id  BIGINT  bare Telegram channel id
-- output (one row):
--   last_bucket  TIMESTAMP(us, UTC)  local midnight of that day (NULL: no post samples)
SELECT max(bucket) AS last_bucket
FROM views_daily
WHERE channel_id = $1
