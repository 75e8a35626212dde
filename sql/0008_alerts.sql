-- Alerts: per-channel rule settings, the events the rules open and resolve, and who is told.
-- The rules themselves are DataFusion queries (queries/alert_*.sql); the formulas are in the
-- README's "Metrics" section.

-- Per-channel overrides of the configured defaults. No row: the defaults apply.
CREATE TABLE alert_rules (
    channel_id   bigint NOT NULL,           -- bare Telegram channel id
    rule         text NOT NULL,             -- members_change | views_drop | no_posts | unusual_change
    threshold    double precision,          -- the rule's threshold (%, k or Z); NULL = the default
    enabled      boolean NOT NULL DEFAULT true,
    updated_by   bigint,                    -- Telegram user id; NULL from the CLI
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, rule)
);

-- A muted channel's events are still recorded, but nobody is notified until muted_until.
CREATE TABLE alert_mutes (
    channel_id   bigint PRIMARY KEY,
    muted_until  timestamptz NOT NULL,
    muted_by     bigint
);

-- One row per event: opened once for a (subject, rule), resolved after the condition has been
-- clear for 2 evaluations. The partial unique index is what makes a restart or a second
-- `serve` process unable to open (and notify) the same event twice.
CREATE TABLE alert_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject      text NOT NULL,             -- the channel id as text, or source:<name> / writer
    channel_id   bigint,                    -- NULL for source_stale
    rule         text NOT NULL,
    day          date NOT NULL,             -- local day of the observation that opened it
    opened_at    timestamptz NOT NULL,      -- evaluation instant that opened it
    value        double precision,          -- observed value (unit depends on the rule)
    baseline     double precision,          -- what the value was compared with
    change_pct   double precision,          -- (value - baseline) / baseline * 100, where defined
    threshold    double precision NOT NULL, -- threshold in force when it opened
    detail       text NOT NULL DEFAULT '',  -- one line for people
    clear_count  integer NOT NULL DEFAULT 0,-- consecutive evaluations with the condition clear
    last_eval_at timestamptz NOT NULL,
    resolved_at  timestamptz
);
CREATE UNIQUE INDEX alert_events_open ON alert_events (subject, rule) WHERE resolved_at IS NULL;
CREATE INDEX alert_events_resolved ON alert_events (resolved_at DESC) WHERE resolved_at IS NOT NULL;

-- When the rules were last evaluated, by any process. An evaluation that comes sooner than
-- half an interval after the last one (a second `serve`) is skipped, so that each evaluation
-- counts once towards "clear for 2 evaluations".
CREATE TABLE alert_runs (
    scope    text PRIMARY KEY,              -- 'evaluation'
    last_at  timestamptz NOT NULL
);

-- Users' own choice about alert notifications: admins get them unless they turned them off,
-- viewers only if they turned them on (/alerts on|off).
CREATE TABLE bot_alert_subscribers (
    user_id     bigint PRIMARY KEY,
    alerts      boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per (event, recipient), written in the transaction that opens the event, so each
-- recipient is told at most once: pending -> sending -> sent (or failed, or muted).
CREATE TABLE bot_alert_deliveries (
    event_id    bigint NOT NULL REFERENCES alert_events (id),
    user_id     bigint NOT NULL,
    state       text NOT NULL DEFAULT 'pending',
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    PRIMARY KEY (event_id, user_id)
);
CREATE INDEX bot_alert_deliveries_pending ON bot_alert_deliveries (user_id) WHERE state = 'pending';
