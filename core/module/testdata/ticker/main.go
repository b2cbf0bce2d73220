// Command ticker is a test module with a task every second that records
// each run (when, and in which process) in its own database, and a Stop
// hook that records the stop, or hangs when its config says so.
package main

import (
	"context"
	"embed"
	"io/fs"
	"net/http"
	"os"
	"time"

	"github.com/indigo-hq/indigo/sdk"
)

//go:embed migrations
var migrations embed.FS

type config struct {
	HangInStop bool   `json:"hang_in_stop"`
	StopFile   string `json:"stop_file"`
}

func main() {
	sub, _ := fs.Sub(migrations, "migrations")
	var host sdk.Host
	var cfg config
	sdk.Serve(sdk.Module{
		Name:    "ticker",
		Version: "0.0.1",
		Scopes:  []sdk.Scope{{ID: "ticker:read", Label: "Read"}},
		Routes: []sdk.Route{{Method: "GET", Path: "/ticker/runs", Scopes: []string{"ticker:read"},
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rows, err := host.DB().QueryContext(r.Context(), `SELECT at, pid FROM runs ORDER BY at`)
				if err != nil {
					sdk.Error(w, 500, "internal", err.Error())
					return
				}
				defer rows.Close()
				out := [][2]int64{}
				for rows.Next() {
					var at, pid int64
					_ = rows.Scan(&at, &pid)
					out = append(out, [2]int64{at, pid})
				}
				sdk.JSON(w, 200, map[string]any{"runs": out})
			})}},
		Database:   true,
		Migrations: sub,
		ServerInit: func(_ context.Context, h sdk.Host) error {
			host = h
			return h.DecodeConfig(&cfg)
		},
		Tasks: []sdk.Task{{Name: "tick", Every: time.Second, Run: func(ctx context.Context, h sdk.Host) error {
			// wall clock: the test compares runs across processes
			_, err := h.DB().ExecContext(ctx, `INSERT INTO runs (at, pid) VALUES ($1, $2)`, time.Now().UnixMilli(), os.Getpid())
			return err
		}}},
		Stop: func(ctx context.Context) error {
			if cfg.HangInStop {
				select {} // a module that never stops: the host must kill it
			}
			if cfg.StopFile != "" {
				return os.WriteFile(cfg.StopFile, []byte("stopped\n"), 0o600)
			}
			return nil
		},
	})
}
