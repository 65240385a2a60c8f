-- apitoken schema, version 6: 429 responses per token and UTC hour.
--
-- Overview's rate_limited_tokens (and TopToken's rate_limited_requests)
-- count the requests answered 429 Too Many Requests. RecordUsage adds the
-- batch's count to this column in the statement that adds its other sums.
-- Adding a column with a constant default rewrites nothing.
--
-- Hours recorded before this migration count 0. They are not backfilled
-- here: that would scan the whole raw usage table (status_code has no
-- index) inside Migrate's transaction, holding the rollup rows locked
-- against every writer. Where the raw rows of those hours are still kept
-- (see Prune) an operator can backfill them once, off-peak:
--
--   UPDATE api_token_usage_token_hourly x SET rate_limited = u.n
--   FROM (SELECT token_id, date_trunc('hour', created_at, 'UTC') AS hour, count(*) AS n
--         FROM api_token_usage WHERE status_code = 429 GROUP BY 1, 2) u
--   WHERE x.token_id = u.token_id AND x.hour = u.hour AND x.rate_limited = 0;

ALTER TABLE api_token_usage_token_hourly
    ADD COLUMN IF NOT EXISTS rate_limited BIGINT NOT NULL DEFAULT 0;
