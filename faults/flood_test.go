package faults_test

import (
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/indigo-hq/indigo/core/apikey"
)

// A flood of made-up keys that pass the checksum (anyone can compute it)
// costs no database lookup each: the host's filter of stored key hashes
// refuses them, and only a budget of 100 lookups a second (plus the
// filter's false positives) reaches the database. A valid key's latency is
// measured alone and under the flood, and reported, not asserted: the
// numbers depend on the machine.
func TestUnknownKeyFloodCostsNoLookups(t *testing.T) {
	const (
		workers  = 4
		phase    = 3 * time.Second
		budget   = 100 // lookups a second for keys the filter does not know
		misses   = "indigo_api_key_cache_misses_total"
		refusals = "indigo_api_key_unknown_refused_total"
	)
	h := startHost(t, hostConfig{})
	_, key := h.createKey("faults")
	c := newClient(workers + 1)
	me := h.url + "/api/v2/me"

	// measure calls GET /me with the valid key, one call at a time, until
	// stop is closed.
	measure := func(stop <-chan struct{}) ([]time.Duration, int) {
		var ds []time.Duration
		bad := 0
		for {
			select {
			case <-stop:
				return ds, bad
			default:
			}
			begin := time.Now()
			a := c.do("GET", me, key, nil)
			ds = append(ds, time.Since(begin))
			if a.status != 200 {
				bad++
			}
		}
	}

	stop := make(chan struct{})
	time.AfterFunc(phase, func() { close(stop) })
	quiet, quietBad := measure(stop)

	before := h.metrics(c)
	var flood, floodNot401 atomic.Int64
	stop = make(chan struct{})
	var wg sync.WaitGroup
	begin := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				made, _ := apikey.Generate("indigo_sk") // the default api.key_prefix
				if a := c.do("GET", me, made, nil); a.status != 401 {
					floodNot401.Add(1)
				}
				flood.Add(1)
			}
		})
	}
	time.AfterFunc(phase, func() { close(stop) })
	loud, loudBad := measure(stop)
	wg.Wait()
	took := time.Since(begin)
	after := h.metrics(c)

	lookups := after[misses] - before[misses]
	refused := after[refusals] - before[refusals]
	calls := float64(flood.Load())
	// The budget is a sliding window of one second: over the flood's
	// seconds, and the one it started in, at most budget each.
	allowed := budget*math.Ceil(took.Seconds()+1) + 0.01*calls

	t.Logf("valid_key_calls_quiet: %d", len(quiet))
	t.Logf("valid_key_p50_ms_quiet: %.2f", percentileMS(quiet, 50))
	t.Logf("valid_key_p99_ms_quiet: %.2f", percentileMS(quiet, 99))
	t.Logf("valid_key_calls_flood: %d", len(loud))
	t.Logf("valid_key_p50_ms_flood: %.2f", percentileMS(loud, 50))
	t.Logf("valid_key_p99_ms_flood: %.2f", percentileMS(loud, 99))
	t.Logf("flood_calls: %d", flood.Load())
	t.Logf("flood_rps: %.0f", calls/took.Seconds())
	t.Logf("flood_lookups: %.0f (allowed %.0f)", lookups, allowed)
	t.Logf("flood_refused_without_lookup: %.0f", refused)

	if quietBad+loudBad > 0 {
		t.Errorf("the valid key was refused %d times alone and %d times under the flood", quietBad, loudBad)
	}
	if n := floodNot401.Load(); n > 0 {
		t.Errorf("%d made-up keys were not answered 401", n)
	}
	if lookups > allowed {
		t.Errorf("the flood of %.0f made-up keys cost %.0f lookups; the budget is %.0f", calls, lookups, allowed)
	}
	if refused < calls-allowed || refused > calls {
		t.Errorf("%.0f of %.0f made-up keys were refused without a lookup; want at least %.0f", refused, calls, calls-allowed)
	}
}
