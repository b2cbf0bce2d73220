-- name: InsertRequestLog :exec
INSERT INTO saas_api_request_logs (request_id, org_id, key_id, method, route, status, latency_us, created_at)
VALUES (sqlc.arg(request_id), sqlc.arg(org_id), sqlc.arg(key_id), sqlc.arg(method), sqlc.arg(route),
        sqlc.arg(status), sqlc.arg(latency_us), sqlc.arg(created_at));

-- name: AddKeyStat :exec
INSERT INTO saas_api_key_stats_daily (key_id, org_id, day, route, status, count)
VALUES (sqlc.arg(key_id), sqlc.arg(org_id), sqlc.arg(day), sqlc.arg(route), sqlc.arg(status), sqlc.arg(count))
ON CONFLICT (key_id, day, route, status) DO UPDATE SET count = saas_api_key_stats_daily.count + excluded.count;

-- name: PruneRequestLogs :execrows
-- Logs are appended in time order, so everything below the first id at or
-- after the cut-off is older. This walks the primary key instead of keeping
-- a time index that every insert would pay for.
DELETE FROM saas_api_request_logs
WHERE id < COALESCE(
    (SELECT l.id FROM saas_api_request_logs l WHERE l.created_at >= sqlc.arg(before) ORDER BY l.id LIMIT 1),
    (SELECT COALESCE(MAX(m.id), 0) + 1 FROM saas_api_request_logs m));

-- name: AdminListLogs :many
SELECT * FROM saas_api_request_logs
WHERE (CAST(sqlc.arg(org_id) AS TEXT) = '' OR org_id = CAST(sqlc.arg(org_id) AS TEXT))
  AND (CAST(sqlc.arg(key_id) AS TEXT) = '' OR key_id = CAST(sqlc.arg(key_id) AS TEXT))
  AND (CAST(sqlc.arg(route) AS TEXT) = '' OR route = CAST(sqlc.arg(route) AS TEXT))
  AND (CAST(sqlc.arg(caller) AS TEXT) = ''
       OR (CAST(sqlc.arg(caller) AS TEXT) = 'key' AND key_id <> '')
       OR (CAST(sqlc.arg(caller) AS TEXT) = 'session' AND key_id = ''))
  AND (CAST(sqlc.arg(status) AS BIGINT) = 0 OR status = CAST(sqlc.arg(status) AS BIGINT))
  AND (CAST(sqlc.arg(since) AS BIGINT) = 0 OR created_at >= CAST(sqlc.arg(since) AS BIGINT))
  AND (CAST(sqlc.arg(until) AS BIGINT) = 0 OR created_at < CAST(sqlc.arg(until) AS BIGINT))
  AND (CAST(sqlc.arg(cursor) AS BIGINT) = 0 OR id < CAST(sqlc.arg(cursor) AS BIGINT))
ORDER BY id DESC
LIMIT CAST(sqlc.arg(lim) AS BIGINT);

-- name: KeyStatsByDay :many
SELECT day, CAST(SUM(count) AS BIGINT) AS count,
       CAST(SUM(CASE WHEN status < 400 THEN count ELSE 0 END) AS BIGINT) AS success,
       CAST(SUM(CASE WHEN status >= 400 AND status < 500 THEN count ELSE 0 END) AS BIGINT) AS client_error,
       CAST(SUM(CASE WHEN status >= 500 THEN count ELSE 0 END) AS BIGINT) AS server_error
FROM saas_api_key_stats_daily
WHERE org_id = sqlc.arg(org_id) AND key_id = sqlc.arg(key_id)
GROUP BY day ORDER BY day;

-- name: KeyStatsByRoute :many
SELECT route, status, CAST(SUM(count) AS BIGINT) AS count FROM saas_api_key_stats_daily
WHERE org_id = sqlc.arg(org_id) AND key_id = sqlc.arg(key_id)
GROUP BY route, status ORDER BY route, status;

-- name: InsertAudit :exec
INSERT INTO saas_audit_log (org_id, actor, key_id, action, source_ip, details, created_at)
VALUES (sqlc.arg(org_id), sqlc.arg(actor), sqlc.narg(key_id), sqlc.arg(action), sqlc.arg(source_ip),
        sqlc.arg(details), sqlc.arg(created_at));

-- name: AdminListAudit :many
SELECT * FROM saas_audit_log
WHERE (CAST(sqlc.arg(org_id) AS TEXT) = '' OR org_id = CAST(sqlc.arg(org_id) AS TEXT))
  AND (CAST(sqlc.arg(key_id) AS TEXT) = '' OR key_id = CAST(sqlc.arg(key_id) AS TEXT))
  AND (CAST(sqlc.arg(action) AS TEXT) = '' OR action = CAST(sqlc.arg(action) AS TEXT))
  AND (CAST(sqlc.arg(since) AS BIGINT) = 0 OR created_at >= CAST(sqlc.arg(since) AS BIGINT))
  AND (CAST(sqlc.arg(until) AS BIGINT) = 0 OR created_at < CAST(sqlc.arg(until) AS BIGINT))
  AND (CAST(sqlc.arg(cursor) AS BIGINT) = 0 OR id < CAST(sqlc.arg(cursor) AS BIGINT))
ORDER BY id DESC
LIMIT CAST(sqlc.arg(lim) AS BIGINT);

-- name: MarkRequestLogBatch :execrows
-- The first statement of a batch's transaction: no row affected means the
-- batch was stored before.
INSERT INTO saas_api_request_log_batches (id, created_at) VALUES (sqlc.arg(id), sqlc.arg(created_at))
ON CONFLICT (id) DO NOTHING;

-- name: PruneRequestLogBatches :execrows
DELETE FROM saas_api_request_log_batches WHERE created_at < sqlc.arg(before);
