-- The login role the host made for each module on PostgreSQL (one schema
-- and one role per module), so that every host hands a module the same
-- credentials. Unused on SQLite, where a module gets a file of its own;
-- the table exists there too so that both engines share one history.
CREATE TABLE saas_module_roles (
    module     TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    password   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
