-- IF NOT EXISTS: a data directory from before module migrations already
-- has this table in the same file (cms.db), and keeps its rows.
CREATE TABLE IF NOT EXISTS entries (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    published  INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
