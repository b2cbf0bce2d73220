-- name: InsertKey :exec
INSERT INTO saas_api_keys (
    id, org_id, key_hash, name, prefix, last4, scopes, status, enabled, metadata,
    rate_limit, rate_window_seconds, remaining, refill_amount, refill_interval_seconds,
    last_refill_at, expires_at, created_by, created_at, updated_at
) VALUES (
    sqlc.arg(id), sqlc.arg(org_id), sqlc.arg(key_hash), sqlc.arg(name), sqlc.arg(prefix), sqlc.arg(last4),
    sqlc.narg(scopes), 'active', true, sqlc.arg(metadata),
    sqlc.narg(rate_limit), sqlc.narg(rate_window_seconds), sqlc.narg(remaining), sqlc.narg(refill_amount),
    sqlc.narg(refill_interval_seconds), sqlc.narg(last_refill_at), sqlc.narg(expires_at),
    sqlc.arg(created_by), sqlc.arg(created_at), sqlc.arg(created_at)
);

-- name: GetKeyByHash :one
SELECT * FROM saas_api_keys WHERE key_hash = sqlc.arg(key_hash);

-- name: ListKeyHashesAfter :many
-- Every stored key's hash, in pages, for the verify path's filter of
-- known keys.
SELECT id, key_hash FROM saas_api_keys
WHERE id > sqlc.arg(after_id)
ORDER BY id
LIMIT CAST(sqlc.arg(lim) AS BIGINT);

-- name: GetKeyByID :one
SELECT * FROM saas_api_keys WHERE id = sqlc.arg(id);

-- name: GetOrgKey :one
SELECT * FROM saas_api_keys WHERE org_id = sqlc.arg(org_id) AND id = sqlc.arg(id);

-- name: GetOrgKeyForUpdate :one
SELECT * FROM saas_api_keys WHERE org_id = sqlc.arg(org_id) AND id = sqlc.arg(id) FOR UPDATE;

-- name: ListOrgKeys :many
SELECT * FROM saas_api_keys
WHERE org_id = sqlc.arg(org_id) AND (CAST(sqlc.arg(cursor) AS TEXT) = '' OR id < CAST(sqlc.arg(cursor) AS TEXT))
ORDER BY id DESC
LIMIT CAST(sqlc.arg(lim) AS BIGINT);

-- name: CountOrgLiveKeys :one
SELECT COUNT(*) FROM saas_api_keys
WHERE org_id = sqlc.arg(org_id) AND status IN ('active', 'expiring');

-- name: UpdateKey :execrows
UPDATE saas_api_keys SET
    name = sqlc.arg(name),
    enabled = sqlc.arg(enabled),
    metadata = sqlc.arg(metadata),
    rate_limit = sqlc.narg(rate_limit),
    rate_window_seconds = sqlc.narg(rate_window_seconds),
    remaining = sqlc.narg(remaining),
    refill_amount = sqlc.narg(refill_amount),
    refill_interval_seconds = sqlc.narg(refill_interval_seconds),
    last_refill_at = sqlc.narg(last_refill_at),
    quota_epoch = sqlc.arg(quota_epoch),
    expires_at = sqlc.narg(expires_at),
    updated_at = sqlc.arg(updated_at)
WHERE org_id = sqlc.arg(org_id) AND id = sqlc.arg(id);

-- name: UpdateKeyScopes :execrows
UPDATE saas_api_keys SET scopes = sqlc.narg(scopes), updated_at = sqlc.arg(updated_at)
WHERE org_id = sqlc.arg(org_id) AND id = sqlc.arg(id);

-- name: MarkKeyExpiring :execrows
UPDATE saas_api_keys SET status = 'expiring', expires_at = sqlc.arg(expires_at),
    rolled_to = sqlc.arg(rolled_to), updated_at = sqlc.arg(updated_at)
WHERE org_id = sqlc.arg(org_id) AND id = sqlc.arg(id) AND status = 'active';

-- name: RevokeKey :execrows
UPDATE saas_api_keys SET status = 'revoked', revoked_at = sqlc.arg(revoked_at), updated_at = sqlc.arg(revoked_at)
WHERE org_id = sqlc.arg(org_id) AND id = sqlc.arg(id) AND status <> 'revoked';

-- name: ExpireDueKeys :many
UPDATE saas_api_keys SET status = 'expired', updated_at = sqlc.arg(now)
WHERE status IN ('active', 'expiring') AND expires_at IS NOT NULL AND expires_at <= sqlc.arg(now)
RETURNING id, org_id;

-- name: TouchKeyLastUsed :exec
UPDATE saas_api_keys SET last_used_at = sqlc.arg(last_used_at)
WHERE id = sqlc.arg(id) AND (last_used_at IS NULL OR last_used_at < sqlc.arg(last_used_at));

-- name: SaveKeyQuota :execrows
-- Skipped when remaining was set explicitly since the host loaded it
-- (quota_epoch moved): the explicit value wins.
UPDATE saas_api_keys SET remaining = sqlc.narg(remaining), last_refill_at = sqlc.narg(last_refill_at)
WHERE id = sqlc.arg(id) AND quota_epoch = sqlc.arg(quota_epoch) AND remaining IS NOT NULL;

-- name: AdminListKeys :many
-- The status filter matches the status the API shows: a key past expires_at
-- is expired even before the maintenance task records it.
SELECT * FROM saas_api_keys
WHERE (CAST(sqlc.arg(org_id) AS TEXT) = '' OR org_id = CAST(sqlc.arg(org_id) AS TEXT))
  AND (CAST(sqlc.arg(status) AS TEXT) = ''
       OR (CAST(sqlc.arg(status) AS TEXT) = 'revoked' AND status = 'revoked')
       OR (CAST(sqlc.arg(status) AS TEXT) = 'expired' AND (status = 'expired'
           OR (status IN ('active', 'expiring') AND expires_at IS NOT NULL AND expires_at <= CAST(sqlc.arg(now) AS BIGINT))))
       OR (status = CAST(sqlc.arg(status) AS TEXT) AND status IN ('active', 'expiring')
           AND (expires_at IS NULL OR expires_at > CAST(sqlc.arg(now) AS BIGINT))))
  AND (CAST(sqlc.arg(key_id) AS TEXT) = '' OR id = CAST(sqlc.arg(key_id) AS TEXT))
  AND (CAST(sqlc.arg(since) AS BIGINT) = 0 OR created_at >= CAST(sqlc.arg(since) AS BIGINT))
  AND (CAST(sqlc.arg(until) AS BIGINT) = 0 OR created_at < CAST(sqlc.arg(until) AS BIGINT))
  AND (CAST(sqlc.arg(cursor) AS TEXT) = '' OR id < CAST(sqlc.arg(cursor) AS TEXT))
ORDER BY id DESC
LIMIT CAST(sqlc.arg(lim) AS BIGINT);

-- name: InsertKeyChange :exec
INSERT INTO saas_api_key_changes (key_id, org_id, created_at)
VALUES (sqlc.arg(key_id), sqlc.arg(org_id), sqlc.arg(created_at));

-- name: ListKeyChangesAfter :many
SELECT id, key_id, org_id FROM saas_api_key_changes
WHERE id > sqlc.arg(after_id) ORDER BY id LIMIT CAST(sqlc.arg(lim) AS BIGINT);

-- name: MaxKeyChangeID :one
SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) AS max_id FROM saas_api_key_changes;

-- name: PruneKeyChanges :execrows
DELETE FROM saas_api_key_changes WHERE created_at < sqlc.arg(before);
