-- apitoken schema, version 2: TokenUsage reads its hourly buckets and
-- endpoints from the primary key of api_token_usage_hourly alone.
--
-- A token's rollup rows are scattered over the table (every token's rows of
-- an hour are written together), so summing its last 7 days fetched about
-- one heap page per row: 10,000 pages, 30 ms, for a busy token at 10 million
-- requests a month. With the columns those reports sum carried in the key's
-- index (INCLUDE), the same queries are index-only scans of a few hundred
-- pages (about 5 ms). The key columns, and so ON CONFLICT (token_id, hour,
-- endpoint, method), are unchanged; the constraint keeps its name.
--
-- Rebuilding the index locks the table while it runs (seconds per million
-- rollup rows). Running this file again rebuilds the same index.

ALTER TABLE api_token_usage_hourly
    DROP CONSTRAINT IF EXISTS api_token_usage_hourly_pkey,
    ADD CONSTRAINT api_token_usage_hourly_pkey
        PRIMARY KEY (token_id, hour, endpoint, method) INCLUDE (requests, successes, sum_response_us);
