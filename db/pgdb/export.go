package pgdb

// Not generated: exposes generated queries' text to db/bulk.go, which runs
// them inside a pgx COPY transaction where the database/sql Queries cannot go.

// AddKeyStatSQL is the AddKeyStat query.
const AddKeyStatSQL = addKeyStat

// MarkRequestLogBatchSQL is the MarkRequestLogBatch query.
const MarkRequestLogBatchSQL = markRequestLogBatch
