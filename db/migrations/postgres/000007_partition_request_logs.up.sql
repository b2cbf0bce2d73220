-- The request log, partitioned by day on created_at (milliseconds), so that
-- retention drops whole days instead of deleting rows. The primary key
-- leads with id, so that the admin query's ORDER BY id DESC still reads
-- each partition's index backwards; the partitions are made ahead of time
-- by the log-partitions task, and a default partition takes what falls
-- outside them.
ALTER TABLE saas_api_request_logs RENAME TO saas_api_request_logs_unpartitioned;
ALTER INDEX saas_api_request_logs_org_idx RENAME TO saas_api_request_logs_unpartitioned_org_idx;

CREATE TABLE saas_api_request_logs (
    id         BIGINT GENERATED ALWAYS AS IDENTITY,
    request_id TEXT NOT NULL,
    org_id     TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    method     TEXT NOT NULL,
    route      TEXT NOT NULL,
    status     BIGINT NOT NULL,
    latency_us BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX saas_api_request_logs_org_idx ON saas_api_request_logs (org_id, id);
CREATE TABLE saas_api_request_logs_default PARTITION OF saas_api_request_logs DEFAULT;

-- One partition per day that holds rows, and for the next week.
DO $$
DECLARE
    day_ms CONSTANT BIGINT := 86400000;
    first  BIGINT;
    d      BIGINT;
    last   BIGINT := (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT / 86400000 * 86400000 + 7 * 86400000;
BEGIN
    SELECT COALESCE(MIN(created_at), (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT) / day_ms * day_ms
      INTO first FROM saas_api_request_logs_unpartitioned;
    d := first;
    WHILE d <= last LOOP
        EXECUTE format('CREATE TABLE saas_api_request_logs_p%s PARTITION OF saas_api_request_logs FOR VALUES FROM (%s) TO (%s)',
                       to_char(to_timestamp(d / 1000) AT TIME ZONE 'UTC', 'YYYYMMDD'), d, d + day_ms);
        d := d + day_ms;
    END LOOP;
END $$;

INSERT INTO saas_api_request_logs (id, request_id, org_id, key_id, method, route, status, latency_us, created_at)
OVERRIDING SYSTEM VALUE
SELECT id, request_id, org_id, key_id, method, route, status, latency_us, created_at FROM saas_api_request_logs_unpartitioned;

-- New ids continue after the ones carried over (pages follow id).
DO $$
DECLARE next_id BIGINT;
BEGIN
    SELECT COALESCE(MAX(id), 0) + 1 INTO next_id FROM saas_api_request_logs;
    EXECUTE format('ALTER TABLE saas_api_request_logs ALTER COLUMN id RESTART WITH %s', next_id);
END $$;

DROP TABLE saas_api_request_logs_unpartitioned;
