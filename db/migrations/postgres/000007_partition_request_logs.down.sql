CREATE TABLE saas_api_request_logs_flat (
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
INSERT INTO saas_api_request_logs_flat (id, request_id, org_id, key_id, method, route, status, latency_us, created_at)
OVERRIDING SYSTEM VALUE
SELECT id, request_id, org_id, key_id, method, route, status, latency_us, created_at FROM saas_api_request_logs;
DO $$
DECLARE next_id BIGINT;
BEGIN
    SELECT COALESCE(MAX(id), 0) + 1 INTO next_id FROM saas_api_request_logs_flat;
    EXECUTE format('ALTER TABLE saas_api_request_logs_flat ALTER COLUMN id RESTART WITH %s', next_id);
END $$;
DROP TABLE saas_api_request_logs;
ALTER TABLE saas_api_request_logs_flat RENAME TO saas_api_request_logs;
CREATE INDEX saas_api_request_logs_org_idx ON saas_api_request_logs (org_id, id);
-- The names version 6 had: the rename above keeps the _flat ones.
ALTER TABLE saas_api_request_logs RENAME CONSTRAINT saas_api_request_logs_flat_pkey TO saas_api_request_logs_pkey;
ALTER SEQUENCE saas_api_request_logs_flat_id_seq RENAME TO saas_api_request_logs_id_seq;
