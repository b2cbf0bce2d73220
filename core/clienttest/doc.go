// Package clienttest runs Indigo's clients against real hosts started by
// its tests, on SQLite and PostgreSQL: the Go client (sdk/client) through
// the walk-through of issue 16 and the verify middleware, and the
// TypeScript client (sdk/typescript) through the same walk-through, with
// Node.js. The tests live here, not beside the clients, because they
// start a host: the SDK's tree imports nothing of core, its tests included.
package clienttest
