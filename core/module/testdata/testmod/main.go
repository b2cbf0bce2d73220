// Command testmod is a module for the loader's tests: it answers quickly,
// slowly on request, and reports its pid and how often it was called, and
// counts the writes it is sent.
package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/indigo-hq/indigo/sdk"
)

func main() {
	var calls atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("GET /testmod/ping", func(w http.ResponseWriter, r *http.Request) {
		c, _ := sdk.CallerFrom(r.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Set-Cookie", "stolen=1") // must be dropped by the host
		w.Header().Set("Connection", "close")    // hop-by-hop: dropped
		w.Header().Set("X-Testmod", "kept")      // an ordinary header: kept
		if v, ok := r.Header["X-Testmod-Echo"]; ok {
			w.Header()["X-Testmod-Echo"] = v // any bytes, both ways
		}
		_ = json.NewEncoder(w).Encode(map[string]any{
			"pid": os.Getpid(), "calls": calls.Add(1), "org_id": c.OrgID, "key_id": c.KeyID,
			"auth": r.Header.Get("Authorization"), "request_id": c.RequestID,
		})
	})
	// Key events the module subscribed to, newest last.
	var mu sync.Mutex
	var events []sdk.KeyEvent
	mux.HandleFunc("GET /testmod/events", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		sdk.JSON(w, http.StatusOK, map[string]any{"events": events})
	})
	// Writes: each call counts when it starts, may take ?ms=, and answers
	// 201 with its number and the body it was sent.
	var started, finished atomic.Int64
	mux.HandleFunc("POST /testmod/writes", func(w http.ResponseWriter, r *http.Request) {
		n := started.Add(1)
		body, _ := io.ReadAll(r.Body)
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		finished.Add(1)
		w.Header().Set("X-Testmod-Write", strconv.FormatInt(n, 10))
		sdk.JSON(w, http.StatusCreated, map[string]any{"write": n, "body": string(body)})
	})
	mux.HandleFunc("GET /testmod/writes", func(w http.ResponseWriter, r *http.Request) {
		sdk.JSON(w, http.StatusOK, map[string]any{"started": started.Load(), "finished": finished.Load()})
	})
	// ?n= bytes of body, with the Content-Length ?cl= when it is given.
	mux.HandleFunc("GET /testmod/big", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if cl := r.URL.Query().Get("cl"); cl != "" {
			w.Header().Set("Content-Length", cl)
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(strings.Repeat("b", n)))
	})
	mux.HandleFunc("GET /testmod/slow", func(w http.ResponseWriter, r *http.Request) {
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			w.WriteHeader(http.StatusNoContent)
		case <-r.Context().Done():
		}
	})
	sdk.Serve(sdk.Module{
		Name: "testmod", Version: "0.0.1",
		Scopes: []sdk.Scope{{ID: "testmod:read", Label: "Read"}, {ID: "testmod:write", Label: "Write"}},
		Routes: []sdk.Route{
			{Method: "GET", Path: "/testmod/ping", Scopes: []string{"testmod:read"}, V1: true},
			{Method: "POST", Path: "/testmod/writes", Scopes: []string{"testmod:write"}},
			{Method: "GET", Path: "/testmod/writes", Scopes: []string{"testmod:read"}},
			{Method: "GET", Path: "/testmod/slow", Scopes: []string{"testmod:read"}},
			{Method: "GET", Path: "/testmod/events", Scopes: []string{"testmod:read"}},
			{Method: "GET", Path: "/testmod/big", Scopes: []string{"testmod:read"}},
		},
		Handler: mux,
		// resolveOrgId for the host's sign-in: a test header names the
		// user, another the org.
		ResolveOrgID: func(_ context.Context, r *http.Request) (*sdk.Identity, error) {
			user := r.Header.Get("X-Testmod-User")
			if user == "" {
				return nil, nil
			}
			role := "member"
			if user == "alice" {
				role = "owner"
			}
			return &sdk.Identity{UserID: user, Email: user + "@testmod.test", OrgID: r.Header.Get("X-Testmod-Org"), Role: role}, nil
		},
		OnKeyEvent: func(_ context.Context, ev sdk.KeyEvent) error {
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
			return nil
		},
	})
}
