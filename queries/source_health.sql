-- purpose: each source's health as collectors report it (`tgpulse health`, the bot's /health):
--          last success, last failure and job totals.
-- runs on: PostgreSQL itself (the catalog): it reads the service table source_status, which is
--          not registered in DataFusion.
-- parameters: none
-- output (one row per source that ever ran, ordered by name):
--   source         TEXT         registered source name (botapi, tgstat, ...)
--   last_success   TIMESTAMPTZ  last job whose samples were accepted; NULL if none yet
--   last_error_at  TIMESTAMPTZ  last failed job; NULL if none yet
--   last_error     TEXT         channel and reason of that failure; NULL if none yet
--   jobs_ok        BIGINT       jobs completed since the source first ran
--   jobs_failed    BIGINT       jobs failed since the source first ran
SELECT source, last_success, last_error_at, last_error, jobs_ok, jobs_failed
FROM source_status
ORDER BY source
