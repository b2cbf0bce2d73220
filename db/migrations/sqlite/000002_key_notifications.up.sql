-- Key notifications: a transactional outbox of key events, written in the
-- same transaction as the key change, and one delivery row per event and
-- notifier that the dispatcher retries until it is delivered or failed.
CREATE TABLE saas_key_events (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    type       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    -- Set for events that must be written at most once (key.expiring_soon:
    -- one per key and expires_at value); NULL never conflicts.
    dedupe_key TEXT UNIQUE,
    created_at INTEGER NOT NULL
);
-- Fan-out scans the recent events.
CREATE INDEX saas_key_events_created_idx ON saas_key_events (created_at);
CREATE INDEX saas_key_events_key_idx ON saas_key_events (key_id, created_at);

CREATE TABLE saas_event_deliveries (
    event_id         TEXT NOT NULL REFERENCES saas_key_events (id) ON DELETE CASCADE,
    notifier         TEXT NOT NULL,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    last_status_code INTEGER,
    delivered_at     INTEGER,
    PRIMARY KEY (event_id, notifier)
);
-- Only pending rows are claimed; delivered and failed rows stay out of it.
CREATE INDEX saas_event_deliveries_due_idx ON saas_event_deliveries (notifier, next_attempt_at) WHERE status = 'pending';

-- API calls that could not be metered when they were made, kept for the
-- metering module to reconcile later. request_id makes a retried insert a
-- no-op.
CREATE TABLE saas_unmetered_calls (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id        TEXT NOT NULL,
    key_id        TEXT NOT NULL,
    route         TEXT NOT NULL,
    cost          INTEGER NOT NULL,
    request_id    TEXT NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL,
    reconciled_at INTEGER
);
CREATE INDEX saas_unmetered_calls_open_idx ON saas_unmetered_calls (id) WHERE reconciled_at IS NULL;
