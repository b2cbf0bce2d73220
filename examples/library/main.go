// Command library embeds core-api in a host application's own program and
// wires both DI hooks as Go functions: a resolver that trusts the demo's
// own sign-in header, and an in-memory meter that allows a fixed number
// of calls per org. A real host would ask its session store and its
// billing system instead.
//
//	go run ./examples/library -addr 127.0.0.1:8090 -data /tmp/indigo-lib
//	curl -X POST -H 'X-Demo-User: alice' -d '{"name":"ci","scopes":null}' http://127.0.0.1:8090/api/v2/keys
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/coreapi"
)

// users is the demo's user table: who belongs to which org, with which role.
var users = map[string]coreapi.Identity{
	"alice": {UserID: "alice", Email: "alice@demo.test", OrgID: "org-demo", Role: "owner"},
	"bob":   {UserID: "bob", Email: "bob@demo.test", OrgID: "org-demo", Role: "member"},
}

// meter allows `allowance` metered calls per org, charging a request id once.
type meter struct {
	mu        sync.Mutex
	allowance int64
	used      map[string]int64
	seen      map[string]bool
}

func (m *meter) charge(_ context.Context, c coreapi.Call) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[c.RequestID] {
		return nil
	}
	if m.used[c.OrgID]+c.Cost > m.allowance {
		return coreapi.ErrInsufficientBalance
	}
	m.used[c.OrgID] += c.Cost
	m.seen[c.RequestID] = true
	return nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	data := flag.String("data", "data-library", "data directory (SQLite)")
	allowance := flag.Int64("allowance", 100, "metered calls each org may make")
	flag.Parse()

	m := &meter{allowance: *allowance, used: map[string]int64{}, seen: map[string]bool{}}
	coreapi.SetDeps(coreapi.Deps{
		ResolveOrgID: func(r *http.Request) (*coreapi.Identity, error) {
			u, ok := users[r.Header.Get("X-Demo-User")]
			if !ok {
				return nil, nil // not signed in
			}
			return &u, nil
		},
		DeductAPICallToken: m.charge,
	})

	cfg := config.Default()
	cfg.Server.Addr = *addr
	cfg.Server.DataDir = *data
	cfg.Database.URL = *data + "/indigo.db"
	if err := os.MkdirAll(*data, 0o700); err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	host, err := coreapi.Start(ctx, &cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("library host listening on %s\n", host.URL())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := host.Shutdown(sctx); err != nil {
		log.Fatal(err)
	}
}
