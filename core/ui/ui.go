// Package ui serves the embedded web UI: the dashboard shell and the
// ApiKeyManager web component. Everything it does goes through the public
// management API, so the UI has no access that curl lacks.
package ui

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/gorilla/mux"
)

//go:embed static
var files embed.FS

// Pages are the dashboard's addresses. Each serves the same shell, which
// routes on the path in the browser.
var Pages = []string{"/", "/settings/api-keys", "/account/api", "/admin/api-keys", "/admin/logs"}

// CSP allows scripts, styles and requests from this origin only: no inline
// script or style, no framing, no plugins.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Static is the file system of the assets, served under /ui/.
func Static() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embed pattern above guarantees the folder
	}
	return sub
}

// SecurityHeaders sets the headers every UI response carries.
func SecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

// Mount adds the pages and the assets to r.
func Mount(r *mux.Router) {
	static := Static()
	shell, err := fs.ReadFile(static, "index.html")
	if err != nil {
		panic(err)
	}
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		SecurityHeaders(w.Header())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(shell)
	})
	for _, p := range Pages {
		r.Handle(p, page).Methods("GET", "HEAD")
	}
	icon, err := fs.ReadFile(static, "favicon.ico")
	if err != nil {
		panic(err)
	}
	r.Handle("/favicon.ico", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/x-icon")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		_, _ = w.Write(icon)
	})).Methods("GET", "HEAD")
	assets := http.StripPrefix("/ui/", http.FileServer(http.FS(static)))
	r.PathPrefix("/ui/").Handler(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		SecurityHeaders(w.Header())
		w.Header().Set("Cache-Control", "no-cache")
		if req.URL.Path == "/ui/" || req.URL.Path == "/ui/index.html" {
			http.NotFound(w, req)
			return
		}
		assets.ServeHTTP(w, req)
	})).Methods("GET", "HEAD")
}
