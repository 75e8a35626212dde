-- purpose: rule members_change. For each watched channel and evaluation day: the members of
--          that local day (its last sample so far) against the previous local day with data,
--          if that day is at most 3 days earlier.
-- session tables (registered by crate::alert::rules): watched(channel_id),
--          calendar(day_no, day_start): the local days read, evaluations(day_no, at).
-- parameters:
--   $1  read_start  TIMESTAMP(us, UTC)  local midnight of the first calendar day (inclusive)
--   $2  read_end    TIMESTAMP(us, UTC)  local midnight after the last calendar day (exclusive)
-- output:
--   channel_id  BIGINT  bare Telegram channel id
--   day_no      BIGINT  evaluated local day (days since 1970-01-01)
--   value       DOUBLE  members of the day
--   baseline    DOUBLE  members of the previous day with data
--   change_pct  DOUBLE  (value - baseline) / baseline * 100
WITH days AS (
    SELECT m.channel_id, c.day_no, m.members
    FROM members_daily m
    JOIN watched w ON w.channel_id = m.channel_id
    JOIN calendar c ON c.day_start = m.bucket
    WHERE m.bucket >= $1 AND m.bucket < $2
), series AS (
    SELECT channel_id, day_no, members,
           lag(members) OVER (PARTITION BY channel_id ORDER BY day_no) AS prev_members,
           lag(day_no) OVER (PARTITION BY channel_id ORDER BY day_no) AS prev_day_no
    FROM days
)
SELECT s.channel_id,
       s.day_no,
       CAST(s.members AS DOUBLE) AS value,
       CAST(s.prev_members AS DOUBLE) AS baseline,
       CAST(s.members - s.prev_members AS DOUBLE) * 100.0 / CAST(s.prev_members AS DOUBLE) AS change_pct
FROM series s
JOIN evaluations e ON e.day_no = s.day_no
WHERE s.prev_members > 0 AND s.day_no - s.prev_day_no <= 3
