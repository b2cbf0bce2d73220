package api

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the host's Prometheus series.
type Metrics struct {
	Registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	verifies  *prometheus.CounterVec
	rejects   *prometheus.CounterVec
	counterMu sync.RWMutex
	counters  map[routeStatus]prometheus.Counter // to skip label hashing per request
	verifyMu  sync.RWMutex
	verifyBy  map[string]prometheus.Counter
}

type routeStatus struct {
	route  string
	status int
}

// NewMetrics registers the series. cacheStats, dropped and depth are read
// at scrape time.
func NewMetrics(cacheStats func() (hits, misses uint64), dropped func() uint64, depth func() int) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "indigo_api_requests_total", Help: "API v2 requests by route and status.",
		}, []string{"route", "status"}),
		verifies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "indigo_api_key_verifications_total", Help: "Key verifications by result.",
		}, []string{"result"}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "indigo_api_rate_limit_rejections_total", Help: "Calls refused by rate limit or quota.",
		}, []string{"code"}),
		counters: map[routeStatus]prometheus.Counter{},
		verifyBy: map[string]prometheus.Counter{},
	}
	reg.MustRegister(m.requests, m.verifies, m.rejects,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if cacheStats != nil {
		reg.MustRegister(
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "indigo_api_key_cache_hits_total", Help: "Verify cache hits."},
				func() float64 { h, _ := cacheStats(); return float64(h) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "indigo_api_key_cache_misses_total", Help: "Verify cache misses."},
				func() float64 { _, m := cacheStats(); return float64(m) }),
		)
	}
	if dropped != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "indigo_request_log_dropped_total", Help: "Request log entries dropped (queue full or write failed).",
		}, func() float64 { return float64(dropped()) }))
	}
	if depth != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "indigo_request_log_queue_depth", Help: "Request log entries waiting to be written.",
		}, func() float64 { return float64(depth()) }))
	}
	return m
}

func (m *Metrics) request(route string, status int) {
	if m == nil {
		return
	}
	k := routeStatus{route, status}
	m.counterMu.RLock()
	c, ok := m.counters[k]
	m.counterMu.RUnlock()
	if !ok {
		c = m.requests.WithLabelValues(route, strconv.Itoa(status))
		m.counterMu.Lock()
		m.counters[k] = c
		m.counterMu.Unlock()
	}
	c.Inc()
}

func (m *Metrics) verify(result string) {
	if m == nil {
		return
	}
	m.verifyMu.RLock()
	c, ok := m.verifyBy[result]
	m.verifyMu.RUnlock()
	if !ok {
		c = m.verifies.WithLabelValues(result)
		m.verifyMu.Lock()
		m.verifyBy[result] = c
		m.verifyMu.Unlock()
	}
	c.Inc()
}

func (m *Metrics) rejected(code string) {
	if m != nil {
		m.rejects.WithLabelValues(code).Inc()
	}
}
