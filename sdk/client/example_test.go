package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/indigo-hq/indigo/sdk/client"
)

// The README's walk through the client.
func Example() {
	ctx := context.Background()
	c, err := client.New("https://indigo.example.com", os.Getenv("INDIGO_KEY"))
	if err != nil {
		panic(err)
	}
	k, err := c.Keys.Create(ctx, client.CreateKey{Name: "reports", Scopes: []string{"projects:read"},
		RateLimit: &client.RateLimit{Limit: 100, Window: time.Minute}}) // k.Raw: the plaintext, shown once
	if err != nil {
		panic(err)
	}
	for key, err := range c.Keys.List(ctx) {
		if err != nil {
			panic(err)
		}
		fmt.Println(key.Name, key.Status)
	}
	if _, err := c.Keys.Update(ctx, k.ID, client.KeyUpdate{Name: new("reporting"), RateLimit: client.Null[client.RateLimit]()}); err != nil {
		panic(err)
	}
	rolled, err := c.Keys.Roll(ctx, k.ID, new(24*time.Hour)) // the old key works for 24 h
	if err != nil {
		panic(err)
	}
	err = c.Keys.Revoke(ctx, rolled.ID)
	var e *client.Error // status, code, message, request id
	if errors.As(err, &e) && e.Code == "not_found" {
		fmt.Println("no such key; request", e.RequestID)
	}
	var out struct{ Project struct{ ID string } }
	if err := c.Do(ctx, "POST", "/projects", map[string]string{"name": "p"}, &out); err != nil { // module routes
		panic(err)
	}
}

func ExampleMiddleware() {
	c, err := client.New("https://indigo.example.com", os.Getenv("INDIGO_VERIFY_KEY")) // holds api-keys:verify
	if err != nil {
		panic(err)
	}
	mw := client.Middleware(c, client.MiddlewareConfig{Scopes: []string{"reports:read"}})
	http.Handle("/reports", mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller := client.CallerFrom(r.Context()) // KeyID, OrgID, Scopes
		fmt.Fprintf(w, "hello, key %s of org %s\n", caller.KeyID, caller.OrgID)
	})))
}
