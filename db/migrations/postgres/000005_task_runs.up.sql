-- The last run of each periodic task (the core's and the modules'), shared
-- by every host: a host runs a task only when it claims the interval here,
-- so each interval's run happens on one host.
CREATE TABLE saas_task_runs (
    task        TEXT PRIMARY KEY,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL DEFAULT 0,
    duration_ms BIGINT NOT NULL DEFAULT 0,
    last_error  TEXT NOT NULL DEFAULT '',
    host        TEXT NOT NULL DEFAULT '',
    runs        BIGINT NOT NULL DEFAULT 0,
    failures    BIGINT NOT NULL DEFAULT 0
);
