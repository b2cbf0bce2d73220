-- The request log batches stored so far, by id. A batch written again (a
-- retry after a commit whose answer was lost, or a replay of a host's
-- spool after it died mid-replay) finds its id here and is skipped, rows
-- and daily counts alike, in the same transaction. One row per batch, not
-- an index on the log table, which every insert would pay for. created_at
-- (milliseconds) is when the batch was stored: marks are pruned a while
-- after that, however old the batch's calls are.
CREATE TABLE saas_api_request_log_batches (
    id         TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX saas_api_request_log_batches_created_idx ON saas_api_request_log_batches (created_at);
