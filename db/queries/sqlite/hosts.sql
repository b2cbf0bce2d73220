-- name: BeatHost :exec
INSERT INTO saas_hosts (host, seen_at) VALUES (sqlc.arg(host), sqlc.arg(now))
ON CONFLICT (host) DO UPDATE SET seen_at = excluded.seen_at;

-- name: CountLiveHosts :one
SELECT COUNT(*) FROM saas_hosts WHERE seen_at >= sqlc.arg(since);

-- name: ForgetHost :exec
DELETE FROM saas_hosts WHERE host = sqlc.arg(host) OR seen_at < sqlc.arg(before);
