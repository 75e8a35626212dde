-- When each raw sample was stored (or last replaced), so that an incremental export takes
-- the rows stored since its last run, late samples included, not only the newest
-- observation times. The column is added without a default and the default set after: on
-- TimescaleDB a hypertable with compression enabled refuses ADD COLUMN with a non-constant
-- default, but takes SET DEFAULT. Rows stored before this migration keep NULL (their storing
-- time was never recorded); the first incremental export takes them. BRIN indexes: stored_at
-- grows with the order rows are written in, so each index is a few pages and costs writers
-- almost nothing.
ALTER TABLE member_samples ADD COLUMN stored_at timestamptz;
ALTER TABLE member_samples ALTER COLUMN stored_at SET DEFAULT now();
ALTER TABLE post_samples ADD COLUMN stored_at timestamptz;
ALTER TABLE post_samples ALTER COLUMN stored_at SET DEFAULT now();
CREATE INDEX member_samples_stored_at_brin ON member_samples USING brin (stored_at);
CREATE INDEX post_samples_stored_at_brin ON post_samples USING brin (stored_at);

-- The watermark of each named incremental export (`tgpulse export --since-last NAME`):
-- every row of `relation` stored before `stored_until` has been exported by one of its
-- `runs`. Advanced only after a run's files are complete.
CREATE TABLE export_watermarks (
    name          text PRIMARY KEY,
    relation      text NOT NULL,
    stored_until  timestamptz NOT NULL,     -- exclusive upper bound of stored_at exported
    runs          bigint NOT NULL,          -- completed runs that exported rows
    last_rows     bigint NOT NULL,          -- rows of the last completed run
    updated_at    timestamptz NOT NULL DEFAULT now()
);
