-- IF NOT EXISTS: a data directory from before module migrations already
-- has this table in the same file, and keeps its rows.
CREATE TABLE IF NOT EXISTS projects (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS projects_org ON projects (org_id, created_at);
