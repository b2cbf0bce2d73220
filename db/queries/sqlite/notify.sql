-- Key notifications (core/notify): the event outbox and its deliveries.

-- name: InsertKeyEvent :execrows
-- Runs in the transaction of the key change it reports. An event with a
-- dedupe_key that was already written is skipped (0 rows).
INSERT INTO saas_key_events (id, org_id, key_id, type, payload, dedupe_key, created_at)
VALUES (sqlc.arg(id), sqlc.arg(org_id), sqlc.arg(key_id), sqlc.arg(type), sqlc.arg(payload),
        sqlc.narg(dedupe_key), sqlc.arg(created_at))
ON CONFLICT (dedupe_key) DO NOTHING;

-- name: GetKeyEvent :one
SELECT * FROM saas_key_events WHERE id = sqlc.arg(id);

-- name: ListExpiringSoonKeys :many
-- Live keys that expire within (now, until] and have no key.expiring_soon
-- event for their current expires_at. The dedupe key is
-- 'key.expiring_soon:<key id>:<expires_at>', as notify.ExpiringSoonDedupeKey writes it.
SELECT k.id, k.org_id, k.name, k.prefix, k.last4, k.expires_at FROM saas_api_keys k
WHERE k.status IN ('active', 'expiring') AND k.expires_at IS NOT NULL
  AND k.expires_at > CAST(sqlc.arg(now) AS BIGINT) AND k.expires_at <= CAST(sqlc.arg(until) AS BIGINT)
  AND NOT EXISTS (SELECT 1 FROM saas_key_events e
                  WHERE e.dedupe_key = 'key.expiring_soon:' || k.id || ':' || CAST(k.expires_at AS TEXT))
ORDER BY k.expires_at, k.id
LIMIT CAST(sqlc.arg(lim) AS BIGINT);

-- name: FanOutKeyEvents :execrows
-- Gives one notifier a pending delivery for every event since the cut-off
-- that it has none for yet. Safe to run on several hosts at once.
INSERT INTO saas_event_deliveries (event_id, notifier, status, attempts, next_attempt_at)
SELECT e.id, CAST(sqlc.arg(notifier) AS TEXT), 'pending', 0, CAST(sqlc.arg(now) AS BIGINT)
FROM saas_key_events e
WHERE e.created_at >= CAST(sqlc.arg(since) AS BIGINT)
  AND NOT EXISTS (SELECT 1 FROM saas_event_deliveries d
                  WHERE d.event_id = e.id AND d.notifier = CAST(sqlc.arg(notifier) AS TEXT))
ON CONFLICT (event_id, notifier) DO NOTHING;

-- name: ClaimDeliveries :many
-- Takes up to lim due deliveries of one notifier: the attempt is counted and
-- next_attempt_at moves to the end of the lease, so that no other claim
-- takes the row until the lease runs out. attempts is the claim's fence for
-- recording its outcome. SQLite has one writer, so the statement is atomic.
UPDATE saas_event_deliveries
SET attempts = attempts + 1, next_attempt_at = CAST(sqlc.arg(lease_until) AS BIGINT)
WHERE notifier = CAST(sqlc.arg(notifier) AS TEXT) AND status = 'pending'
  AND next_attempt_at <= CAST(sqlc.arg(now) AS BIGINT)
  AND event_id IN (
    SELECT d.event_id FROM saas_event_deliveries d
    WHERE d.notifier = CAST(sqlc.arg(notifier) AS TEXT) AND d.status = 'pending'
      AND d.next_attempt_at <= CAST(sqlc.arg(now) AS BIGINT)
    ORDER BY d.next_attempt_at, d.event_id
    LIMIT CAST(sqlc.arg(lim) AS BIGINT))
RETURNING event_id, notifier, attempts;

-- name: MarkDeliveryDelivered :execrows
UPDATE saas_event_deliveries
SET status = 'delivered', delivered_at = CAST(sqlc.arg(delivered_at) AS BIGINT),
    last_status_code = sqlc.narg(last_status_code), last_error = NULL
WHERE event_id = sqlc.arg(event_id) AND notifier = sqlc.arg(notifier) AND status = 'pending';

-- name: MarkDeliveryFailedAttempt :execrows
-- Records a failed attempt: status stays pending with the next attempt's
-- time, or becomes failed. Only the claim that made the attempt (same
-- attempts) may record it.
UPDATE saas_event_deliveries
SET status = CAST(sqlc.arg(status) AS TEXT), next_attempt_at = CAST(sqlc.arg(next_attempt_at) AS BIGINT),
    last_error = sqlc.narg(last_error), last_status_code = sqlc.narg(last_status_code)
WHERE event_id = sqlc.arg(event_id) AND notifier = sqlc.arg(notifier) AND status = 'pending'
  AND attempts = CAST(sqlc.arg(attempts) AS BIGINT);

-- name: ReleaseDelivery :execrows
-- Gives back a claim whose attempt was cut short by shutdown: it is not
-- counted and the row is due at once.
UPDATE saas_event_deliveries
SET attempts = attempts - 1, next_attempt_at = CAST(sqlc.arg(now) AS BIGINT)
WHERE event_id = sqlc.arg(event_id) AND notifier = sqlc.arg(notifier) AND status = 'pending'
  AND attempts = CAST(sqlc.arg(attempts) AS BIGINT);

-- name: ListKeyEventDeliveries :many
-- The delivery log of one key's events, oldest first.
SELECT e.id AS event_id, e.type, e.org_id, e.key_id, e.created_at, d.notifier, d.status, d.attempts,
       d.next_attempt_at, d.last_error, d.last_status_code, d.delivered_at
FROM saas_key_events e
JOIN saas_event_deliveries d ON d.event_id = e.id
WHERE e.key_id = sqlc.arg(key_id)
ORDER BY e.created_at, e.id, d.notifier;

-- API calls that could not be metered, for the metering module.

-- name: InsertUnmeteredCall :execrows
-- A call recorded before (same request_id) is skipped (0 rows).
INSERT INTO saas_unmetered_calls (org_id, key_id, route, cost, request_id, created_at)
VALUES (sqlc.arg(org_id), sqlc.arg(key_id), sqlc.arg(route), sqlc.arg(cost), sqlc.arg(request_id), sqlc.arg(created_at))
ON CONFLICT (request_id) DO NOTHING;

-- name: ListUnreconciledCalls :many
SELECT * FROM saas_unmetered_calls WHERE reconciled_at IS NULL
ORDER BY id LIMIT CAST(sqlc.arg(lim) AS BIGINT);

-- name: MarkCallReconciled :execrows
UPDATE saas_unmetered_calls SET reconciled_at = CAST(sqlc.arg(at) AS BIGINT)
WHERE id = sqlc.arg(id) AND reconciled_at IS NULL;

-- name: CountUnreconciledCalls :one
SELECT COUNT(*) FROM saas_unmetered_calls WHERE reconciled_at IS NULL;

-- name: PruneKeyEvents :execrows
-- Events past retention whose deliveries are all settled (delivered or
-- failed); their delivery rows go with them (ON DELETE CASCADE).
DELETE FROM saas_key_events
WHERE created_at < CAST(sqlc.arg(before) AS BIGINT)
  AND NOT EXISTS (
    SELECT 1 FROM saas_event_deliveries d
    WHERE d.event_id = saas_key_events.id AND d.status = 'pending');

-- name: PruneReconciledCalls :execrows
DELETE FROM saas_unmetered_calls
WHERE reconciled_at IS NOT NULL AND reconciled_at < CAST(sqlc.arg(before) AS BIGINT);
