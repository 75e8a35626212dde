-- Post analytics: the forward/mention network between channels, and post-count samples.

-- Which channels a post forwards, mentions or links to. One row per (post, kind, other
-- channel). `channel_id, post_id, published_at` is the post in tgpulse's channel; the
-- source_* columns name the other channel (and post) as far as the source told it:
--   forward  the post is a forward of source_channel_id's post source_post_id;
--   mention  the post's text mentions @source_name (source_channel_id when known);
--   link     the post links to t.me/source_name[/source_post_id].
-- Filled from the posts file's forward columns, MTProto's fwd_from and entities, and
-- TGStat's mentions and forwards methods. A plain table on both storage paths: it is small
-- next to the samples and is read by channel (both directions), not by time bucket.
CREATE TABLE mentions (
    channel_id         bigint NOT NULL,
    post_id            bigint NOT NULL,
    published_at       timestamptz NOT NULL,
    kind               text NOT NULL CHECK (kind IN ('forward', 'mention', 'link')),
    source_channel_id  bigint,              -- bare channel id of the other channel, when known
    source_post_id     bigint,              -- its message id, when known
    source_name        text,                -- its handle (lower-case, no '@') or title, when known
    source             text NOT NULL,       -- collector or import that recorded it
    CHECK (source_channel_id IS NOT NULL OR source_name IS NOT NULL)
);
-- Re-reading a post records nothing twice: the other channel is keyed by its id when known
-- (a forward read once with the peer's name and once without is one forward), else by name.
CREATE UNIQUE INDEX mentions_key ON mentions
    (channel_id, post_id, kind, coalesce(source_channel_id::text, source_name));
-- Both directions are read by channel: `channel_id` leads the unique index (outgoing); these
-- serve incoming, by id and by name.
CREATE INDEX mentions_source_idx ON mentions (source_channel_id, published_at);
CREATE INDEX mentions_source_name_idx ON mentions (source_name, published_at);

-- Posts the channel had published when the members were read (the animals file's
-- `post_count`; NULL where the source gives none). Posting frequency of channels without
-- per-post samples comes from it. Added without a default (see 0011).
ALTER TABLE member_samples ADD COLUMN post_count bigint;
