-- The hosts serving now, each writing its heartbeat every few seconds: how
-- many there are decides each host's share of a limit while Redis is down.
CREATE TABLE saas_hosts (
    host    TEXT PRIMARY KEY,
    seen_at BIGINT NOT NULL
);
