-- apitoken schema, version 1: tokens, raw usage, hourly rollups and change
-- notifications. See store/postgres/README.md for why each column differs
-- from the spec.
--
-- Migrate runs this file inside its transaction, holding the migration lock,
-- with search_path set to the target schema (when WithSchema is given), so
-- the names below are unqualified. {{channel}} is replaced by the quoted
-- literal of the NOTIFY channel.

CREATE TABLE api_tokens (
    id                BIGSERIAL PRIMARY KEY,
    name              VARCHAR(255) NOT NULL,
    token_hash        BYTEA NOT NULL,
    start             TEXT NOT NULL DEFAULT '',
    description       TEXT NOT NULL DEFAULT '',
    user_id           TEXT,
    active            BOOLEAN NOT NULL DEFAULT true,
    rate_limit        INTEGER NOT NULL DEFAULT 100,
    allowed_endpoints TEXT[],
    scopes            TEXT[],
    metadata          JSONB,
    expires_at        TIMESTAMPTZ,
    last_used_at      TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT api_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT api_tokens_token_hash_len CHECK (octet_length(token_hash) = 32),
    CONSTRAINT api_tokens_rate_limit_check CHECK (rate_limit >= 0)
);

-- ListOptions.UserID.
CREATE INDEX api_tokens_user_id_idx ON api_tokens (user_id) WHERE user_id IS NOT NULL;

-- One row per request, written with COPY. Only RecentRequests reads it;
-- Prune deletes old rows.
CREATE TABLE api_token_usage (
    id               BIGSERIAL PRIMARY KEY,
    token_id         BIGINT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    endpoint         TEXT NOT NULL,
    route            TEXT NOT NULL DEFAULT '',
    method           TEXT NOT NULL,
    status_code      INTEGER NOT NULL,
    response_time_us BIGINT NOT NULL,
    request_size     BIGINT NOT NULL DEFAULT 0,
    response_size    BIGINT NOT NULL DEFAULT 0,
    ip_address       INET,
    user_agent       TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- RecentRequests (newest first per token) and the ON DELETE CASCADE lookup.
CREATE INDEX api_token_usage_token_created_idx ON api_token_usage (token_id, created_at DESC, id DESC);
-- Prune.
CREATE INDEX api_token_usage_created_idx ON api_token_usage (created_at);

-- Hourly rollups per token, UTC hour, endpoint (route, else path) and method.
-- Every report except RecentRequests reads only this table. The primary key
-- also serves lookups by (token_id) and (token_id, hour).
CREATE TABLE api_token_usage_hourly (
    token_id           BIGINT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    hour               TIMESTAMPTZ NOT NULL,
    endpoint           TEXT NOT NULL,
    method             TEXT NOT NULL,
    requests           BIGINT NOT NULL DEFAULT 0,
    successes          BIGINT NOT NULL DEFAULT 0,
    failures           BIGINT NOT NULL DEFAULT 0,
    sum_response_us    BIGINT NOT NULL DEFAULT 0,
    max_response_us    BIGINT NOT NULL DEFAULT 0,
    sum_request_bytes  BIGINT NOT NULL DEFAULT 0,
    sum_response_bytes BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (token_id, hour, endpoint, method)
);

-- Overview (all tokens in a range of hours).
CREATE INDEX api_token_usage_hourly_hour_idx ON api_token_usage_hourly (hour);

-- Change notifications: every committed change to a token, except one that
-- only moves last_used_at, sends NOTIFY with the token id as payload ("*"
-- after TRUNCATE), so other replicas drop it from their caches. The channel is
-- the trigger's argument.
CREATE FUNCTION apitoken_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_LEVEL = 'STATEMENT' THEN
        PERFORM pg_notify(TG_ARGV[0], '*');
        RETURN NULL;
    END IF;
    PERFORM pg_notify(TG_ARGV[0], OLD.id::text);
    IF TG_OP = 'UPDATE' AND NEW.id <> OLD.id THEN
        PERFORM pg_notify(TG_ARGV[0], NEW.id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER api_tokens_notify_update
    AFTER UPDATE ON api_tokens
    FOR EACH ROW
    WHEN ((to_jsonb(OLD) - 'last_used_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_used_at'))
    EXECUTE FUNCTION apitoken_notify_change({{channel}});

CREATE TRIGGER api_tokens_notify_delete
    AFTER DELETE ON api_tokens
    FOR EACH ROW
    EXECUTE FUNCTION apitoken_notify_change({{channel}});

CREATE TRIGGER api_tokens_notify_truncate
    AFTER TRUNCATE ON api_tokens
    FOR EACH STATEMENT
    EXECUTE FUNCTION apitoken_notify_change({{channel}});
