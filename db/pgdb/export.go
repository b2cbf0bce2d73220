package pgdb

// Not generated: exposes a generated query's text to db/bulk.go, which runs
// it inside a pgx COPY transaction where the database/sql Queries cannot go.

// AddKeyStatSQL is the AddKeyStat query.
const AddKeyStatSQL = addKeyStat
