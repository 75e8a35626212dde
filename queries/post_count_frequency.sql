-- purpose: posting frequency from the channel's own post counter read with its members
--          (member_samples.post_count, e.g. the animals file), for channels whose posts
--          tgpulse does not sample: the counter's first and last reading in the window.
-- parameters:
--   $1  channel_id    BIGINT               bare Telegram channel id
--   $2  window_start  TIMESTAMP(us, UTC)   local midnight starting the first day (inclusive)
--   $3  window_end    TIMESTAMP(us, UTC)   local midnight after the last day (exclusive)
-- output (one row; NULLs without a post_count reading in the window):
--   first_count  BIGINT              post_count at the first reading
--   last_count   BIGINT              post_count at the last reading
--   first_at     TIMESTAMP(us, UTC)  time of the first reading
--   last_at      TIMESTAMP(us, UTC)  time of the last reading
SELECT first_value(post_count ORDER BY observed_at) AS first_count,
       last_value(post_count ORDER BY observed_at) AS last_count,
       min(observed_at) AS first_at,
       max(observed_at) AS last_at
FROM member_samples
WHERE channel_id = $1 AND observed_at >= $2 AND observed_at < $3 AND post_count IS NOT NULL
