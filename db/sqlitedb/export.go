package sqlitedb

// Not generated: exposes a generated query's text to db/bulk.go, which runs
// it on the request log's own driver connection, where the database/sql
// Queries cannot go.

// AddKeyStatSQL is the AddKeyStat query.
const AddKeyStatSQL = addKeyStat
