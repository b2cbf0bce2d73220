package core_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core"
	"github.com/indigo-hq/indigo/core/apikey"
	"github.com/indigo-hq/indigo/core/config"
	"github.com/indigo-hq/indigo/core/coretest"
	"github.com/indigo-hq/indigo/db"
)

// behindProxy starts a PostgreSQL host whose database connections go
// through a proxy the test breaks on purpose.
func behindProxy(t *testing.T) (*coretest.Env, *coretest.Proxy) {
	var proxy *coretest.Proxy
	e := coretest.New(t, db.Postgres, func(c *config.Config, _ *core.Options) {
		u, err := url.Parse(c.Database.URL)
		if err != nil {
			t.Fatal(err)
		}
		proxy = coretest.NewProxy(t, u.Host)
		u.Host = proxy.Addr
		c.Database.URL = u.String()
		c.Database.QueryTimeout = config.Duration{Duration: time.Second}
	})
	e.Client.Timeout = 10 * time.Second // a hung call fails the test instead of holding it
	t.Cleanup(proxy.Forward)            // before the host's shutdown, which writes what it queued
	return e, proxy
}

// timed runs a call and says how long it took.
func timed(e *coretest.Env, method, path, auth string) (coretest.Response, time.Duration) {
	// wall clock: the latency under test
	start := time.Now()
	r := e.Do(method, path, auth, nil)
	return r, time.Since(start) // wall clock: the same
}

// A database that hangs costs a request database.query_timeout, then a
// 503 JSON answer, on the verify lookup of an uncached key and on a
// management call; a refused one answers 503 at once; the host recovers
// by itself.
func TestDatabaseHangOrRefusalAnswers503InTime(t *testing.T) {
	e, proxy := behindProxy(t)
	org := e.Org("Acme")
	_, admin := e.Superkey(org)
	_, uncached := e.Key(org, apikey.CreateInput{Name: "never used"})
	time.Sleep(200 * time.Millisecond) // the keys' creation has gone through the change feed
	if r := e.Do("GET", "/api/v2/keys", coretest.Bearer(admin), nil); r.Status != 200 {
		t.Fatalf("before: %d %s", r.Status, r.Body)
	}

	for _, fault := range []struct {
		name   string
		break_ func()
	}{{"hung", proxy.Hang}, {"refused", proxy.Refuse}} {
		fault.break_()
		for _, c := range []struct{ what, path, key string }{
			{"an uncached key's /me", "/api/v2/me", uncached},
			{"a cached key's management call", "/api/v2/keys", admin},
		} {
			r, took := timed(e, "GET", c.path, coretest.Bearer(c.key))
			if r.Status != 503 || r.ErrorCode() != "unavailable" {
				t.Fatalf("%s database, %s: %d %s", fault.name, c.what, r.Status, r.Body)
			}
			if took > 3*time.Second {
				t.Fatalf("%s database, %s: answered after %v, past the 1 s query timeout", fault.name, c.what, took)
			}
			t.Logf("%s database, %s: 503 after %v", fault.name, c.what, took.Round(time.Millisecond))
		}
		// A cached key's data-plane call needs no database.
		if r := e.Do("GET", "/api/v2/me", coretest.Bearer(admin), nil); r.Status != 200 {
			t.Fatalf("%s database, a cached key's /me: %d", fault.name, r.Status)
		}
		proxy.Forward()
		deadline := time.Now().Add(10 * time.Second) // wall clock: recovery of real connections
		for {
			r := e.Do("GET", "/api/v2/keys", coretest.Bearer(admin), nil)
			if r.Status == 200 {
				break
			}
			if time.Now().After(deadline) { // wall clock: the same
				t.Fatalf("after the %s database came back: %d %s", fault.name, r.Status, r.Body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if r := e.Do("GET", "/api/v2/me", coretest.Bearer(uncached), nil); r.Status != 200 {
		t.Fatalf("the uncached key after recovery: %d", r.Status)
	}
}
