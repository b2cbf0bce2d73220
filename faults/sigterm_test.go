package faults_test

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/db"
)

// SIGTERM while four clients call GET /api/v2/me: the host exits within
// server.shutdown_timeout, and every answer a client received (each
// carries its X-Request-Id) is in the request log, written before exit;
// no call is logged that no client saw answered.
func TestSIGTERMUnderLoadLogsEveryAnswer(t *testing.T) {
	const (
		workers         = 4
		load            = 2 * time.Second
		shutdownTimeout = 5 * time.Second
	)
	h := startHost(t, hostConfig{ShutdownTimeout: shutdownTimeout})
	keyID, key := h.createKey("faults")
	c := newClient(workers)
	me := h.url + "/api/v2/me"

	var answered, unmarked, failed atomic.Int64
	var wg sync.WaitGroup
	var byStatus sync.Map // status → *atomic.Int64
	for range workers {
		wg.Go(func() {
			for h.running() {
				a := c.do("GET", me, key, nil)
				switch {
				case a.status == 0:
					failed.Add(1)
					// Refused or reset: the listener is closing.
					time.Sleep(5 * time.Millisecond)
					continue
				case a.header.Get("X-Request-Id") != "":
					answered.Add(1)
				default:
					unmarked.Add(1)
				}
				n, _ := byStatus.LoadOrStore(a.status, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}
		})
	}
	time.Sleep(load)
	atSignal := answered.Load()
	kill(t, h.cmd.Process.Pid, syscall.SIGTERM)
	signalled := time.Now()
	select {
	case <-h.exited:
	case <-time.After(shutdownTimeout + 3*time.Second):
		t.Fatalf("the host still runs %v after SIGTERM (shutdown_timeout %v)", time.Since(signalled), shutdownTimeout)
	}
	exit := time.Since(signalled)
	wg.Wait()
	if h.waitErr != nil {
		t.Errorf("the host exited with %v", h.waitErr)
	}

	store, err := db.Open(context.Background(), db.SQLite, h.db)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var logged int64
	if err := store.DB.QueryRow(`SELECT COUNT(*) FROM saas_api_request_logs WHERE key_id = ?`, keyID).Scan(&logged); err != nil {
		t.Fatal(err)
	}
	logged -= int64(h.probes)

	byStatus.Range(func(k, v any) bool {
		t.Logf("answers %d: %d", k, v.(*atomic.Int64).Load())
		return true
	})
	t.Logf("answered_with_request_id: %d", answered.Load())
	t.Logf("answered_after_sigterm: %d", answered.Load()-atSignal)
	t.Logf("answered_without_request_id: %d", unmarked.Load())
	t.Logf("requests_without_answer: %d", failed.Load())
	t.Logf("request_log_rows: %d", logged)
	t.Logf("exit_after_sigterm_ms: %.1f", float64(exit.Microseconds())/1000)
	if unmarked.Load() != 0 {
		t.Errorf("%d answers have no X-Request-Id", unmarked.Load())
	}
	if logged != answered.Load() {
		t.Errorf("the request log has %d calls of the key; the clients received %d answers", logged, answered.Load())
	}
	if exit > shutdownTimeout+time.Second {
		t.Errorf("the host took %v to exit (shutdown_timeout %v)", exit, shutdownTimeout)
	}
}
