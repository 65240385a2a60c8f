-- apitoken schema, version 5: token rotation and the audit log.
--
-- A rotation moves token_hash to previous_hash and stores the new hash; the
-- previous hash keeps finding the token (GetTokenByHash) with an expiry of
-- previous_expires_at. Its partial unique index serves that lookup.
--
-- The audit log has no foreign key to api_tokens: the entries of a deleted
-- token stay. Each entry is written in the same transaction as its change.

ALTER TABLE api_tokens
    ADD COLUMN previous_hash       BYTEA,
    ADD COLUMN previous_expires_at TIMESTAMPTZ,
    ADD CONSTRAINT api_tokens_previous_hash_len CHECK (previous_hash IS NULL OR octet_length(previous_hash) = 32);

CREATE UNIQUE INDEX api_tokens_previous_hash_key ON api_tokens (previous_hash) WHERE previous_hash IS NOT NULL;

CREATE TABLE api_token_audit (
    id         BIGSERIAL PRIMARY KEY,
    token_id   BIGINT NOT NULL,
    token_name TEXT NOT NULL,
    action     TEXT NOT NULL,
    actor      TEXT NOT NULL DEFAULT '',
    changes    JSON NOT NULL DEFAULT '[]', -- JSON, not JSONB: kept as written
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT api_token_audit_action_check
        CHECK (action IN ('create', 'update', 'enable', 'disable', 'rotate', 'delete'))
);

-- GET /{id}/audit: one token's entries, newest first.
CREATE INDEX api_token_audit_token_idx ON api_token_audit (token_id, id DESC);
