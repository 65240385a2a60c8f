-- apitoken schema, version 3: rollups for the reports over all tokens.
--
-- Overview sums every rollup row of its range: at 10 million requests a
-- month over 50 tokens and 60 endpoints that is 430,000 rows for 7 days
-- (600 ms), whatever the indexes. These two tables hold the same sums at
-- the keys Overview groups by, so it reads about 8,000 + 10,000 rows:
--
--   api_token_usage_token_hourly     per token and UTC hour: Overview's
--                                    totals and top tokens, TokenUsage's
--                                    hourly buckets, TokenStats;
--   api_token_usage_endpoint_hourly  per UTC hour, endpoint and method, all
--                                    tokens together: Overview's top
--                                    endpoints.
--
-- RecordUsage adds to both in the statement that adds to
-- api_token_usage_hourly. Deleting a token removes its rows of the first by
-- ON DELETE CASCADE; its share of the second, which has no token, is
-- subtracted by a trigger on the cascaded deletion from
-- api_token_usage_hourly (the statement's deleted rows as a transition
-- table), and TRUNCATE empties it too. Existing rollups are copied in.

CREATE TABLE IF NOT EXISTS api_token_usage_token_hourly (
    token_id           BIGINT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    hour               TIMESTAMPTZ NOT NULL,
    requests           BIGINT NOT NULL DEFAULT 0,
    successes          BIGINT NOT NULL DEFAULT 0,
    failures           BIGINT NOT NULL DEFAULT 0,
    sum_response_us    BIGINT NOT NULL DEFAULT 0,
    max_response_us    BIGINT NOT NULL DEFAULT 0,
    sum_request_bytes  BIGINT NOT NULL DEFAULT 0,
    sum_response_bytes BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (token_id, hour)
);
-- Overview: every token's rows of a range of hours.
CREATE INDEX IF NOT EXISTS api_token_usage_token_hourly_hour_idx ON api_token_usage_token_hourly (hour);

CREATE TABLE IF NOT EXISTS api_token_usage_endpoint_hourly (
    hour               TIMESTAMPTZ NOT NULL,
    endpoint           TEXT NOT NULL,
    method             TEXT NOT NULL,
    requests           BIGINT NOT NULL DEFAULT 0,
    successes          BIGINT NOT NULL DEFAULT 0,
    failures           BIGINT NOT NULL DEFAULT 0,
    sum_response_us    BIGINT NOT NULL DEFAULT 0,
    sum_request_bytes  BIGINT NOT NULL DEFAULT 0,
    sum_response_bytes BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, endpoint, method)
);

INSERT INTO api_token_usage_token_hourly AS x (token_id, hour, requests, successes, failures,
        sum_response_us, max_response_us, sum_request_bytes, sum_response_bytes)
    SELECT token_id, hour, sum(requests), sum(successes), sum(failures),
        sum(sum_response_us), max(max_response_us), sum(sum_request_bytes), sum(sum_response_bytes)
    FROM api_token_usage_hourly GROUP BY token_id, hour
    ON CONFLICT (token_id, hour) DO NOTHING;

INSERT INTO api_token_usage_endpoint_hourly AS x (hour, endpoint, method, requests, successes, failures,
        sum_response_us, sum_request_bytes, sum_response_bytes)
    SELECT hour, endpoint, method, sum(requests), sum(successes), sum(failures),
        sum(sum_response_us), sum(sum_request_bytes), sum(sum_response_bytes)
    FROM api_token_usage_hourly GROUP BY hour, endpoint, method
    ON CONFLICT (hour, endpoint, method) DO NOTHING;

-- The functions run with the search_path Migrate set (the schema), so the
-- unqualified names resolve to this schema's tables whoever deletes.
CREATE OR REPLACE FUNCTION apitoken_endpoint_rollup_forget() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    WITH g AS (
        SELECT hour, endpoint, method, sum(requests) AS requests, sum(successes) AS successes,
            sum(failures) AS failures, sum(sum_response_us) AS sum_response_us,
            sum(sum_request_bytes) AS sum_request_bytes, sum(sum_response_bytes) AS sum_response_bytes
        FROM gone GROUP BY hour, endpoint, method
    )
    UPDATE api_token_usage_endpoint_hourly AS e SET
        requests = e.requests - g.requests,
        successes = e.successes - g.successes,
        failures = e.failures - g.failures,
        sum_response_us = e.sum_response_us - g.sum_response_us,
        sum_request_bytes = e.sum_request_bytes - g.sum_request_bytes,
        sum_response_bytes = e.sum_response_bytes - g.sum_response_bytes
    FROM g WHERE e.hour = g.hour AND e.endpoint = g.endpoint AND e.method = g.method;
    DELETE FROM api_token_usage_endpoint_hourly AS e USING (SELECT DISTINCT hour, endpoint, method FROM gone) AS g
    WHERE e.hour = g.hour AND e.endpoint = g.endpoint AND e.method = g.method AND e.requests <= 0;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION apitoken_endpoint_rollup_truncate() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    TRUNCATE api_token_usage_endpoint_hourly;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS api_token_usage_hourly_forget ON api_token_usage_hourly;
CREATE TRIGGER api_token_usage_hourly_forget
    AFTER DELETE ON api_token_usage_hourly
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT
    EXECUTE FUNCTION apitoken_endpoint_rollup_forget();

DROP TRIGGER IF EXISTS api_token_usage_hourly_truncate ON api_token_usage_hourly;
CREATE TRIGGER api_token_usage_hourly_truncate
    AFTER TRUNCATE ON api_token_usage_hourly
    FOR EACH STATEMENT
    EXECUTE FUNCTION apitoken_endpoint_rollup_truncate();
