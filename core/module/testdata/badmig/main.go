// Command badmig is a test module whose second migration is broken: the
// host must keep it down, say why, and serve everything else.
package main

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/indigo-hq/indigo/sdk"
)

//go:embed migrations
var migrations embed.FS

func main() {
	sub, _ := fs.Sub(migrations, "migrations")
	sdk.Serve(sdk.Module{
		Name:    "badmig",
		Version: "0.0.1",
		Scopes:  []sdk.Scope{{ID: "badmig:read", Label: "Read"}},
		Routes: []sdk.Route{{Method: "GET", Path: "/badmig", Scopes: []string{"badmig:read"},
			Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { sdk.JSON(w, 200, map[string]bool{"ok": true}) })}},
		Database:   true,
		Migrations: sub,
	})
}
