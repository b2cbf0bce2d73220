-- name: InsertOrg :exec
INSERT INTO saas_orgs (id, name, created_at) VALUES (sqlc.arg(id), sqlc.arg(name), sqlc.arg(created_at));

-- name: EnsureOrg :execrows
-- An org known to an external identity provider, recorded on first sight.
INSERT INTO saas_orgs (id, name, created_at) VALUES (sqlc.arg(id), sqlc.arg(name), sqlc.arg(created_at))
ON CONFLICT (id) DO NOTHING;

-- name: LockOrg :one
-- Taken before counting an org's keys against its plan (SQLite's write
-- transaction already serializes).
SELECT id FROM saas_orgs WHERE id = sqlc.arg(id) FOR UPDATE;

-- name: CountActiveOrgKeys :one
SELECT COUNT(*) FROM saas_api_keys WHERE org_id = sqlc.arg(org_id) AND status = 'active';

-- name: GetOrg :one
SELECT * FROM saas_orgs WHERE id = sqlc.arg(id);

-- name: ListOrgs :many
SELECT * FROM saas_orgs ORDER BY created_at, id;

-- name: GetUserByEmail :one
SELECT * FROM saas_users WHERE email = sqlc.arg(email);

-- name: InsertUser :exec
INSERT INTO saas_users (id, email, operator, created_at)
VALUES (sqlc.arg(id), sqlc.arg(email), sqlc.arg(operator), sqlc.arg(created_at));

-- name: SetUserOperator :exec
UPDATE saas_users SET operator = sqlc.arg(operator) WHERE id = sqlc.arg(id);

-- name: UpsertMember :exec
INSERT INTO saas_members (org_id, user_id, role, created_at)
VALUES (sqlc.arg(org_id), sqlc.arg(user_id), sqlc.arg(role), sqlc.arg(created_at))
ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role;

-- name: InsertLoginToken :exec
INSERT INTO saas_login_tokens (token_hash, org_id, user_id, expires_at, created_at)
VALUES (sqlc.arg(token_hash), sqlc.arg(org_id), sqlc.arg(user_id), sqlc.arg(expires_at), sqlc.arg(created_at));

-- name: ConsumeLoginToken :one
UPDATE saas_login_tokens SET used_at = sqlc.arg(now)
WHERE token_hash = sqlc.arg(token_hash) AND used_at IS NULL AND expires_at > sqlc.arg(now)
RETURNING org_id, user_id;

-- name: InsertSession :exec
INSERT INTO saas_sessions (token_hash, org_id, user_id, csrf_token, expires_at, created_at)
VALUES (sqlc.arg(token_hash), sqlc.arg(org_id), sqlc.arg(user_id), sqlc.arg(csrf_token), sqlc.arg(expires_at), sqlc.arg(created_at));

-- name: GetSession :one
SELECT s.org_id, s.user_id, s.csrf_token, s.expires_at, u.email, u.operator, m.role
FROM saas_sessions s
JOIN saas_users u ON u.id = s.user_id
JOIN saas_members m ON m.org_id = s.org_id AND m.user_id = s.user_id
WHERE s.token_hash = sqlc.arg(token_hash) AND s.expires_at > sqlc.arg(now);

-- name: DeleteSession :exec
DELETE FROM saas_sessions WHERE token_hash = sqlc.arg(token_hash);

-- name: DeleteExpiredSessions :execrows
DELETE FROM saas_sessions WHERE expires_at <= sqlc.arg(now);
