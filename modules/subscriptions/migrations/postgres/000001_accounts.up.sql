CREATE TABLE accounts (
	org_id     TEXT PRIMARY KEY,
	plan       TEXT NOT NULL,
	monthly    BIGINT NOT NULL CHECK (monthly >= 0),
	top_up     BIGINT NOT NULL CHECK (top_up >= 0),
	period     TEXT NOT NULL,
	updated_at BIGINT NOT NULL
);
CREATE TABLE charges (
	request_id TEXT PRIMARY KEY,
	org_id     TEXT NOT NULL,
	key_id     TEXT NOT NULL,
	route      TEXT NOT NULL,
	cost       BIGINT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX charges_org_time ON charges (org_id, created_at);
CREATE TABLE top_ups (
	id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	org_id     TEXT NOT NULL,
	tokens     BIGINT NOT NULL,
	note       TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
