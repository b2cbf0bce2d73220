CREATE TABLE entries (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    published  INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX entries_org ON entries (org_id, created_at);
