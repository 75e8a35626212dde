-- Core relations shared by both storage modes.
-- Identity of a channel is its Telegram channel id (bare, positive, MTProto form);
-- handles and titles change and their history is kept in channel_names.

CREATE TABLE channels (
    channel_id  bigint PRIMARY KEY,
    handle      text,                       -- current handle, lower-case, without '@'; NULL if never seen
    title       text,                       -- current title
    added_at    timestamptz NOT NULL DEFAULT now()
);

-- Every (handle, title) a channel was seen with, and when.
CREATE TABLE channel_names (
    channel_id  bigint NOT NULL REFERENCES channels (channel_id),
    handle      text NOT NULL DEFAULT '',   -- '' when the source gave no handle
    title       text NOT NULL DEFAULT '',
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    PRIMARY KEY (channel_id, handle, title)
);
CREATE INDEX channel_names_handle_idx ON channel_names (handle);

-- One row per post ever sampled.
CREATE TABLE posts (
    channel_id    bigint NOT NULL,
    post_id       bigint NOT NULL,          -- Telegram message id inside the channel
    published_at  timestamptz NOT NULL,
    PRIMARY KEY (channel_id, post_id)
);

-- Raw subscriber-count samples. Hypertable on TimescaleDB (time column observed_at).
CREATE TABLE member_samples (
    channel_id   bigint NOT NULL,
    observed_at  timestamptz NOT NULL,      -- when the count was read
    members      bigint NOT NULL,           -- subscribers at observation time
    source       text NOT NULL,             -- collector or import that produced the sample
    PRIMARY KEY (channel_id, observed_at)
);

-- Raw per-post counter samples. Hypertable on TimescaleDB, partitioned by the post's
-- publication time, so every sample of one post lands in one chunk and views_daily
-- (bucketed by publication day) is a continuous aggregate.
CREATE TABLE post_samples (
    channel_id    bigint NOT NULL,
    post_id       bigint NOT NULL,
    published_at  timestamptz NOT NULL,     -- the post's publication time
    observed_at   timestamptz NOT NULL,     -- when the counters were read
    views         bigint,                   -- views at observation time; NULL if not reported
    forwards      bigint,
    replies       bigint,
    reactions     bigint,                   -- sum over all reaction types
    source        text NOT NULL,
    PRIMARY KEY (channel_id, post_id, published_at, observed_at)
);
