-- name: InsertTaskRun :execrows
-- A task's first run ever: one row back (1) means this host has it.
INSERT INTO saas_task_runs (task, started_at, host) VALUES (sqlc.arg(task), sqlc.arg(now), sqlc.arg(host))
ON CONFLICT (task) DO NOTHING;

-- name: ClaimTaskRun :execrows
-- Claims the task's next run for this host when the last one started no
-- later than due_by (now less the interval): 0 rows means another host has
-- it. The row lock makes one host win.
UPDATE saas_task_runs SET started_at = sqlc.arg(now), host = sqlc.arg(host)
WHERE task = sqlc.arg(task) AND started_at <= sqlc.arg(due_by);

-- name: FinishTaskRun :exec
UPDATE saas_task_runs
SET finished_at = sqlc.arg(finished_at), duration_ms = sqlc.arg(duration_ms), last_error = sqlc.arg(last_error),
    runs = runs + 1, failures = failures + CASE WHEN CAST(sqlc.arg(last_error) AS TEXT) = '' THEN 0 ELSE 1 END
WHERE task = sqlc.arg(task);

-- name: ListTaskRuns :many
SELECT * FROM saas_task_runs ORDER BY task;
