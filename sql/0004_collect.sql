-- Live collection: which channels are watched, and how each source is doing.

-- Channels the collectors read. Collectors are stateless: this table is all they need.
CREATE TABLE watched_channels (
    channel_id  bigint PRIMARY KEY REFERENCES channels (channel_id),
    handle      text,                       -- handle used to address the channel (lower-case, no '@')
    added_at    timestamptz NOT NULL DEFAULT now(),
    added_by    bigint                      -- Telegram user id of the admin who added it; NULL from the CLI
);

-- One row per source, updated by running collectors every 30 s and at the end of a run.
CREATE TABLE source_status (
    source           text PRIMARY KEY,      -- registered source name (botapi, tgstat, ...)
    last_success     timestamptz,           -- last job whose samples were accepted
    last_error_at    timestamptz,
    last_error       text,                  -- channel and reason of the last failure
    jobs_ok          bigint NOT NULL DEFAULT 0,   -- totals since the row was created
    jobs_failed      bigint NOT NULL DEFAULT 0,
    samples          bigint NOT NULL DEFAULT 0,   -- samples accepted from this source
    updated_at       timestamptz NOT NULL DEFAULT now()
);
