// Package clienttest runs the Go client (sdk/client) against real hosts
// started by its tests, on SQLite and PostgreSQL: the walk-through of
// issue 16 and the verify middleware. The tests live here, not in
// sdk/client, because they start a host: the SDK's tree imports nothing of
// core, its tests included.
package clienttest
