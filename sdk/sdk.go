// Package sdk is the one package tree module authors import. It must never
// import the host (core, db, cmd or modules); a test keeps it so.
//
// The module runtime (sdk.Serve, routes, serverInit, host services) is
// built on top of these shared definitions.
package sdk

// Scope is a permission a module registers, such as "projects:read". Its
// id must start with the module's own prefix.
type Scope struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

// Route is a v2 route a module serves. The host enforces Scopes (all of
// them) before the request reaches the module, and charges Cost through
// the metering hook.
type Route struct {
	Method string   `json:"method"`
	Path   string   `json:"path"`
	Scopes []string `json:"scopes"`
	Cost   int64    `json:"cost"`
	V1     bool     `json:"v1"`
}
