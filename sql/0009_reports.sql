-- Scheduled reports (weekly and monthly digests): who wants them, and one queue row per
-- (kind, period, recipient) so that a report is generated once and sent at most once.

CREATE TABLE bot_report_subscribers (
    user_id     bigint PRIMARY KEY,         -- Telegram user id (an admin or a viewer)
    reports     boolean NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- state: queued (generated, waiting to be sent or retried) -> sending -> sent, or given_up
-- after 24 h of failed sends. A row left in sending for 10 minutes (the sender died) is taken
-- up again; parts_sent says where to resume, so no part is sent twice.
CREATE TABLE reports_queue (
    kind            text NOT NULL,          -- weekly | monthly
    period_start    date NOT NULL,          -- first local day of the period
    period_end      date NOT NULL,          -- last local day of the period
    recipient       bigint NOT NULL,        -- Telegram user id
    state           text NOT NULL DEFAULT 'queued',
    body            text NOT NULL,          -- the report, Telegram HTML
    chart           bytea,                  -- indexed growth of the 10 largest channels (PNG)
    attempts        integer NOT NULL DEFAULT 0,
    parts_sent      integer NOT NULL DEFAULT 0, -- messages (then the chart) already sent
    claimed_at      timestamptz,                -- when a sender took it
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    created_at      timestamptz NOT NULL,   -- when it was generated (service clock)
    sent_at         timestamptz,
    PRIMARY KEY (kind, period_start, recipient)
);
CREATE INDEX reports_queue_due ON reports_queue (next_attempt_at) WHERE state = 'queued';
