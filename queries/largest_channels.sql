-- purpose: channels ranked by subscribers on their last day with data (largest first).
-- parameters: none
-- output:
--   channel_id  BIGINT              bare Telegram channel id
--   members     BIGINT              subscribers on the channel's last day with data
--   bucket      TIMESTAMP(us, UTC)  local midnight of that day
SELECT channel_id, members, bucket
FROM (
    SELECT channel_id, members, bucket,
           row_number() OVER (PARTITION BY channel_id ORDER BY bucket DESC) AS rn
    FROM members_daily
) AS ranked
WHERE rn = 1
ORDER BY members DESC, channel_id
