-- purpose: how much was collected lately (`tgpulse health`, the bot's /health): samples
--          observed in the last hour and the last 24 hours before `now`, and the number of
--          watched channels. Post samples count among posts published in the 8 days before
--          `now` (collectors re-read posts for 7 days), so the scan stays on recent chunks.
-- runs on: PostgreSQL itself (the catalog): it reads the service table watched_channels, which
--          is not registered in DataFusion.
-- parameters:
--   $1  now  TIMESTAMPTZ  the instant the windows end at (inclusive), from the service clock
-- output (one row):
--   samples_last_hour  BIGINT  member + post samples observed in (now - 1 hour, now]
--   samples_last_day   BIGINT  member + post samples observed in (now - 24 hours, now]
--   watched            BIGINT  channels watched
SELECT
    (SELECT count(*) FROM member_samples
     WHERE observed_at > $1::timestamptz - interval '1 hour' AND observed_at <= $1::timestamptz)
  + (SELECT count(*) FROM post_samples
     WHERE published_at > $1::timestamptz - interval '8 days'
       AND observed_at > $1::timestamptz - interval '1 hour' AND observed_at <= $1::timestamptz)
    AS samples_last_hour,
    (SELECT count(*) FROM member_samples
     WHERE observed_at > $1::timestamptz - interval '1 day' AND observed_at <= $1::timestamptz)
  + (SELECT count(*) FROM post_samples
     WHERE published_at > $1::timestamptz - interval '8 days'
       AND observed_at > $1::timestamptz - interval '1 day' AND observed_at <= $1::timestamptz)
    AS samples_last_day,
    (SELECT count(*) FROM watched_channels) AS watched
