package requestlog_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core/requestlog"
	"github.com/indigo-hq/indigo/db"
	"github.com/indigo-hq/indigo/db/dbtest"
)

func TestFullQueueDropsAndCounts(t *testing.T) {
	s := dbtest.Open(t, db.SQLite)
	w := requestlog.New(s, 3, 100, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	accepted := 0
	for i := 0; i < 10; i++ {
		if w.Enqueue(requestlog.Entry{RequestID: "r", OrgID: "o", KeyID: "k", Method: "GET", Route: "/x", Status: 200, Time: time.Now()}) {
			accepted++
		}
	}
	if accepted != 3 || w.Dropped() != 7 || w.Depth() != 3 {
		t.Fatalf("accepted %d, dropped %d, depth %d; want 3, 7, 3", accepted, w.Dropped(), w.Depth())
	}
	go w.Run()
	w.Close()
	if w.Written() != 3 {
		t.Fatalf("written %d after Close, want 3", w.Written())
	}
}

func TestBatchesAndDailyRollup(t *testing.T) {
	for _, engine := range dbtest.Engines {
		t.Run(engine, func(t *testing.T) {
			s := dbtest.Open(t, engine)
			w := requestlog.New(s, 1000, 7, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
			go w.Run()
			day1 := time.Date(2026, 5, 1, 23, 59, 0, 0, time.UTC)
			for i := 0; i < 20; i++ {
				at := day1
				if i >= 15 {
					at = day1.Add(2 * time.Minute) // next UTC day
				}
				w.Enqueue(requestlog.Entry{RequestID: "r", OrgID: "o1", KeyID: "k1", Method: "GET", Route: "/api/v2/me", Status: 200, Latency: time.Millisecond, Time: at})
			}
			w.Flush(context.Background())
			days, err := s.Q().KeyStatsByDay(context.Background(), db.KeyStatsByDayParams{OrgID: "o1", KeyID: "k1"})
			if err != nil || len(days) != 2 || days[0].Count != 15 || days[1].Count != 5 || days[1].Day != "2026-05-02" {
				t.Fatalf("days = %+v, %v", days, err)
			}
			w.Close()
			n, err := requestlog.Prune(context.Background(), s, day1.Add(time.Minute), 0)
			if err != nil || n != 15 {
				t.Fatalf("pruned %d, %v; want 15", n, err)
			}
			if w.Written() != 20 || w.Dropped() != 0 {
				t.Fatalf("written %d dropped %d", w.Written(), w.Dropped())
			}
		})
	}
}

// A full batch is written without waiting for the ticker or a flush: the
// writer is woken when the queue reaches the batch size.
func TestFullBatchWakesTheWriter(t *testing.T) {
	s := dbtest.Open(t, db.SQLite)
	w := requestlog.New(s, 1000, 5, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go w.Run()
	defer w.Close()
	for i := 0; i < 4; i++ {
		w.Enqueue(requestlog.Entry{RequestID: "r", OrgID: "o", KeyID: "k", Method: "GET", Route: "/x", Status: 200, Time: time.Now()})
	}
	time.Sleep(50 * time.Millisecond)
	if n := w.Written(); n != 0 {
		t.Fatalf("written %d before the batch filled, want 0", n)
	}
	w.Enqueue(requestlog.Entry{RequestID: "r", OrgID: "o", KeyID: "k", Method: "GET", Route: "/x", Status: 200, Time: time.Now()})
	deadline := time.Now().Add(5 * time.Second)
	for w.Written() != 5 {
		if time.Now().After(deadline) {
			t.Fatalf("written %d, depth %d: a full batch did not wake the writer", w.Written(), w.Depth())
		}
		time.Sleep(time.Millisecond)
	}
	if w.Depth() != 0 {
		t.Fatalf("depth %d after the batch was written", w.Depth())
	}
}
