// Command testmodule is the smallest real module: the SDK's process test
// builds it and drives it through go-plugin as the host would. Its one
// route echoes what it received so the test can check the whole trip.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/indigo-hq/indigo/sdk"
)

func main() {
	var host atomic.Pointer[sdk.Host]
	sdk.Serve(sdk.Module{
		Name:    "testmodule",
		Version: "0.0.1",
		Scopes:  []sdk.Scope{{ID: "testmodule:echo", Label: "Echo requests"}},
		Routes: []sdk.Route{
			{Method: "POST", Path: "/echo/{id}", Scopes: []string{"testmodule:echo"}, Cost: 1},
		},
		// Hooks: charges fail above a cost of 5 (idempotency is the real
		// provider's job), and every org may hold 2 keys.
		DeductAPICallToken: func(_ context.Context, c sdk.MeterCall) error {
			if c.Cost > 5 {
				return sdk.ErrInsufficientBalance
			}
			if c.Cost < 0 {
				return errors.New("negative cost")
			}
			return nil
		},
		KeyLimit: func(_ context.Context, orgID string) (sdk.KeyLimit, error) {
			return sdk.KeyLimit{Plan: "test-" + orgID, MaxKeys: 2, Limited: true}, nil
		},
		ServerInit: func(ctx context.Context, h sdk.Host) error {
			host.Store(&h)
			h.Logger().InfoContext(ctx, "started", "data_dir", h.DataDir())
			return nil
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := *host.Load()
			// ?size=N answers N bytes, to test the response cap.
			if size, err := strconv.Atoi(r.URL.Query().Get("size")); err == nil {
				w.Header().Set("Content-Type", "application/octet-stream")
				_, _ = w.Write(bytes.Repeat([]byte{'x'}, size))
				return
			}
			body, _ := io.ReadAll(r.Body)
			caller, _ := sdk.CallerFrom(r.Context())
			h.Logger().InfoContext(r.Context(), "handled", "id", r.PathValue("id"))
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(map[string]any{
				"id":       r.PathValue("id"),
				"path":     r.URL.Path,
				"org":      caller.OrgID,
				"body_len": len(body),
				"greeting": h.Config()["greeting"],
				"data_dir": h.DataDir(),
			})
		}),
	})
}
