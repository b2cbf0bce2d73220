package sqlitedb

// Not generated: exposes generated queries' text to db/bulk.go, which runs
// them on the request log's own driver connection, where the database/sql
// Queries cannot go.

// AddKeyStatSQL is the AddKeyStat query.
const AddKeyStatSQL = addKeyStat

// MarkRequestLogBatchSQL is the MarkRequestLogBatch query.
const MarkRequestLogBatchSQL = markRequestLogBatch
