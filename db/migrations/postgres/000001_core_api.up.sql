-- Core API schema for PostgreSQL. Times are Unix milliseconds (BIGINT) so that
-- both engines share one Go representation.
CREATE TABLE saas_orgs (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE saas_users (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    operator   BOOLEAN NOT NULL DEFAULT false,
    created_at BIGINT NOT NULL
);

CREATE TABLE saas_members (
    org_id     TEXT NOT NULL REFERENCES saas_orgs (id),
    user_id    TEXT NOT NULL REFERENCES saas_users (id),
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, user_id)
);

CREATE TABLE saas_login_tokens (
    token_hash TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES saas_orgs (id),
    user_id    TEXT NOT NULL REFERENCES saas_users (id),
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE saas_sessions (
    token_hash TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES saas_orgs (id),
    user_id    TEXT NOT NULL REFERENCES saas_users (id),
    csrf_token TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE saas_api_keys (
    -- Byte order, as on SQLite, so id cursors page the same on both engines.
    id                      TEXT COLLATE "C" PRIMARY KEY,
    org_id                  TEXT NOT NULL REFERENCES saas_orgs (id),
    key_hash                TEXT NOT NULL UNIQUE,
    name                    TEXT NOT NULL,
    prefix                  TEXT NOT NULL,
    last4                   TEXT NOT NULL,
    scopes                  TEXT,
    status                  TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'expiring', 'expired', 'revoked')),
    enabled                 BOOLEAN NOT NULL DEFAULT true,
    metadata                TEXT NOT NULL DEFAULT '{}',
    rate_limit              BIGINT,
    rate_window_seconds     BIGINT,
    remaining               BIGINT,
    refill_amount           BIGINT,
    refill_interval_seconds BIGINT,
    last_refill_at          BIGINT,
    quota_epoch             BIGINT NOT NULL DEFAULT 0,
    expires_at              BIGINT,
    last_used_at            BIGINT,
    created_by              TEXT NOT NULL,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    revoked_at              BIGINT,
    rolled_to               TEXT
);
CREATE INDEX saas_api_keys_org_idx ON saas_api_keys (org_id, id);
CREATE INDEX saas_api_keys_status_idx ON saas_api_keys (status, expires_at);

-- The change feed that other processes follow to invalidate their caches.
CREATE TABLE saas_api_key_changes (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key_id     TEXT NOT NULL,
    org_id     TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE saas_api_request_logs (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id TEXT NOT NULL,
    org_id     TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    method     TEXT NOT NULL,
    route      TEXT NOT NULL,
    status     BIGINT NOT NULL,
    latency_us BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
-- One index: every insert pays for each index, and this table is written at
-- the rate of API calls. A key filter is narrowed to the key's org first.
CREATE INDEX saas_api_request_logs_org_idx ON saas_api_request_logs (org_id, id);

-- Daily roll-up, so stats outlive log retention.
CREATE TABLE saas_api_key_stats_daily (
    key_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    day    TEXT NOT NULL,
    route  TEXT NOT NULL,
    status BIGINT NOT NULL,
    count  BIGINT NOT NULL,
    PRIMARY KEY (key_id, day, route, status)
);

CREATE TABLE saas_audit_log (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    key_id     TEXT,
    action     TEXT NOT NULL,
    source_ip  TEXT NOT NULL,
    details    TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE INDEX saas_audit_log_org_idx ON saas_audit_log (org_id, id);

-- Wake hosts that LISTEN as soon as a key change commits.
CREATE FUNCTION saas_api_key_changes_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('indigo_key_changes', NEW.id::text);
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER saas_api_key_changes_notify_trg
    AFTER INSERT ON saas_api_key_changes
    FOR EACH ROW EXECUTE FUNCTION saas_api_key_changes_notify();
