-- IF NOT EXISTS: a data directory from before module migrations already
-- has these tables in the same file (subscriptions.db), and keeps its rows.
CREATE TABLE IF NOT EXISTS accounts (
	org_id     TEXT PRIMARY KEY,
	plan       TEXT NOT NULL,
	monthly    INTEGER NOT NULL CHECK (monthly >= 0),
	top_up     INTEGER NOT NULL CHECK (top_up >= 0),
	period     TEXT NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS charges (
	request_id TEXT PRIMARY KEY,
	org_id     TEXT NOT NULL,
	key_id     TEXT NOT NULL,
	route      TEXT NOT NULL,
	cost       INTEGER NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS charges_org_time ON charges (org_id, created_at);
CREATE TABLE IF NOT EXISTS top_ups (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	org_id     TEXT NOT NULL,
	tokens     INTEGER NOT NULL,
	note       TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
